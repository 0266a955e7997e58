"""Hyper-parameter search / evaluation for the numpy BioGrad reference (784-500-10).

Usage examples:
  python tools/tune_biograd_numpy.py run --epochs 5 --T_f 16 --sigma 0.01 0.1 --eta 0.05 0.05
  python tools/tune_biograd_numpy.py run ... --feedback fa
  python tools/tune_biograd_numpy.py run ... --no-quantise
  python tools/tune_biograd_numpy.py angle ...        # factorised-vs-exact dW_1 angle
Each run prints one JSON line per epoch (and appends to --log if given). The data come from
``plausigrad.protocols.datasets.load_dataset``: ``--data DIR`` (or ``$PLAUSIGRAD_DATA_DIR``) for
full MNIST, else the bundled subset.
"""
import argparse
import json
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

from plausigrad.analysis.references import biograd as ref  # noqa: E402
from plausigrad.protocols.angles import angle_degrees  # noqa: E402
from plausigrad.protocols.datasets import load_dataset  # noqa: E402


def make_cfg(a):
    return ref.Config(
        sizes=(784, a.hidden, 10), T_f=a.T_f, p_in=a.p_in, init=a.init, sigma=a.sigma,
        b_init=a.b_init, eta=a.eta, eta_b=a.eta_b, lr_decay=a.lr_decay,
        batch_size=a.batch_size, batch_reduce=a.batch_reduce, q=a.q, n_err=a.n_err,
        quantise=not a.no_quantise, feedback=a.feedback, fb_scale=a.fb_scale,
        y_on=a.y_on, y_off=a.y_off, dtype=a.dtype)


def load_mnist(data_dir):
    """``(train images, train labels, test images, test labels)`` of MNIST from ``data_dir``
    (None: ``$PLAUSIGRAD_DATA_DIR``, else the bundled subset)."""
    data = load_dataset("mnist", data_dir=data_dir)
    return data.train_images, data.train_labels, data.test_images, data.test_labels


def cmd_run(a):
    xtr, ytr, xte, yte = load_mnist(a.data)
    cfg = make_cfg(a)
    rng = np.random.default_rng(a.seed)
    weights = ref.init_weights(cfg, rng)
    fb = ref.make_feedback(cfg, weights, rng) if cfg.feedback == "fa" else None
    ev0 = ref.evaluate(cfg, weights, xte[:2000], yte[:2000], rng)
    print(json.dumps({"epoch": 0, "init_rates": ev0["rates"].round(4).tolist()}), flush=True)
    hist = []
    for ep in range(a.epochs):
        weights, tr = ref.train_epoch(cfg, weights, xtr, ytr, rng, fb, epoch=ep,
                                      max_samples=a.max_train)
        t0 = time.time()
        ntest = a.max_test or len(yte)
        ev = ref.evaluate(cfg, weights, xte[:ntest], yte[:ntest], rng)
        rec = {"tag": a.tag, "epoch": ep + 1, "test_acc": ev["acc"], "train_acc": tr["train_acc"],
               "loss": round(float(tr["loss"]), 4), "train_rates": tr["rates"].round(4).tolist(),
               "test_rates": ev["rates"].round(4).tolist(), "silent": ev["silent_frac"], "ties": ev["tie_frac"],
               "t_train": round(tr["time"], 1), "t_test": round(time.time() - t0, 1),
               "args": {k: v for k, v in vars(a).items() if k not in ("func", "data", "log")}}
        hist.append(rec)
        print(json.dumps(rec), flush=True)
        if a.log:
            with open(a.log, "a") as f:
                f.write(json.dumps(rec) + "\n")
        if not np.isfinite(tr["loss"]):
            break


def cmd_angle(a):
    """Train briefly (a.max_train samples, so weights are not at init), then
    compare dW_1 (factorised vs exact eligibility) on a few single samples
    and on one batch, with identical input spikes and no quantisation noise
    difference (same dither seed)."""
    xtr, ytr, xte, yte = load_mnist(a.data)
    cfg = make_cfg(a).replace(dtype="float64")
    rng = np.random.default_rng(a.seed)
    weights = ref.init_weights(cfg, rng)
    fb = ref.make_feedback(cfg, weights, rng) if cfg.feedback == "fa" else None
    if a.max_train:
        weights, _ = ref.train_epoch(cfg, weights, xtr, ytr, rng, fb, max_samples=a.max_train)
    out = []
    for k in range(a.n_angle):
        ix = np.arange(k * a.angle_batch, (k + 1) * a.angle_batch)
        fwd = ref.window(cfg, weights, xte[ix], rng, exact_layers=(1, 2))
        seed = int(rng.integers(1 << 31))
        uf = ref.errors_and_updates(cfg, weights, fwd, yte[ix], np.random.default_rng(seed), fb,
                                    eligibility="factorised")
        ue = ref.errors_and_updates(cfg, weights, fwd, yte[ix], np.random.default_rng(seed), fb,
                                    eligibility="exact")
        r = {"batch": k, "size": len(ix), "angle_dW1": angle_degrees(uf["dW"][0], ue["dW"][0]),
             "angle_dW2": angle_degrees(uf["dW"][1], ue["dW"][1]),
             "norm_ratio_dW1": float(np.linalg.norm(uf["dW"][0]) / max(np.linalg.norm(ue["dW"][0]), 1e-30))}
        out.append(r)
        print(json.dumps(r), flush=True)
    a1 = [r["angle_dW1"] for r in out if r["angle_dW1"] is not None]
    print(json.dumps({"mean_angle_dW1": float(np.mean(a1)), "median": float(np.median(a1))}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["run", "angle"])
    p.add_argument("--data", "--data-dir", dest="data", default=None,
                   help="MNIST directory (default: $PLAUSIGRAD_DATA_DIR, else the bundled subset)")
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--T_f", type=int, default=16)
    p.add_argument("--p_in", type=float, default=1.0)
    p.add_argument("--init", default="normal")
    p.add_argument("--sigma", type=float, nargs=2, default=[0.01, 0.1])
    p.add_argument("--b_init", type=float, nargs=2, default=[0.0, 0.0])
    p.add_argument("--eta", type=float, nargs=2, default=[0.05, 0.05])
    p.add_argument("--eta_b", type=float, nargs=2, default=[0.0, 0.0])
    p.add_argument("--lr_decay", type=float, default=1.0)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--batch_reduce", default="mean")
    p.add_argument("--q", type=float, default=0.125)
    p.add_argument("--n_err", type=int, default=8)
    p.add_argument("--no-quantise", dest="no_quantise", action="store_true")
    p.add_argument("--feedback", default="symmetric")
    p.add_argument("--fb_scale", type=float, default=1.0)
    p.add_argument("--y_on", type=float, default=1.0)
    p.add_argument("--y_off", type=float, default=0.0)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--max_train", type=int, default=None)
    p.add_argument("--max_test", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="")
    p.add_argument("--log", default=None)
    p.add_argument("--n_angle", type=int, default=8)
    p.add_argument("--angle_batch", type=int, default=1)
    a = p.parse_args()
    {"run": cmd_run, "angle": cmd_angle}[a.mode](a)


if __name__ == "__main__":
    main()
