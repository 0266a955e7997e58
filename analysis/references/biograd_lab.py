"""Numpy reference of BioGrad as the lab's own code computes it (the ``published`` profile).

This is our own numpy transcription of the step functions of the BioGrad lab code (Tang et al.
2021; the PyTorch code reused e.g. in j0sh162/FederatedLearning-SNN, folder ``biograd/``). It is
the ground truth for :mod:`plausigrad.models.lif_neuron` and the ``published`` profile of
:mod:`plausigrad.rules.biograd` (``tests/test_biograd_published.py``). Nothing here is copied:
each equation is re-derived from the code it cites. Files (all in ``biograd/``):
``network_cells.py`` (classes ``OnlineHiddenCell``, ``OnlineOutputCell``),
``network_w_biograd.py`` (class ``BioGradNetworkWithSleep``), ``online_error_functions.py``
(``cross_entropy_loss_error_function``), ``training_biograd.py`` (``biograd_snn_training``) and
``run_biograd_training.py`` (the N-MNIST script).

Units: one step is one time bin of the input (5 ms bins in the lab's N-MNIST script: 60 bins);
all quantities dimensionless (potentials in the units of the weights, spikes 0/1, rates in
spikes per window). Batch on axis 0 of every state array; ``W^l`` has shape (n_l, n_{l-1}),
``B^l`` (n_l, n_L) (direct feedback from the output layer L into hidden layer l).

One lab time step t (:func:`step`), every layer l = 1..L *in the same step* (no synaptic delay
between layers), x^0[t] the input spikes, x^l = s^l:

=========================================================  =======================================
equation                                                   read from
=========================================================  =======================================
v^l[t] = d · v^l[t-1] · (1 − s^l[t-1]) + W^l x^{l-1}[t] + b^l  ``OnlineHiddenCell.train_forward_step``
s^l[t] = 1{v^l[t] > V_th}                                  idem (``volt.gt(self.vth)``)
ψ^l[t] = a · 1{|v^l[t] − V_th| < w}                        idem (``volt_pseudo_grad``)
p_ji ← d · p_ji + x_i[t]          (trace_pre)              idem
e_ji ← e_ji + p_ji · ψ_j[t]       (trace_dw)               idem
p_ji ← p_ji · (1 − s_j[t] − v_j[t] ψ_j[t])   (reset-aware)  idem
q_j ← d · q_j + 1;  f_j ← f_j + q_j ψ_j;  q_j ← q_j (1 − s_j − v_j ψ_j)  idem (trace_bias, trace_db)
n_k ← n_k + s^L_k[t]              (output count)           ``BioGradNetworkWithSleep.train_online``
for t ≥ t_soft:  δ = softmax(n) − y                        ``train_online``, ``cross_entropy_loss_
                                                           error_function``
  E⁺ ← E⁺ − z⁺[t-1] + δ,  z⁺[t] = 1{E⁺ > 1}                 ``OnlineOutputCell.train_feedback_step``
  E⁻ ← E⁻ − z⁻[t-1] − δ,  z⁻[t] = 1{E⁻ > 1}                 idem (IF, soft reset by 1)
  u^L ← u^L + (z⁺ − z⁻)                                     idem (output error dendrite)
  u^l ← u^l + (B^l z⁺ − B^l z⁻),  l < L                     ``OnlineHiddenCell.train_feedback_step``
  K ← K + 1                        (feedback_step)          ``train_online``
=========================================================  =======================================

(d, V_th, w, a) = (vdecay, vth, grad_win, grad_amp) = (0.3, 0.3, 0.3, 1.0) in the lab script
[CODE: run_biograd_training.py, snn_param]. The multiplier of the reset-aware trace,
1 − s − vψ, is ∂v[t+1]/∂v[t] / d with the spike's pseudo-derivative (∂s/∂v = ψ): the trace is
the exact forward-mode derivative ∂v[t]/∂W of the LIF map with the surrogate.

Update at the end of the window (:func:`update`) [CODE: network_cells.py,
``OnlineHiddenCell.train_update_parameter_sgd``; network_w_biograd.py,
``train_update_parameter``], for every layer (the output included: its dendrite is u^L)::

    W^l ← W^l − η · mean_batch( (u^l / K) ⊗ e^l )      b^l ← b^l − η · mean_batch( (u^l / K) · f^l )

Sleep (:func:`sleep_layer`, :func:`sleep_update`) [CODE: network_w_biograd.py,
``BioGradNetworkWithSleep.sleep_feedback_update``; network_cells.py,
``OnlineHiddenCell.sleep_forward_step``, ``test_forward_step``], per hidden layer m (the lab
loops over m from the top; the B^m updates are independent of each other, and W is fixed in
sleep, so the order does not matter): a rate r ~ U(0, 1) is drawn once per sleep call (shared by
all layers and samples), layer m is *replaced* by paired Bernoulli(r) sources z⁺, z⁻ (shape
(S, batch, n_m)), the layers above start from rest and run the test-time LIF (no traces)::

    h ← h + z⁺[t] − z⁻[t]                                      (noise trace of layer m)
    v^{m+1} = d v^{m+1} (1 − s^{m+1}) + (W z⁺ + b) − (W z⁻ + b)  (sleep_forward_step: b cancels)
    v^l     = d v^l (1 − s^l) + W^l s^{l-1} + b^l,   l > m + 1   (test_forward_step)
    o ← o + s^L[t]                                             (output spike trace)
    B^m ← B^m + η_s · ( Σ_batch h ⊗ o  −  mean_batch(o^P) · B^m )   (Oja decay, P = 2)

Note the correlation is *summed* over the sleep batch and the Oja decay *averaged* (as in the
code). Initialisation [CODE: ``BioGradNetworkWithSleep.__init__``]: ``nn.Linear`` defaults,
W^l, b^l ~ U(−1/√n_{l−1}, 1/√n_{l−1}) (PyTorch's kaiming-uniform with a = √5), and
B^{L−1} = (W^L)ᵀ, B^l = (W^L W^{L−1} ··· W^{l+1})ᵀ (:func:`init_weights`).

Lab hyper-parameters [CODE: run_biograd_training.py; training_biograd.py, defaults]: hidden
[500, 100], N-MNIST 2·34·34 inputs, 60 bins (tonic ``ToFrame(n_time_bins=60)``, after
``Denoise(filter_time=10000)``; the frames are event *counts* per bin, not clipped to 0/1),
soft error start 19, sleep 50 steps, batch 128, sleep batch 128, lr 1e-3, sleep lr 1e-4/3,
Oja power 2, 100 epochs (tens in the derived scripts), seeds 0, 5, 10, 15, 20; a sleep call after
every training batch.

Numerics: float64 throughout; the softmax is written 1 / Σ_j exp(n_j − n_k), the form the Brian2
model evaluates (PyTorch's ``softmax`` in float32 differs by rounding only).

Public API
----------
``Config``, ``State``, ``initial_state``, ``step`` (pure), ``window`` (loop over ``step``),
``update`` (pure, new weights), ``evaluate`` (the test pass: output counts), ``SleepState``,
``sleep_initial_state``, ``sleep_step`` (pure), ``sleep_layer``, ``sleep_update`` (pure, new B),
``sleep_noise``, ``init_weights``, ``feedback_from_weights``, ``softmax``,
``pseudo_derivative``, ``event_driven_traces`` (prototype of an event-driven eligibility).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plausigrad.models.lif_neuron import LIFNeuronParameters

__all__ = ["Config", "State", "initial_state", "step", "window", "update", "evaluate",
           "SleepState", "sleep_initial_state", "sleep_step", "sleep_layer", "sleep_update",
           "sleep_noise", "init_weights", "feedback_from_weights", "with_feedback", "softmax",
           "pseudo_derivative", "event_driven_traces"]


@dataclass(frozen=True)
class Config:
    """Hyper-parameters of the lab code (defaults: its N-MNIST script)."""

    neuron: LIFNeuronParameters = LIFNeuronParameters()
    soft_error_step: int = 19      #: t_soft [CODE: run_biograd_training.py, soft_error_start]
    learning_rate: float = 1e-3    #: η, weights and biases alike [CODE: idem, lr]
    sleep_learning_rate: float = 1e-4 / 3   #: η_s [CODE: idem, sleep_lr]
    oja_power: float = 2.0         #: P [CODE: idem, sleep_oja_power]


@dataclass(frozen=True)
class State:
    """Everything one training window carries from step to step (tuples: one entry per layer
    l = 1..L; ``dendrite[L-1]`` is the output's)."""

    v: tuple
    s: tuple
    trace_pre: tuple       #: p, (batch, n_l, n_{l-1})
    trace_dw: tuple        #: e, (batch, n_l, n_{l-1})
    trace_bias: tuple      #: q, (batch, n_l)
    trace_db: tuple        #: f, (batch, n_l)
    dendrite: tuple        #: u^l, (batch, n_l)
    count: np.ndarray      #: n, output spikes so far, (batch, n_L)
    error_pos: np.ndarray  #: E⁺
    error_neg: np.ndarray  #: E⁻
    spike_pos: np.ndarray  #: z⁺ of the previous step
    spike_neg: np.ndarray  #: z⁻ of the previous step
    t: int = 0             #: steps done
    feedback_steps: int = 0  #: K


def initial_state(sizes, batch):
    """All-zero state [CODE: ``OnlineHiddenCell.train_reset_state``,
    ``OnlineOutputCell.train_reset_state``]."""
    z = lambda *shape: np.zeros(shape)
    post, pre = sizes[1:], sizes[:-1]
    n_out = sizes[-1]
    return State(v=tuple(z(batch, n) for n in post), s=tuple(z(batch, n) for n in post),
                 trace_pre=tuple(z(batch, n, m) for n, m in zip(post, pre)),
                 trace_dw=tuple(z(batch, n, m) for n, m in zip(post, pre)),
                 trace_bias=tuple(z(batch, n) for n in post),
                 trace_db=tuple(z(batch, n) for n in post),
                 dendrite=tuple(z(batch, n) for n in post), count=z(batch, n_out),
                 error_pos=z(batch, n_out), error_neg=z(batch, n_out),
                 spike_pos=z(batch, n_out), spike_neg=z(batch, n_out))


def pseudo_derivative(neuron, v):
    """ψ = a · 1{|v − V_th| < w} [CODE: ``OnlineHiddenCell.train_forward_step``]."""
    return (np.abs(v - neuron.vth) < neuron.grad_win).astype(float) * neuron.grad_amp


def softmax(counts):
    """softmax over the last axis, as 1 / Σ_j exp(n_j − n_k) (the Brian2 model's form)."""
    counts = np.asarray(counts, dtype=float)
    diff = counts[..., None, :] - counts[..., :, None]  # [..., k, j] = n_j - n_k
    return 1.0 / np.sum(np.exp(diff), axis=-1)


def _lif(neuron, v, s, current):
    """v = d · v · (1 − s) + current; spike v > V_th (the soma of every cell)."""
    v = neuron.vdecay * v * (1.0 - s) + current
    return v, (v > neuron.vth).astype(float)


def step(config, weights, state, inputs_t):
    """One lab time step of the training window (pure). ``inputs_t = (x, y)``: input spikes
    (batch, n_0) and one-hot labels (batch, n_L). Returns ``(new_state, outputs)``, outputs a
    dict of the layers' spikes ``s`` (tuple), ``psi`` and the error spikes ``z_pos``/``z_neg``
    (zeros before the soft start)."""
    x, y = inputs_t
    neuron = config.neuron
    d = neuron.vdecay
    W, b = weights["W"], weights["b"]
    new = {k: list(getattr(state, k)) for k in ("v", "s", "trace_pre", "trace_dw", "trace_bias",
                                                "trace_db", "dendrite")}
    psis = []
    for l in range(len(W)):
        v, s = _lif(neuron, state.v[l], state.s[l], x @ W[l].T + b[l])
        psi = pseudo_derivative(neuron, v)
        keep = 1.0 - s - v * psi
        p = d * state.trace_pre[l] + x[:, None, :]
        new["trace_dw"][l] = state.trace_dw[l] + p * psi[:, :, None]
        new["trace_pre"][l] = p * keep[:, :, None]
        q = d * state.trace_bias[l] + 1.0
        new["trace_db"][l] = state.trace_db[l] + q * psi
        new["trace_bias"][l] = q * keep
        new["v"][l], new["s"][l] = v, s
        psis.append(psi)
        x = s
    count = state.count + x
    e_pos, e_neg = state.error_pos, state.error_neg
    z_pos, z_neg = state.spike_pos, state.spike_neg
    feedback_steps = state.feedback_steps
    if state.t >= config.soft_error_step:
        delta = softmax(count) - y
        psp = np.maximum(delta, 0.0) - np.maximum(-delta, 0.0)
        e_pos = e_pos - z_pos + psp
        e_neg = e_neg - z_neg - psp
        z_pos, z_neg = (e_pos > 1.0).astype(float), (e_neg > 1.0).astype(float)
        L = len(W)
        new["dendrite"][L - 1] = state.dendrite[L - 1] + (z_pos - z_neg)
        for l in range(L - 1):
            B = weights["B"][l]
            new["dendrite"][l] = state.dendrite[l] + (z_pos @ B.T - z_neg @ B.T)
        feedback_steps += 1
        out_pos, out_neg = z_pos, z_neg
    else:
        out_pos, out_neg = np.zeros_like(z_pos), np.zeros_like(z_neg)
    new_state = State(**{k: tuple(val) for k, val in new.items()}, count=count,
                      error_pos=e_pos, error_neg=e_neg, spike_pos=z_pos, spike_neg=z_neg,
                      t=state.t + 1, feedback_steps=feedback_steps)
    return new_state, {"s": tuple(new["s"]), "v": tuple(new["v"]), "psi": tuple(psis),
                       "z_pos": out_pos, "z_neg": out_neg}


def window(config, weights, spikes, labels, *, observe=None):
    """The training window [CODE: ``BioGradNetworkWithSleep.train_online``]: :func:`step` over
    ``spikes`` (T, batch, n_0); ``labels`` one-hot (batch, n_L). ``observe(t, state, outputs)``
    after every step. Returns the final :class:`State`."""
    spikes = np.asarray(spikes, dtype=float)
    sizes = (spikes.shape[2],) + tuple(W.shape[0] for W in weights["W"])
    state = initial_state(sizes, spikes.shape[1])
    for t in range(spikes.shape[0]):
        state, outputs = step(config, weights, state, (spikes[t], labels))
        if observe is not None:
            observe(t, state, outputs)
    return state


def update(config, weights, state, *, learning_rate=None, bias_learning_rate=None):
    """New weights after one window (pure) [CODE: ``train_update_parameter_sgd``]: every layer,
    W − η · mean_batch(u/K ⊗ e), b − η · mean_batch(u/K · f). ``learning_rate`` (one value or
    one per layer) and ``bias_learning_rate`` default to ``config.learning_rate`` (the lab
    uses one η for all)."""
    L = len(weights["W"])
    eta = config.learning_rate if learning_rate is None else learning_rate
    eta = tuple(np.broadcast_to(np.asarray(eta, dtype=float), (L,)))
    eta_b = eta if bias_learning_rate is None else (float(bias_learning_rate),) * L
    new = {"W": [], "b": [], "B": list(weights.get("B", []))}
    for l in range(L):
        error = state.dendrite[l] / state.feedback_steps
        dW = np.mean(error[:, :, None] * state.trace_dw[l], axis=0)
        db = np.mean(error * state.trace_db[l], axis=0)
        new["W"].append(weights["W"][l] - eta[l] * dW)
        new["b"].append(weights["b"][l] - eta_b[l] * db)
    return new


def evaluate(config, weights, spikes, *, observe=None):
    """The test pass [CODE: ``BioGradNetworkWithSleep.test``; ``test_forward_step`` of both
    cells]: the same LIF from rest, no traces, no error; ``spikes`` (T, batch, n_0). Returns the
    output spike counts (batch, n_L); the lab predicts ``argmax`` of them.
    ``observe(t, spikes)`` gets the tuple of the layers' spikes after every step."""
    spikes = np.asarray(spikes, dtype=float)
    W, b = weights["W"], weights["b"]
    v = [np.zeros((spikes.shape[1], w.shape[0])) for w in W]
    s = [np.zeros_like(x) for x in v]
    count = np.zeros_like(v[-1])
    for t in range(spikes.shape[0]):
        x = spikes[t]
        for l in range(len(W)):
            v[l], s[l] = _lif(config.neuron, v[l], s[l], x @ W[l].T + b[l])
            x = s[l]
        count = count + x
        if observe is not None:
            observe(t, tuple(s))
    return count


# -- sleep ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SleepState:
    """State of one sleep run for driven hidden layer ``m`` (1-based): the LIF layers above it
    (``v``/``s`` for layers m+1..L), the noise trace h and the output spike trace o."""

    layer: int
    v: tuple
    s: tuple
    noise_trace: np.ndarray   #: h, (batch, n_m)
    output_trace: np.ndarray  #: o, (batch, n_L)


def sleep_initial_state(sizes, layer, batch):
    """Layers above ``layer`` at rest [CODE: ``test_reset_state``], traces zero."""
    above = sizes[layer + 1:]
    return SleepState(layer=layer, v=tuple(np.zeros((batch, n)) for n in above),
                      s=tuple(np.zeros((batch, n)) for n in above),
                      noise_trace=np.zeros((batch, sizes[layer])),
                      output_trace=np.zeros((batch, sizes[-1])))


def sleep_step(config, weights, state, inputs_t):
    """One sleep step (pure); ``inputs_t = (z_pos, z_neg)`` noise spikes of layer ``state.layer``
    (batch, n_m). Returns ``(new_state, outputs)`` with the spikes of the layers above."""
    z_pos, z_neg = inputs_t
    m = state.layer
    W, b = weights["W"], weights["b"]
    h = state.noise_trace + z_pos - z_neg
    vs, ss = [], []
    x = None
    for k, l in enumerate(range(m, len(W))):  # W[l] is W^{l+1}: layer l+1 above the driven one
        if k == 0:
            current = (z_pos @ W[l].T + b[l]) - (z_neg @ W[l].T + b[l])
        else:
            current = x @ W[l].T + b[l]
        v, x = _lif(config.neuron, state.v[k], state.s[k], current)
        vs.append(v)
        ss.append(x)
    new_state = SleepState(layer=m, v=tuple(vs), s=tuple(ss), noise_trace=h,
                           output_trace=state.output_trace + x)
    return new_state, {"s": tuple(ss)}


def sleep_layer(config, weights, layer, z_pos, z_neg, *, observe=None):
    """Sleep of hidden layer ``layer`` (1-based) on noise trains (S, batch, n_m); returns the
    final :class:`SleepState` (its ``noise_trace`` h and ``output_trace`` o)."""
    z_pos, z_neg = np.asarray(z_pos, dtype=float), np.asarray(z_neg, dtype=float)
    sizes = (None,) + tuple(W.shape[0] for W in weights["W"])
    state = sleep_initial_state(sizes, layer, z_pos.shape[1])
    for t in range(z_pos.shape[0]):
        state, outputs = sleep_step(config, weights, state, (z_pos[t], z_neg[t]))
        if observe is not None:
            observe(t, state, outputs)
    return state


def sleep_update(config, B, noise_trace, output_trace):
    """New B^m (pure): B + η_s (Σ_batch h ⊗ o − mean_batch(o^P) · B)."""
    corr = noise_trace.T @ output_trace
    oja = np.mean(output_trace ** config.oja_power, axis=0) * B
    return B + config.sleep_learning_rate * (corr - oja)


def sleep_noise(rng, batch, n, steps):
    """Paired noise trains of the lab: r ~ U(0, 1) once, then z⁺, z⁻ ~ Bernoulli(r), each
    (steps, batch, n). Returns (r, z_pos, z_neg)."""
    rate = rng.random()
    return (rate, (rng.random((steps, batch, n)) < rate).astype(float),
            (rng.random((steps, batch, n)) < rate).astype(float))


# -- initialisation -------------------------------------------------------------------------

def feedback_from_weights(W):
    """B^l = (W^L W^{L−1} ··· W^{l+1})ᵀ for l = 1..L−1 [CODE: ``BioGradNetworkWithSleep.__init__``]."""
    L = len(W)
    B = [None] * (L - 1)
    product = W[L - 1]
    for l in range(L - 2, -1, -1):
        B[l] = product.T.copy()
        if l > 0:
            product = product @ W[l]
    return B


def init_weights(sizes, rng):
    """PyTorch ``nn.Linear`` defaults, W, b ~ U(−1/√fan_in, 1/√fan_in), and B from W."""
    W, b = [], []
    for fan_in, n in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        W.append(rng.uniform(-bound, bound, (n, fan_in)))
        b.append(rng.uniform(-bound, bound, n))
    return {"W": W, "b": b, "B": feedback_from_weights(W)}


def with_feedback(weights, B):
    """A copy of ``weights`` with feedback list ``B``."""
    return {**weights, "B": list(B)}



# -- event-driven form of the per-synapse trace (issue 15, a prototype) ---------------------

def event_driven_traces(neuron, x, v, s, psi, *, renormalise_below=1e-4):
    """The per-synapse trace (p, e) of one layer [OURS: a rewrite of the per-step recurrence of
    :func:`step`, same values up to rounding], touching a synapse only at its presynaptic
    spikes, at the post neuron's renormalisations and at the readout.

    Per step the factors belong to the post neuron j: with a_t = d · k_t,
    k_t = 1 − s_t − v_t ψ_t, the neuron keeps P = Π a (since its reference step) and
    H = Σ d ψ_t P_{t−1}; a synapse keeps c = p / P and ê = e − c · H, so between its
    presynaptic spikes p = c · P and e = ê + c · H without being touched. A presynaptic spike
    at step t adds x = 1 to d · p: c += Δc = k_t / P_t and ê += ψ_t − Δc · H_t. When |P| falls below
    ``renormalise_below`` (or to 0, at a spike without ψ) the neuron rebases all its synapses
    (p, e written out, P = 1, H = 0), which bounds the cancellation in ê + c · H to
    ~ 1e-16 / ``renormalise_below``.

    ``x`` (T, batch, n_pre) presynaptic spikes; ``v``, ``s``, ``psi`` (T, batch, n_post) of the
    post layer. Returns (p, e, touches): the traces after the last step (batch, n_post, n_pre)
    and the number of synapse touches (presynaptic spikes × n_post + rebases × n_pre)."""
    d = neuron.vdecay
    x, v, s, psi = (np.asarray(a, dtype=float) for a in (x, v, s, psi))
    T, batch, n_pre = x.shape
    n_post = v.shape[2]
    P = np.ones((batch, n_post))
    H = np.zeros((batch, n_post))
    c = np.zeros((batch, n_post, n_pre))
    e_hat = np.zeros((batch, n_post, n_pre))
    touches = 0
    for t in range(T):
        k = 1.0 - s[t] - v[t] * psi[t]
        H = H + d * psi[t] * P
        P = P * d * k
        rebase = np.abs(P) < renormalise_below
        if rebase.any():  # the post neuron's event: write every synapse of it out
            bi, ji = np.nonzero(rebase)
            e_hat[bi, ji] = e_hat[bi, ji] + c[bi, ji] * H[bi, ji, None]
            c[bi, ji] = c[bi, ji] * P[bi, ji, None]
            P[rebase], H[rebase] = 1.0, 0.0
            touches += len(bi) * n_pre
        bi, ii = np.nonzero(x[t])  # presynaptic events: every synapse of the spiking input
        dc = (k / P)[bi]
        e_hat[bi, :, ii] += psi[t][bi] - dc * H[bi]  # keep e = ê + c·H while c grows
        c[bi, :, ii] += dc
        touches += len(bi) * n_post
    return c * P[:, :, None], e_hat + c * H[:, :, None], touches
