"""Two N-MNIST yardsticks on the rules' subset and binning: a surrogate-gradient BPTT SNN of the
BioGrad lab's network (:mod:`plausigrad.analysis.references.lif_bptt`) and a rate ANN on the
binned frames (:func:`plausigrad.analysis.ann_baseline.train_ann`, the clipped-linear softmax
MLP, online SGD).

Data: the N-MNIST files under ``--data-dir`` (:mod:`plausigrad.protocols.event_data`), binned as
the rules see them, with the same ``--event-*`` options as ``plausigrad train`` (default: 60
binary bins of 5 ms; ``--event-window recording --event-counts on --event-denoise-ms 10``: the
BioGrad lab script's count frames, which both models take as graded input, as the lab's
neuron does). ``--validation`` training files, drawn
from a shuffled order (``--seed``), are held out; both models train a fixed number of epochs with fixed settings and
report validation and test accuracy after every epoch — nothing is chosen on the test set. The
ANN's input is each unit's mean cell value per bin (its event rate on binary frames). Example::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m plausigrad.analysis.nmnist_references \\
        --data-dir ../shared/data/nmnist --out results/nmnist_references.json
"""

import argparse
import dataclasses
import json
import os
import time

import numpy as np

from plausigrad.protocols.cli import (add_field_options, collect_options,
                                      quiet_brian2_cache_notice)

# before Brian2's first import (these modules import it), as the plausigrad command does: its
# cache-size notice would turn this command's one-line errors into three lines
quiet_brian2_cache_notice()

from plausigrad.analysis import ann_baseline  # noqa: E402
from plausigrad.analysis.references import lif_bptt  # noqa: E402
from plausigrad.models.errors import PlausigradError  # noqa: E402
from plausigrad.protocols.datasets import DatasetError  # noqa: E402
from plausigrad.protocols.event_data import (N_UNITS, Binning, load_nmnist_split,  # noqa: E402
                                             locate_nmnist)
from plausigrad.protocols.training import RunConfig, event_binning  # noqa: E402


def dense_spikes(frames):
    """(n_bins, n, 2312) float input of :class:`EventFrames` for the numpy models: spikes of
    binary frames, event counts of count frames."""
    out = np.zeros((frames.binning.n_bins, len(frames), N_UNITS))
    for s in range(len(frames)):
        out[:, s] = frames.dense(s)
    return out


def run(data_dir, *, hidden=(500, 100), binning=None, train_limit=None, test_limit=None,
        validation=100, snn_epochs=20, snn_lr=1e-3, snn_batch=32, ann_epochs=30, ann_lr=0.01,
        seed=0, log=print):
    """Train both yardsticks; their settings, per-epoch validation and test accuracy as a dict.
    ``binning``: a :class:`~plausigrad.protocols.event_data.Binning` (None: its default)."""
    binning = Binning() if binning is None else binning
    root = locate_nmnist(data_dir)
    train = load_nmnist_split(root, "Train", binning, train_limit)
    test = load_nmnist_split(root, "Test", binning, test_limit)
    if not 0 < validation < len(train):
        raise DatasetError(f"validation must lie in [1, {len(train) - 1}], got {validation}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train))
    fit, held = order[:-validation], order[-validation:]
    x_train, x_test = dense_spikes(train), dense_spikes(test)
    y_train, y_test = train.labels, test.labels
    sizes = (N_UNITS, *hidden, 10)
    result = {"data": str(root), "sizes": list(sizes), "train": len(fit),
              "validation": len(held), "test": len(y_test), "seed": seed,
              "binning": dataclasses.asdict(binning)}

    started = time.perf_counter()
    snn = []

    def evaluate(params):
        entry = {"validation_accuracy": lif_bptt.accuracy(params, x_train[:, held], y_train[held]),
                 "test_accuracy": lif_bptt.accuracy(params, x_test, y_test)}
        snn.append(entry)
        return entry["validation_accuracy"]

    _, history = lif_bptt.train(lif_bptt.init_params(rng, sizes), x_train[:, fit], y_train[fit],
                                epochs=snn_epochs, lr=snn_lr, batch=snn_batch, rng=rng,
                                evaluate=evaluate, log=lambda m: log(f"BPTT SNN {m}"))
    result["bptt_snn"] = {"lr": snn_lr, "batch": snn_batch, "optimiser": "adam",
                          "epochs": [{**h, **e} for h, e in zip(history, snn)],
                          "seconds": round(time.perf_counter() - started, 1)}

    started = time.perf_counter()
    rates_train = x_train.mean(axis=0)
    rates_test = x_test.mean(axis=0)
    # train_ann reports its "test" set per epoch: here the validation split; the test set is
    # scored once, with the final weights
    ann_history, weights, biases = ann_baseline.train_ann(
        rates_train[fit], y_train[fit], rates_train[held], y_train[held], hidden=hidden,
        epochs=ann_epochs, learning_rate=(ann_lr,), lr_decay=1.0,
        init_std=(0.05,) + (0.1,) * len(hidden), seed=seed,
        log=lambda m: log(f"rate ANN (its 'test' is the validation split) {m}"))
    result["rate_ann"] = {
        "lr": ann_lr, "optimiser": "online SGD",
        "epochs": [{"epoch": h["epoch"], "train_accuracy": h["train_accuracy"],
                    "validation_accuracy": h["test_accuracy"]} for h in ann_history],
        "final_test_accuracy": ann_baseline.accuracy(weights, biases, rates_test, y_test),
        "seconds": round(time.perf_counter() - started, 1)}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--hidden", default="500,100")
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--validation", type=int, default=100)
    parser.add_argument("--snn-epochs", type=int, default=20)
    parser.add_argument("--ann-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/nmnist_references.json")
    add_field_options(parser, RunConfig, "run__", "event binning, as in plausigrad train",
                      only=RunConfig.EVENT_FIELDS)
    args = parser.parse_args(argv)
    try:
        hidden = tuple(int(h) for h in args.hidden.split(","))
        binning = event_binning(**collect_options(args, "run__"))
        result = run(args.data_dir, hidden=hidden, binning=binning, train_limit=args.train_limit,
                     test_limit=args.test_limit, validation=args.validation,
                     snn_epochs=args.snn_epochs, ann_epochs=args.ann_epochs, seed=args.seed)
    except (PlausigradError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
