"""``plausigrad demo``: BioGrad on the bundled MNIST subset, with metrics, checkpoint and figures.

Writes into the output directory:

* ``metrics.json``, ``checkpoint.json``/``.npz`` — from :func:`plausigrad.protocols.training.train`;
* ``learning_curves.png/.pdf`` — accuracy, loss and angle(B, Wᵀ) per sleep cycle;
* ``dynamics.png/.pdf`` — soma (threshold, spikes), basal, apical and error-unit compartments of
  a hidden neuron, a presynaptic trace, the eligibility and the weight of the synapse joining
  them, over a few samples and a sleep slot; ``raster.png/.pdf`` — every layer's spikes, phases
  shaded. Recorded on the trained weights with ``StateMonitor`` probes on a handful of indices
  (Cython runtime; see :mod:`plausigrad.analysis.gallery`).
"""

import os

from plausigrad.analysis.figures import plot_dynamics, plot_learning_curves, plot_raster
from plausigrad.analysis.gallery import record_dynamics
from plausigrad.protocols.datasets import load_dataset
from plausigrad.protocols.training import RunConfig, train

#: The demo's configuration: the bundled 2000/500 subset, a 784-200-10 network.
DEMO_CONFIG = dict(hidden=(200,), epochs=3, sleep_every=250, sleep_slots=5)


def run_demo(out_dir, *, device="cpp", epochs=None, log=print):
    config = RunConfig(device=device, **{**DEMO_CONFIG, **({"epochs": epochs} if epochs else {})})
    if os.path.exists(os.path.join(out_dir, "checkpoint.json")):
        history = train(config, out_dir, resume=True, log=log)
    else:
        history = train(config, out_dir, log=log)
    plot_learning_curves(history, os.path.join(out_dir, "learning_curves.png"),
                         config.make_rule().loss.label)
    from plausigrad.protocols.checkpoint import load_checkpoint
    _, state = load_checkpoint(out_dir)
    dataset = load_dataset(config.dataset)
    sizes = (dataset.test_images.shape[1], *config.hidden, 10)
    record, spec, neuron, input_neuron = record_dynamics(
        config.make_rule(), sizes, config.windows(), state, dataset.test_images,
        dataset.test_labels)
    plot_dynamics(record, spec, config.windows(), os.path.join(out_dir, "dynamics.png"),
                  neuron=neuron, input_neuron=input_neuron)
    plot_raster(record, config.windows(), os.path.join(out_dir, "raster.png"))
    log(f"demo results in {out_dir}: metrics.json, checkpoint.*, learning_curves.png, "
        "dynamics.png, raster.png")
    return history
