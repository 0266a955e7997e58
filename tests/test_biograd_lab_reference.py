"""The numpy port of the BioGrad lab code (analysis/references/biograd_lab.py) against closed
forms and hand computations."""

import numpy as np
import pytest

from plausigrad.analysis.references import biograd_lab as lab
from plausigrad.models.lif_neuron import LIFNeuronParameters
from plausigrad.protocols.angles import angle_degrees

NEURON = LIFNeuronParameters()  # (0.3, 0.3, 0.3, 1.0), the lab script's values


def _weights(W, b, B=()):
    return {"W": [np.array(w, dtype=float) for w in W], "b": [np.array(x, dtype=float) for x in b],
            "B": [np.array(x, dtype=float) for x in B]}


def test_step_is_pure():
    rng = np.random.default_rng(0)
    sizes = (6, 5, 4, 3)
    weights = lab.init_weights(sizes, rng)
    config = lab.Config(soft_error_step=0)
    state = lab.initial_state(sizes, 2)
    x = (rng.random((2, 6)) < 0.5).astype(float)
    y = np.eye(3)[[0, 2]]
    for _ in range(3):  # a state with non-zero traces
        state, _ = lab.step(config, weights, state, (x, y))
    frozen = {k: [a.copy() for a in getattr(state, k)] for k in ("v", "trace_pre", "trace_dw")}
    w_copy = [W.copy() for W in weights["W"]] + [B.copy() for B in weights["B"]]
    first, _ = lab.step(config, weights, state, (x, y))
    second, _ = lab.step(config, weights, state, (x, y))
    for k, arrays in frozen.items():
        for a, b in zip(arrays, getattr(state, k)):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(w_copy, weights["W"] + weights["B"]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(first.trace_dw, second.trace_dw):
        np.testing.assert_array_equal(a, b)
    new = lab.update(config, weights, first)
    assert all(np.any(a != b) for a, b in zip(new["W"], weights["W"]))
    for a, b in zip(w_copy, weights["W"] + weights["B"]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("current", [0.22, 0.25, 0.35, 0.5, 1.0])
def test_constant_current_fires_at_the_rate_of_the_lif_map(current):
    """v = d·v·(1−s) + I: from rest v_k = I (1 − d^k) / (1 − d); the neuron fires at the first k
    with v_k > V_th and then starts from rest again (the (1 − s) factor), so its period is that k
    and never fires if I / (1 − d) <= V_th."""
    d, vth = NEURON.vdecay, NEURON.vth
    T = 30
    weights = _weights([[[0.0]], [[0.0]]], [[current], [0.0]], [[[0.0]]])
    spikes = np.zeros((T, 1, 1))
    counts = []
    lab.window(lab.Config(soft_error_step=T), weights, spikes, np.eye(1)[[0]],
               observe=lambda t, s, o: counts.append(o["s"][0][0, 0]))
    if current / (1 - d) <= vth:
        expected = 0
    else:
        period = int(np.ceil(np.log(1 - vth * (1 - d) / current) / np.log(d)))
        if np.isclose(current * (1 - d ** period) / (1 - d), vth):
            period += 1  # strict threshold
        expected = T // period
        # spikes exactly every ``period`` steps
        np.testing.assert_array_equal(np.flatnonzero(counts), np.arange(period - 1, T, period))
    assert sum(counts) == expected


def test_reset_aware_trace_against_hand_computation():
    """One synapse W = 0.2, inputs 1, 1, 0, 1 (never fires): the steps written out by hand."""
    weights = _weights([[[0.2]]], [[0.0]])
    spikes = np.array([1, 1, 0, 1], dtype=float).reshape(4, 1, 1)
    rec = []
    lab.window(lab.Config(soft_error_step=99), weights, spikes, np.ones((1, 1)),
               observe=lambda t, s, o: rec.append((o["v"][0][0, 0], s.trace_pre[0][0, 0, 0],
                                                   s.trace_dw[0][0, 0, 0])))
    # t0: v = 0.2, ψ = 1, p = 1, e = 1, p <- p (1 − 0 − 0.2)
    # t1: v = 0.3·0.2 + 0.2 = 0.26, p = 0.3·0.8 + 1 = 1.24, e = 2.24, p <- 1.24 · 0.74
    # t2: v = 0.078, p = 0.3 · 0.9176 = 0.27528, e = 2.51528, p <- 0.27528 · 0.922
    # t3: v = 0.2234, p = 0.3 · 0.25380816 + 1, e = 2.51528 + p
    p3 = 0.3 * 0.25380816 + 1
    expected = [(0.2, 0.8, 1.0), (0.26, 0.9176, 2.24), (0.078, 0.25380816, 2.51528),
                (0.2234, p3 * (1 - 0.2234), 2.51528 + p3)]
    np.testing.assert_allclose(rec, expected, rtol=1e-12)


def test_reset_aware_trace_through_a_spike():
    """W = 0.4, input every step: the neuron fires every step (v = 0.4 > 0.3, then v restarts
    from 0.4); the multiplier is 1 − 1 − 0.4 = −0.4, so p alternates around 1 / 1.12."""
    weights = _weights([[[0.4]]], [[0.0]])
    spikes = np.ones((3, 1, 1))
    rec = []
    lab.window(lab.Config(soft_error_step=99), weights, spikes, np.ones((1, 1)),
               observe=lambda t, s, o: rec.append((o["s"][0][0, 0], s.trace_pre[0][0, 0, 0],
                                                   s.trace_dw[0][0, 0, 0])))
    # t0: p = 1, e = 1, p <- −0.4;  t1: p = 0.3·(−0.4) + 1 = 0.88, e = 1.88, p <- −0.352
    # t2: p = 0.3·(−0.352) + 1 = 0.8944, e = 2.7744, p <- −0.35776
    np.testing.assert_allclose(rec, [(1, -0.4, 1.0), (1, -0.352, 1.88), (1, -0.35776, 2.7744)],
                               rtol=1e-12)


def test_bias_trace_against_hand_computation():
    """A bias of 0.1 alone (v = 0.1, 0.13, 0.139: never fires); q = d q + 1 every step."""
    weights = _weights([[[0.0]]], [[0.1]])
    rec = []
    lab.window(lab.Config(soft_error_step=99), weights, np.zeros((2, 1, 1)), np.ones((1, 1)),
               observe=lambda t, s, o: rec.append((s.trace_bias[0][0, 0], s.trace_db[0][0, 0])))
    # t0: q = 1, f = 1, q <- 0.9;  t1: v = 0.13, q = 1.27, f = 2.27, q <- 1.27 · 0.87
    np.testing.assert_allclose(rec, [(0.9, 1.0), (1.27 * 0.87, 2.27)], rtol=1e-12)


def test_error_neurons_of_a_silent_output_follow_the_soft_reset_closed_form():
    """Silent output (W = b = 0): softmax = 1/K, so δ = 1/K − y is constant; a soft-reset IF unit
    with constant input c > 0 and threshold 1 (strict) has fired ceil(c·n) − 1 times after n
    steps. Output dendrite u^L = N⁺ − N⁻; hidden dendrite u^l = B (N⁺ − N⁻)."""
    K, T, soft = 4, 25, 5
    sizes = (3, 2, K)
    rng = np.random.default_rng(1)
    B = rng.normal(0, 1, (2, K))
    weights = _weights([np.zeros((2, 3)), np.zeros((K, 2))], [np.zeros(2), np.zeros(K)], [B])
    state = lab.window(lab.Config(soft_error_step=soft), weights, np.ones((T, 1, 3)),
                       np.eye(K)[[1]])
    n = T - soft
    assert state.feedback_steps == n
    up = np.ceil(0.25 * n) - 1       # δ = +1/4 for the three unlabelled units
    down = np.ceil(0.75 * n) - 1     # δ = −3/4 for the labelled one
    net = np.array([up, -down, up, up])
    np.testing.assert_array_equal(state.dendrite[1][0], net)
    np.testing.assert_allclose(state.dendrite[0][0], B @ net, rtol=1e-12)
    assert sizes  # documents the network


def test_update_against_hand_computation():
    """Batch of two, one weight: ΔW = −η · ((u₁/K) e₁ + (u₂/K) e₂) / 2."""
    sizes = (1, 1)
    state = lab.initial_state(sizes, 2)
    state = lab.State(**{**state.__dict__, "trace_dw": (np.array([[[2.0]], [[3.0]]]),),
                         "trace_db": (np.array([[1.0], [-1.0]]),),
                         "dendrite": (np.array([[4.0], [-2.0]]),), "feedback_steps": 4})
    weights = _weights([[[0.5]]], [[0.1]])
    new = lab.update(lab.Config(learning_rate=0.1), weights, state)
    # errors u/K = 1, −0.5; mean(e·err) = (2 − 1.5)/2 = 0.25; bias (1 + 0.5)/2 = 0.75
    np.testing.assert_allclose(new["W"][0], [[0.5 - 0.1 * 0.25]], rtol=1e-12)
    np.testing.assert_allclose(new["b"][0], [0.1 - 0.1 * 0.75], rtol=1e-12)


def test_feedback_starts_as_the_product_of_the_forward_weights():
    rng = np.random.default_rng(2)
    weights = lab.init_weights((7, 6, 5, 4), rng)
    W1, W2, W3 = weights["W"]
    np.testing.assert_allclose(weights["B"][1], W3.T)
    np.testing.assert_allclose(weights["B"][0], (W3 @ W2).T)
    for W, fan_in in zip(weights["W"], (7, 6, 5)):
        assert np.abs(W).max() <= 1 / np.sqrt(fan_in)


def test_sleep_first_layer_above_gets_no_bias_and_the_layers_above_do():
    """Silent noise: the layer right above the driven one sees (W·0 + b) − (W·0 + b) = 0; a
    layer further up integrates its own bias (and fires if it is large enough)."""
    weights = _weights([np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 2))],
                       [np.zeros(2), np.full(2, 5.0), np.full(2, 5.0)],
                       [np.zeros((2, 2)), np.zeros((2, 2))])
    silent = np.zeros((4, 1, 2))
    top = lab.sleep_layer(lab.Config(), weights, 2, silent, silent)
    assert top.output_trace.sum() == 0  # output right above layer 2: bias cancels
    lower = lab.sleep_layer(lab.Config(), weights, 1, silent, silent)
    assert lower.v[0].max() == 0  # layer 2, right above layer 1: nothing
    np.testing.assert_array_equal(lower.output_trace, [[4, 4]])  # two layers up: b = 5 fires
    # every step


def test_sleep_update_against_hand_computation():
    h = np.array([[1.0, -2.0], [0.0, 1.0]])        # batch 2, n_m = 2
    o = np.array([[2.0], [1.0]])                     # n_L = 1
    B = np.array([[0.5], [-1.0]])
    new = lab.sleep_update(lab.Config(sleep_learning_rate=0.1), B, h, o)
    corr = np.array([[2.0], [-3.0]])                  # Σ_n h_n o_n
    oja = (4.0 + 1.0) / 2 * B
    np.testing.assert_allclose(new, B + 0.1 * (corr - oja), rtol=1e-12)


def test_sleep_aligns_the_feedback_of_the_top_hidden_layer():
    """The lab's weight mirror on a random 1-hidden-layer network: B^1 moves toward (W^2)ᵀ."""
    rng = np.random.default_rng(3)
    sizes = (5, 30, 6)
    weights = lab.init_weights(sizes, rng)
    weights["W"][1] = rng.normal(0, 0.5, (6, 30))
    B = rng.normal(0, 0.3, (30, 6))
    before = angle_degrees(B, weights["W"][1].T)
    config = lab.Config(sleep_learning_rate=1e-3)
    for _ in range(60):
        _, z_pos, z_neg = lab.sleep_noise(rng, 16, 30, 20)
        state = lab.sleep_layer(config, lab.with_feedback(weights, [B]), 1, z_pos, z_neg)
        B = lab.sleep_update(config, B, state.noise_trace, state.output_trace)
    after = angle_degrees(B, weights["W"][1].T)
    assert before > 75 and after < 45, (before, after)


def test_event_driven_trace_equals_the_per_step_trace():
    """The event-driven rewrite of the per-synapse eligibility (touch a synapse only at its
    presynaptic spikes, the post neuron's rebases and the readout) gives the per-step p and e
    of :func:`lab.step` to 1e-10, on a window where every layer fires and is near threshold."""
    from plausigrad.analysis.references.biograd_lab import event_driven_traces
    rng = np.random.default_rng(3)
    sizes, T = (30, 20, 10, 5), 60
    weights = lab.init_weights(sizes, rng)
    weights["W"] = [w * 3.0 + 0.05 for w in weights["W"]]
    x = (rng.random((T, 4, sizes[0])) < 0.3).astype(float)
    labels = np.eye(5)[[0, 1, 2, 3]]
    rec = []
    final = lab.window(lab.Config(), weights, x, labels, observe=lambda t, st, o: rec.append(o))
    for l in range(3):
        pre = x if l == 0 else np.array([o["s"][l - 1] for o in rec])
        v, s, psi = (np.array([o[name][l] for o in rec]) for name in ("v", "s", "psi"))
        assert s.sum() > 0 and psi.sum() > 0 and ((s > 0) & (psi == 0)).any()
        p, e, touches = event_driven_traces(lab.Config().neuron, pre, v, s, psi)
        np.testing.assert_allclose(p, final.trace_pre[l], atol=1e-10, rtol=0)
        np.testing.assert_allclose(e, final.trace_dw[l], atol=1e-10, rtol=0)
        assert np.abs(final.trace_dw[l]).max() > 0.1
        assert 0 < touches
