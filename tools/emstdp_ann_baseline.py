"""The rate ANN behind EMSTDP: the ceiling its spike counts approximate, trained by plain backprop.

Same shape (784-100-10), same initialisation W^l ~ N(0, 3/fan_in), same loss (MSE on rates with
a one-hot target), same batch (10), clipped-linear units r = clip(g · W r_in, 0, 1) whose gains
stand in for the IF neurons' 1/threshold (hidden 0.16, output 1.15 for the default thresholds).
One liberty: the output derivative stays 1 where the target unit is silent but should fire, so a
dead target unit recovers (EMSTDP's silent-step error does the same). A crude, honest yardstick,
not a reproduction; it is not part of the package.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python tools/emstdp_ann_baseline.py \
        --data-dir ../shared/data/mnist --train-limit 10000 --epochs 4 --lr 0.5

prints the test accuracy after each epoch on the first 2000 test images and on all of them.

Two switches put EMSTDP's ingredients back one at a time, to see which part of its gap to this
ceiling each one costs:

* ``--rmsprop`` replaces SGD by EMSTDP's per-synapse normaliser (m ← 0.9 m + 0.1 g², m₀ = 1,
  W ← clip(W − η g / √(m + 1e-8), ±1)); use it with ``--lr 4e-3 --lr-decay 0.7``;
* ``--input-steps T`` replaces each pixel p by a fresh Binomial(T, p) / T count, in training and
  at test, the input noise of T Bernoulli steps (EMSTDP: T = 49).
* ``--spiking-forward T`` replaces the forward pass by EMSTDP's own: the non-leaky IF network
  with reset to zero and the spec's thresholds (θ¹ = 6.06, θ^O = 0.866) on T Bernoulli input steps
  (``plausigrad.analysis.emstdp_alignment.if_forward``); activations are spike counts / T (input,
  hidden and output), and the test runs the forward pass over 2T + 1 steps as EMSTDP's test does.
  The backward pass stays exact backprop of the clipped-linear units (a straight-through
  estimator) on those rates. This isolates what the spiking *forward* pass costs; what remains
  between it and EMSTDP is the cost of the spiking *error* path (errors quantised into whole
  spikes, gate from phase-1 activity, the phase-2 loop). ``--forward-reset subtract`` runs the
  IF neurons with EMSTDP's ``--forward-reset subtract`` ablation (linear rate instead of the
  staircase).
* ``--test-spiking T`` also reports, after every epoch, the accuracy of the current weights run
  through that IF network over T steps (T = 99: EMSTDP's test window); with the clipped-linear
  ANN this is the accuracy of the backprop-trained weights converted to EMSTDP's spiking network.
"""

import argparse

import numpy as np

from plausigrad.analysis.emstdp_alignment import if_forward
from plausigrad.analysis.reference import load_mnist
from plausigrad.models.integrate_and_fire import (FORWARD_RESETS, IntegrateAndFireParameters,
                                                  forward_thresholds)

HIDDEN_GAIN, OUTPUT_GAIN, BATCH = 0.16, 1.15, 10


def forward(x, w1, w2):
    hidden = np.clip(x @ w1.T * HIDDEN_GAIN, 0, 1)
    return hidden, np.clip(hidden @ w2.T * OUTPUT_GAIN, 0, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--train-limit", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--lr-decay", type=float, default=1.0, help="factor per epoch")
    parser.add_argument("--rmsprop", action="store_true", help="EMSTDP's per-synapse normaliser")
    parser.add_argument("--input-steps", type=int, default=0,
                        help="Bernoulli input counts over this many steps (0: exact intensities)")
    parser.add_argument("--spiking-forward", type=int, default=0, metavar="T",
                        help="EMSTDP's IF forward pass over T steps (0: the clipped-linear ANN)")
    parser.add_argument("--test-spiking", type=int, default=0, metavar="T",
                        help="also test the weights in the IF network over T steps")
    parser.add_argument("--forward-reset", default="zero", choices=tuple(FORWARD_RESETS),
                        help="IF reset with --spiking-forward: zero (EMSTDP's) or subtract")
    parser.add_argument("--save", default=None, metavar="NPZ",
                        help="write the trained weights (W1, W2) and RMS state (rms1, rms2) here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    thresholds = forward_thresholds((784, 100, 10), IntegrateAndFireParameters())
    train_x, train_y, test_x, test_y = load_mnist(args.data_dir)
    scale = 255.0 if train_x.max() > 1 else 1.0
    x_all, y_all = train_x[:args.train_limit] / scale, train_y[:args.train_limit]
    test_x = test_x / scale
    rng = np.random.default_rng(args.seed)
    w1 = rng.normal(0, np.sqrt(3 / 784), (100, 784))
    w2 = rng.normal(0, np.sqrt(3 / 100), (10, 100))
    rms = [np.ones_like(w1), np.ones_like(w2)]

    def noisy(x):
        if not args.input_steps:
            return x
        return rng.binomial(args.input_steps, x) / args.input_steps

    def spiking(x, steps):
        """(input, hidden, output) rates of the IF network: spike counts over ``steps`` / steps."""
        rates = []
        for chunk in range(0, len(x), 1000):
            spikes = rng.random((steps,) + x[chunk:chunk + 1000].shape) < x[chunk:chunk + 1000]
            rates.append([c / steps for c in if_forward([w1, w2], thresholds, spikes,
                                                            args.forward_reset)])
        return [np.concatenate(layer) for layer in zip(*rates)]

    def step(weights, gradient, layer, lr):
        if not args.rmsprop:
            weights -= lr * gradient
            return
        rms[layer] = 0.9 * rms[layer] + 0.1 * gradient ** 2
        weights -= lr * gradient / np.sqrt(rms[layer] + 1e-8)
        np.clip(weights, -1.0, 1.0, out=weights)

    for epoch in range(1, args.epochs + 1):
        lr = args.lr * args.lr_decay ** (epoch - 1)
        order = rng.permutation(len(x_all))
        for batch in np.array_split(order, len(order) // BATCH):
            if args.spiking_forward:
                x, hidden, out = spiking(x_all[batch], args.spiking_forward)
            else:
                x = noisy(x_all[batch])
                hidden, out = forward(x, w1, w2)
            target = np.eye(10)[y_all[batch]]
            live = ((out > 0) & (out < 1)) | ((out <= 0) & (target > out))
            delta_out = (out - target) * live * OUTPUT_GAIN
            delta_hidden = (delta_out @ w2) * ((hidden > 0) & (hidden < 1)) * HIDDEN_GAIN
            step(w2, delta_out.T @ hidden / len(batch), 1, lr)
            step(w1, delta_hidden.T @ x / len(batch), 0, lr)
        if args.spiking_forward:
            predicted = spiking(test_x, 2 * args.spiking_forward + 1)[2].argmax(1)
        else:
            predicted = forward(noisy(test_x), w1, w2)[1].argmax(1)
        line = (f"epoch {epoch}: test acc first 2000 {np.mean(predicted[:2000] == test_y[:2000]):.4f}"
                f" | all {np.mean(predicted == test_y):.4f}")
        if args.test_spiking:
            converted = spiking(test_x, args.test_spiking)[2].argmax(1)
            line += f" | IF network over {args.test_spiking} steps {np.mean(converted == test_y):.4f}"
        print(line, flush=True)
    if args.save:
        np.savez(args.save, W1=w1, W2=w2, rms1=rms[0], rms2=rms[1])


if __name__ == "__main__":
    main()
