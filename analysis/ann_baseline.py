"""ANN baselines: the rate networks behind SSNN-BP and EMSTDP, trained by plain backprop in numpy.

Both baselines are one clipped-linear multilayer perceptron (:func:`forward`, :func:`backward`)
trained by one loop (:func:`train_epochs`: shuffled per epoch, mini-batches, the learning rate
decaying by ``lr_decay`` per epoch as in :func:`plausigrad.protocols.training.train`), with the
data from :func:`plausigrad.protocols.datasets.load_dataset`. Two presets (``--preset``):

**ssnnbp** (the default; :func:`train_ann`). SSNN-BP (:mod:`plausigrad.rules.ssnnbp`) is, in
expectation, online SGD on the softmax cross-entropy of the rate network it samples
(ALGORITHMS.md §4.2). This trains that network directly, with the same architecture, activation,
loss, initialisation and effective learning rate, so the spiking rule can be compared with "the
same architecture trained by plain backprop as an ANN" (the paper's own comparison)::

    a^0 = r_in · p                              (the input spike probability)
    z^l = W^l a^{l-1} + b^l,   a^l = clip(z^l, 0, 1)         (hidden layers)
    z^L = W^L a^{L-1} + b^L,   softmax(z^L),   L = −log softmax(z^L)_y
    δ^L = softmax(z^L) − onehot(y),   δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ 1{0 < z^l < 1}
    W^l ← W^l − η^l δ^l (a^{l-1})ᵀ,   b^l ← b^l − η_b^l δ^l      (online, one sample at a time)

η^L = Δw_min^L · T and η^l = α · Δw_min^l · T for hidden layers: the expected SSNN-BP step
(:func:`effective_learning_rates`)::

    python -m plausigrad.analysis.ann_baseline --data-dir ../shared/data/mnist --hidden 500 \
        --epochs 5 --lr 0.032 --out results/ssnnbp/ann_baseline.json

**emstdp** (:func:`train_emstdp_ann`): the ceiling EMSTDP's spike counts approximate. Same shape
(784-100-10), same initialisation W^l ~ N(0, 3/fan_in), same loss (MSE on rates with a one-hot
target), same batch (10), no biases, clipped-linear units r = clip(g · W r_in, 0, 1) whose gains
stand in for the IF neurons' 1/threshold (hidden 0.16, output 1.15 for the default thresholds).
One liberty: the output derivative stays 1 where the target unit is silent but should fire, so a
dead target unit recovers (EMSTDP's silent-step error does the same). A crude, honest yardstick,
not a reproduction::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m plausigrad.analysis.ann_baseline --preset emstdp \
        --data-dir ../shared/data/mnist --train-limit 10000 --epochs 4 --lr 0.5

(``tools/emstdp_ann_baseline.py`` is this command with ``--preset emstdp``) prints the test
accuracy after each epoch on the first 2000 test images and on all of them. Switches put
EMSTDP's ingredients back one at a time, to see which part of its gap to this ceiling each one
costs (emstdp preset only):

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
* ``--save NPZ`` writes the trained weights (W1, W2, ...) and the RMS state (rms1, rms2, ...).
"""

import argparse
import functools
import json
import os
import time

import numpy as np

from plausigrad.analysis.emstdp_alignment import if_forward
from plausigrad.models.integrate_and_fire import (FORWARD_RESETS, IntegrateAndFireParameters,
                                                  forward_thresholds)
from plausigrad.protocols.datasets import load_dataset

#: Gains of the EMSTDP preset's clipped-linear units (≈ 1/threshold of its IF neurons).
HIDDEN_GAIN, OUTPUT_GAIN = 0.16, 1.15
#: Mini-batch size of the EMSTDP preset (EMSTDP's own).
EMSTDP_BATCH = 10
NUM_CLASSES = 10


def effective_learning_rates(params, n_layers, steps):
    """η^l of the ANN SGD that SSNN-BP follows in expectation (see the module docstring)."""
    rates = params.layer_learning_rates(n_layers)
    return [rate * steps * (params.gradient_scale if l < n_layers else 1.0)
            for l, rate in enumerate(rates, start=1)]


# -- the network ---------------------------------------------------------------------------------

def init_weights(rng, sizes, stds):
    """W^l ~ N(0, stds[l-1]²) of shape (sizes[l], sizes[l-1]), drawn layer by layer from ``rng``."""
    return [rng.normal(0.0, stds[l - 1], size=(sizes[l], sizes[l - 1]))
            for l in range(1, len(sizes))]


def forward(weights, biases, inputs, gains=None, clip_output=False):
    """Pre-activations and activations of a batch ``inputs`` (P, n_0); returns (zs, activations).

    z^l = g^l (W^l a^{l-1} + b^l) (no bias where ``biases`` is None, no gain where ``gains`` is
    None); a^l = clip(z^l, 0, 1) in hidden layers, and in the output layer if ``clip_output``
    (else a^L = z^L). ``zs[0]`` is None and ``activations[0]`` is ``inputs``.
    """
    activations, zs = [inputs], [None]
    for l, w in enumerate(weights, start=1):
        z = activations[-1] @ w.T
        if biases is not None:
            z = z + biases[l - 1]
        if gains is not None:
            z = z * gains[l - 1]
        zs.append(z)
        activations.append(np.clip(z, 0.0, 1.0) if l < len(weights) or clip_output else z)
    return zs, activations


def backward(weights, activations, output_delta, gains=None):
    """Batch-mean gradients of the weights and biases, given δ^L = ∂L/∂z^L (P, n_L).

    δ^l = ((δ^{l+1} W^{l+1}) ⊙ 1{0 < a^l < 1}) · g^l for the hidden layers (the derivative of the
    clipped-linear unit, gain included); ∇W^l = ⟨δ^l (a^{l-1})ᵀ⟩, ∇b^l = ⟨δ^l⟩ over the batch.
    ``activations`` may be any rates (e.g. measured spike rates: a straight-through estimator).
    Returns ``(grads_w, grads_b)``.
    """
    n = len(output_delta)
    grads_w, grads_b = [None] * len(weights), [None] * len(weights)
    delta = output_delta
    for l in range(len(weights), 0, -1):
        grads_w[l - 1] = delta.T @ activations[l - 1] / n
        grads_b[l - 1] = delta.mean(axis=0)
        if l > 1:
            a = activations[l - 1]
            delta = (delta @ weights[l - 1]) * ((a > 0) & (a < 1))
            if gains is not None:
                delta = delta * gains[l - 2]
    return grads_w, grads_b


def softmax(z):
    """Softmax over the last axis."""
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def gradients(weights, biases, inputs, labels):
    """Mean cross-entropy and its gradients over the batch; returns (loss, dW list, db list)."""
    zs, acts = forward(weights, biases, inputs)
    p = softmax(zs[-1])
    n = len(labels)
    loss = float(-np.mean(np.log(p[np.arange(n), labels] + 1e-300)))
    delta = p.copy()
    delta[np.arange(n), labels] -= 1.0
    grads_w, grads_b = backward(weights, acts, delta)
    return loss, grads_w, grads_b


def mse_output_delta(output, target, gain):
    """δ^L of the MSE on clipped output rates, the EMSTDP preset's loss.

    (r − y) · g where the unit is in its linear range, and also where it is silent but its
    target is above it (so a dead target unit recovers); 0 elsewhere.
    """
    live = ((output > 0) & (output < 1)) | ((output <= 0) & (target > output))
    return (output - target) * live * gain


def _online_step(weights, biases, x, label, rates, bias_rate):
    """One SGD step on one sample; the same as :func:`gradients` with batch 1, but touching only
    the columns of W^l whose input is non-zero (MNIST is ~80 % zeros)."""
    active, acts, zs = [], [], []
    a = x
    for l, (w, b) in enumerate(zip(weights, biases), start=1):
        nz = np.flatnonzero(a)
        active.append(nz)
        acts.append(a[nz])
        z = w[:, nz] @ a[nz] + b
        zs.append(z)
        a = np.clip(z, 0.0, 1.0) if l < len(weights) else z
    delta = softmax(zs[-1])
    delta[label] -= 1.0
    for l in range(len(weights), 0, -1):
        back = (delta @ weights[l - 1]) * ((zs[l - 2] > 0) & (zs[l - 2] < 1)) if l > 1 else None
        nz = active[l - 1]
        weights[l - 1][:, nz] -= rates[l - 1] * np.outer(delta, acts[l - 1])
        biases[l - 1] -= bias_rate * delta
        delta = back


def accuracy(weights, biases, inputs, labels):
    """Fraction of ``inputs`` whose largest output (ties: lowest index) is the label."""
    zs, _ = forward(weights, biases, inputs)
    return float(np.mean(np.argmax(zs[-1], axis=1) == labels))


# -- the training loop ---------------------------------------------------------------------------

def train_epochs(rng, n_train, *, epochs, batch_size, lr_decay, step, evaluate, describe, log):
    """The loop both baselines share; returns the per-epoch history.

    Every epoch shuffles the ``n_train`` training indices with ``rng``, splits them into
    ``n_train // batch_size`` mini-batches (``numpy.array_split``: sizes differ by at most one)
    and calls ``step(batch_indices, factor)`` for each, ``factor = lr_decay ** epoch`` (epoch
    counted from 0) scaling the learning rates; then ``evaluate()`` returns the epoch's metrics,
    which are logged as ``describe(entry)`` and appended to the history as
    ``{"epoch": e (from 1), **metrics, "seconds": wall time of the epoch}``.
    """
    history = []
    for epoch in range(epochs):
        factor = lr_decay ** epoch
        started = time.perf_counter()
        order = rng.permutation(n_train)
        for batch in np.array_split(order, max(1, n_train // batch_size)):
            step(batch, factor)
        entry = {"epoch": epoch + 1, **evaluate()}
        entry["seconds"] = round(time.perf_counter() - started, 2)
        history.append(entry)
        log(describe(entry))
    return history


def _per_layer(values, n_layers):
    """A per-layer list from one value per layer, or one value for all."""
    return list(values) * n_layers if len(values) == 1 else list(values)


def train_ann(train_images, train_labels, test_images, test_labels, *, hidden=(500,), epochs=5,
              learning_rate=(0.032, 0.032), bias_learning_rate=0.0, lr_decay=0.7,
              init_std=(0.05, 0.1), input_rate=1.0, seed=0, log=print):
    """The SSNN-BP preset: online SGD (batch 1) of the clipped-linear softmax network.

    Returns ``(history, weights, biases)``; history entries hold ``train_accuracy``,
    ``test_accuracy`` and ``seconds`` per epoch.
    """
    rng = np.random.default_rng(seed)
    sizes = (train_images.shape[1], *hidden, NUM_CLASSES)
    n_layers = len(sizes) - 1
    rates = _per_layer(learning_rate, n_layers)
    weights = init_weights(rng, sizes, _per_layer(init_std, n_layers))
    biases = [np.zeros(sizes[l]) for l in range(1, n_layers + 1)]
    x_train, x_test = input_rate * train_images, input_rate * test_images

    def step(batch, factor):
        k = batch[0]
        _online_step(weights, biases, x_train[k], int(train_labels[k]),
                     [r * factor for r in rates], bias_learning_rate * factor)

    def evaluate():
        return {"train_accuracy": accuracy(weights, biases, x_train, train_labels),
                "test_accuracy": accuracy(weights, biases, x_test, test_labels)}

    def describe(entry):
        return (f"ANN epoch {entry['epoch']}: train acc {entry['train_accuracy']:.4f} | "
                f"test acc {entry['test_accuracy']:.4f}")

    history = train_epochs(rng, len(train_labels), epochs=epochs, batch_size=1,
                           lr_decay=lr_decay, step=step, evaluate=evaluate, describe=describe,
                           log=log)
    return history, weights, biases


def train_emstdp_ann(train_images, train_labels, test_images, test_labels, *, hidden=(100,),
                     epochs=5, learning_rate=0.5, lr_decay=1.0, rmsprop=False, input_steps=0,
                     spiking_forward=0, test_spiking=0, forward_reset="zero", seed=0, log=print):
    """The EMSTDP preset: mini-batch (10) backprop of the MSE on clipped-linear rates.

    The switches (``rmsprop``, ``input_steps``, ``spiking_forward``, ``test_spiking``,
    ``forward_reset``) are those of the module docstring. Returns ``(history, weights, rms)``;
    history entries hold ``test_accuracy_first_2000``, ``test_accuracy``, with ``test_spiking``
    also ``if_test_accuracy``, and ``seconds``.
    """
    sizes = (train_images.shape[1], *hidden, NUM_CLASSES)
    n_layers = len(sizes) - 1
    gains = [HIDDEN_GAIN] * (n_layers - 1) + [OUTPUT_GAIN]
    thresholds = forward_thresholds(sizes, IntegrateAndFireParameters())
    rng = np.random.default_rng(seed)
    weights = init_weights(rng, sizes, [np.sqrt(3 / sizes[l - 1]) for l in range(1, len(sizes))])
    rms = [np.ones_like(w) for w in weights]
    targets = np.eye(NUM_CLASSES)

    def noisy(x):
        if not input_steps:
            return x
        return rng.binomial(input_steps, x) / input_steps

    def spiking(x, steps):
        """Rates of every layer of the IF network: spike counts over ``steps`` / steps."""
        rates = []
        for chunk in range(0, len(x), 1000):
            spikes = rng.random((steps,) + x[chunk:chunk + 1000].shape) < x[chunk:chunk + 1000]
            rates.append([c / steps for c in if_forward(weights, thresholds, spikes,
                                                        forward_reset)])
        return [np.concatenate(layer) for layer in zip(*rates)]

    def update(layer, gradient, lr):
        if not rmsprop:
            weights[layer] -= lr * gradient
            return
        rms[layer] = 0.9 * rms[layer] + 0.1 * gradient ** 2
        weights[layer] -= lr * gradient / np.sqrt(rms[layer] + 1e-8)
        np.clip(weights[layer], -1.0, 1.0, out=weights[layer])

    def step(batch, factor):
        if spiking_forward:
            activations = spiking(train_images[batch], spiking_forward)
        else:
            activations = forward(weights, None, noisy(train_images[batch]), gains,
                                  clip_output=True)[1]
        delta = mse_output_delta(activations[-1], targets[train_labels[batch]], OUTPUT_GAIN)
        grads, _ = backward(weights, activations, delta, gains)
        for layer in range(n_layers - 1, -1, -1):
            update(layer, grads[layer], learning_rate * factor)

    def evaluate():
        if spiking_forward:
            predicted = spiking(test_images, 2 * spiking_forward + 1)[-1].argmax(1)
        else:
            predicted = forward(weights, None, noisy(test_images), gains,
                                clip_output=True)[1][-1].argmax(1)
        metrics = {"test_accuracy_first_2000": float(np.mean(predicted[:2000]
                                                             == test_labels[:2000])),
                   "test_accuracy": float(np.mean(predicted == test_labels))}
        if test_spiking:
            converted = spiking(test_images, test_spiking)[-1].argmax(1)
            metrics["if_test_accuracy"] = float(np.mean(converted == test_labels))
        return metrics

    def describe(entry):
        line = (f"epoch {entry['epoch']}: test acc first 2000 "
                f"{entry['test_accuracy_first_2000']:.4f} | all {entry['test_accuracy']:.4f}")
        if test_spiking:
            line += f" | IF network over {test_spiking} steps {entry['if_test_accuracy']:.4f}"
        return line

    history = train_epochs(rng, len(train_labels), epochs=epochs, batch_size=EMSTDP_BATCH,
                           lr_decay=lr_decay, step=step, evaluate=evaluate, describe=describe,
                           log=log)
    return history, weights, rms


# -- command line --------------------------------------------------------------------------------

#: Defaults of the options that differ between the presets.
PRESETS = {"ssnnbp": {"hidden": "500", "lr": "0.032", "lr_decay": 0.7},
           "emstdp": {"hidden": "100", "lr": "0.5", "lr_decay": 1.0}}

#: Options of the emstdp preset only, with their "off" values.
EMSTDP_OPTIONS = {"rmsprop": False, "input_steps": 0, "spiking_forward": 0, "test_spiking": 0,
                  "forward_reset": "zero"}


def _parser():
    """The command-line parser of :func:`main` (defaults: the ssnnbp preset's)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=tuple(PRESETS), default="ssnnbp",
                        help="ssnnbp: online softmax baseline; emstdp: EMSTDP's MSE yardstick")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None,
                        help="data directory (default: $PLAUSIGRAD_DATA_DIR, else the bundled "
                             "MNIST subset)")
    parser.add_argument("--hidden", help="hidden sizes, comma-separated (ssnnbp 500, emstdp 100)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", help="η per layer, comma-separated (ssnnbp: = Δw_min · T of "
                                     "SSNN-BP, default 0.032; emstdp: one η, default 0.5)")
    parser.add_argument("--lr-decay", type=float, help="factor per epoch (ssnnbp 0.7, emstdp 1)")
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the result (JSON) here")
    parser.add_argument("--save", default=None, metavar="NPZ",
                        help="write the trained weights (W1, W2, ...; ssnnbp also b1, ...; emstdp "
                             "also the RMS state rms1, ...) here")
    emstdp = parser.add_argument_group("emstdp preset only")
    emstdp.add_argument("--rmsprop", action="store_true", help="EMSTDP's per-synapse normaliser")
    emstdp.add_argument("--input-steps", type=int, default=0,
                        help="Bernoulli input counts over this many steps (0: exact intensities)")
    emstdp.add_argument("--spiking-forward", type=int, default=0, metavar="T",
                        help="EMSTDP's IF forward pass over T steps (0: the clipped-linear ANN)")
    emstdp.add_argument("--test-spiking", type=int, default=0, metavar="T",
                        help="also test the weights in the IF network over T steps")
    emstdp.add_argument("--forward-reset", default="zero", choices=tuple(FORWARD_RESETS),
                        help="IF reset with --spiking-forward: zero (EMSTDP's) or subtract")
    return parser


def main(argv=None):
    """Train the baseline of ``--preset`` and return its result (also written to ``--out``)."""
    parser = _parser()
    args = parser.parse_args(argv)
    for name, value in PRESETS[args.preset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.preset != "emstdp":
        used = [name for name, off in EMSTDP_OPTIONS.items() if getattr(args, name) != off]
        if used:
            parser.error(f"--{used[0].replace('_', '-')} needs --preset emstdp")
    data = load_dataset(args.dataset, data_dir=args.data_dir, train_limit=args.train_limit,
                        test_limit=args.test_limit)
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    lr = tuple(float(x) for x in args.lr.split(","))
    arrays = (data.train_images, data.train_labels.astype(int), data.test_images,
              data.test_labels.astype(int))
    saved, log = {}, functools.partial(print, flush=True)
    if args.preset == "emstdp":
        if len(lr) != 1:
            parser.error("--lr takes one value with --preset emstdp")
        history, weights, rms = train_emstdp_ann(
            *arrays, hidden=hidden, epochs=args.epochs, learning_rate=lr[0],
            lr_decay=args.lr_decay, seed=args.seed, log=log,
            **{name: getattr(args, name) for name in EMSTDP_OPTIONS})
        saved.update({f"rms{l}": r for l, r in enumerate(rms, start=1)})
    else:
        history, weights, biases = train_ann(*arrays, hidden=hidden, epochs=args.epochs,
                                             learning_rate=lr, lr_decay=args.lr_decay,
                                             seed=args.seed, log=log)
        saved.update({f"b{l}": b for l, b in enumerate(biases, start=1)})
    if args.save:
        np.savez(args.save, **{f"W{l}": w for l, w in enumerate(weights, start=1)}, **saved)
    result = {"preset": args.preset, "dataset": data.source, "hidden": hidden,
              "learning_rate": lr, "lr_decay": args.lr_decay, "epochs": history,
              "best_test_accuracy": max(e["test_accuracy"] for e in history)}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
