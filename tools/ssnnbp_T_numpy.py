"""SSNN-BP at fixed weights against T, with the numpy reference of the rule (no training per T).

For a checkpoint (or the initial weights) and every T: (i) test accuracy of the stochastic
forward pass (argmax of the WTA wins over T steps) on the first N test samples; (ii) the angle
between the coincidence update of one mini-batch of P probe samples and the R1 gradient
(rate-network cross-entropy gradient from the same run's recorded rates, derivatives and mean
softmax), per layer. Uses the numpy reference :mod:`plausigrad.analysis.references.ssnnbp`
(``forward`` for (i), ``window`` for (ii)), the same per-step process as the Brian2 network
without its pipeline latency.

    .venv/bin/python tools/ssnnbp_T_numpy.py runs/ssnnbp_mnist_T32 --data-dir ../shared/data/mnist
"""

import argparse
import json

import numpy as np

from plausigrad.analysis.references import layer_lists
from plausigrad.analysis.references import ssnnbp as reference
from plausigrad.analysis.ssnnbp_alignment import r1_gradients
from plausigrad.protocols.angles import angle_degrees, format_angle
from plausigrad.protocols.checkpoint import load_checkpoint
from plausigrad.protocols.datasets import load_dataset
from plausigrad.rules.ssnnbp import SSNNBPParameters


def stochastic_accuracy(params, weights, images, labels, steps, rng):
    """Accuracy of the argmax of the WTA wins over ``steps`` forward steps (ties broken at
    random)."""
    wins = reference.forward(params, weights, images, steps, rng)["count"][-1]
    return float(np.mean(np.argmax(wins + 1e-3 * rng.random(wins.shape), 1) == labels))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--T", default="8,16,32,64,128")
    parser.add_argument("--test-samples", type=int, default=1000)
    parser.add_argument("--probe-size", type=int, default=64)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    meta, state = load_checkpoint(args.checkpoint)
    weights = layer_lists(state, dtype=None)
    n_layers = len(weights["W"])
    params = SSNNBPParameters()  # α = 1, r_in = 1
    data = load_dataset("mnist", data_dir=args.data_dir, train_limit=1,
                        test_limit=args.test_samples)
    rows = []
    for steps in (int(t) for t in args.T.split(",")):
        rng = np.random.default_rng(steps)
        accuracy = stochastic_accuracy(params, weights, data.test_images, data.test_labels,
                                       steps, rng)
        probe_x, probe_y = data.test_images[:args.probe_size], data.test_labels[:args.probe_size]
        out = reference.window(params, weights, probe_x, probe_y, steps, rng)
        r1, errors, _ = r1_gradients(weights["W"], out, probe_y)
        rows.append({"T": steps, "test_accuracy": accuracy,
                     "angles": [angle_degrees(-out["coincidences"][l], -r1[l])
                                for l in range(n_layers)],
                     "error_angle": angle_degrees(out["nu"][1], errors[1])})
        print(rows[-1], flush=True)
    lines = [f"checkpoint {args.checkpoint} (epoch {meta['epoch']}); accuracy on the first "
             f"{args.test_samples} test samples, angles on {args.probe_size} probe samples", "",
             "| T | test acc | " + " | ".join(f"θ(ΔW{l},R1)" for l in range(1, n_layers + 1))
             + " | θ(ν, e_BP) |", "|---|---|" + "---|" * (n_layers + 1)]
    for r in rows:
        lines.append(f"| {r['T']} | {100 * r['test_accuracy']:.1f} % | "
                     + " | ".join(format_angle(a) for a in r["angles"])
                     + f" | {format_angle(r['error_angle'])} |")
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"rows": rows, "table": lines}, handle, indent=1)


if __name__ == "__main__":
    main()
