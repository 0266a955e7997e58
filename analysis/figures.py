"""Figures of membrane, compartment and trace dynamics, and of learning curves (matplotlib).

Every axis carries its unit (time in steps of dt = 1 ms; all state variables are dimensionless);
phases are shaded and labelled (forward window, feedback window, sleep) so a figure reads without
hunting for a legend.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from plausigrad.models.errors import ConfigurationError  # noqa: E402
from plausigrad.models.schedule_signals import EVAL, SLEEP, TRAIN  # noqa: E402

PHASE_COLOURS = {"forward": "#dbe9f6", "feedback": "#fde0c5", "sleep": "#e5e5e5"}


def phase_intervals(kinds, forward_steps, slot_steps):
    """(start step, end step, phase name) for every phase of the slots in ``kinds``."""
    intervals = []
    for slot, kind in enumerate(kinds):
        start = slot * slot_steps
        if kind in (TRAIN, EVAL):
            intervals.append((start, start + forward_steps, "forward"))
            if kind == TRAIN:
                intervals.append((start + forward_steps, start + slot_steps, "feedback"))
        elif kind == SLEEP:
            intervals.append((start, start + slot_steps, "sleep"))
    return intervals


def _shade(ax, intervals, label=False):
    for start, end, phase in intervals:
        ax.axvspan(start, end, color=PHASE_COLOURS[phase], zorder=0, lw=0)
        if label:
            ax.text((start + end) / 2, 1.02, phase, transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=7)


def plot_dynamics(record, threshold, forward_steps, slot_steps, path, *, hidden="layer1",
                  neuron=None, input_neuron=None):
    """Soma, basal, apical/error and trace dynamics of one hidden neuron, plus layer rasters.

    ``record`` is an :class:`~plausigrad.protocols.engine.EpochRecord` of a run with probes on
    ``hidden`` (variables v, c, u, err, psi) and ``input`` (xhat). ``neuron`` must be one of the
    probed indices; None picks the probed neuron with the most spikes. Saves ``path`` (.png and .pdf).
    Returns the plotted arrays so a test can check them against the recording.
    """
    probe = record.probes[hidden]
    t = probe["t"]
    row = probe["indices"]
    if neuron is None:  # the probed neuron that spiked most: the liveliest trace to look at
        spike_i = record.spikes[hidden][0]
        neuron = max(row, key=lambda n: int(np.sum(spike_i == n)))
    k = row.index(neuron)
    intervals = phase_intervals(record.kinds, forward_steps, slot_steps)
    spike_i, spike_t = record.spikes[hidden]
    own_spikes = spike_t[spike_i == neuron]

    layers = [name for name in record.spikes]
    fig, axes = plt.subplots(4 + len(layers), 1, figsize=(9, 2.0 * (4 + len(layers))),
                             sharex=True, constrained_layout=True)
    ax = axes[0]
    _shade(ax, intervals, label=True)
    ax.plot(t, probe["v"][k], color="k", lw=1, label="soma v")
    ax.axhline(threshold, color="r", ls="--", lw=1, label=f"threshold V_th = {threshold}")
    ax.plot(own_spikes, np.full(len(own_spikes), threshold * 1.6), "v", color="r", ms=4,
            label="spikes")
    ax.set_ylabel("soma v (1)")
    ax.legend(loc="upper right", fontsize=7, ncol=3)
    ax.set_title(f"{hidden}, neuron {neuron}: compartments and traces", loc="left", fontsize=9,
                 pad=14)

    ax = axes[1]
    _shade(ax, intervals)
    ax.plot(t, probe["c"][k], color="tab:blue", lw=1)
    ax.set_ylabel("basal c (1)")

    ax = axes[2]
    _shade(ax, intervals)
    ax.plot(t, probe["u"][k], color="tab:green", lw=1.2, label="apical u")
    ax.plot(t, probe["err"][k], color="tab:purple", lw=0.8, ls=":", label="error unit D")
    ax.set_ylabel("apical / error (1)")
    ax.legend(loc="upper right", fontsize=7)

    ax = axes[3]
    _shade(ax, intervals)
    ax.plot(t, probe["psi"][k], color="tab:orange", lw=0.8, label="ψ (pseudo-derivative)")
    if "input" in record.probes:
        inp = record.probes["input"]
        ax.plot(inp["t"], inp["xhat"][0], color="tab:brown", lw=1,
                label=f"presynaptic trace x̂ (input {input_neuron if input_neuron is not None else 0})")
    ax.set_ylabel("ψ, x̂ (1)")
    ax.legend(loc="upper right", fontsize=7)

    for ax, name in zip(axes[4:], layers):
        _shade(ax, intervals)
        i, ts = record.spikes[name]
        ax.plot(ts, i, "|", color="k", ms=2)
        ax.set_ylabel(f"{name}\nneuron index")
    axes[-1].set_xlabel("time (steps of dt = 1 ms)")
    _save(fig, path)
    return {"t": t, "v": probe["v"][k], "spike_steps": own_spikes, "threshold": threshold}


def plot_learning_curves(history, path):
    """Train/test accuracy and train loss per epoch, and angle(B, Wᵀ) if logged."""
    epochs = [e["epoch"] for e in history]
    has_angles = any("feedback_angle_degrees" in e for e in history)
    fig, axes = plt.subplots(1, 3 if has_angles else 2, figsize=(11 if has_angles else 8, 3.2),
                             constrained_layout=True)
    ax = axes[0]
    for key, label in (("train_accuracy", "train (online, during the epoch)"),
                       ("test_accuracy", "test (end of epoch)")):
        ax.plot(epochs, [100 * e.get(key, np.nan) for e in history], "o-", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(epochs, [e.get("train_loss", np.nan) for e in history], "o-", label="train")
    ax.plot(epochs, [e.get("test_loss", np.nan) for e in history], "s--", label="test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE loss on rates (1)")
    ax.legend(fontsize=7)
    if has_angles:
        ax = axes[2]
        series = {}
        for e in history:
            for name, values in e.get("feedback_angle_per_sleep_cycle", {}).items():
                series.setdefault(name, []).extend(values)
        for name, values in series.items():
            ax.plot(np.arange(len(values)), values, ".-", label=f"angle({name}, W{int(name[1:]) + 1}ᵀ)")
        ax.set_xlabel("sleep cycle (across epochs)")
        ax.set_ylabel("angle (degrees)")
        ax.legend(fontsize=7)
    _save(fig, path)


ALIGNMENT_PANELS = (("feedback_angle", "θ(B, Wᵀ): feedback vs forward"),
                    ("error_angle", "θ(e, e_BP): apical error vs backprop"),
                    ("update_angle_r1", "θ(ΔW, −∇R1): update vs rate backprop"),
                    ("update_angle_r2", "θ(ΔW, −∇R2): update vs surrogate BPTT"))


def alignment_series(history):
    """{layer: {quantity: (samples_seen, values)}} from the ``alignment`` entries of a run."""
    series = {}
    for entry in history:
        for point in entry.get("alignment", []):
            for layer, values in point["layers"].items():
                for name, value in values.items():
                    xs, ys = series.setdefault(layer, {}).setdefault(name, ([], []))
                    xs.append(point["samples_seen"])
                    ys.append(np.nan if value is None else value)
    return series


def plot_alignment(runs, path):
    """Alignment angles against training progress: one row per weight layer, one column per angle.

    ``runs`` maps a legend label to a run's metric history (the ``epochs`` list of its
    metrics.json, tracked with ``--track-alignment``). Undefined values (no feedback matrix, no
    local error in the output layer) leave a panel empty with a note. Saves PNG and PDF; returns
    the plotted series ``{label: {layer: {quantity: (x, y)}}}``.
    """
    plotted = {label: alignment_series(history) for label, history in runs.items()}
    layers = sorted({layer for s in plotted.values() for layer in s})
    if not layers:
        raise ConfigurationError("no alignment measurements in these runs "
                                 "(train them with --track-alignment N)")
    fig, axes = plt.subplots(len(layers), len(ALIGNMENT_PANELS), squeeze=False,
                             figsize=(3.3 * len(ALIGNMENT_PANELS), 2.7 * len(layers)),
                             sharex=True, constrained_layout=True)
    for row, layer in enumerate(layers):
        for col, (name, title) in enumerate(ALIGNMENT_PANELS):
            ax = axes[row][col]
            drawn = False
            for label, series in plotted.items():
                xs, ys = series.get(layer, {}).get(name, ([], []))
                if len(ys) and not np.all(np.isnan(ys)):
                    ax.plot(xs, ys, ".-", label=label)
                    drawn = True
            if not drawn:
                ax.text(0.5, 0.5, "undefined for this layer", transform=ax.transAxes,
                        ha="center", va="center", fontsize=8, color="0.4")
            ax.axhline(90, color="0.6", lw=0.6, ls=":")
            ax.set_ylim(0, 100)
            ax.set_title(f"{layer} ({'hidden' if row < len(layers) - 1 else 'output'}): {title}",
                         fontsize=8, loc="left")
            if col == 0:
                ax.set_ylabel("angle (degrees)")
            if row == len(layers) - 1:
                ax.set_xlabel("training samples seen")
            if drawn and row == 0:
                ax.legend(fontsize=7)
    _save(fig, path)
    return plotted


def plot_alignment_runs(run_dirs, path, labels=None):
    """:func:`plot_alignment` for run directories; legend labels default to the feedback mode."""
    import json
    import os
    runs = {}
    for k, run in enumerate(run_dirs):
        if not os.path.isfile(os.path.join(run, "metrics.json")):
            raise ConfigurationError(f"{run}: no metrics.json (not a training run directory)")
        with open(os.path.join(run, "metrics.json")) as handle:
            metrics = json.load(handle)
        label = labels[k] if labels and k < len(labels) else \
            metrics["config"]["rule_params"].get("feedback", os.path.basename(run))
        runs[label] = metrics["epochs"]
    plot_alignment(runs, path)
    stem = path[:-4] if path.endswith((".png", ".pdf")) else path
    return [stem + ".png", stem + ".pdf"]


def _save(fig, path):
    stem = path[:-4] if path.endswith((".png", ".pdf")) else path
    fig.savefig(stem + ".png", dpi=120)
    fig.savefig(stem + ".pdf")
    plt.close(fig)
