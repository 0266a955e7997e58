"""Numpy reference of SSNN-BP's per-step sampling at fixed weights, and its mini-batch update.

The same per-step algorithm as :mod:`plausigrad.rules.ssnnbp` on the composite neurons of
:mod:`plausigrad.models.composite_neuron`, vectorised over the samples, without Brian2's
pipeline latency (forward and backward sweeps complete within one step; it is the same
stochastic process). All quantities are dimensionless; spikes are 0/1 per step, rates are
spikes/step. One :func:`step`, layers l = 1..L (``W^l`` (n_l, n_{l-1}), bias ``b^l``)::

    x^0 ~ Bernoulli(r_in · pixels)                       (stochastic input)
    z^l = W^l x^{l-1} + b^l,  f'^l = 1{0 < z^l < 1},  x^l ~ Bernoulli(clip(z^l, 0, 1))   l < L
    z^L = W^L x^{L-1} + b^L,  o = onehot(argmax_k z^L_k + G_k),  G ~ Gumbel (exponential race:
                                                          the WTA samples softmax(z^L))
    g^L = o − y                                          (g⁺ − g⁻ of the output)
    ν^{l} = (W^{l+1})ᵀ g^{l+1},  p = α ν^l f'^l,  g^l = sign(p) · Bernoulli(|p|)     l < L
    C^l += (g^l)ᵀ x^{l-1}                                (coincidences of every synapse)

The random draws are made in this order from one explicit ``np.random.Generator`` (input,
hidden layers bottom-up, the race, hidden gradients top-down), so a seed fixes the stream.

Window (:func:`window`, T steps): ``rate[l]`` = spikes / T (output: the mean softmax),
``derivative[l]`` = mean f' (output: 1), ``nu[l]`` = Σ_t ν, ``coincidences[l-1]`` = C^l,
``gradients[l-1]`` = Σ_{samples, t} g^l.

Update (:func:`update`; the rule's mini-batch form with B = P, the samples of the window, as
the alignment analysis uses it; the rule itself is online)::

    W^l ← W^l − Δw_min^l · C^l / P,      b^l ← b^l − Δw_b · Σ g^l / P

The parameters are the rule's own :class:`~plausigrad.rules.ssnnbp.SSNNBPParameters`
(α = ``gradient_scale``, r_in = ``input_rate``, Δw_min = ``learning_rate``,
Δw_b = ``bias_learning_rate``).

:func:`expected_forward` is the deterministic network the sampling estimates: the expected-rate
ANN a^l = clip(W^l a^{l-1} + b^l, 0, 1), softmax output.

Public API
----------
``State``, ``StepInput``, ``initial_state(weights, n_samples)``
``sweep(weights, probability, rng)``               forward sweep of one step
``forward_step`` / ``forward(params, weights, pixels, steps, rng)``   forward only (wins)
``step(params, weights, state, inputs_t, rng=...)``  forward + backward sweep of one step
``window(params, weights, pixels, labels, steps, rng)``, ``sample_updates(...)`` (plain arguments)
``update(params, weights, window_result)``, ``expected_forward(weights, input_rates)``, ``softmax``
"""

from dataclasses import dataclass, replace
from itertools import repeat
from typing import NamedTuple

import numpy as np

from plausigrad.analysis.references.common import bernoulli, run
from plausigrad.rules.losses import one_hot
from plausigrad.rules.ssnnbp import SSNNBPParameters

__all__ = ["State", "StepInput", "Sweep", "initial_state", "sweep", "forward_step", "forward",
           "step", "window", "sample_updates", "update", "expected_forward", "softmax"]


def softmax(z):
    """Softmax over the last axis (shifted by the maximum)."""
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class StepInput(NamedTuple):
    """What one step reads from outside: the input's spike probability r_in · pixels (P, n_0)
    and the one-hot target y (P, n_L)."""

    probability: np.ndarray
    target: np.ndarray


class Sweep(NamedTuple):
    """One forward sweep: spikes ``x[0..L]`` (``x[L]`` the WTA winner o), f' of the hidden
    layers (``fprime[l]``, None at 0 and L) and the output drive ``z`` (P, n_L)."""

    x: tuple
    fprime: tuple
    z: np.ndarray


@dataclass(frozen=True)
class State:
    """Sums over the window so far. Tuples indexed by layer 0..L, each (P, n_l): ``count``
    (spikes; output: wins), ``fpsum`` (Σ f'), ``nusum`` (Σ ν) (zeros where undefined);
    ``softmax_sum`` (P, n_L); per weight layer: ``coincidences`` (n_l, n_{l-1}),
    ``gradients`` (n_l,) = Σ g."""

    count: tuple
    fpsum: tuple
    nusum: tuple
    softmax_sum: np.ndarray
    coincidences: tuple
    gradients: tuple


def initial_state(weights, n_samples):
    """All sums zero. ``weights``: ``{"W": [...], "b": [...]}``."""
    Ws = weights["W"]
    sizes = [Ws[0].shape[1]] + [w.shape[0] for w in Ws]
    zeros = tuple(np.zeros((n_samples, n)) for n in sizes)
    return State(count=zeros, fpsum=zeros, nusum=zeros,
                 softmax_sum=np.zeros((n_samples, sizes[-1])),
                 coincidences=tuple(np.zeros_like(w, dtype=np.float64) for w in Ws),
                 gradients=tuple(np.zeros(w.shape[0]) for w in Ws))


def sweep(weights, probability, rng):
    """The forward sweep of one step (input draw, hidden draws bottom-up, the race)."""
    Ws, bs = weights["W"], weights["b"]
    x = [bernoulli(probability, rng)]
    fprime = [None]
    for l in range(1, len(Ws)):
        z = x[-1] @ Ws[l - 1].T + bs[l - 1]
        fprime.append(((z > 0) & (z < 1)).astype(np.float64))
        x.append(bernoulli(np.clip(z, 0.0, 1.0), rng))
    z = x[-1] @ Ws[-1].T + bs[-1]
    arrival_key = z - np.log(-np.log(rng.random(z.shape)))  # exponential race (Gumbel-max)
    x.append(np.eye(z.shape[1])[np.argmax(arrival_key, axis=1)])
    fprime.append(None)
    return Sweep(tuple(x), tuple(fprime), z)


def forward_step(params, weights, state, inputs_t, *, rng):
    """One forward-only step (an evaluation slot's); pure but for the draws from ``rng``.
    ``inputs_t``: a :class:`StepInput` (its target is not read). Returns ``(new_state, Sweep)``."""
    s = sweep(weights, inputs_t.probability, rng)
    return replace(state, count=tuple(c + x for c, x in zip(state.count, s.x))), s


def step(params, weights, state, inputs_t, *, rng):
    """One training step: :func:`forward_step`, then the backward sweep of gradient spikes and
    the coincidence counts (module docstring). Returns ``(new_state, outputs)``, ``outputs`` a
    dict with the :class:`Sweep` (``sweep``) and the gradient spikes ``g[1..L]`` (``g``)."""
    Ws = weights["W"]
    n_layers = len(Ws)
    state, s = forward_step(params, weights, state, inputs_t, rng=rng)
    coincidences, gradients = list(state.coincidences), list(state.gradients)
    fpsum, nusum = list(state.fpsum), list(state.nusum)
    g_out = [None] * (n_layers + 1)
    g = s.x[n_layers] - inputs_t.target  # g⁺ − g⁻ of the output: o(1 − y) − y(1 − o)
    for l in range(n_layers, 0, -1):
        g_out[l] = g
        coincidences[l - 1] = coincidences[l - 1] + g.T @ s.x[l - 1]
        gradients[l - 1] = gradients[l - 1] + g.sum(axis=0)
        if l > 1:
            nu = g @ Ws[l - 1]
            nusum[l - 1] = nusum[l - 1] + nu
            fpsum[l - 1] = fpsum[l - 1] + s.fprime[l - 1]
            p = params.gradient_scale * nu * s.fprime[l - 1]
            g = np.sign(p) * bernoulli(np.abs(p), rng)
    new_state = replace(state, fpsum=tuple(fpsum), nusum=tuple(nusum),
                        softmax_sum=state.softmax_sum + softmax(s.z),
                        coincidences=tuple(coincidences), gradients=tuple(gradients))
    return new_state, {"sweep": s, "g": tuple(g_out)}


def _inputs(params, pixels, target, steps):
    probability = params.input_rate * np.asarray(pixels, dtype=np.float64)
    return repeat(StepInput(probability, target), steps)


def forward(params, weights, pixels, steps, rng):
    """``steps`` forward-only steps on ``pixels`` (P, n_0) in [0, 1] (the input is drawn in
    every step, as the Brian2 input group does). Returns ``count`` (per layer, spikes; the
    output's: WTA wins) and ``rate`` = count / steps."""
    n_samples = np.asarray(pixels).shape[0]
    state = run(forward_step, params, weights, initial_state(weights, n_samples),
                _inputs(params, pixels, None, steps), rng=rng)
    return {"count": list(state.count), "rate": [c / steps for c in state.count]}


def window(params, weights, pixels, labels, steps, rng):
    """Run the SSNN-BP sampling for ``steps`` steps on every sample with fixed weights.

    ``weights``: ``{"W": [...], "b": [...]}``; ``pixels`` (P, n_0) in [0, 1]. Returns a dict
    with ``coincidences[l-1]`` = Σ_{samples, steps} (g⁺ − g⁻)_j x_i (so ΔW^l = −Δw_min · that / P
    for one mini-batch of P samples; :func:`update`), ``gradients[l-1]`` = Σ (g⁺ − g⁻)_j, and
    the recorded quantities of the alignment analysis: ``rate[l]`` (P, n_l) spikes / T,
    ``derivative[l]`` mean f', the output's mean softmax as ``rate[L]``, and ``nu[l]`` = Σ_t ν
    (the local error of hidden layer l).
    """
    labels = np.asarray(labels, dtype=int)
    n_layers = len(weights["W"])
    target = one_hot(labels, weights["W"][-1].shape[0])
    state = run(step, params, weights, initial_state(weights, len(labels)),
                _inputs(params, pixels, target, steps), rng=rng)
    rates = [c / steps for c in state.count[:n_layers]] + [state.softmax_sum / steps]
    derivative = ([None] + [f / steps for f in state.fpsum[1:n_layers]]
                  + [np.ones_like(rates[-1])])
    return {"coincidences": list(state.coincidences), "gradients": list(state.gradients),
            "rate": rates, "derivative": derivative, "nu": [None] + list(state.nusum[1:]),
            "n_samples": len(labels)}


def sample_updates(weights, biases, pixels, labels, steps, *, gradient_scale=1.0,
                   input_rate=1.0, rng=None):
    """:func:`window` with plain arguments: ``weights[l-1]`` = W^l, ``biases[l-1]`` = b^l, α and
    r_in; ``rng`` None: a fresh, unseeded generator."""
    rng = np.random.default_rng() if rng is None else rng
    params = SSNNBPParameters(gradient_scale=gradient_scale, input_rate=input_rate)
    return window(params, {"W": list(weights), "b": list(biases)}, pixels, labels, steps, rng)


def update(params, weights, window_result):
    """The weights after the mini-batch update of one :func:`window` (B = its P samples); pure.
    The labels entered the window through the output's gradient g^L = o − y."""
    n_samples = window_result["n_samples"]
    rates = params.layer_learning_rates(len(weights["W"]))
    return {"W": [w - rate * c / n_samples for w, rate, c in
                  zip(weights["W"], rates, window_result["coincidences"])],
            "b": [b - params.bias_learning_rate * g / n_samples for b, g in
                  zip(weights["b"], window_result["gradients"])]}


def expected_forward(weights, input_rates):
    """The expected-rate ANN on the input rates (P, n_0): a^l = clip(W^l a^{l-1} + b^l, 0, 1),
    derivative 1{0 < z < 1}, softmax output (derivative 1). Returns ``rate`` and
    ``derivative`` per layer (layer 0: the input rates, derivative None)."""
    n_layers = len(weights["W"])
    a = [input_rates]
    derivative = [None]
    for l in range(1, n_layers + 1):
        z = a[-1] @ np.asarray(weights["W"][l - 1]).T + np.asarray(weights["b"][l - 1])
        if l < n_layers:
            derivative.append(((z > 0) & (z < 1)).astype(np.float64))
            a.append(np.clip(z, 0.0, 1.0))
        else:
            a.append(softmax(z))
            derivative.append(np.ones_like(z))
    return {"rate": a, "derivative": derivative}
