"""Numpy port of EMSTDP's public code, step for step: the reference of ``--profile published``.

Source: zmeidd/EMSTDP, ``EMSTDP_python/EMSTDP_algo.py``, ``Network.Train`` (one mini-batch) and
``Network.Init_Threshold``, in the configuration of the MNIST script ``EMSTDP_main.py``: ``rel =
0`` (error units reset to 0), ``delt = 5`` (the output error integrates every step), ``dr = 1``
(derivative gate, skipped for ``dfa = 2``), ``evt = 0``, ``bias = 0``, ``dropr = 0``, ``clp``
on, ``init = 0``, ``norm = 0``, any ``dfa`` (0 symmetric, 1 fa, 2 dfa). Written by us from
reading that code (nothing is copied); other branches of the code (``rel`` 1/2, other ``delt``,
``evt = 1``, dropout, bias) are not ported.

Notation: T steps t = 0..T-1, ``twin`` = T/2 − 1; s^l[t] the spikes of layer l (s^0 the input),
σ^L[t] the output error spikes, σ^l[t] those of hidden layer l; y the one-hot label; θ^l, ϑ^l,
ε the thresholds (:func:`plausigrad.models.integrate_and_fire.forward_thresholds`,
``error_thresholds``, ``output_epsilon``); κ = ``scale``. Weights are stored (post, pre) as in
plausigrad (the code's ``w_h[l]`` is (pre, post): ours is its transpose). One :func:`step`
``t`` = 1..T-1 does, in the code's order::

    forward, l = 1..L:   U^l += W^l s^{l-1}[t-1];  s^l[t] = 1{U^l >= θ^l};  U^l <- 0 where s^l[t]
    if t > twin:
      output error:      D += y (1 - s^L[t-1]) - (1 - y) s^L[t-1]
                         σ^L[t] = +1 where D >= ε, then -1 where D <= -ε; D <- 0 where σ^L[t] != 0
                         U^L += κ θ^L σ^L[t-1]
      last hidden, L-1:  E^{L-1} += F^{L-1} σ^L[t-1];   σ^{L-1}[t] at |E| >= ϑ, E <- 0 there
                         (F = W^Lᵀ for dfa 0, else the fixed B from the output)
      t > 2 twin:        update of W^L (below)
      l = L-1 .. 2:      σ^l[t] *= g^l (gate, dfa != 2);  U^l += κ θ^l σ^l[t-1]
                         E^{l-1} += F^{l-1} σ^?[t-1]     (dfa 0: W^lᵀ σ^l; dfa 1: B^{l-1} σ^l;
                                                          dfa 2: D^{l-1} σ^L, from the output)
                         σ^{l-1}[t] at |E^{l-1}| >= ϑ^{l-1}, reset to 0;  t > 2 twin: update W^l
      layer 1:           σ^1[t] *= g^1;  U^1 += κ θ^1 σ^1[t-1];  t > 2 twin: update W^1

with the gate g^l = 1{Σ_{t' < twin} s^l[t'] > 0} and the update of W^l, at t = 2 twin + 1::

    n1 = Σ_{t' ∈ [2, twin+2)} s[t'],   n2 = Σ_{t' ∈ [twin+2, T)} s[t']
    g_ji = mean_batch(n1_i^{l-1} (n2_j^l - n1_j^l)) / twin
    m ← 0.9 m + 0.1 g²;   W ← clip(W + η g / √(m + 1e-8), -w_max, w_max)

Note that an error spike of step t enters the soma after the threshold of step t + 1, so it can
first make the neuron fire in step t + 2, and that the error units keep integrating in the
steps the gate closes (only their spikes are gated).

Public API: ``CodeNetwork`` (constants), ``CodeNetwork.from_rule(rule, layer_sizes)``,
``State``, ``initial_state``, ``step``, ``train_batch(net, weights, input_spikes, labels)``.
"""

from dataclasses import dataclass

import numpy as np

from plausigrad.models.integrate_and_fire import error_thresholds, forward_thresholds

__all__ = ["CodeNetwork", "State", "initial_state", "step", "train_batch"]


@dataclass(frozen=True)
class CodeNetwork:
    """Constants of ``Network.Train``: thresholds θ^1..θ^L, ϑ^1..ϑ^{L-1}, ε, κ, the window
    (T, twin), the feedback mode (0/1/2), the gate, η per layer, w_max."""

    thresholds: tuple
    error_thresholds: tuple
    epsilon: float
    scale: float
    steps: int            # T
    feedback: int         # dfa: 0 symmetric, 1 fa, 2 dfa
    gate: bool            # dr (applied only if feedback != 2)
    learning_rates: tuple
    weight_limit: float

    @property
    def twin(self):
        return self.steps // 2 - 1

    @classmethod
    def from_rule(cls, rule, layer_sizes, windows):
        """The constants of an :class:`~plausigrad.rules.emstdp.EMSTDP` rule (published
        profile) on ``layer_sizes`` and ``windows`` (T = the slot's steps)."""
        p = rule.params
        n_layers = len(layer_sizes) - 1
        return cls(tuple(forward_thresholds(layer_sizes, p.neuron)),
                   tuple(error_thresholds(layer_sizes, p.neuron, p.feedback)),
                   float(p.neuron.output_epsilon), float(p.neuron.error_scale),
                   windows.slot_steps, {"symmetric": 0, "fa": 1, "dfa": 2}[p.feedback],
                   bool(p.gated), tuple(p.layer_learning_rates(n_layers)), float(p.weight_limit))


@dataclass(frozen=True)
class State:
    """Per layer l = 1..L (index l - 1): ``U`` somata, ``spikes`` s^l[t-1], ``E`` error units
    (the output's is D), ``sigma`` σ^l[t-1]; ``history`` the spikes so far, lists of (bs, n)
    arrays: the input's s^0[0..t-1], then every layer's s^l[0..t]."""

    U: tuple
    spikes: tuple
    E: tuple
    sigma: tuple
    history: tuple


def initial_state(sizes, batch):
    """Everything 0 at t = 0 (``Train``'s arrays start at zero; s^l[0] = 0 for l >= 1)."""
    zeros = tuple(np.zeros((batch, n)) for n in sizes[1:])
    history = ([],) + tuple([z] for z in zeros)
    return State(U=zeros, spikes=zeros, E=zeros, sigma=zeros, history=history)


def _error_spikes(E, threshold):
    """rel = 0: σ = +1 where E >= ϑ, then -1 where E <= -ϑ; E <- 0 where σ != 0."""
    sigma = np.where(E >= threshold, 1.0, 0.0)
    E = np.where(E >= threshold, 0.0, E)
    sigma = np.where(E <= -threshold, -1.0, sigma)
    E = np.where(E <= -threshold, 0.0, E)
    return E, sigma


def _count(history, start, stop):
    return np.sum(history[start:stop], axis=0)


def _update(net, weights, layer, history):
    """The update of W^layer at t = 2 twin + 1 (see the module docstring); returns (W, m)."""
    twin = net.twin
    pre, post = history[layer - 1], history[layer]
    n1_pre = _count(pre, 2, twin + 2)
    n1, n2 = _count(post, 2, twin + 2), _count(post, twin + 2, net.steps)
    g = (n2 - n1).T @ n1_pre / (n1_pre.shape[0] * twin)
    m = 0.9 * weights[f"rms{layer}"] + 0.1 * g ** 2
    w = weights[f"W{layer}"] + g * net.learning_rates[layer - 1] / np.sqrt(m + 1e-8)
    return np.clip(w, -net.weight_limit, net.weight_limit), m


def _feedback(net, weights, layer, n_layers):
    """(matrix (n_layer, n_sender), sender index) carrying errors into hidden ``layer``."""
    if net.feedback == 0:
        return weights[f"W{layer + 1}"].T, layer + 1
    if net.feedback == 1 or layer == n_layers - 1:
        return weights[f"B{layer}"], layer + 1
    return weights[f"D{layer}"], n_layers


def step(net, weights, state, t, input_prev, labels):
    """Step ``t`` (1..T-1) on the input spikes s^0[t-1] ``input_prev`` (bs, n_0); pure.

    ``weights``: W{l} (post, pre), rms{l}, and B{l}/D{l} for fa/dfa; ``labels`` (bs,).
    Returns ``(state, weights, sigma)`` with ``sigma`` the error spikes σ^1..σ^L of step t.
    """
    n_layers = len(state.U)
    twin, last = net.twin, n_layers - 1
    weights = dict(weights)
    U, spikes = list(state.U), []
    previous = (input_prev,) + state.spikes
    for l in range(n_layers):
        u = U[l] + previous[l] @ weights[f"W{l + 1}"].T
        s = (u >= net.thresholds[l]).astype(np.float64)
        U[l] = np.where(s > 0, 0.0, u)
        spikes.append(s)
    history = ((state.history[0] + [input_prev],)
               + tuple(h + [s] for h, s in zip(state.history[1:], spikes)))
    E, sigma = list(state.E), [np.zeros_like(u) for u in U]
    if t > twin:
        y = np.eye(U[last].shape[1])[labels]
        s_out = state.spikes[last]
        E[last] = E[last] + y * (1.0 - s_out) - (1.0 - y) * s_out
        E[last], sigma[last] = _error_spikes(E[last], net.epsilon)
        U[last] = U[last] + net.scale * net.thresholds[last] * state.sigma[last]
        for l in range(last - 1, -1, -1):   # hidden layers, top down (0-based index l)
            matrix, sender = _feedback(net, weights, l + 1, n_layers)
            E[l] = E[l] + state.sigma[sender - 1] @ matrix.T
            E[l], sigma[l] = _error_spikes(E[l], net.error_thresholds[l])
            if net.gate and net.feedback != 2:
                sigma[l] = sigma[l] * (_count(history[l + 1], 0, twin) > 0)
            U[l] = U[l] + net.scale * net.thresholds[l] * state.sigma[l]
        if t > 2 * twin:
            for l in range(n_layers, 0, -1):
                weights[f"W{l}"], weights[f"rms{l}"] = _update(net, weights, l, history)
    return (State(U=tuple(U), spikes=tuple(spikes), E=tuple(E), sigma=tuple(sigma),
                  history=history), weights, sigma)


def train_batch(net, weights, input_spikes, labels):
    """``Network.Train`` on one mini-batch: ``input_spikes`` (T, bs, n_0) of 0/1, ``labels``
    (bs,). Returns ``(weights, spikes, sigma)``: the updated state dict, the spikes of every
    layer (input first) as (T, bs, n_l) arrays and the error spikes of layers 1..L, (T, bs, n_l)
    (σ[0] = 0)."""
    input_spikes = np.asarray(input_spikes, dtype=np.float64)
    steps, batch = input_spikes.shape[:2]
    if steps != net.steps:
        raise ValueError(f"input has {steps} steps, the network {net.steps}")
    sizes = [input_spikes.shape[2]] + [weights[f"W{l}"].shape[0]
                                       for l in range(1, len(net.thresholds) + 1)]
    state = initial_state(sizes, batch)
    sigmas = [[np.zeros((batch, n))] for n in sizes[1:]]
    for t in range(1, steps):
        state, weights, sigma = step(net, weights, state, t, input_spikes[t - 1],
                                     np.asarray(labels, dtype=int))
        for record, s in zip(sigmas, sigma):
            record.append(s)
    spikes = [np.stack(h) for h in state.history]
    spikes[0] = input_spikes  # the code's input array itself (s^0[T-1] is drawn, never used)
    return weights, spikes, [np.stack(s) for s in sigmas]
