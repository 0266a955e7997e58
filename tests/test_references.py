"""The numpy references (plausigrad.analysis.references): pure steps, windows against hand loops
and closed forms, the update formulas. Fast (numpy only, no Brian2 network is built)."""

import dataclasses

import numpy as np
import pytest

from plausigrad.analysis.references import bernoulli, layer_lists, predict
from plausigrad.analysis.references import biograd, emstdp, ssnnbp
from plausigrad.models.compartment_neuron import CompartmentNeuronParameters
from plausigrad.rules.emstdp import EMSTDPParameters
from plausigrad.rules.ssnnbp import SSNNBPParameters

NEURON = CompartmentNeuronParameters()


def snapshot(value):
    """A deep copy of the arrays in a (nested) state / weights / inputs structure."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: snapshot(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [snapshot(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def assert_same(a, b, where="value"):
    """Exact equality of two :func:`snapshot` s (same structure, bit-equal arrays)."""
    a, b = snapshot(a), snapshot(b)
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where


def check_pure(step, params, weights, state, inputs_t, seed=None):
    """``step`` leaves its arguments unchanged and gives the same result twice (same seed)."""
    before = snapshot((params, weights, state, inputs_t))
    extra = {} if seed is None else {"rng": np.random.default_rng(seed)}
    first = step(params, weights, state, inputs_t, **extra)
    assert_same(snapshot((params, weights, state, inputs_t)), before, "arguments after a step")
    extra = {} if seed is None else {"rng": np.random.default_rng(seed)}
    second = step(params, weights, state, inputs_t, **extra)
    assert_same(first, second, "two calls")
    return first


# -- shared ---------------------------------------------------------------------------------------

def test_predict_takes_the_lowest_index_of_a_tie():
    assert list(predict(np.array([[0, 2, 2], [0, 0, 0], [1, 0, 1], [0, 1, 3]]))) == [1, 0, 0, 2]


def test_bernoulli_compares_one_draw_of_uniforms_with_the_probability():
    p = np.array([[0.0, 0.3, 1.0], [0.5, 0.9, 0.2]])
    spikes = bernoulli(p, np.random.default_rng(4), steps=5, uniform_dtype=np.float32,
                       dtype=np.float32)
    u = np.random.default_rng(4).random((5, 2, 3), dtype=np.float32)
    assert spikes.dtype == np.float32 and spikes.shape == (5, 2, 3)
    np.testing.assert_array_equal(spikes, (u < p).astype(np.float32))
    assert spikes[:, 0, 0].sum() == 0 and spikes[:, 0, 2].sum() == 5
    frequency = bernoulli(np.full(20000, 0.3), np.random.default_rng(0)).mean()
    assert frequency == pytest.approx(0.3, abs=0.015)


def test_layer_lists_read_a_rule_state():
    state = {"W1": np.ones((3, 2)), "b1": np.zeros(3), "W2": np.ones((1, 3)), "b2": np.zeros(1),
             "B1": np.ones((3, 1)), "rms1": np.ones((3, 2))}
    lists = layer_lists(state)
    assert [w.shape for w in lists["W"]] == [(3, 2), (1, 3)] and len(lists["b"]) == 2
    assert set(layer_lists(state, biases=False)) == {"W"}


# -- BioGrad --------------------------------------------------------------------------------------

def _biograd_net(rng, sizes=(12, 9, 4), dtype=np.float64):
    return {"W": [rng.normal(0, 0.5, (sizes[l + 1], sizes[l])).astype(dtype)
                  for l in range(len(sizes) - 1)],
            "b": [np.full(n, 0.05, dtype=dtype) for n in sizes[1:]]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_biograd_step_is_pure(dtype):
    rng = np.random.default_rng(0)
    weights = _biograd_net(rng, dtype=dtype)
    spikes = (rng.random((6, 3, 12)) < 0.5).astype(dtype)
    inputs = biograd.step_inputs(weights, spikes)
    state = biograd.initial_state(weights, 3, exact_layers=(1, 2), input_trace=True)
    for t in range(5):  # a state with activity in it
        state, _ = biograd.step(NEURON, weights, state, inputs[t])
    assert state.count[1].sum() > 0 and state.eps[2].any()
    new_state, outputs = check_pure(biograd.step, NEURON, weights, state, inputs[5])
    assert new_state.xsum[1] is not state.xsum[1]
    np.testing.assert_array_equal(outputs["s"][0], spikes[5])


def test_biograd_forward_is_the_closed_form_below_threshold():
    """One input spiking in every step into one neuron (w = 0.05, b = 0): the current arrives one
    step later, c[t] = w (1 − d_c^t)/(1 − d_c), v[t] = Σ_{k≤t} d_v^(t−k) c[k]; v_∞ = 0.4 < V_th,
    so ψ = 1 from the second step on."""
    w, steps = 0.05, 12
    weights = {"W": [np.array([[w]])], "b": [np.zeros(1)]}
    out = biograd.forward(NEURON, weights, np.ones((steps, 1, 1)), record=True)
    d_c, d_v = NEURON.basal_decay, NEURON.membrane_decay
    t = np.arange(steps)
    c = w * (1 - d_c ** t) / (1 - d_c)
    v = np.array([sum(d_v ** (n - k) * c[k] for k in range(n + 1)) for n in t])
    np.testing.assert_allclose(out["rec"][1]["c"][:, 0, 0], c, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["rec"][1]["v"][:, 0, 0], v, rtol=0, atol=1e-12)
    assert out["count"][1][0, 0] == 0 and np.all(out["rec"][1]["psi"][1:] == 1.0)
    xsum = sum((1 - d_c ** n) / (1 - d_c) for n in t)  # xlag[t] = x̂[t−1] = Σ_{k<t} d_c^k
    assert out["xbar"][0][0, 0] == pytest.approx(xsum / steps)
    np.testing.assert_allclose(out["rec"][0]["xhat"][:, 0, 0], (1 - d_c ** (t + 1)) / (1 - d_c))


def test_biograd_update_returns_new_weights_and_leaves_the_old():
    rng = np.random.default_rng(1)
    cfg = biograd.Config(sizes=(12, 9, 4), quantise=False, eta=(0.3, 0.2), eta_b=(0.1, 0.05),
                         dtype="float64")
    weights = _biograd_net(rng)
    before = snapshot(weights)
    fwd = biograd.forward(NEURON, weights, (rng.random((10, 2, 12)) < 0.5).astype(float))
    new = biograd.update(cfg, weights, fwd, np.array([1, 3]))
    assert_same(weights, before)
    upd = biograd.errors_and_updates(cfg, weights, fwd, np.array([1, 3]))
    for l in range(2):
        np.testing.assert_array_equal(new["W"][l], weights["W"][l] + upd["dW"][l])
        np.testing.assert_array_equal(new["b"][l], weights["b"][l] + upd["db"][l])
    assert np.abs(upd["dW"][0]).max() > 0


def test_biograd_train_step_does_not_change_its_weights():
    cfg = biograd.Config(sizes=(20, 10, 3), T_f=8, batch_size=4, sigma=(0.4, 0.5), dtype="float64")
    rng = np.random.default_rng(2)
    weights = biograd.init_weights(cfg, rng)
    before = snapshot(weights)
    new, stats = biograd.train_step(cfg, weights, rng.random((4, 20)), np.arange(4) % 3, rng)
    assert_same(weights, before)
    assert len(stats["loss"]) == 4 and not np.array_equal(new["W"][1], weights["W"][1])


# -- EMSTDP ---------------------------------------------------------------------------------------

def _if_loop(weights, thresholds, input_spikes, reset):
    """The IF equations written out: v += W s_prev (from the second step), spike at v ≥ θ."""
    steps, n_samples, _ = input_spikes.shape
    v = [np.zeros((n_samples, w.shape[0])) for w in weights]
    previous = [np.zeros((n_samples, w.shape[1])) for w in weights]
    counts = [input_spikes.sum(axis=0)] + [np.zeros((n_samples, w.shape[0])) for w in weights]
    for t in range(steps):
        spikes_in = input_spikes[t]
        for l, w in enumerate(weights):
            if t > 0:
                v[l] = v[l] + previous[l] @ w.T
            fired = (v[l] >= thresholds[l]).astype(float)
            v[l] = v[l] - fired * thresholds[l] if reset == "subtract" else v[l] * (1 - fired)
            counts[l + 1] += fired
            previous[l], spikes_in = spikes_in, fired
    return counts


def test_emstdp_step_is_pure():
    rng = np.random.default_rng(3)
    weights = [rng.normal(0, 0.5, (8, 10)), rng.normal(0, 0.5, (4, 8))]
    params = emstdp.IFNetwork((0.7, 0.6), "subtract")
    spikes = (rng.random((5, 3, 10)) < 0.5).astype(float)
    state = emstdp.initial_state(weights, 3)
    for t in range(4):
        state, _ = emstdp.step(params, weights, state, spikes[t])
    assert state.count[1].sum() > 0
    check_pure(emstdp.step, params, weights, state, spikes[4])


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_emstdp_counts_on_a_constant_drive(reset):
    """A white pixel spikes every step, so each hidden soma gains f·θ in each of the T − 1 steps
    after the one-step latency: ⌊(T−1)/⌈1/f⌉⌋ spikes with reset to zero, ⌊(T−1) f⌋ subtracting θ.
    The input counts are T; an output with zero weights stays silent."""
    steps, theta = 12, 0.8
    fractions = np.array([0.37, 0.55, 0.62, 0.95])
    weights = [fractions[:, None] * theta, np.zeros((2, 4))]
    counts = emstdp.if_forward(weights, (theta, 1.0), np.ones((steps, 1, 1)), reset)
    expected = ((steps - 1) // np.ceil(1 / fractions) if reset == "zero"
                else np.floor((steps - 1) * fractions))
    np.testing.assert_array_equal(counts[1][0], expected)
    assert counts[0][0, 0] == steps and counts[2].sum() == 0


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_emstdp_forward_equals_the_written_out_loop(reset):
    rng = np.random.default_rng(4)
    weights = [rng.normal(0, 0.6, (9, 14)), rng.normal(0, 0.6, (6, 9)), rng.normal(0, 0.6, (3, 6))]
    spikes = (rng.random((15, 4, 14)) < 0.5).astype(float)
    thresholds = (1.1, 0.8, 0.6)
    counts = emstdp.forward(emstdp.IFNetwork(thresholds, reset), weights, spikes)
    assert counts[3].sum() > 0  # the spikes reach the output
    for got, want in zip(counts, _if_loop(weights, thresholds, spikes, reset)):
        np.testing.assert_array_equal(got, want)


def test_emstdp_update_by_hand_and_in_mini_batches():
    """One synapse: n1_pre = 4, n1_post = 2, n2_post = 5, T_1 = 10: g = 4·3/10, m = 0.9 + 0.1 g²,
    W = 0.1 + η g/√(m + ε). Three slots with B = 2 are a full batch, then a partial one."""
    params = EMSTDPParameters(batch_size=1, learning_rate=(0.05,))
    state = {"W1": np.array([[0.1]]), "rms1": np.ones((1, 1)), "B1": np.ones((1, 1))}
    counts = [(np.array([[4.0]]), np.array([[4.0]])), (np.array([[2.0]]), np.array([[5.0]]))]
    new = emstdp.update(params, state, counts, 10)
    g = 4 * 3 / 10
    m = 0.9 + 0.1 * g ** 2
    assert new["rms1"][0, 0] == pytest.approx(m, rel=1e-14)
    assert new["W1"][0, 0] == pytest.approx(0.1 + 0.05 * g / np.sqrt(m + 1e-8), rel=1e-14)
    assert state["W1"][0, 0] == 0.1 and new["B1"] is state["B1"]
    # clipped to ±w_max
    big = emstdp.update(EMSTDPParameters(learning_rate=(5.0,), weight_limit=0.5), state, counts, 10)
    assert big["W1"][0, 0] == 0.5

    rng = np.random.default_rng(5)
    params = EMSTDPParameters(batch_size=2, learning_rate=(0.05, 0.02))
    state = {"W1": rng.normal(0, 0.3, (5, 6)), "W2": rng.normal(0, 0.3, (3, 5)),
             "rms1": np.ones((5, 6)), "rms2": np.ones((3, 5))}
    counts = [tuple(rng.integers(0, 8, (3, n)).astype(float) for _ in range(2)) for n in (6, 5, 3)]
    before = snapshot(state)
    new = emstdp.update(params, state, counts, 12)
    assert_same(state, before)
    first = emstdp.update_batch(params, state, [tuple(c[:2] for c in lc) for lc in counts], 12)
    both = emstdp.update_batch(params, first, [tuple(c[2:] for c in lc) for lc in counts], 12)
    assert_same(new, both)


# -- SSNN-BP --------------------------------------------------------------------------------------

def _ssnnbp_loop(weights, biases, pixels, labels, steps, rng, alpha=1.0):
    """The SSNN-BP sampling written out, draw for draw in the reference's order."""
    n_layers = len(weights)
    y = np.eye(weights[-1].shape[0])[labels]
    coincidences = [np.zeros_like(w) for w in weights]
    nusum = [np.zeros((len(labels), w.shape[0])) for w in weights]
    softmax_sum = np.zeros((len(labels), weights[-1].shape[0]))
    for _ in range(steps):
        x = [(rng.random(pixels.shape) < pixels).astype(float)]
        fprime = [None]
        for l in range(n_layers - 1):
            z = x[-1] @ weights[l].T + biases[l]
            fprime.append(((z > 0) & (z < 1)).astype(float))
            x.append((rng.random(z.shape) < np.clip(z, 0, 1)).astype(float))
        z = x[-1] @ weights[-1].T + biases[-1]
        winner = np.eye(z.shape[1])[np.argmax(z - np.log(-np.log(rng.random(z.shape))), axis=1)]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        softmax_sum += e / e.sum(axis=1, keepdims=True)
        g = winner - y
        for l in range(n_layers, 0, -1):
            coincidences[l - 1] += g.T @ x[l - 1]
            if l > 1:
                nu = g @ weights[l - 1]
                nusum[l - 2] += nu
                p = alpha * nu * fprime[l - 1]
                g = np.sign(p) * (rng.random(p.shape) < np.abs(p))
    return coincidences, nusum, softmax_sum / steps


def _ssnnbp_net(rng):
    return {"W": [rng.normal(0, 0.3, (7, 10)), rng.normal(0, 0.5, (5, 7)),
                  rng.normal(0, 0.8, (3, 5))],
            "b": [np.full(7, 0.2), np.full(5, 0.3), np.zeros(3)]}


def test_ssnnbp_step_is_pure():
    rng = np.random.default_rng(6)
    weights = _ssnnbp_net(rng)
    params = SSNNBPParameters(gradient_scale=0.7, input_rate=0.9)
    inputs = ssnnbp.StepInput(0.9 * rng.random((4, 10)), np.eye(3)[[0, 1, 2, 1]])
    state = ssnnbp.initial_state(weights, 4)
    for _ in range(3):
        state, _ = ssnnbp.step(params, weights, state, inputs, rng=rng)
    assert np.abs(state.coincidences[0]).sum() > 0
    check_pure(ssnnbp.step, params, weights, state, inputs, seed=11)
    check_pure(ssnnbp.forward_step, params, weights, state, inputs, seed=11)


def test_ssnnbp_window_equals_the_written_out_loop():
    rng = np.random.default_rng(7)
    weights = _ssnnbp_net(rng)
    pixels, labels = rng.random((6, 10)), rng.integers(0, 3, 6)
    params = SSNNBPParameters(gradient_scale=0.8)
    out = ssnnbp.window(params, weights, pixels, labels, 9, np.random.default_rng(3))
    coincidences, nusum, mean_softmax = _ssnnbp_loop(weights["W"], weights["b"], pixels, labels,
                                                     9, np.random.default_rng(3), alpha=0.8)
    assert np.abs(out["coincidences"][0]).sum() > 0  # gradient spikes reach the first layer
    for l in range(3):
        np.testing.assert_array_equal(out["coincidences"][l], coincidences[l])
    for l in (1, 2):
        np.testing.assert_array_equal(out["nu"][l], nusum[l - 1])
    np.testing.assert_array_equal(out["rate"][3], mean_softmax)
    # sample_updates is the same window with plain arguments
    plain = ssnnbp.sample_updates(weights["W"], weights["b"], pixels, labels, 9, gradient_scale=0.8,
                                  rng=np.random.default_rng(3))
    assert_same(plain, out)


def test_ssnnbp_expected_update_of_a_deterministic_hidden_layer():
    """Input and hidden spikes deterministic (probabilities 0 or 1, so f' = 0 and no hidden
    gradient); the WTA samples softmax(z): E[C^2] = T Σ_p (softmax(z) − y) x_hᵀ, and
    update() = W − Δw_min C / P exactly."""
    pixels = np.tile([1.0, 0.0, 1.0, 1.0], (200, 1))
    w1 = np.array([[1.0, 5.0, 1.0, 0.0], [-1.0, 0.0, 0.0, -1.0], [0.5, 0.0, 0.5, 0.5]])
    w2 = np.array([[0.4, 1.0, -0.2], [-0.3, 2.0, 0.1], [-1.0, 0.0, -0.6]])
    weights = {"W": [w1, w2], "b": [np.zeros(3), np.array([0.1, 0.0, 0.2])]}
    x_hidden = np.array([1.0, 0.0, 1.0])  # z = 2, −2, 1.5
    labels = np.zeros(200, dtype=int)
    steps = 50
    params = SSNNBPParameters(learning_rate=(0.01, 0.002), bias_learning_rate=0.001)
    out = ssnnbp.window(params, weights, pixels, labels, steps, np.random.default_rng(8))
    np.testing.assert_array_equal(out["coincidences"][0], 0.0)
    z = w2 @ x_hidden + weights["b"][1]
    softmax = np.exp(z) / np.exp(z).sum()
    expected = steps * 200 * np.outer(softmax - [1.0, 0.0, 0.0], x_hidden)
    np.testing.assert_allclose(out["coincidences"][1] / (steps * 200),
                               expected / (steps * 200), atol=0.02)
    np.testing.assert_allclose(out["rate"][2], np.tile(softmax, (200, 1)), rtol=1e-12)
    np.testing.assert_array_equal(out["rate"][1], np.tile(x_hidden, (200, 1)))
    new = ssnnbp.update(params, weights, out)
    np.testing.assert_allclose(new["W"][1], w2 - 0.002 * out["coincidences"][1] / 200, rtol=1e-15)
    np.testing.assert_allclose(new["b"][1], weights["b"][1] - 0.001 * out["gradients"][1] / 200,
                               rtol=1e-15)
    np.testing.assert_array_equal(new["W"][0], w1)


def test_ssnnbp_forward_counts_wins_and_expected_forward_is_the_rate_network():
    rng = np.random.default_rng(9)
    weights = _ssnnbp_net(rng)
    pixels = rng.random((5, 10))
    out = ssnnbp.forward(SSNNBPParameters(), weights, pixels, 20, np.random.default_rng(1))
    np.testing.assert_array_equal(out["count"][-1].sum(axis=1), 20)  # one winner per step
    expected = ssnnbp.expected_forward(weights, pixels)
    a = pixels
    for l in range(2):
        a = np.clip(a @ weights["W"][l].T + weights["b"][l], 0, 1)
        np.testing.assert_allclose(expected["rate"][l + 1], a, rtol=1e-15)
    np.testing.assert_allclose(expected["rate"][3].sum(axis=1), 1.0)
