"""``plausigrad figures``: the figure set of one rule, from the bundled data, in one command.

For a rule it trains a small network on the bundled MNIST subset (or takes a checkpoint), tracking
the gradient alignment, then records a few samples (and a sleep block, if the rule sleeps) on the
trained weights with ``StateMonitor`` probes on a handful of neurons and synapses only, and
writes, as PNG and PDF:

* ``dynamics`` — soma potential with threshold and spikes, the other compartments (basal,
  apical, error unit), a presynaptic trace, the eligibility and the weight change of the synapse
  joining them (the rule's plug-in names the variables: ``dynamics_spec``);
* ``raster`` — every layer's spikes with the forward / feedback / sleep windows shaded;
* ``learning_curves`` — accuracy and loss per epoch (and angle(B, Wᵀ) per sleep cycle);
* ``alignment`` — the alignment angles against training progress.

The recording run applies the rule's update after every sample (batch size 1), so each sample's
weight change is visible; it runs on the Cython runtime, on a copy of the weights.
"""

import os

import numpy as np

from plausigrad.analysis.alignment import AlignmentTracker, alignment_model_for
from plausigrad.analysis.figures import (plot_alignment, plot_dynamics, plot_learning_curves,
                                         plot_raster)
from plausigrad.models.errors import ConfigurationError
from plausigrad.protocols.checkpoint import has_checkpoint, read_checkpoint
from plausigrad.protocols.datasets import load_dataset
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.recorders import Probes
from plausigrad.protocols.schedule import SleepSchedule
from plausigrad.protocols.training import (RunConfig, check_checkpoint_state, checkpoint_config,
                                           train)

#: Hidden neurons whose traces are recorded (the liveliest is shown).
WATCHED_NEURONS = 16


def record_dynamics(rule, layer_sizes, windows, state, images, labels, *, n_samples=3):
    """Run ``n_samples`` training samples (+ one sleep slot for a sleeping rule) with probes.

    Returns ``(record, spec, neuron, input_neuron)``: the input neuron is the brightest pixel of
    the samples, the neuron the probed hidden neuron that spikes most.
    """
    model = alignment_model_for(rule)
    probe_rule = model.probe_rule(rule, 1)
    spec = model.dynamics_spec(probe_rule, windows, layer_sizes)
    if spec is None:
        raise ConfigurationError(f"rule {rule.name!r} does not define its dynamics figure")
    input_neuron = int(np.argmax(images[:n_samples].sum(axis=0)))
    n_post = layer_sizes[1]
    watched = tuple(range(min(WATCHED_NEURONS, n_post)))
    synapses = tuple(input_neuron * n_post + j for j in watched)  # pre-major synapse order
    probes = {spec.neuron_group: ((spec.soma,) + tuple(v for v, _ in spec.compartments)
                                  + spec.post_variables, watched),
              spec.input_group: ((spec.trace,) + spec.pre_variables, (input_neuron,)),
              spec.synapses: ((spec.weight,) + tuple(v for v, _ in spec.synapse_variables)
                              + spec.synapse_extra, synapses)}
    sleep = SleepSchedule(n_samples, 1) if rule.uses_sleep else None
    simulator = Simulator(probe_rule, layer_sizes, windows, sleep, images[:n_samples + 1],
                          labels[:n_samples + 1], n_samples, 1, device="runtime",
                          recorders=[Probes(probes)])
    rates = model.learning_rates(rule, len(layer_sizes) - 1)
    learning_rates = {f"W{l}": rates[l - 1] for l in range(1, len(layer_sizes))}
    learning_rates.update({f"b{l}": 0.0 for l in range(1, len(layer_sizes))})
    record = simulator.run(state, np.arange(n_samples), 1, learning_rates)
    spike_i = record.spikes[spec.neuron_group][0]
    neuron = max(watched, key=lambda n: int(np.sum(spike_i == n)))
    return record, spec, neuron, input_neuron


def make_figures(rule_name, out_dir, *, device="cpp", checkpoint=None, hidden=(100,), epochs=2,
                 train_limit=None, track_every=500, probe_size=32, rule_params=None, log=print):
    """Train (unless ``checkpoint``) and draw the figure set of a rule into ``out_dir``."""
    if checkpoint is None:
        rule = RunConfig(rule=rule_name, rule_params=dict(rule_params or {})).make_rule()
        forward, feedback = rule.default_windows
        config = RunConfig(rule=rule_name, hidden=tuple(hidden), epochs=epochs, device=device,
                           train_limit=train_limit, track_alignment=track_every,
                           forward_steps=forward, feedback_steps=feedback,
                           rule_params=dict(rule_params or {}))
        if alignment_model_for(rule).dynamics_spec(rule, config.windows(),
                                                   (784, *config.hidden, 10)) is None:
            # say so before training, not after
            raise ConfigurationError(f"rule {rule_name!r} does not define its dynamics figure yet")
    os.makedirs(out_dir, exist_ok=True)
    if checkpoint is None:
        run_dir = os.path.join(out_dir, "run")
        tracker = AlignmentTracker(config, run_dir, probe_size=probe_size, log=log)
        resume = has_checkpoint(run_dir)
        train(config, run_dir, resume=resume, log=log, epoch_hook=tracker)
    else:
        run_dir = checkpoint
    meta, state, metrics = read_checkpoint(run_dir)
    if metrics is None:
        raise ConfigurationError(f"{run_dir}: the checkpoint has no metrics.json (not a "
                                 "training run directory)")
    config = checkpoint_config(meta, run_dir)
    rule = config.make_rule()
    dataset = load_dataset(config.dataset, data_dir=config.data_dir, train_limit=1,
                           test_limit=8)
    sizes = (dataset.test_images.shape[1], *config.hidden, 10)
    check_checkpoint_state(rule, state, sizes, run_dir)
    windows = config.windows()
    record, spec, neuron, input_neuron = record_dynamics(
        rule, sizes, windows, state, dataset.test_images, dataset.test_labels)
    written = {}
    written["dynamics"] = plot_dynamics(record, spec, windows, os.path.join(out_dir, "dynamics"),
                                        neuron=neuron, input_neuron=input_neuron)
    plot_raster(record, windows, os.path.join(out_dir, "raster"))
    history = metrics["epochs"]
    plot_learning_curves(history, os.path.join(out_dir, "learning_curves.png"), rule.loss.label)
    if any("alignment" in entry for entry in history):
        plot_alignment({rule.describe().get("feedback", rule_name): history},
                       os.path.join(out_dir, "alignment"))
    log(f"figures in {out_dir}: dynamics, raster, learning_curves"
        + (", alignment" if any("alignment" in e for e in history) else "") + " (.png, .pdf)")
    return record, written
