"""Figures of membrane, compartment and trace dynamics, and of learning curves (matplotlib).

Every axis carries its unit (time in steps of dt = 1 ms; all state variables are dimensionless);
phases are shaded and labelled (forward window, feedback window, sleep) so a figure reads without
hunting for a legend.
"""

from dataclasses import dataclass

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


@dataclass(frozen=True)
class DynamicsSpec:
    """Which recorded variables show a rule's neuron, trace, eligibility and weight dynamics.

    A rule's analysis plug-in provides one (``dynamics_spec``); every name is a variable of the
    rule's Brian2 model, recorded with ``StateMonitor`` probes on a few indices only.
    """

    neuron_group: str                 #: hidden layer whose neuron is shown, e.g. "layer1"
    soma: str                         #: membrane variable (or drive) of the shown neuron
    threshold: object                 #: firing threshold; None for stochastic neurons
    compartments: tuple               #: ((variable, axis label), ...) other neuron traces
    input_group: str                  #: presynaptic layer of the shown synapse
    trace: str                        #: presynaptic trace variable of the input neuron
    synapses: str                     #: synapse group of the shown synapse, e.g. "W1"
    weight: str = "w"
    synapse_variables: tuple = ()     #: ((variable, label), ...) recorded on the synapse
    pre_variables: tuple = ()         #: extra variables recorded on the presynaptic neuron
    post_variables: tuple = ()        #: extra variables recorded on the shown neuron
    synapse_extra: tuple = ()         #: extra variables recorded on the synapse (not plotted)
    eligibility: object = None        #: f(pre probe, post probe, row k, synapse probe) -> (label, y)
    soma_label: str = None            #: axis label of the soma panel (default "soma <name>")


def plot_dynamics(record, spec, windows, path, *, neuron, input_neuron):
    """One neuron's soma (threshold, spikes), compartments, a presynaptic trace, the eligibility
    and the weight of the synapse joining them, and rasters of every layer; phases shaded.

    ``record`` holds probes on ``spec.neuron_group`` (a few neurons, ``neuron`` among them),
    ``spec.input_group`` (``input_neuron``) and ``spec.synapses`` (the synapses from
    ``input_neuron`` to the probed neurons, in the same order). Saves ``path`` (.png and .pdf) and
    returns the plotted arrays so a test can check them against the recording.
    """
    post = record.probes[spec.neuron_group]
    pre = record.probes[spec.input_group]
    syn = record.probes[spec.synapses]
    t = post["t"]
    k = post["indices"].index(neuron)
    intervals = phase_intervals(record.kinds, windows.forward_steps, windows.slot_steps)
    spike_i, spike_t = record.spikes[spec.neuron_group]
    own_spikes = spike_t[spike_i == neuron]
    in_i, in_t = record.spikes[spec.input_group]
    input_spikes = in_t[in_i == input_neuron]
    rows = 2 + len(spec.compartments) + (spec.eligibility is not None) + 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 1.75 * rows), sharex=True,
                             constrained_layout=True)
    ax = axes[0]
    _shade(ax, intervals, label=True)
    soma = np.asarray(post[spec.soma][k])
    soma_label = spec.soma_label or f"soma {spec.soma}"
    ax.plot(t, soma, color="k", lw=1, label=soma_label)
    level = float(np.max(soma)) if len(soma) else 1.0
    if spec.threshold is not None:  # stochastic neurons (SSNN-BP) have none
        ax.axhline(spec.threshold, color="r", ls="--", lw=1,
                   label=f"threshold {spec.threshold:g}")
        level = max(level, spec.threshold)
    top = level * 1.15 if level > 0 else 1.0
    ax.plot(own_spikes, np.full(len(own_spikes), top), "v", color="r", ms=4, label="spikes")
    ax.set_ylim(top=top + 0.3 * (top - min(0.0, float(np.min(soma)) if len(soma) else 0.0)))
    ax.set_ylabel(f"{soma_label} (1)")
    ax.legend(loc="upper right", fontsize=7, ncol=3)
    ax.set_title(f"{spec.neuron_group} neuron {neuron}; synapse {spec.synapses} from "
                 f"{spec.input_group} neuron {input_neuron}", loc="left", fontsize=9, pad=14)
    for ax, (variable, label) in zip(axes[1:], spec.compartments):
        _shade(ax, intervals)
        ax.plot(t, post[variable][k], lw=1)
        ax.set_ylabel(f"{label} (1)")
    row = 1 + len(spec.compartments)
    ax = axes[row]
    _shade(ax, intervals)
    ax.plot(pre["t"], pre[spec.trace][0], color="tab:brown", lw=1)
    ax.plot(input_spikes, np.zeros(len(input_spikes)), "|", color="k", ms=6)
    ax.set_ylabel(f"presynaptic\ntrace {spec.trace} (1)")
    plotted = {"t": t, "soma": soma, "spike_steps": own_spikes, "threshold": spec.threshold}
    if spec.eligibility is not None:
        row += 1
        ax = axes[row]
        _shade(ax, intervals)
        label, values = spec.eligibility(pre, post, k, syn)
        ax.plot(t, values, color="tab:purple", lw=1)
        ax.set_ylabel(f"eligibility\n{label} (1)")
        plotted["eligibility"] = values
    ax = axes[-1]
    _shade(ax, intervals)
    weight = np.asarray(syn[spec.weight][k])
    ax.plot(syn["t"], weight - weight[0], color="tab:blue", lw=1.2,
            label=f"{spec.weight} − {spec.weight}(0), {spec.weight}(0) = {weight[0]:.4f}")
    for variable, label in spec.synapse_variables:
        ax.plot(syn["t"], syn[variable][k], lw=0.8, ls=":", label=label)
    ax.set_ylabel("weight change (1)")
    ax.legend(loc="upper left", fontsize=7)
    ax.set_xlabel("time (steps of dt = 1 ms)")
    plotted["weight"] = weight
    _save(fig, path)
    return plotted


#: Colours of the two polarities of event input (index 0: OFF, 1: ON).
POLARITY_COLOURS = ("tab:blue", "tab:red")


def plot_raster(record, windows, path, groups=None, event_input=None):
    """Spike raster of every layer (inputs, hidden, output), phase windows shaded and labelled.

    ``event_input`` (units per polarity, e.g. 1156 for N-MNIST's 34 × 34; input unit =
    polarity · units + pixel): the ``input`` group's spikes are drawn as the ON and OFF events
    they are, in two colours."""
    groups = groups or list(record.spikes)
    intervals = phase_intervals(record.kinds, windows.forward_steps, windows.slot_steps)
    fig, axes = plt.subplots(len(groups), 1, figsize=(9, 1.6 * len(groups) + 0.6), sharex=True,
                             constrained_layout=True, squeeze=False)
    for n, (ax, name) in enumerate(zip(axes[:, 0], groups)):
        _shade(ax, intervals, label=n == 0)
        i, steps = record.spikes[name]
        if event_input and name == "input":
            polarity = i // event_input
            for p, label in ((1, "ON"), (0, "OFF")):
                ax.plot(steps[polarity == p], i[polarity == p], "|", ms=2,
                        color=POLARITY_COLOURS[p], label=f"{label} events")
            ax.legend(loc="upper right", fontsize=7, markerscale=4)
        else:
            ax.plot(steps, i, "|", color="k", ms=2)
        ax.set_ylabel(f"{name}\nneuron index")
    axes[-1, 0].set_xlabel("time (steps of dt = 1 ms)")
    _save(fig, path)


def plot_learning_curves(history, path, loss_label="loss"):
    """Train/test accuracy and train loss per epoch, and angle(B, Wᵀ) if logged; ``loss_label``
    names the rule's loss (``rule.loss.label``)."""
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
    ax.set_ylabel(loss_label)
    ax.legend(fontsize=7)
    if has_angles:
        ax = axes[2]
        series = {}
        for e in history:
            for name, values in e.get("feedback_angle_per_sleep_cycle", {}).items():
                series.setdefault(name, []).extend(values)
        for name, values in series.items():  # an undefined angle (None) leaves a gap
            ax.plot(np.arange(len(values)), [np.nan if v is None else v for v in values], ".-",
                    label=f"angle({name}, W{int(name[1:]) + 1}ᵀ)")
        ax.set_xlabel("sleep cycle (across epochs)")
        ax.set_ylabel("angle (degrees)")
        ax.legend(fontsize=7)
    _save(fig, path)


ALIGNMENT_PANELS = (("feedback_angle", "θ(B, Wᵀ): feedback weights"),
                    ("error_angle", "θ(e, e_BP): local error"),
                    ("update_angle_r1", "θ(ΔW, −∇R1): vs rate backprop"),
                    ("update_angle_r2", "θ(ΔW, −∇R2): vs BPTT"))


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
    """:func:`plot_alignment` for run directories (legend labels default to the feedback mode),
    plus a Markdown table of the same measurements next to the figure (``.md``)."""
    import json
    import os
    runs = {}
    for k, run in enumerate(run_dirs):
        if not os.path.isfile(os.path.join(run, "metrics.json")):
            raise ConfigurationError(f"{run}: no metrics.json (not a training run directory)")
        with open(os.path.join(run, "metrics.json")) as handle:
            metrics = json.load(handle)
        label = labels[k] if labels and k < len(labels) else \
            metrics.get("rule", {}).get("feedback", os.path.basename(os.path.normpath(run)))
        runs[label] = metrics["epochs"]
    plot_alignment(runs, path)
    stem = path[:-4] if path.endswith((".png", ".pdf")) else path
    from plausigrad.analysis.alignment import tracking_table
    with open(stem + ".md", "w") as handle:
        handle.write(tracking_table(runs) + "\n")
    return [stem + ".png", stem + ".pdf", stem + ".md"]


def _save(fig, path):
    stem = path[:-4] if path.endswith((".png", ".pdf")) else path
    fig.savefig(stem + ".png", dpi=120)
    fig.savefig(stem + ".pdf")
    plt.close(fig)
