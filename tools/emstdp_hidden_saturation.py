"""How saturated an EMSTDP network's hidden layer is: the measurement behind the target-rate
analysis of docs/results/emstdp-target-rate.md (and ``models/integrate_and_fire.py``'s note on
``output_target_rate``).

For each checkpoint, the first N test images are run through the non-leaky IF network
(``plausigrad.analysis.emstdp_alignment.if_forward``: reset to zero, the run's thresholds) for T
Bernoulli input steps (EMSTDP's phase 1, T = 49), and it prints

* ``saturated``: the fraction of hidden (unit, image) pairs firing on ≥ T − 2 of the T steps
  (a unit driven far above threshold fires every step after the two start-up steps);
* ``silent``: the fraction firing never;
* mean |W1| and mean |W2|, and the accuracy of the T-step forward pass (argmax of output counts).

    .venv/bin/python tools/emstdp_hidden_saturation.py --data-dir ../shared/data/mnist \\
        runs/emstdp5_symmetric runs/emstdp6_sym_rho08 W.npz

A checkpoint is a run directory (its ``checkpoint.json`` gives the thresholds) or an ``.npz`` with
``W1``, ``W2`` (default thresholds; e.g. ``tools/emstdp_ann_baseline.py --save``). Each checkpoint
sees the same input spikes (seeded). A diagnostic, not part of the package.
"""

import argparse
import json
import os
import sys

import numpy as np

from plausigrad.analysis.emstdp_alignment import if_forward
from plausigrad.models.errors import PlausigradError
from plausigrad.models.integrate_and_fire import IntegrateAndFireParameters, forward_thresholds
from plausigrad.protocols.datasets import load_dataset


def load_weights(path):
    """``(weights, neuron parameters)`` of a run directory or a weights ``.npz``."""
    if os.path.isdir(path):
        with open(os.path.join(path, "checkpoint.json")) as f:
            config = json.load(f)["config"]
        neuron = IntegrateAndFireParameters(**config.get("rule_params", {}).get("neuron", {}))
        path = os.path.join(path, "checkpoint.npz")
    else:
        neuron = IntegrateAndFireParameters()
    state = np.load(path)
    return [state["W1"], state["W2"]], neuron


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="run directories or weight .npz files")
    parser.add_argument("--data-dir", default=None,
                        help="MNIST directory (default: $PLAUSIGRAD_DATA_DIR, else the bundled "
                             "subset)")
    parser.add_argument("--samples", type=int, default=1000, help="the first N test images")
    parser.add_argument("--steps", type=int, default=49, help="input steps T (EMSTDP's phase 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        data = load_dataset("mnist", data_dir=args.data_dir, train_limit=1,
                            test_limit=args.samples)
        images, labels = data.test_images, data.test_labels
        loaded = [(path, *load_weights(path)) for path in args.checkpoints]
    except (OSError, KeyError, PlausigradError) as error:
        sys.exit(f"error: {error}")
    for path, weights, neuron in loaded:
        rng = np.random.default_rng(args.seed)
        input_spikes = rng.random((args.steps, len(images), images.shape[1])) < images[None]
        sizes = (weights[0].shape[1], weights[0].shape[0], weights[1].shape[0])
        counts = if_forward(weights, forward_thresholds(sizes, neuron), input_spikes)
        hidden, output = counts[1], counts[2]
        print(f"{path}: saturated {np.mean(hidden >= args.steps - 2):.3f} "
              f"silent {np.mean(hidden == 0):.3f} | mean |W1| {np.abs(weights[0]).mean():.3f} "
              f"|W2| {np.abs(weights[1]).mean():.3f} | accuracy over {args.steps} steps "
              f"{np.mean(output.argmax(1) == labels):.3f}")


if __name__ == "__main__":
    main()
