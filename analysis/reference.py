"""Vectorised numpy reference of the discrete-time BioGrad network.

This module is the ground truth against which the Brian2 implementation is
compared.  It follows the discrete-time specification *exactly* (one step =
1 ms, all quantities dimensionless), vectorised over a mini-batch.

Per time step ``t = 0 .. T_f-1`` the sub-steps are executed in Brian2's
schedule order, for all layers at once:

A. state update (``groups``), every layer ``l``::

       xlag = xhat; xsum += xlag; xhat = d_c * xhat
       # layers >= 1 only
       c = d_c * c + I + b; I = 0
       v = d_v * v + c
       psi = 1{|v - V_th| < w} / (2 w); psisum += psi

B. thresholds: input ``s0 = u < p_in * pixel`` (or the given spike array),
   layers >= 1 ``s = v > V_th``.
C. synaptic delivery: ``I_l += W_l @ s_{l-1}`` (one step latency per layer).
D. resets, where ``s``: ``v = 0``, ``count += 1`` (layers >= 1) and
   ``xhat += 1`` (all layers).

Hence ``xlag_i[t] = sum_{t' < t} d_c**(t-1-t') s_i[t']`` and
``c_j[t] = sum_i W_ji xlag_i[t] + b_j * sum_{k=0..t} d_c**k``.

End of the window: ``rate = count / T_f``, ``psibar = psisum / T_f`` and
``xbar = xsum / T_f`` (input layer included).

Learning (MSE on output rates, ``y`` one-hot with ``y_on`` / ``y_off``)::

    u_L = a_L - y
    m_l = clip(floor(psibar_l * u_l / q + U), -n_err, n_err),  U ~ U[0, 1)
    u_{l-1} = q * B_{l-1} @ m_l          (B_{l-1} = W_l^T  or fixed random)
    dW_l[j, i] = -eta_l * u_l[j] * e_ji  e_ji = psibar_j * xbar_i (factorised)
                                          or ebar_ji (exact per-synapse trace)
    db_l = -eta_b_l * u_l * psibar_l

Mini-batch convention: the per-sample updates are **averaged** over the batch
(``batch_reduce='mean'``, default) and applied once per batch;
``batch_reduce='sum'`` sums them instead (i.e. ``eta_sum = eta_mean / B``).

Performance note: the per-step matrix products are small, so run with
``OPENBLAS_NUM_THREADS=1`` (multi-threaded OpenBLAS was up to 10x slower on a
2-core machine, and parallel processes contend badly).  ``Config.dtype``
defaults to float32 for training speed; use float64 to compare spike trains
with Brian2.

Public API
----------
``Config``                      all hyper-parameters (dataclass)
``init_params(cfg, rng)``       weights / biases as ``{'W': [...], 'b': [...]}``
``make_feedback(params, cfg, rng)``  fixed random feedback matrices (``'fa'``)
``sample_input_spikes(images, T_f, rng, p_in)``  Bernoulli input trains
``forward(params, images=..., spikes=..., T_f=..., rng=...)``  one window
``errors_and_updates(params, fwd, labels, cfg, rng, feedback=...)``
``apply_updates(params, upd)``
``train_step`` / ``train_epoch`` / ``evaluate``
``predict(counts)``             argmax of output counts, ties -> lowest index
``trace_sum_closed_form(spikes, d)``  ``sum_t xlag[t]`` from spike times
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

__all__ = [
    "D_C", "D_V", "V_TH", "W_SUR",
    "Config", "init_params", "make_feedback", "sample_input_spikes",
    "surrogate", "forward", "errors_and_updates", "apply_updates",
    "train_step", "train_epoch", "evaluate", "predict", "trace_sum_closed_form",
]

#: basal current decay per step
D_C = 0.5
#: membrane decay per step
D_V = 0.75
#: firing threshold
V_TH = 0.5
#: surrogate half-width
W_SUR = 0.5


@dataclass
class Config:
    """All hyper-parameters of the reference network.

    Per-layer lists (``sigma``, ``eta``, ``eta_b``, ``b_init``) have one entry
    per weight layer ``l = 1..L``; a scalar is broadcast.
    """

    sizes: Sequence[int] = (784, 500, 10)
    T_f: int = 20
    p_in: float = 1.0
    # initialisation: 'normal' -> N(0, sigma); 'uniform' -> U(-sigma*sqrt(3), sigma*sqrt(3))
    init: str = "normal"
    sigma: Sequence[float] = (0.01, 0.1)
    b_init: Sequence[float] = (0.0, 0.0)
    # learning
    eta: Sequence[float] = (0.1, 0.1)
    eta_b: Sequence[float] = (0.0, 0.0)
    lr_decay: float = 1.0  # multiplicative per epoch
    batch_size: int = 16
    batch_reduce: str = "mean"  # 'mean' or 'sum'
    # error spikes
    q: float = 0.125
    n_err: int = 8
    quantise: bool = True
    feedback: str = "symmetric"  # 'symmetric' or 'fa'
    fb_scale: float = 1.0  # FA: U(-fb_scale/sqrt(n_l), fb_scale/sqrt(n_l))
    eligibility: str = "factorised"  # 'factorised' or 'exact'
    y_on: float = 1.0
    y_off: float = 0.0
    # neuron constants
    d_c: float = D_C
    d_v: float = D_V
    v_th: float = V_TH
    w_sur: float = W_SUR
    dtype: str = "float32"

    @property
    def L(self) -> int:
        return len(self.sizes) - 1

    def per_layer(self, name: str) -> list:
        val = getattr(self, name)
        if np.isscalar(val):
            return [float(val)] * self.L
        val = list(val)
        if len(val) != self.L:
            raise ValueError(f"{name} needs {self.L} entries, got {len(val)}")
        return [float(x) for x in val]

    def replace(self, **kw) -> "Config":
        return dataclasses.replace(self, **kw)


# --------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------
def init_params(cfg: Config, rng: np.random.Generator) -> dict:
    """Return ``{'W': [W_1..W_L], 'b': [b_1..b_L]}``; ``W_l`` has shape (n_l, n_{l-1})."""
    dt = np.dtype(cfg.dtype)
    Ws, bs = [], []
    for l, (s, b0) in enumerate(zip(cfg.per_layer("sigma"), cfg.per_layer("b_init")), start=1):
        shape = (cfg.sizes[l], cfg.sizes[l - 1])
        if cfg.init == "normal":
            W = rng.normal(0.0, s, size=shape)
        elif cfg.init == "uniform":
            a = s * np.sqrt(3.0)
            W = rng.uniform(-a, a, size=shape)
        else:
            raise ValueError(cfg.init)
        Ws.append(W.astype(dt))
        bs.append(np.full(cfg.sizes[l], b0, dtype=dt))
    return {"W": Ws, "b": bs}


def make_feedback(params: dict, cfg: Config, rng: np.random.Generator) -> list:
    """Fixed random feedback matrices ``B_{l-1}`` (shape (n_{l-1}, n_l)), l = 2..L.

    Entry ``k`` of the returned list is the matrix that carries the error of
    weight layer ``k+2`` down, i.e. ``[B_1, ..., B_{L-1}]``; drawn from
    ``U(-fb_scale/sqrt(n_l), fb_scale/sqrt(n_l))``.
    """
    out = []
    for W in params["W"][1:]:
        n_l, n_lm1 = W.shape
        a = cfg.fb_scale / np.sqrt(n_l)
        out.append(rng.uniform(-a, a, size=(n_lm1, n_l)).astype(W.dtype))
    return out


# --------------------------------------------------------------------------
# forward window
# --------------------------------------------------------------------------
def surrogate(v, v_th: float = V_TH, w: float = W_SUR):
    """psi(v) = 1{|v - V_th| < w} / (2 w) (same dtype as ``v``)."""
    return (np.abs(v - v_th) < w).astype(v.dtype) * (1.0 / (2.0 * w))


def sample_input_spikes(images, T_f: int, rng: np.random.Generator, p_in: float = 1.0,
                        dtype="float32") -> np.ndarray:
    """Bernoulli input trains, shape (T_f, batch, n_in), values 0/1.

    Step ``t`` spikes where ``U[t] < p_in * pixel`` with ``U = rng.random((T_f,
    batch, n_in))`` drawn in one call (float32 uniforms).
    """
    images = np.asarray(images)
    u = rng.random((T_f,) + images.shape, dtype=np.float32)
    return (u < (p_in * images).astype(np.float32)).astype(dtype)


def trace_sum_closed_form(spikes: np.ndarray, d: float = D_C) -> np.ndarray:
    """``sum_t xlag[t]`` over the window from spike times (axis 0 is time).

    A spike at step ``t'`` contributes ``sum_{k=0}^{T-2-t'} d**k =
    (1 - d**(T-1-t')) / (1 - d)`` (it is first seen by ``xlag`` at ``t'+1``).
    """
    T = spikes.shape[0]
    w = (1.0 - d ** (T - 1 - np.arange(T))) / (1.0 - d)
    return np.tensordot(w.astype(spikes.dtype), spikes, axes=(0, 0))


def forward(params: dict, images=None, T_f: int = 20, rng: Optional[np.random.Generator] = None,
            spikes: Optional[np.ndarray] = None, p_in: float = 1.0, record=None,
            exact_layers: Sequence[int] = (), d_c: float = D_C, d_v: float = D_V,
            v_th: float = V_TH, w_sur: float = W_SUR) -> dict:
    """Simulate one forward window of ``T_f`` steps for a batch.

    Parameters
    ----------
    params : dict with lists ``'W'`` (``W_l`` shape (n_l, n_{l-1})) and ``'b'``.
    images : (batch, n_in) pixels in [0, 1]; used to sample input spikes with
        ``rng`` (see :func:`sample_input_spikes`) when ``spikes`` is None.
    spikes : optional (T_f, batch, n_in) 0/1 input spike array (overrides
        ``images``/``rng``; ``T_f`` is taken from its first axis).
    record : None, True (all neurons) or dict ``{layer: index array}`` of
        neurons to record for every sample; layer 0 = input.
    exact_layers : weight layers ``l`` (1-based) for which the exact
        per-synapse eligibility ``ebar`` (batch, n_l, n_{l-1}) is computed
        (memory batch*n_l*n_{l-1}; for small tests only).

    Returns
    -------
    dict with per-layer lists indexed by layer ``0..L`` (entries for the
    input layer are ``None`` where undefined):
    ``count``, ``rate`` (= count/T_f), ``psibar``, ``xbar``, ``spikes_in``
    (the input trains used), ``ebar`` ({l: array}) and, if requested, ``rec``:
    ``{layer: {name: (T_f, batch, k)}}`` with names

    * ``xlag``: presynaptic trace used in sub-step A (before decay),
    * ``c``, ``v``, ``psi``: values after sub-step A (``v`` before reset, i.e.
      what the threshold sees),
    * ``s``: spikes of the step,
    * ``xhat``: trace at the end of the step (after reset += 1) which equals
      ``xlag`` of the next step and what a Brian2 StateMonitor (when='start')
      records at the next step,
    * ``v_end``: ``v`` at the end of the step (after reset).
    """
    Ws, bs = params["W"], params["b"]
    L = len(Ws)
    dt = Ws[0].dtype
    if spikes is None:
        if images is None or rng is None:
            raise ValueError("need either spikes or (images and rng)")
        spikes = sample_input_spikes(images, T_f, rng, p_in, dtype=dt)
    else:
        spikes = np.asarray(spikes).astype(dt, copy=False)
        T_f = spikes.shape[0]
    T, B, n0 = spikes.shape
    sizes = [n0] + [W.shape[0] for W in Ws]
    exact_layers = tuple(exact_layers)

    # recording setup
    if record is True:
        rec_idx = {l: np.arange(sizes[l]) for l in range(L + 1)}
    elif record:
        rec_idx = {int(l): np.asarray(ix) for l, ix in record.items()}
    else:
        rec_idx = {}
    rec = {}
    for l, ix in rec_idx.items():
        names = ("xlag", "s", "xhat") if l == 0 else ("xlag", "c", "v", "psi", "s", "xhat", "v_end")
        rec[l] = {nm: np.zeros((T, B, len(ix)), dtype=dt) for nm in names}

    need_input_loop = bool(exact_layers and 1 in exact_layers) or (0 in rec_idx)

    # input layer: traces in closed form, delivery to layer 1 precomputed in
    # one matmul (the input layer depends on nothing, delivery is linear).
    xsum0 = trace_sum_closed_form(spikes, d_c)
    D1 = (spikes.reshape(T * B, n0) @ Ws[0].T).reshape(T, B, sizes[1])

    z = lambda n: np.zeros((B, n), dtype=dt)
    xhat = [z(n) for n in sizes]
    xsum = [None] + [z(n) for n in sizes[1:]]
    c = [None] + [z(n) for n in sizes[1:]]
    v = [None] + [z(n) for n in sizes[1:]]
    I = [None] + [z(n) for n in sizes[1:]]
    psisum = [None] + [z(n) for n in sizes[1:]]
    count = [None] + [z(n) for n in sizes[1:]]
    s = [None] * (L + 1)
    eps = {l: np.zeros((B, sizes[l], sizes[l - 1]), dtype=dt) for l in exact_layers}
    esum = {l: np.zeros_like(eps[l]) for l in exact_layers}
    inv2w = dt.type(1.0 / (2.0 * w_sur))
    d_c_, d_v_, v_th_, w_ = dt.type(d_c), dt.type(d_v), dt.type(v_th), dt.type(w_sur)

    for t in range(T):
        # ---- A: state updates
        xlag = [None] * (L + 1)
        if need_input_loop:
            xlag[0] = xhat[0]
            xhat[0] = d_c_ * xhat[0]
        psi = [None] * (L + 1)
        for l in range(1, L + 1):
            xlag[l] = xhat[l]
            xsum[l] += xlag[l]
            xhat[l] = d_c_ * xhat[l]
            c[l] = d_c_ * c[l] + I[l] + bs[l - 1]
            I[l] = None
            v[l] = d_v_ * v[l] + c[l]
            psi[l] = (np.abs(v[l] - v_th_) < w_).astype(dt) * inv2w
            psisum[l] += psi[l]
        for l in exact_layers:
            eps[l] *= d_v_
            eps[l] += xlag[l - 1][:, None, :]
            esum[l] += psi[l][:, :, None] * eps[l]
        # ---- B: thresholds
        s[0] = spikes[t]
        for l in range(1, L + 1):
            s[l] = (v[l] > v_th_).astype(dt)
        # ---- C: delivery
        I[1] = D1[t]
        for l in range(2, L + 1):
            I[l] = s[l - 1] @ Ws[l - 1].T
        # recording (values before reset for v; xhat after reset below)
        for l, ix in rec_idx.items():
            r = rec[l]
            r["xlag"][t] = xlag[l][:, ix]
            r["s"][t] = s[l][:, ix]
            if l > 0:
                r["c"][t] = c[l][:, ix]
                r["v"][t] = v[l][:, ix]
                r["psi"][t] = psi[l][:, ix]
        # ---- D: resets
        if need_input_loop:
            xhat[0] = xhat[0] + s[0]
        for l in range(1, L + 1):
            v[l] = v[l] * (1 - s[l])
            count[l] += s[l]
            xhat[l] = xhat[l] + s[l]
        for l in exact_layers:
            eps[l] *= (1 - s[l])[:, :, None]
        for l, ix in rec_idx.items():
            rec[l]["xhat"][t] = xhat[l][:, ix]
            if l > 0:
                rec[l]["v_end"][t] = v[l][:, ix]

    invT = dt.type(1.0 / T)
    count0 = spikes.sum(axis=0)
    out = {
        "T_f": T,
        "count": [count0] + count[1:],
        "rate": [count0 * invT] + [cn * invT for cn in count[1:]],
        "psibar": [None] + [p * invT for p in psisum[1:]],
        "xbar": [xsum0 * invT] + [x * invT for x in xsum[1:]],
        "spikes_in": spikes,
        "ebar": {l: esum[l] * invT for l in exact_layers},
    }
    if rec_idx:
        out["rec"] = rec
    return out


# --------------------------------------------------------------------------
# learning
# --------------------------------------------------------------------------
def errors_and_updates(params: dict, fwd: dict, labels, cfg: Config,
                       rng: Optional[np.random.Generator] = None, feedback: Optional[list] = None,
                       eta: Optional[Sequence[float]] = None, eta_b: Optional[Sequence[float]] = None,
                       eligibility: Optional[str] = None) -> dict:
    """Errors, error spikes and the (batch-reduced) updates for one window.

    ``feedback`` is ``None`` for symmetric feedback (``B_{l-1} = W_l^T``) or
    the list from :func:`make_feedback`.  ``rng`` provides the dither ``U``
    (required when ``cfg.quantise``).  ``eta``/``eta_b`` override the config
    (used for learning-rate decay).  ``eligibility`` ('factorised' or
    'exact') overrides ``cfg.eligibility``; 'exact' needs ``fwd['ebar']`` for
    every layer.

    Returns dict with ``dW``, ``db`` (lists per weight layer), ``u`` and ``m``
    (lists indexed by layer, ``None`` where undefined), ``delta``, ``loss``
    (per sample, 0.5*sum(delta^2)).
    """
    Ws = params["W"]
    L = len(Ws)
    dt = Ws[0].dtype
    eta = cfg.per_layer("eta") if eta is None else list(eta)
    eta_b = cfg.per_layer("eta_b") if eta_b is None else list(eta_b)
    elig = eligibility or cfg.eligibility
    labels = np.asarray(labels)
    Bsz = labels.shape[0]
    aL = fwd["rate"][L]
    y = np.full(aL.shape, cfg.y_off, dtype=dt)
    y[np.arange(Bsz), labels] = cfg.y_on
    delta = aL - y
    loss = 0.5 * np.sum(delta.astype(np.float64) ** 2, axis=1)

    u = [None] * (L + 1)
    m = [None] * (L + 1)
    u[L] = delta
    for l in range(L, 1, -1):
        target = fwd["psibar"][l] * u[l] / dt.type(cfg.q)
        if cfg.quantise:
            U = rng.random(target.shape, dtype=np.float32).astype(dt)
            m[l] = np.clip(np.floor(target + U), -cfg.n_err, cfg.n_err)
        else:
            m[l] = target
        Bmat = Ws[l - 1].T if feedback is None else feedback[l - 2]  # (n_{l-1}, n_l)
        u[l - 1] = dt.type(cfg.q) * (m[l] @ Bmat.T)

    red = (1.0 / Bsz) if cfg.batch_reduce == "mean" else 1.0
    dW, db = [], []
    for l in range(1, L + 1):
        g = u[l] * fwd["psibar"][l]  # (B, n_l)
        if elig == "factorised":
            G = g.T @ fwd["xbar"][l - 1]
        elif elig == "exact":
            G = np.einsum("bj,bji->ji", u[l], fwd["ebar"][l])
        else:
            raise ValueError(elig)
        dW.append((-eta[l - 1] * red) * G)
        db.append((-eta_b[l - 1] * red) * g.sum(axis=0))
    return {"dW": dW, "db": db, "u": u, "m": m, "delta": delta, "loss": loss}


def apply_updates(params: dict, upd: dict) -> None:
    """In-place ``W += dW``, ``b += db``."""
    for l in range(len(params["W"])):
        params["W"][l] += upd["dW"][l].astype(params["W"][l].dtype, copy=False)
        params["b"][l] += upd["db"][l].astype(params["b"][l].dtype, copy=False)


def predict(counts: np.ndarray) -> np.ndarray:
    """Argmax of output counts per sample; ties -> lowest index."""
    return np.argmax(counts, axis=-1)


def train_step(params, images, labels, cfg: Config, rng, feedback=None, eta=None, eta_b=None,
               spikes=None) -> dict:
    """One mini-batch: forward, errors, updates applied once. Returns stats."""
    exact = tuple(range(1, cfg.L + 1)) if cfg.eligibility == "exact" else ()
    fwd = forward(params, images=images, T_f=cfg.T_f, rng=rng, spikes=spikes, p_in=cfg.p_in,
                  exact_layers=exact, d_c=cfg.d_c, d_v=cfg.d_v, v_th=cfg.v_th, w_sur=cfg.w_sur)
    upd = errors_and_updates(params, fwd, labels, cfg, rng, feedback, eta, eta_b)
    apply_updates(params, upd)
    return {"loss": upd["loss"], "pred": predict(fwd["count"][-1]),
            "rates": [r.mean() for r in fwd["rate"]]}


def train_epoch(params, images, labels, cfg: Config, rng, feedback=None, epoch: int = 0,
                shuffle: bool = True, max_samples: Optional[int] = None) -> dict:
    """One pass over (a prefix of a shuffled copy of) the training set.

    The learning rates are ``eta * lr_decay**epoch``. Returns mean loss,
    training accuracy (during learning), mean firing rates per layer and time.
    """
    t0 = time.time()
    n = len(labels)
    order = rng.permutation(n) if shuffle else np.arange(n)
    if max_samples is not None:
        order = order[:max_samples]
    f = cfg.lr_decay ** epoch
    eta = [e * f for e in cfg.per_layer("eta")]
    eta_b = [e * f for e in cfg.per_layer("eta_b")]
    dt = np.dtype(cfg.dtype)
    losses, correct, rates, nb = 0.0, 0, np.zeros(cfg.L + 1), 0
    for k in range(0, len(order), cfg.batch_size):
        ix = order[k:k + cfg.batch_size]
        st = train_step(params, images[ix].astype(dt, copy=False), labels[ix], cfg, rng,
                        feedback, eta, eta_b)
        losses += st["loss"].sum()
        correct += int((st["pred"] == labels[ix]).sum())
        rates += np.array(st["rates"]) * len(ix)
        nb += len(ix)
    return {"loss": losses / nb, "train_acc": correct / nb, "rates": rates / nb,
            "time": time.time() - t0}


def evaluate(params, images, labels, cfg: Config, rng, batch: int = 500) -> dict:
    """Test accuracy (argmax of output counts, ties -> lowest index), mean
    firing rates per layer, fraction of samples with a silent output layer
    (``silent_frac``) and with a tied maximum count (``tie_frac``, silent included)."""
    dt = np.dtype(cfg.dtype)
    correct, rates, n, silent, ties = 0, np.zeros(cfg.L + 1), 0, 0, 0
    for k in range(0, len(labels), batch):
        x = images[k:k + batch].astype(dt, copy=False)
        fwd = forward(params, images=x, T_f=cfg.T_f, rng=rng, p_in=cfg.p_in,
                      d_c=cfg.d_c, d_v=cfg.d_v, v_th=cfg.v_th, w_sur=cfg.w_sur)
        cnt = fwd["count"][-1]
        correct += int((predict(cnt) == labels[k:k + batch]).sum())
        silent += int((cnt.sum(axis=1) == 0).sum())
        ties += int(((cnt == cnt.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
        rates += np.array([r.mean() for r in fwd["rate"]]) * len(x)
        n += len(x)
    return {"acc": correct / n, "rates": rates / n, "silent_frac": silent / n,
            "tie_frac": ties / n}
