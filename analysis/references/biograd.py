"""Numpy reference of the discrete-time BioGrad network: a pure step, its window, the update.

This module is the ground truth against which the Brian2 implementation is compared
(``tests/test_biograd.py``, ``tests/test_alignment.py``, the alignment plug-in
:mod:`plausigrad.analysis.biograd_alignment`). It follows the discrete-time equations of
:mod:`plausigrad.models.compartment_neuron` (soma, basal current, trace) and the update of
:mod:`plausigrad.rules.biograd` *exactly*: one step = 1 ms of Brian2's clock, every quantity
dimensionless (currents, potentials and traces in units of the threshold's scale, rates in
spikes/step), vectorised over a mini-batch (axis 0 of every state array).

Constants (:class:`~plausigrad.models.compartment_neuron.CompartmentNeuronParameters`, reused):
``d_c`` = ``basal_decay`` (0.5 per step), ``d_v`` = ``membrane_decay`` (0.75 per step),
``V_th`` = ``threshold`` (0.5), ``w`` = ``surrogate_halfwidth`` (0.5).

One :func:`step` ``t`` runs the sub-steps in Brian2's schedule order, for all layers at once:

A. state update (``groups``), every layer ``l``::

       xlag = xhat; xsum += xlag; xhat = d_c * xhat
       # layers >= 1 only
       c = d_c * c + I + b; I = 0
       v = d_v * v + c
       psi = 1{|v - V_th| < w} / (2 w); psisum += psi
       # exact eligibility (per synapse, optional): eps = d_v * eps + xlag_pre; esum += psi * eps

B. thresholds: the input spikes ``s0`` are given (:func:`sample_input_spikes` draws
   ``u < p_in * pixel``), layers >= 1 ``s = v > V_th``.
C. synaptic delivery: ``I_l = W_l @ s_{l-1}`` (one step latency per layer).
D. resets, where ``s``: ``v = 0``, ``count += 1`` (layers >= 1), ``xhat += 1`` (all layers),
   ``eps = 0`` (rows of the spiking neurons).

Hence ``xlag_i[t] = sum_{t' < t} d_c**(t-1-t') s_i[t']`` and
``c_j[t] = sum_i W_ji xlag_i[t] + b_j * sum_{k=0..t} d_c**k``.

End of the window (:func:`window_result`): ``rate = count / T_f``, ``psibar = psisum / T_f``,
``xbar = xsum / T_f`` (input layer included, by :func:`trace_sum_closed_form`) and
``ebar = esum / T_f``.

Learning (:func:`errors_and_updates`, :func:`update`; MSE on output rates, ``y`` one-hot with
``y_on`` / ``y_off`` spikes/step)::

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
2-core machine, and parallel processes contend badly). The input layer's delivery to layer 1 is
computed for the whole window in one product (:func:`step_inputs`: the input depends on
nothing, delivery is linear). ``Config.dtype`` defaults to float32 for training speed; use
float64 to compare spike trains with Brian2.

Public API
----------
``Config``                       all hyper-parameters of a training run (frozen dataclass)
``State``, ``initial_state(weights, batch, ...)``, ``StepInput``, ``step_inputs(weights, spikes)``
``step(neuron, weights, state, inputs_t)``  one time step (pure)
``forward(neuron, weights, input_spikes, record=..., exact_layers=...)``  one window
``window(cfg, weights, images, rng, ...)``  Bernoulli input trains, then :func:`forward`
``window_result(neuron, state, spikes)``    end-of-window read-outs
``init_weights(cfg, rng)``       weights / biases as ``{'W': [...], 'b': [...]}``
``make_feedback(cfg, weights, rng)``  fixed random feedback matrices (``'fa'``)
``sample_input_spikes(images, T_f, rng, p_in)``  Bernoulli input trains
``errors_and_updates(cfg, weights, fwd, labels, rng, feedback=...)``
``apply_updates(weights, upd)``, ``update(cfg, weights, fwd, labels, ...)``  new weights (pure)
``train_step`` / ``train_epoch`` (return new weights) / ``evaluate``
``predict(counts)``              argmax of output counts, ties -> lowest index
``surrogate(v, v_th, w)``, ``trace_sum_closed_form(spikes, d)``
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence

import numpy as np

from plausigrad.analysis.references.common import bernoulli, predict, run
from plausigrad.models.compartment_neuron import CompartmentNeuronParameters

__all__ = [
    "Config", "State", "StepInput", "initial_state", "step_inputs", "step", "forward", "window",
    "window_result", "init_weights", "make_feedback", "sample_input_spikes", "surrogate",
    "errors_and_updates", "apply_updates", "update", "train_step", "train_epoch", "evaluate",
    "predict", "trace_sum_closed_form",
]


@dataclass(frozen=True)
class Config:
    """All hyper-parameters of a reference training run.

    Per-layer lists (``sigma``, ``eta``, ``eta_b``, ``b_init``) have one entry
    per weight layer ``l = 1..L``; a scalar is broadcast. ``neuron`` holds the
    soma / dendrite constants (the Brian2 model's own parameter class).
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
    neuron: CompartmentNeuronParameters = dataclasses.field(
        default_factory=CompartmentNeuronParameters)
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
# weights
# --------------------------------------------------------------------------
def init_weights(cfg: Config, rng: np.random.Generator) -> dict:
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


def make_feedback(cfg: Config, weights: dict, rng: np.random.Generator) -> list:
    """Fixed random feedback matrices ``B_{l-1}`` (shape (n_{l-1}, n_l)), l = 2..L.

    Entry ``k`` of the returned list is the matrix that carries the error of
    weight layer ``k+2`` down, i.e. ``[B_1, ..., B_{L-1}]``; drawn from
    ``U(-fb_scale/sqrt(n_l), fb_scale/sqrt(n_l))``.
    """
    out = []
    for W in weights["W"][1:]:
        n_l, n_lm1 = W.shape
        a = cfg.fb_scale / np.sqrt(n_l)
        out.append(rng.uniform(-a, a, size=(n_lm1, n_l)).astype(W.dtype))
    return out


# --------------------------------------------------------------------------
# one step
# --------------------------------------------------------------------------
def surrogate(v, v_th: float, w: float):
    """psi(v) = 1{|v - V_th| < w} / (2 w) (same dtype as ``v``)."""
    return (np.abs(v - v_th) < w).astype(v.dtype) * (1.0 / (2.0 * w))


def sample_input_spikes(images, T_f: int, rng: np.random.Generator, p_in: float = 1.0,
                        dtype="float32") -> np.ndarray:
    """Bernoulli input trains, shape (T_f, batch, n_in), values 0/1.

    Step ``t`` spikes where ``U[t] < p_in * pixel`` with ``U = rng.random((T_f,
    batch, n_in))`` drawn in one call (float32 uniforms).
    """
    probability = (p_in * np.asarray(images)).astype(np.float32)
    return bernoulli(probability, rng, steps=T_f, uniform_dtype=np.float32, dtype=dtype)


def trace_sum_closed_form(spikes: np.ndarray, d: float) -> np.ndarray:
    """``sum_t xlag[t]`` over the window from spike times (axis 0 is time).

    A spike at step ``t'`` contributes ``sum_{k=0}^{T-2-t'} d**k =
    (1 - d**(T-1-t')) / (1 - d)`` (it is first seen by ``xlag`` at ``t'+1``).
    """
    T = spikes.shape[0]
    w = (1.0 - d ** (T - 1 - np.arange(T))) / (1.0 - d)
    return np.tensordot(w.astype(spikes.dtype), spikes, axes=(0, 0))


@dataclass(frozen=True)
class State:
    """State of the network between two steps; every field is a tuple indexed by layer 0..L.

    ``xhat`` (trace), ``xsum`` (Σ xlag), ``c`` (basal current), ``v`` (membrane after the
    reset), ``I`` (current delivered in the last step, integrated by ``c`` in the next),
    ``psisum`` (Σ ψ), ``count`` (spikes), each (batch, n_l); ``eps`` / ``esum``: exact
    per-synapse eligibility ε and Σ ψ ε, (batch, n_l, n_{l-1}), for the exact layers only.
    ``None`` where a layer does not have the quantity (the input has only ``xhat``, and that
    only when its trace is tracked).
    """

    xhat: tuple
    xsum: tuple
    c: tuple
    v: tuple
    I: tuple
    psisum: tuple
    count: tuple
    eps: tuple
    esum: tuple

    @property
    def exact_layers(self) -> tuple:
        return tuple(l for l, e in enumerate(self.eps) if e is not None)


class StepInput(NamedTuple):
    """What one step reads from outside: the input spikes s0[t] (batch, n_0) and their delivery
    ``current = s0[t] @ W_1^T`` (batch, n_1), computed for the window by :func:`step_inputs`."""

    spikes: np.ndarray
    current: np.ndarray


def initial_state(weights: dict, batch: int, *, exact_layers: Sequence[int] = (),
                  input_trace: bool = False) -> State:
    """All zeros (the start of a slot). ``exact_layers``: weight layers (1-based) with the exact
    per-synapse eligibility (memory batch*n_l*n_{l-1}; small tests only); ``input_trace``:
    track the input's trace ``xhat`` (needed by ``exact_layers`` containing 1, or to record it)."""
    Ws = weights["W"]
    L = len(Ws)
    dt = Ws[0].dtype
    sizes = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    exact_layers = tuple(exact_layers)

    def zeros():
        return (None,) + tuple(np.zeros((batch, n), dtype=dt) for n in sizes[1:])

    track_input = input_trace or 1 in exact_layers
    eps = tuple(np.zeros((batch, sizes[l], sizes[l - 1]), dtype=dt) if l in exact_layers else None
                for l in range(L + 1))
    return State(xhat=(np.zeros((batch, sizes[0]), dtype=dt) if track_input else None,)
                 + zeros()[1:],
                 xsum=zeros(), c=zeros(), v=zeros(), I=zeros(), psisum=zeros(), count=zeros(),
                 eps=eps, esum=tuple(None if e is None else np.zeros_like(e) for e in eps))


def step_inputs(weights: dict, spikes: np.ndarray) -> list:
    """The :class:`StepInput` of every step of the window ``spikes`` (T, batch, n_0)."""
    T, B, n0 = spikes.shape
    W1 = weights["W"][0]
    current = (spikes.reshape(T * B, n0) @ W1.T).reshape(T, B, W1.shape[0])
    return [StepInput(spikes[t], current[t]) for t in range(T)]


def step(neuron: CompartmentNeuronParameters, weights: dict, state: State,
         inputs_t: StepInput) -> tuple:
    """One time step (sub-steps A-D of the module docstring); pure: returns ``(new_state,
    outputs)``, ``outputs`` a dict of per-layer tuples ``xlag`` (trace that shaped the step),
    ``c``, ``v`` (before the reset: what the threshold sees), ``psi`` and ``s`` (spikes)."""
    Ws, bs = weights["W"], weights["b"]
    L = len(Ws)
    dt = Ws[0].dtype
    inv2w = dt.type(1.0 / (2.0 * neuron.surrogate_halfwidth))
    d_c, d_v = dt.type(neuron.basal_decay), dt.type(neuron.membrane_decay)
    v_th, w = dt.type(neuron.threshold), dt.type(neuron.surrogate_halfwidth)
    track_input = state.xhat[0] is not None

    # ---- A: state updates
    xlag = [state.xhat[0]] + [None] * L
    xhat = [d_c * state.xhat[0] if track_input else None] + [None] * L
    xsum, c, v, psi, psisum = ([None] * (L + 1) for _ in range(5))
    for l in range(1, L + 1):
        xlag[l] = state.xhat[l]
        xsum[l] = state.xsum[l] + xlag[l]
        xhat[l] = d_c * state.xhat[l]
        c[l] = d_c * state.c[l] + state.I[l] + bs[l - 1]
        v[l] = d_v * state.v[l] + c[l]
        psi[l] = (np.abs(v[l] - v_th) < w).astype(dt) * inv2w
        psisum[l] = state.psisum[l] + psi[l]
    eps, esum = list(state.eps), list(state.esum)
    for l in state.exact_layers:
        eps[l] = state.eps[l] * d_v + xlag[l - 1][:, None, :]
        esum[l] = state.esum[l] + psi[l][:, :, None] * eps[l]
    # ---- B: thresholds
    s = [inputs_t.spikes] + [(v[l] > v_th).astype(dt) for l in range(1, L + 1)]
    # ---- C: delivery
    current = [None, inputs_t.current] + [s[l - 1] @ Ws[l - 1].T for l in range(2, L + 1)]
    # ---- D: resets
    if track_input:
        xhat[0] = xhat[0] + s[0]
    v_end, count = [None] * (L + 1), [None] * (L + 1)
    for l in range(1, L + 1):
        v_end[l] = v[l] * (1 - s[l])
        count[l] = state.count[l] + s[l]
        xhat[l] = xhat[l] + s[l]
    for l in state.exact_layers:
        eps[l] = eps[l] * (1 - s[l])[:, :, None]
    new_state = State(xhat=tuple(xhat), xsum=tuple(xsum), c=tuple(c), v=tuple(v_end),
                      I=tuple(current), psisum=tuple(psisum), count=tuple(count), eps=tuple(eps),
                      esum=tuple(esum))
    outputs = {"xlag": tuple(xlag), "c": tuple(c), "v": tuple(v), "psi": tuple(psi),
               "s": tuple(s)}
    return new_state, outputs


# --------------------------------------------------------------------------
# forward window
# --------------------------------------------------------------------------
def window_result(neuron: CompartmentNeuronParameters, state: State, spikes: np.ndarray) -> dict:
    """End-of-window read-outs of the final ``state`` of a window on input ``spikes`` (T, B, n0):
    per-layer lists (layer 0 = input; ``None`` where undefined) ``count``, ``rate``
    (= count/T_f), ``psibar``, ``xbar``, and ``T_f``, ``spikes_in``, ``ebar`` ({l: array})."""
    T = spikes.shape[0]
    invT = spikes.dtype.type(1.0 / T)
    count0 = spikes.sum(axis=0)
    xsum0 = trace_sum_closed_form(spikes, neuron.basal_decay)
    return {
        "T_f": T,
        "count": [count0] + list(state.count[1:]),
        "rate": [count0 * invT] + [cn * invT for cn in state.count[1:]],
        "psibar": [None] + [p * invT for p in state.psisum[1:]],
        "xbar": [xsum0 * invT] + [x * invT for x in state.xsum[1:]],
        "spikes_in": spikes,
        "ebar": {l: state.esum[l] * invT for l in state.exact_layers},
    }


def forward(neuron: CompartmentNeuronParameters, weights: dict, input_spikes: np.ndarray, *,
            record=None, exact_layers: Sequence[int] = ()) -> dict:
    """Simulate one forward window for a batch: :func:`step` over the steps of ``input_spikes``.

    Parameters
    ----------
    neuron : the constants (``CompartmentNeuronParameters``).
    weights : dict with lists ``'W'`` (``W_l`` shape (n_l, n_{l-1})) and ``'b'``.
    input_spikes : (T_f, batch, n_in) 0/1 input spike array (cast to the weights' dtype).
    record : None, True (all neurons) or dict ``{layer: index array}`` of
        neurons to record for every sample; layer 0 = input.
    exact_layers : weight layers ``l`` (1-based) for which the exact
        per-synapse eligibility ``ebar`` (batch, n_l, n_{l-1}) is computed
        (memory batch*n_l*n_{l-1}; for small tests only).

    Returns
    -------
    :func:`window_result`'s dict and, if requested, ``rec``:
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
    Ws = weights["W"]
    dt = Ws[0].dtype
    spikes = np.asarray(input_spikes).astype(dt, copy=False)
    T, B, _ = spikes.shape
    sizes = [spikes.shape[2]] + [W.shape[0] for W in Ws]

    if record is True:
        rec_idx = {l: np.arange(n) for l, n in enumerate(sizes)}
    elif record:
        rec_idx = {int(l): np.asarray(ix) for l, ix in record.items()}
    else:
        rec_idx = {}
    rec = {}
    for l, ix in rec_idx.items():
        names = ("xlag", "s", "xhat") if l == 0 else ("xlag", "c", "v", "psi", "s", "xhat", "v_end")
        rec[l] = {nm: np.zeros((T, B, len(ix)), dtype=dt) for nm in names}

    def observe(t, new_state, outputs):
        for l, ix in rec_idx.items():
            r = rec[l]
            for name in r:
                if name == "xhat":
                    r[name][t] = new_state.xhat[l][:, ix]
                elif name == "v_end":
                    r[name][t] = new_state.v[l][:, ix]
                else:
                    r[name][t] = outputs[name][l][:, ix]

    state = initial_state(weights, B, exact_layers=exact_layers, input_trace=0 in rec_idx)
    state = run(step, neuron, weights, state, step_inputs(weights, spikes),
                observe=observe if rec_idx else None)
    out = window_result(neuron, state, spikes)
    if rec_idx:
        out["rec"] = rec
    return out


def window(cfg: Config, weights: dict, images, rng: np.random.Generator, *,
           exact_layers: Sequence[int] = ()) -> dict:
    """One forward window on Bernoulli trains of ``images`` (batch, n_in) in [0, 1], drawn from
    ``rng`` with ``cfg.p_in`` (:func:`sample_input_spikes`, the weights' dtype)."""
    spikes = sample_input_spikes(images, cfg.T_f, rng, cfg.p_in, dtype=weights["W"][0].dtype)
    return forward(cfg.neuron, weights, spikes, exact_layers=exact_layers)


# --------------------------------------------------------------------------
# learning
# --------------------------------------------------------------------------
def errors_and_updates(cfg: Config, weights: dict, fwd: dict, labels,
                       rng: Optional[np.random.Generator] = None, feedback: Optional[list] = None,
                       eta: Optional[Sequence[float]] = None,
                       eta_b: Optional[Sequence[float]] = None,
                       eligibility: Optional[str] = None) -> dict:
    """Errors, error spikes and the (batch-reduced) updates for one window.

    ``feedback`` is ``None`` for symmetric feedback (``B_{l-1} = W_l^T``) or
    the list from :func:`make_feedback`.  ``rng`` provides the dither ``U``
    (required when ``cfg.quantise``; anything with ``random(shape, dtype)``).
    ``eta``/``eta_b`` override the config (used for learning-rate decay).
    ``eligibility`` ('factorised' or 'exact') overrides ``cfg.eligibility``;
    'exact' needs ``fwd['ebar']`` for every layer.

    Returns dict with ``dW``, ``db`` (lists per weight layer), ``u`` and ``m``
    (lists indexed by layer, ``None`` where undefined), ``delta``, ``loss``
    (per sample, 0.5*sum(delta^2)).
    """
    Ws = weights["W"]
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


def apply_updates(weights: dict, upd: dict) -> dict:
    """New weights ``W + dW``, ``b + db`` (in the weights' dtype); ``weights`` is not changed."""
    return {"W": [W + dW.astype(W.dtype, copy=False) for W, dW in zip(weights["W"], upd["dW"])],
            "b": [b + db.astype(b.dtype, copy=False) for b, db in zip(weights["b"], upd["db"])]}


def update(cfg: Config, weights: dict, fwd: dict, labels, rng=None, feedback=None, eta=None,
           eta_b=None, eligibility=None) -> dict:
    """The weights after the update of one window (:func:`errors_and_updates`, then
    :func:`apply_updates`); pure except for the dither draws from ``rng``."""
    return apply_updates(weights, errors_and_updates(cfg, weights, fwd, labels, rng, feedback,
                                                     eta, eta_b, eligibility))


def train_step(cfg: Config, weights: dict, images, labels, rng, feedback=None, eta=None,
               eta_b=None, spikes=None) -> tuple:
    """One mini-batch: forward, errors, updates applied once. Returns ``(new weights, stats)``."""
    exact = tuple(range(1, cfg.L + 1)) if cfg.eligibility == "exact" else ()
    if spikes is None:
        fwd = window(cfg, weights, images, rng, exact_layers=exact)
    else:
        fwd = forward(cfg.neuron, weights, spikes, exact_layers=exact)
    upd = errors_and_updates(cfg, weights, fwd, labels, rng, feedback, eta, eta_b)
    return apply_updates(weights, upd), {"loss": upd["loss"], "pred": predict(fwd["count"][-1]),
                                         "rates": [r.mean() for r in fwd["rate"]]}


def train_epoch(cfg: Config, weights: dict, images, labels, rng, feedback=None, epoch: int = 0,
                shuffle: bool = True, max_samples: Optional[int] = None) -> tuple:
    """One pass over (a prefix of a shuffled copy of) the training set.

    The learning rates are ``eta * lr_decay**epoch``. Returns ``(new weights, stats)``, stats:
    mean loss, training accuracy (during learning), mean firing rates per layer and time.
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
        weights, st = train_step(cfg, weights, images[ix].astype(dt, copy=False), labels[ix], rng,
                                 feedback, eta, eta_b)
        losses += st["loss"].sum()
        correct += int((st["pred"] == labels[ix]).sum())
        rates += np.array(st["rates"]) * len(ix)
        nb += len(ix)
    return weights, {"loss": losses / nb, "train_acc": correct / nb, "rates": rates / nb,
                     "time": time.time() - t0}


def evaluate(cfg: Config, weights: dict, images, labels, rng, batch: int = 500) -> dict:
    """Test accuracy (argmax of output counts, ties -> lowest index), mean
    firing rates per layer, fraction of samples with a silent output layer
    (``silent_frac``) and with a tied maximum count (``tie_frac``, silent included)."""
    dt = np.dtype(cfg.dtype)
    correct, rates, n, silent, ties = 0, np.zeros(cfg.L + 1), 0, 0, 0
    for k in range(0, len(labels), batch):
        x = images[k:k + batch].astype(dt, copy=False)
        fwd = window(cfg, weights, x, rng)
        cnt = fwd["count"][-1]
        correct += int((predict(cnt) == labels[k:k + batch]).sum())
        silent += int((cnt.sum(axis=1) == 0).sum())
        ties += int(((cnt == cnt.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
        rates += np.array([r.mean() for r in fwd["rate"]]) * len(x)
        n += len(x)
    return {"acc": correct / n, "rates": rates / n, "silent_frac": silent / n,
            "tie_frac": ties / n}
