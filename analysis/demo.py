"""``plausigrad demo``: BioGrad on the bundled MNIST subset, with metrics, checkpoint and figures.

Writes into the output directory:

* ``metrics.json``, ``checkpoint.json``/``.npz`` — from :func:`plausigrad.protocols.training.train`;
* ``learning_curves.png/.pdf`` — accuracy, loss and angle(B, Wᵀ) per sleep cycle;
* ``dynamics.png/.pdf`` — soma, basal, apical/error compartments, ψ and a presynaptic trace of a
  hidden neuron over a few samples and a sleep block, with rasters of every layer; recorded on
  the trained weights with ``StateMonitor`` probes on a handful of indices (Cython runtime).
"""

import os

import numpy as np

from plausigrad.analysis.figures import plot_dynamics, plot_learning_curves
from plausigrad.protocols.datasets import load_dataset
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.schedule import SleepSchedule
from plausigrad.protocols.training import RunConfig, train

#: The demo's configuration: the bundled 2000/500 subset, a 784-200-10 network.
DEMO_CONFIG = dict(hidden=(200,), epochs=3, sleep_every=250, sleep_slots=5)

DYNAMICS_PROBES = {"layer1": (("v", "c", "u", "err", "psi"), tuple(range(10))),
                   "input": (("xhat",), (400,))}


def record_dynamics(config, state, images, labels, n_samples=3):
    """Run ``n_samples`` training samples and one sleep block with probes; return the record."""
    rule = config.make_rule()
    sizes = (images.shape[1], *config.hidden, 10)
    sleep = SleepSchedule(every_samples=n_samples, slots=1) if rule.uses_sleep else None
    simulator = Simulator(rule, sizes, config.windows(), sleep, images[:n_samples + 1],
                          labels[:n_samples + 1], n_samples, 1, device="runtime",
                          runtime_target="cython",
                          probes=DYNAMICS_PROBES)
    return simulator.run(state, np.arange(n_samples), 1,
                         rule.learning_rate_values(len(sizes) - 1))


def run_demo(out_dir, *, device="cpp", epochs=None, log=print):
    config = RunConfig(device=device, **{**DEMO_CONFIG, **({"epochs": epochs} if epochs else {})})
    if os.path.exists(os.path.join(out_dir, "checkpoint.json")):
        history = train(config, out_dir, resume=True, log=log)
    else:
        history = train(config, out_dir, log=log)
    plot_learning_curves(history, os.path.join(out_dir, "learning_curves.png"))
    from plausigrad.protocols.checkpoint import load_checkpoint
    _, state = load_checkpoint(out_dir)
    dataset = load_dataset(config.dataset)
    record = record_dynamics(config, state, dataset.test_images, dataset.test_labels)
    plot_dynamics(record, config.make_rule().params.neuron.threshold, config.forward_steps,
                  config.windows().slot_steps, os.path.join(out_dir, "dynamics.png"),
                  input_neuron=DYNAMICS_PROBES["input"][1][0])
    log(f"demo results in {out_dir}: metrics.json, checkpoint.*, learning_curves.png, dynamics.png")
    return history
