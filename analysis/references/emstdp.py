"""Numpy reference of EMSTDP: the phase-1 IF network as a pure step, and the mini-batch update.

Forward (phase 1): the non-leaky integrate-and-fire network of
:mod:`plausigrad.models.integrate_and_fire`, with the same one-step latency per layer as Brian2's
synapses (a spike of step t reaches the next layer's soma in step t + 1) and the model's reset.
Everything is dimensionless: the soma ``v`` is in the units of the weights, the thresholds θ^l
are :func:`~plausigrad.models.integrate_and_fire.forward_thresholds` of the layer sizes, time is
counted in steps (1 step = 1 ms of Brian2's clock). One :func:`step` ``t``, for every layer
l = 1..L at once::

    v^l[t] = v^l[t-1] + W^l s^{l-1}[t-1]      (s[-1] = 0, v = 0 at the start of the slot)
    s^l[t] = 1{v^l[t] >= θ^l}
    v^l[t] <- 0                (forward_reset "zero",     where s^l[t] = 1)
    v^l[t] <- v^l[t] - θ^l     (forward_reset "subtract", where s^l[t] = 1)
    n1^l  += s^l[t]            (phase-1 counts; n1^0 counts the input spikes)

Update (:func:`update`, the mini-batch RMS rule of :mod:`plausigrad.rules.emstdp`, applied in
slot order, one mini-batch of ``batch_size`` slots at a time; the last batch may be partial and
is averaged over its own B slots)::

    g_ji = (1/B) Σ_b n1_i^{l-1} (n2_j^l − n1_j^l) / T_1
    m_ji ← ρ m_ji + (1 − ρ) g_ji²                          (``rms{l}``, starts at 1)
    W_ji ← clip(W_ji + η_l g_ji / √(m_ji + ε_m), −w_max, +w_max)

n2 are the phase-2 counts (the error spikes of phase 2 carry the label into them), which this
reference does not simulate: the update reads them, with n1, from the recorded spikes (e.g.
Brian2's SpikeMonitor). The parameters are the rule's own
:class:`~plausigrad.rules.emstdp.EMSTDPParameters` (η, B, ρ, ε_m, w_max).

Public API
----------
``IFNetwork``, ``IFNetwork.from_neuron(layer_sizes, neuron)``   thresholds and reset (frozen)
``State``, ``initial_state(weights, n_samples)``, ``step(params, weights, state, spikes_t)``
``forward(params, weights, input_spikes)``       phase-1 counts per layer
``if_forward(weights, thresholds, input_spikes, forward_reset)``  the same, plain arguments
``update_batch(params, weights, counts, T_1)``, ``update(params, weights, counts, T_1)``
"""

from dataclasses import dataclass

import numpy as np

from plausigrad.analysis.references.common import run
from plausigrad.models.errors import require_choice
from plausigrad.models.integrate_and_fire import FORWARD_RESETS, forward_thresholds

__all__ = ["IFNetwork", "State", "initial_state", "step", "forward", "if_forward",
           "update_batch", "update"]


@dataclass(frozen=True)
class IFNetwork:
    """Constants of the phase-1 network: θ^l for l = 1..L and the soma's reset after a spike."""

    thresholds: tuple
    forward_reset: str = "zero"

    def __post_init__(self):
        require_choice("forward reset", self.forward_reset, FORWARD_RESETS)
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))

    @classmethod
    def from_neuron(cls, layer_sizes, neuron):
        """The network of a rule's :class:`IntegrateAndFireParameters` on ``layer_sizes``."""
        return cls(tuple(forward_thresholds(layer_sizes, neuron)), neuron.forward_reset)


@dataclass(frozen=True)
class State:
    """Tuples indexed by layer 0..L: ``v`` soma (None for the input), ``last`` the spikes of the
    previous step (what the synapses deliver now), ``count`` the phase-1 counts n1; (P, n_l)."""

    v: tuple
    last: tuple
    count: tuple


def initial_state(weights, n_samples):
    """Rest at the start of a slot: v = 0, no spikes yet, counts 0. ``weights``: [W^1 .. W^L]."""
    sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    zeros = tuple(np.zeros((n_samples, n)) for n in sizes)
    return State(v=(None,) + zeros[1:], last=zeros, count=zeros)


def step(params, weights, state, spikes_t):
    """One step on the input spikes ``spikes_t`` (P, n_0) of this step; pure. Returns
    ``(new_state, spikes)`` with ``spikes`` the tuple s^0[t] .. s^L[t]."""
    now = [np.asarray(spikes_t, dtype=np.float64)]
    v = [None]
    for l in range(1, len(weights) + 1):
        theta = params.thresholds[l - 1]
        potential = state.v[l] + state.last[l - 1] @ weights[l - 1].T
        spikes = (potential >= theta).astype(np.float64)
        if params.forward_reset == "subtract":
            potential = potential - spikes * theta
        else:
            potential = potential * (1.0 - spikes)
        v.append(potential)
        now.append(spikes)
    now = tuple(now)
    return State(v=tuple(v), last=now,
                 count=tuple(c + s for c, s in zip(state.count, now))), now


def forward(params, weights, input_spikes):
    """Phase-1 spike counts per layer on ``input_spikes`` (T, P, n_0): :func:`step` over T steps.

    Returns a list ``counts`` with ``counts[0]`` the input counts and ``counts[l]`` (P, n_l).
    """
    state = run(step, params, weights, initial_state(weights, input_spikes.shape[1]),
                input_spikes)
    return list(state.count)


def if_forward(weights, thresholds, input_spikes, forward_reset="zero"):
    """:func:`forward` with ``thresholds`` θ^1..θ^L and ``forward_reset`` (``zero``: v <- 0
    after a spike, ``subtract``: v <- v - θ) given directly."""
    return forward(IFNetwork(tuple(thresholds), forward_reset), weights, input_spikes)


def update_batch(params, weights, counts, forward_steps):
    """The update of one mini-batch; pure.

    ``params``: :class:`~plausigrad.rules.emstdp.EMSTDPParameters`; ``weights``: the rule's
    state dict (``W{l}``, ``rms{l}``; other entries are passed through); ``counts[l]`` =
    ``(n1, n2)`` of layer l for the batch's slots, each (B, n_l) (``counts[0]``: the input's);
    ``forward_steps``: T_1. Returns the new state dict.
    """
    n_layers = len(counts) - 1
    rates = params.layer_learning_rates(n_layers)
    new = dict(weights)
    for l in range(1, n_layers + 1):
        pre1 = counts[l - 1][0]
        post1, post2 = counts[l][0], counts[l][1]
        g = (post2 - post1).T @ pre1 / (pre1.shape[0] * forward_steps)
        m = params.rms_decay * weights[f"rms{l}"] + (1 - params.rms_decay) * g ** 2
        new[f"rms{l}"] = m
        change = rates[l - 1] * g / np.sqrt(m + params.rms_epsilon)
        new[f"W{l}"] = np.clip(weights[f"W{l}"] + change, -params.weight_limit, params.weight_limit)
    return new


def update(params, weights, counts, forward_steps):
    """The spec's update (ALGORITHMS.md §3.5) on per-slot counts, one :func:`update_batch` per
    mini-batch of ``params.batch_size`` slots, in slot order; ``counts[l] = (n1, n2)`` of every
    slot, each (n_slots, n_l). Returns the new state dict (``weights`` is not changed)."""
    n_slots = counts[0][0].shape[0]
    for start in range(0, n_slots, params.batch_size):
        batch = slice(start, min(start + params.batch_size, n_slots))
        batch_counts = [tuple(c[batch] for c in layer) for layer in counts]
        weights = update_batch(params, weights, batch_counts, forward_steps)
    return weights
