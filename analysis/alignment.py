"""Gradient alignment to backprop: how close a local, spike-based update comes to the true gradient.

Definitions (ALGORITHMS.md §5). For every weight layer l, on a fixed probe set of P samples (the
first P test samples, never trained on):

    θ_W^l   = ∠(B^l, (W^{l+1})ᵀ)                       feedback into hidden layer l vs forward
    θ_δ^l   = ∠(e^l_local, e^l_BP)                     error delivered to layer l (hidden layers)
    θ_R1^l  = ∠(ΔW^l_local, −∇_{W^l} L_R1)             update vs the rate-network gradient
    θ_R2^l  = ∠(ΔW^l_local, −∇_{W^l} L_R2)             update vs surrogate-gradient BPTT
    ρ^l     = ‖ΔW^l_local‖ / ‖η^l ∇_{W^l} L‖            norm ratio (for R1 and R2)

∠(A, B) = (180/π) arccos(⟨vec A, vec B⟩ / (‖A‖ ‖B‖)), the cosine clipped to [−1, 1]; an angle
with a zero vector is *undefined* (``None`` in JSON, "—" in tables), never NaN
(:func:`plausigrad.protocols.angles.angle_degrees`).

Where the quantities come from:

* ΔW_local — the Brian2 rule itself. The probe set is presented once as TRAIN slots of a copy
  of the network on the runtime device, as ONE mini-batch (the rule's batch size set to P), so
  every sample sees the same weights (the limit of a vanishing learning rate) and the update
  W_after − W_before is the rule's mean update over the probe set at its nominal learning rate.
  The training weights are never touched: the probe runs on a copy.
* e_local — the rule's local error signal in each hidden layer, read from the same Brian2 run
  (for BioGrad the apical compartment u at the end of the feedback window).
* The references are computed in numpy on the input spike trains Brian2 recorded in that run:
  the rule's reference network (same discrete-time equations) re-simulates the forward window,
  and its spike counts are checked against Brian2's (``count_mismatch``; 0 on every measurement
  so far, see the tests).
* R1, the rate-network gradient: backprop through the rate-coded equivalent network with the
  rule's own loss: activations a^l = measured spike rates, derivative = the rule's mean
  pseudo-derivative ψ̄^l::

      e^L = ∂L/∂a^L,   δ^l = e^l ⊙ ψ̄^l,   e^{l-1} = (W^l)ᵀ δ^l,   ∇_{W^l} L = ⟨δ^l (a^{l-1})ᵀ⟩_probe

  e^l is the backprop error arriving at layer l, the counterpart of the local error e_local.
* R2, surrogate-gradient BPTT through the identical discrete-time spiking network with the rule's
  pseudo-derivative (provided by the rule's plug-in; for BioGrad see
  :mod:`plausigrad.analysis.biograd_alignment`).

A rule joins the analysis through an :class:`AlignmentModel` (registered in
:data:`ALIGNMENT_MODELS`); everything in this module is rule-agnostic.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from plausigrad.analysis.readout import slot_counts, slot_spike_array
from plausigrad.models.errors import ConfigurationError, require_positive
from plausigrad.models.schedule_signals import TRAIN
from plausigrad.protocols.angles import angle_degrees, format_angle
from plausigrad.protocols.devices import Device
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.recorders import Probes

#: Names of the per-layer quantities, in table order.
QUANTITIES = ("feedback_angle", "error_angle", "update_angle_r1", "update_angle_r2",
              "norm_ratio_r1", "norm_ratio_r2")


def norm_ratio_or_none(update, gradient, learning_rate):
    """‖update‖ / ‖learning_rate · gradient‖; None if the gradient is zero."""
    denominator = learning_rate * np.linalg.norm(gradient)
    return None if denominator == 0 else float(np.linalg.norm(update) / denominator)


class AlignmentModel:
    """What a learning rule provides so the alignment analysis can measure it.

    A plug-in names the rule's Brian2 objects and supplies its loss and reference network:

    ================================  ============================================================
    member                            meaning
    ================================  ============================================================
    ``rule_name``                     the ``LearningRule.name`` it serves
    ``input_group``                   name of the input NeuronGroup (its spikes are recorded)
    ``layer_group(l)``                name of the NeuronGroup of layer l ≥ 1
    ``probe_rule(rule, n)``           the same rule with one mini-batch of n samples
    ``learning_rates(rule, L)``       η^l per weight layer (for the norm ratio)
    ``feedback_weights(rule, s, l)``  the matrix that carries errors into hidden layer l
                                      (B^l, or (W^{l+1})ᵀ for symmetric feedback; None if none)
    ``error_probes(sizes)``           Brian2 probes that record the local error signals
    ``local_errors(record, ...)``     the recorded local error per hidden layer, (P, n_l)
    ``reference_forward(state, s)``   numpy re-simulation on input spikes s (T_f, P, n_0): per
                                      layer ``count``, ``rate``, ``derivative`` (ψ̄)
    ``output_error(rates, labels)``   ∂L/∂a^L per sample, (P, n_L), and the loss per sample
    ``surrogate_gradient(...)``       R2: mean ∇_{W^l} L per layer by BPTT, or None if the rule
                                      has no surrogate network
    ``stochastic``                    True for rules with random spikes (SSNN-BP): no
                                      re-simulation can match Brian2's spikes, so
                                      ``recorded_forward(rule, state, record, spikes, P,
                                      windows, sizes)`` reads rate/derivative from the probe run
                                      instead and ``count_mismatch`` is None
    ``dynamics_spec(rule, w, sizes)`` which variables the dynamics figure shows (figures, gallery)
    ================================  ============================================================
    """

    rule_name = None
    input_group = "input"

    def layer_group(self, layer):
        return f"layer{layer}"

    def probe_rule(self, rule, n_samples):
        """The same rule with one mini-batch of ``n_samples`` (rules with a ``batch_size``)."""
        return type(rule)(dataclasses.replace(rule.params, batch_size=int(n_samples)))

    def learning_rates(self, rule, n_layers):
        return list(rule.params.layer_learning_rates(n_layers))

    def feedback_weights(self, rule, state, layer):
        """(W^{l+1})ᵀ when errors travel back through the forward weights (the rule's
        ``feedback_name`` is None), else the rule's feedback matrix if it is shaped like
        (W^{l+1})ᵀ (as in ``rule.feedback_pairs``), else None (e.g. DFA's deeper layers,
        whose feedback comes straight from the output)."""
        n_layers = sum(1 for name in state if name.startswith("W") and name[1:].isdigit())
        name = rule.feedback_name(layer, n_layers)
        upper = np.asarray(state[f"W{layer + 1}"])
        if name is None:
            return upper.T
        return state[name] if np.shape(state[name]) == upper.T.shape else None

    def error_probes(self, layer_sizes):
        return {}

    def local_errors(self, record, n_samples, windows, layer_sizes):
        raise NotImplementedError

    def reference_forward(self, rule, state, input_spikes):
        raise NotImplementedError

    def output_error(self, rule, rates, labels):
        """∂L/∂a^L and the loss per sample of the rule's own loss (``rule.loss``)."""
        return rule.loss.output_error(rates, labels)

    def surrogate_gradient(self, rule, state, input_spikes, labels):
        return None

    def dynamics_spec(self, rule, windows, layer_sizes):
        """A :class:`~plausigrad.analysis.figures.DynamicsSpec` for the figures (None: none)."""
        return None


def alignment_model_for(rule):
    """The :class:`AlignmentModel` of ``rule``, named by the rule's ``alignment_plugin``
    (raises ConfigurationError if it has none)."""
    from plausigrad.rules.registry import load_object
    if rule.alignment_plugin is None:
        raise ConfigurationError(f"rule {rule.name!r} has no alignment plug-in "
                                 "(its alignment_plugin is None)")
    model = load_object(rule.alignment_plugin)()
    if not isinstance(model, AlignmentModel):
        raise ConfigurationError(f"{rule.alignment_plugin} is not an AlignmentModel")
    return model


def rate_backprop(weights, forward, output_error):
    """R1: backprop through the rate network. Returns (mean gradients per layer, errors e^l).

    ``weights[l-1]`` is W^l (n_l, n_{l-1}); ``forward["rate"][l]`` and
    ``forward["derivative"][l]`` are (P, n_l) arrays; ``output_error`` is ∂L/∂a^L (P, n_L).
    ``errors[l]`` is e^l, the error arriving at layer l (index 0 unused).
    """
    n_layers = len(weights)
    n_samples = output_error.shape[0]
    errors = [None] * (n_layers + 1)
    gradients = [None] * n_layers
    errors[n_layers] = output_error
    for l in range(n_layers, 0, -1):
        delta = errors[l] * forward["derivative"][l]
        gradients[l - 1] = delta.T @ forward["rate"][l - 1] / n_samples
        errors[l - 1] = delta @ weights[l - 1]
    return gradients, errors


def measure_alignment(rule, layer_sizes, windows, state, images, labels, *, seed=1,
                      runtime_target="cython", details=False, input_encoding=None):
    """Measure every alignment quantity of ``state`` on the probe set (``images``, ``labels``).

    ``input_encoding``: how the rows of ``images`` drive the input (the engine's; e.g. the
    bit-packed N-MNIST frames of ``--dataset nmnist``). The references read the input spikes
    this run records, so they need nothing else from it.

    Returns ``{"loss": ..., "count_mismatch": ..., "layers": {"W1": {...}, ...}}`` with the
    quantities of :data:`QUANTITIES` per weight layer (None where undefined or not applicable).
    With ``details=True`` the arrays (updates, gradients, errors, the Brian2 record) are added
    under ``"arrays"``.
    """
    model = alignment_model_for(rule)
    n_samples = len(labels)
    require_positive("probe set size", n_samples)
    n_layers = len(layer_sizes) - 1
    probe_rule = model.probe_rule(rule, n_samples)
    simulator = Simulator(probe_rule, layer_sizes, windows, None, images, labels, n_samples, 0,
                          device=Device("runtime", runtime_target=runtime_target),
                          input_encoding=input_encoding,
                          recorders=[Probes(model.error_probes(layer_sizes) or {
                              model.input_group: (("xhat",), (0,))})])
    learning_rates = model.learning_rates(rule, n_layers)
    rates = {f"W{l}": learning_rates[l - 1] for l in range(1, n_layers + 1)}
    rates.update({name: 0.0 for name in state if not name.startswith("W")})
    record = simulator.run(state, np.arange(n_samples), seed, rates)
    assert np.all(record.kinds[:n_samples] == TRAIN)

    input_indices, input_steps = record.spikes[model.input_group]
    spikes = slot_spike_array(input_indices, input_steps, layer_sizes[0], n_samples,
                              windows.slot_steps, windows.forward_steps)
    if getattr(model, "stochastic", False):
        # random spikes cannot be re-simulated: the plug-in reads the activity of this run
        reference = model.recorded_forward(rule, state, record, spikes, n_samples, windows,
                                           layer_sizes)
        mismatch = None
    else:
        reference = model.reference_forward(rule, state, spikes)
        mismatch = 0
        for l in range(1, n_layers + 1):
            brian = slot_counts(*record.spikes[model.layer_group(l)], layer_sizes[l], n_samples,
                                windows.slot_steps, window=(0, windows.forward_steps))
            mismatch += int(np.sum(brian != reference["count"][l]))
    weights = [np.asarray(state[f"W{l}"], dtype=np.float64) for l in range(1, n_layers + 1)]
    output_error, loss = model.output_error(rule, reference["rate"][n_layers], np.asarray(labels))
    r1, bp_errors = rate_backprop(weights, reference, output_error)
    r2 = model.surrogate_gradient(rule, state, spikes, np.asarray(labels))
    local_errors = model.local_errors(record, n_samples, windows, layer_sizes)
    updates = [record.state[f"W{l}"] - state[f"W{l}"] for l in range(1, n_layers + 1)]

    layers = {}
    for l in range(1, n_layers + 1):
        entry = dict.fromkeys(QUANTITIES)
        feedback = model.feedback_weights(rule, state, l) if l < n_layers else None
        if feedback is not None:
            entry["feedback_angle"] = angle_degrees(feedback, state[f"W{l + 1}"].T)
        if l < n_layers and local_errors.get(l) is not None:
            entry["error_angle"] = angle_degrees(local_errors[l], bp_errors[l])
        entry["update_angle_r1"] = angle_degrees(updates[l - 1], -r1[l - 1])
        entry["norm_ratio_r1"] = norm_ratio_or_none(updates[l - 1], r1[l - 1],
                                                    learning_rates[l - 1])
        if r2 is not None:
            entry["update_angle_r2"] = angle_degrees(updates[l - 1], -r2[l - 1])
            entry["norm_ratio_r2"] = norm_ratio_or_none(updates[l - 1], r2[l - 1],
                                                        learning_rates[l - 1])
        layers[f"W{l}"] = entry
    result = {"probe_samples": n_samples, "loss": float(np.mean(loss)),
              "count_mismatch": mismatch, "layers": layers}
    if details:
        result["arrays"] = {"updates": updates, "r1": r1, "r2": r2, "bp_errors": bp_errors,
                            "local_errors": local_errors, "reference": reference,
                            "input_spikes": spikes, "record": record}
    return result


def format_table(measurements, markdown=False):
    """A table of per-layer quantities; ``measurements`` is a list of (label, result) pairs."""
    header = ["", "layer", "θ(B,Wᵀ)", "θ(e,e_BP)", "θ(ΔW,R1)", "θ(ΔW,R2)", "‖ΔW‖/‖ηR1‖",
              "‖ΔW‖/‖ηR2‖"]
    rows = []
    for label, result in measurements:
        for layer, entry in result["layers"].items():
            cells = [label, layer]
            for name in QUANTITIES:
                value = entry[name]
                unit = "" if name.startswith("norm") else "°"
                cells.append("—" if value is None else f"{value:.{2 if unit == '' else 1}f}{unit}")
            rows.append(cells)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(r[k])) for r in [header] + rows) for k in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in [header] + rows)


def tracking_table(runs, max_rows=6):
    """Markdown table of tracked runs: ``runs`` maps a label to a metrics history.

    Per run: the first two measurements and the end of every epoch (at most ``max_rows``), with
    the hidden layer's θ(B,Wᵀ), θ(e,e_BP), θ(ΔW,R1), θ(ΔW,R2) and the output layer's θ(ΔW,R1).
    """
    lines = ["| run | samples | test acc. (epoch) | W1: θ(B,Wᵀ) | W1: θ(e,e_BP) | W1: θ(ΔW,R1) | "
             "W1: θ(ΔW,R2) | W2: θ(ΔW,R1) |", "|" + "---|" * 8]
    for label, history in runs.items():
        points = []
        for entry in history:
            series = entry.get("alignment", [])
            for k, point in enumerate(series):
                end = k == len(series) - 1
                if end or len(points) < 2:
                    points.append((point, entry.get("test_accuracy") if end else None,
                                   entry["epoch"]))
        for point, accuracy, epoch in points[:2] + points[2:][-(max_rows - 2):]:
            hidden, output = point["layers"]["W1"], point["layers"][sorted(point["layers"])[-1]]
            acc = f"{100 * accuracy:.2f} ({epoch})" if accuracy is not None else ""
            cells = [label, str(point["samples_seen"]), acc] + [
                format_angle(hidden[q]) for q in ("feedback_angle", "error_angle",
                                                  "update_angle_r1", "update_angle_r2")
            ] + [format_angle(output["update_angle_r1"])]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- measuring outside the training process -----------------------------------------------------
#
# A standalone training run owns the Brian2 device of its process (its compiled binary is reused
# by every epoch), while the probe runs on the runtime device. The tracker therefore measures in a
# child process: ``python -m plausigrad.analysis.alignment REQUEST.json``.


def probe_set(config, size):
    """The probe set of a run: its dataset with the first ``size`` test samples (``test_images``,
    ``test_labels``, ``input_encoding``, ``n_inputs``)."""
    from plausigrad.protocols.datasets import load_dataset
    return load_dataset(config.dataset, data_dir=config.data_dir, train_limit=1,
                        test_limit=size, binning=config.binning())


def check_probe_size(config, size):
    """Raise :class:`ConfigurationError` when the probe set (the first ``size`` test samples of
    the run's dataset) is larger than the dataset's test set."""
    from plausigrad.protocols.datasets import load_dataset
    dataset = load_dataset(config.dataset, data_dir=config.data_dir, train_limit=1)
    if size > dataset.num_test:
        raise ConfigurationError(f"probe size {size} exceeds the {dataset.num_test} test samples "
                                 f"of {config.dataset}; lower --probe-size")


def measure_snapshots(request):
    """Measure every snapshot named in ``request`` (a dict, see :class:`AlignmentTracker`)."""
    from plausigrad.protocols.schedule import Windows
    from plausigrad.protocols.training import RunConfig

    config = RunConfig(**request["config"])
    rule = config.make_rule()
    probe = probe_set(config, request["probe_size"])
    sizes = tuple(request["layer_sizes"])
    windows = Windows(config.forward_steps, config.feedback_steps)
    results = []
    with np.load(request["snapshots"]) as archive:
        for k, samples_seen in enumerate(request["samples_seen"]):
            state = {name[len(f"{k}/"):]: archive[name] for name in archive.files
                     if name.startswith(f"{k}/")}
            result = measure_alignment(rule, sizes, windows, state, probe.test_images,
                                       probe.test_labels, seed=request["seed"],
                                       input_encoding=probe.input_encoding)
            results.append({"samples_seen": int(samples_seen), **result})
    return results


class AlignmentTracker:
    """Epoch hook for :func:`plausigrad.protocols.training.train`: measures its snapshots.

    The training run records its learned state every ``config.track_alignment`` slots (a
    ``StateMonitor``, so the epoch is still one Brian2 run and the weights are not disturbed);
    after each epoch this hook measures those snapshots plus the end-of-epoch state on the probe
    set, in a child process, and returns ``{"alignment": [...]}`` for the epoch's metrics.
    """

    def __init__(self, config, out_dir, *, probe_size=64, seed=1, log=print):
        require_positive("probe set size", probe_size)
        check_probe_size(config, probe_size)  # before training, not after the first epoch
        self.config, self.out_dir = config, out_dir
        self.probe_size, self.seed, self.log = probe_size, seed, log

    def __call__(self, epoch, record, state, n_train):
        kinds = record.kinds
        trained_before = np.concatenate([[0], np.cumsum(kinds == TRAIN)])
        # slot 0 of a later epoch repeats the previous epoch's end; a snapshot taken after the
        # last training sample (in the final sleep block) is superseded by the end state
        points = [(epoch * n_train + int(trained_before[slot]), snap)
                  for slot, snap in (record.snapshots or [])
                  if (epoch == 0 or slot > 0) and trained_before[slot] < n_train]
        points.append(((epoch + 1) * n_train, state))
        folder = os.path.join(self.out_dir, "alignment")
        os.makedirs(folder, exist_ok=True)
        snapshots = os.path.join(folder, f"epoch{epoch + 1}_snapshots.npz")
        np.savez(snapshots, **{f"{k}/{name}": value for k, (_, snap) in enumerate(points)
                               for name, value in snap.items()})
        request = {"config": self.config.to_json(), "layer_sizes": layer_sizes_of(state),
                   "probe_size": self.probe_size, "seed": self.seed, "snapshots": snapshots,
                   "samples_seen": [seen for seen, _ in points]}
        self.log(f"alignment: measuring {len(points)} snapshots on {self.probe_size} probe samples")
        results = run_in_child(request)
        os.remove(snapshots)
        for result in results:
            self.log(format_progress(result))
        return {"alignment": results}


def layer_sizes_of(state):
    """(n_0, n_1, ..., n_L) from the weight matrices W1..WL of a learned state."""
    n_layers = sum(1 for name in state if name.startswith("W"))
    return (int(np.shape(state["W1"])[1]),) + tuple(int(np.shape(state[f"W{l}"])[0])
                                                   for l in range(1, n_layers + 1))


def align_checkpoint(checkpoint_dir, *, probe_size=64, out=None, data_dir=None, seed=1,
                     log=print):
    """Measure the alignment of a checkpoint on its probe set; print a table, optionally save."""
    from plausigrad.protocols.checkpoint import load_checkpoint
    from plausigrad.protocols.training import check_checkpoint_state, checkpoint_config

    require_positive("probe set size", probe_size)
    meta, state = load_checkpoint(checkpoint_dir)
    config = checkpoint_config(meta, checkpoint_dir,
                               data_dir=data_dir or meta["config"].get("data_dir"))
    check_probe_size(config, probe_size)
    probe = probe_set(config, probe_size)
    check_checkpoint_state(config.make_rule(), state, (probe.n_inputs, *config.hidden, 10),
                           checkpoint_dir)
    result = measure_alignment(config.make_rule(), layer_sizes_of(state), config.windows(), state,
                               probe.test_images, probe.test_labels, seed=seed,
                               input_encoding=probe.input_encoding)
    result = {"checkpoint": checkpoint_dir, "epoch": meta["epoch"], **result}
    log(f"alignment of {checkpoint_dir} (epoch {meta['epoch']}) on {probe_size} probe samples, "
        f"loss {result['loss']:.4f}, reference count mismatches {result['count_mismatch']}")
    log(format_table([(config.rule_params.get("feedback", config.rule), result)]))
    if out:
        from plausigrad.protocols.checkpoint import json_safe, write_json
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        write_json(out, json_safe(result))
    return result


def run_in_child(request):
    """Run :func:`measure_snapshots` in a fresh Python process; returns its results."""
    with tempfile.TemporaryDirectory() as tmp:
        request_path, result_path = os.path.join(tmp, "request.json"), os.path.join(tmp, "out.json")
        with open(request_path, "w") as handle:
            json.dump({**request, "result": result_path}, handle)
        done = subprocess.run([sys.executable, "-m", "plausigrad.analysis.alignment", request_path],
                              capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise ConfigurationError(f"alignment measurement failed: {tail}")
        with open(result_path) as handle:
            return json.load(handle)


def format_progress(result):
    """One line per measurement, e.g. ``after 5000 samples: W1 θR1 71.2° θe 40.1° | W2 ...``."""
    parts = []
    for layer, entry in result["layers"].items():
        text = (f"{layer} θR1 " + format_angle(entry["update_angle_r1"])
                + " θR2 " + format_angle(entry["update_angle_r2"]))
        if entry["error_angle"] is not None:
            text += " θe " + format_angle(entry["error_angle"])
        if entry["feedback_angle"] is not None:
            text += " θ(B,Wᵀ) " + format_angle(entry["feedback_angle"])
        parts.append(text)
    return f"  after {result['samples_seen']} samples: " + " | ".join(parts)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as handle:
        request = json.load(handle)
    results = measure_snapshots(request)
    with open(request["result"], "w") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    # run the imported module's main, not this __main__ copy: the plug-ins subclass
    # plausigrad.analysis.alignment.AlignmentModel, which alignment_model_for checks against
    from plausigrad.analysis.alignment import main as module_main
    module_main()
