"""The ANN baseline of SSNN-BP: the same architecture trained by plain backprop, in numpy.

SSNN-BP (:mod:`plausigrad.rules.ssnnbp`) is, in expectation, online SGD on the softmax
cross-entropy of the rate network it samples (ALGORITHMS.md §4.2). This module trains that
network directly, with the same architecture, activation, loss, initialisation and effective
learning rate, so the spiking rule can be compared with "the same architecture trained by plain
backprop as an ANN" (the paper's own comparison)::

    a^0 = r_in · p                              (the input spike probability)
    z^l = W^l a^{l-1} + b^l,   a^l = clip(z^l, 0, 1)         (hidden layers)
    z^L = W^L a^{L-1} + b^L,   softmax(z^L),   L = −log softmax(z^L)_y
    δ^L = softmax(z^L) − onehot(y),   δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ 1{0 < z^l < 1}
    W^l ← W^l − η^l δ^l (a^{l-1})ᵀ,   b^l ← b^l − η_b^l δ^l      (online, one sample at a time)

η^L = Δw_min^L · T and η^l = α · Δw_min^l · T for hidden layers: the expected SSNN-BP step
(:func:`effective_learning_rates`). Samples are shuffled per epoch, the learning rate decays by
``lr_decay`` per epoch as in :func:`plausigrad.protocols.training.train`.

Command line::

    python -m plausigrad.analysis.ann_baseline --data-dir ../shared/data/mnist --hidden 500 \
        --epochs 5 --lr 0.032 --out results/ssnnbp/ann_baseline.json
"""

import argparse
import json
import os
import time

import numpy as np


def effective_learning_rates(params, n_layers, steps):
    """η^l of the ANN SGD that SSNN-BP follows in expectation (see the module docstring)."""
    rates = params.layer_learning_rates(n_layers)
    return [rate * steps * (params.gradient_scale if l < n_layers else 1.0)
            for l, rate in enumerate(rates, start=1)]


def forward(weights, biases, inputs):
    """Pre-activations and activations of a batch ``inputs`` (P, n_0); returns (zs, activations)."""
    activations, zs = [inputs], [None]
    for l, (w, b) in enumerate(zip(weights, biases), start=1):
        z = activations[-1] @ w.T + b
        zs.append(z)
        activations.append(np.clip(z, 0.0, 1.0) if l < len(weights) else z)
    return zs, activations


def softmax(z):
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
    grads_w, grads_b = [None] * len(weights), [None] * len(weights)
    for l in range(len(weights), 0, -1):
        grads_w[l - 1] = delta.T @ acts[l - 1] / n
        grads_b[l - 1] = delta.mean(axis=0)
        if l > 1:
            delta = (delta @ weights[l - 1]) * ((zs[l - 1] > 0) & (zs[l - 1] < 1))
    return loss, grads_w, grads_b


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
    zs, _ = forward(weights, biases, inputs)
    return float(np.mean(np.argmax(zs[-1], axis=1) == labels))


def train_ann(train_images, train_labels, test_images, test_labels, *, hidden=(500,), epochs=5,
              learning_rate=(0.032, 0.032), bias_learning_rate=0.0, lr_decay=0.7,
              init_std=(0.05, 0.1), input_rate=1.0, seed=0, log=print):
    """Online SGD (batch 1) of the clipped-linear network; returns per-epoch metrics."""
    rng = np.random.default_rng(seed)
    sizes = (train_images.shape[1], *hidden, 10)
    n_layers = len(sizes) - 1
    rates = list(learning_rate) * n_layers if len(learning_rate) == 1 else list(learning_rate)
    stds = list(init_std) * n_layers if len(init_std) == 1 else list(init_std)
    weights = [rng.normal(0.0, stds[l - 1], size=(sizes[l], sizes[l - 1]))
               for l in range(1, n_layers + 1)]
    biases = [np.zeros(sizes[l]) for l in range(1, n_layers + 1)]
    x_train, x_test = input_rate * train_images, input_rate * test_images
    history = []
    for epoch in range(epochs):
        factor = lr_decay ** epoch
        started = time.perf_counter()
        for k in rng.permutation(len(train_labels)):
            _online_step(weights, biases, x_train[k], int(train_labels[k]),
                         [r * factor for r in rates], bias_learning_rate * factor)
        entry = {"epoch": epoch + 1,
                 "train_accuracy": accuracy(weights, biases, x_train, train_labels),
                 "test_accuracy": accuracy(weights, biases, x_test, test_labels),
                 "seconds": round(time.perf_counter() - started, 2)}
        history.append(entry)
        log(f"ANN epoch {entry['epoch']}: train acc {entry['train_accuracy']:.4f} | "
            f"test acc {entry['test_accuracy']:.4f}")
    return history, weights, biases


def main(argv=None):
    from plausigrad.protocols.datasets import load_dataset
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--hidden", default="500")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", default="0.032", help="η per layer (= Δw_min · T of SSNN-BP)")
    parser.add_argument("--lr-decay", type=float, default=0.7)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    data = load_dataset(args.dataset, data_dir=args.data_dir, train_limit=args.train_limit,
                        test_limit=args.test_limit)
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    lr = tuple(float(x) for x in args.lr.split(","))
    history, _, _ = train_ann(data.train_images, data.train_labels.astype(int), data.test_images,
                              data.test_labels.astype(int), hidden=hidden, epochs=args.epochs,
                              learning_rate=lr, lr_decay=args.lr_decay, seed=args.seed)
    result = {"dataset": data.source, "hidden": hidden, "learning_rate": lr,
              "lr_decay": args.lr_decay, "epochs": history,
              "best_test_accuracy": max(e["test_accuracy"] for e in history)}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
