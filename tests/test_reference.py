"""Fast tests of the numpy BioGrad reference (analysis/references/biograd.py)."""
import numpy as np
import pytest

from plausigrad.analysis.references import biograd as ref
from plausigrad.models.compartment_neuron import CompartmentNeuronParameters

NEURON = CompartmentNeuronParameters()  # d_c 0.5, d_v 0.75, V_th 0.5, w 0.5
D_C, D_V, V_TH = NEURON.basal_decay, NEURON.membrane_decay, NEURON.threshold


def _params(Ws, bs):
    return {"W": [np.asarray(W, dtype=np.float64) for W in Ws],
            "b": [np.asarray(b, dtype=np.float64) for b in bs]}


def test_one_neuron_membrane_hand_computed():
    # 1 input -> 1 neuron, W = 1.2, b = 0.05, input spikes at t = 0, 1
    p = _params([[[1.2]]], [[0.05]])
    s_in = np.array([1, 1, 0, 0, 0, 0, 0], float)[:, None, None]
    f = ref.forward(NEURON, p, s_in, record=True)
    r = f["rec"][1]
    c_exp = [0.05, 1.275, 1.8875, 0.99375, 0.546875, 0.3234375, 0.21171875]
    v_exp = [0.05, 1.3125, 1.8875, 0.99375, 0.546875, 0.3234375, 0.454296875]
    s_exp = [0, 1, 1, 1, 1, 0, 0]
    psi_exp = [1, 0, 0, 1, 1, 1, 1]
    np.testing.assert_allclose(r["c"][:, 0, 0], c_exp, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r["v"][:, 0, 0], v_exp, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(r["s"][:, 0, 0], s_exp)
    np.testing.assert_array_equal(r["psi"][:, 0, 0], psi_exp)
    # v after reset
    np.testing.assert_allclose(r["v_end"][:, 0, 0], np.array(v_exp) * (1 - np.array(s_exp)))
    T = 7
    assert f["count"][1][0, 0] == 4
    assert f["rate"][1][0, 0] == pytest.approx(4 / T)
    assert f["psibar"][1][0, 0] == pytest.approx(5 / T)
    # xlag of the neuron: 0,0,1,1.5,1.75,1.875,0.9375 ; input: 0,1,1.5,.75,.375,.1875,.09375
    assert f["xbar"][1][0, 0] == pytest.approx(7.0625 / T)
    assert f["xbar"][0][0, 0] == pytest.approx(3.90625 / T)
    assert f["rate"][0][0, 0] == pytest.approx(2 / T)


def _random_net(rng, sizes=(12, 9, 4), sigma=(0.4, 0.6), bias=0.05):
    Ws = [rng.normal(0, s, (sizes[l + 1], sizes[l])) for l, s in enumerate(sigma)]
    bs = [np.full(n, bias) for n in sizes[1:]]
    return _params(Ws, bs)


def test_traces_and_currents_closed_form():
    rng = np.random.default_rng(1)
    p = _random_net(rng)
    T, B = 15, 5
    spikes = (rng.random((T, B, 12)) < 0.4).astype(float)
    f = ref.forward(NEURON, p, spikes, record=True)
    rec = f["rec"]
    assert rec[1]["s"].sum() > 0 and rec[2]["s"].sum() > 0  # non-trivial activity
    dc = D_C
    for l in range(3):
        s = rec[l]["s"]
        # xlag from spike times, step by step closed form
        xl = np.zeros_like(s)
        for t in range(T):
            for tp in range(t):
                xl[t] += dc ** (t - 1 - tp) * s[tp]
        np.testing.assert_allclose(rec[l]["xlag"], xl, atol=1e-12)
        np.testing.assert_allclose(f["xbar"][l] * T, ref.trace_sum_closed_form(s, dc), atol=1e-12)
        np.testing.assert_allclose(f["xbar"][l] * T, xl.sum(0), atol=1e-12)
        np.testing.assert_allclose(rec[l]["xhat"][:-1], rec[l]["xlag"][1:], atol=1e-12)
        np.testing.assert_allclose(f["count"][l], s.sum(0))
    # c_j[t] = sum_i W_ji xlag_i[t] + b_j sum_{k<=t} d_c^k
    bfac = np.cumsum(dc ** np.arange(T))
    for l in (1, 2):
        c_exp = rec[l - 1]["xlag"] @ p["W"][l - 1].T + bfac[:, None, None] * p["b"][l - 1]
        np.testing.assert_allclose(rec[l]["c"], c_exp, atol=1e-12)
        np.testing.assert_allclose(f["psibar"][l] * T, rec[l]["psi"].sum(0))
        np.testing.assert_array_equal(rec[l]["s"], (rec[l]["v"] > V_TH).astype(float))


def test_spikes_argument_matches_sampling():
    rng = np.random.default_rng(2)
    p = _random_net(rng, sizes=(12, 9, 4))
    img = rng.random((3, 12))
    cfg = ref.Config(sizes=(12, 9, 4), T_f=10, p_in=0.8, dtype="float64")
    f1 = ref.window(cfg, p, img, np.random.default_rng(7))
    sp = ref.sample_input_spikes(img, 10, np.random.default_rng(7), 0.8, dtype=np.float64)
    f2 = ref.forward(NEURON, p, sp)
    np.testing.assert_array_equal(f1["spikes_in"], sp)
    for l in range(3):
        np.testing.assert_array_equal(f1["count"][l], f2["count"][l])
        np.testing.assert_allclose(f1["xbar"][l], f2["xbar"][l])


def test_exact_eligibility_matches_recursion():
    rng = np.random.default_rng(3)
    p = _random_net(rng)
    T, B = 12, 3
    spikes = (rng.random((T, B, 12)) < 0.5).astype(float)
    f = ref.forward(NEURON, p, spikes, record=True, exact_layers=(1, 2))
    rec = f["rec"]
    for l in (1, 2):
        s, psi, xl = rec[l]["s"], rec[l]["psi"], rec[l - 1]["xlag"]
        eps = np.zeros((B, s.shape[2], xl.shape[2]))
        acc = np.zeros_like(eps)
        s_prev = np.zeros_like(s[0])
        for t in range(T):
            eps = D_V * eps * (1 - s_prev)[:, :, None] + xl[t][:, None, :]
            acc += psi[t][:, :, None] * eps
            s_prev = s[t]
        np.testing.assert_allclose(f["ebar"][l], acc / T, atol=1e-12)
    # without any post spikes and psi == 1 always, ebar = mean_t sum_k d_v^k xlag[t-k]
    p1 = _params([[[0.1]]], [[0.0]])
    s1 = np.array([1, 0, 1, 0, 0], float)[:, None, None]
    f1 = ref.forward(NEURON, p1, s1, exact_layers=(1,), record=True)
    assert f1["rec"][1]["s"].sum() == 0
    xl = f1["rec"][0]["xlag"][:, 0, 0]
    psi = f1["rec"][1]["psi"][:, 0, 0]
    e = [sum(D_V ** k * xl[t - k] for k in range(t + 1)) for t in range(5)]
    assert f1["ebar"][1][0, 0, 0] == pytest.approx(np.dot(psi, e) / 5)


def test_dithered_quantisation_unbiased_and_clipped():
    cfg = ref.Config(sizes=(4, 3, 2), q=0.125, n_err=8, dtype="float64")
    p = _params([np.ones((3, 4)), np.ones((2, 3))], [np.zeros(3), np.zeros(2)])
    N = 20000
    fwd = {"rate": [None, None, np.tile([[0.3, 0.9]], (N, 1))],
           "psibar": [None, np.full((N, 3), 0.5), np.tile([[0.7, 0.2]], (N, 1))],
           "xbar": [np.ones((N, 4)), np.ones((N, 3)), None]}
    upd = ref.errors_and_updates(cfg, p, fwd, np.zeros(N, int), np.random.default_rng(0))
    m = upd["m"][2]
    target = np.array([0.7 * (0.3 - 1.0), 0.2 * 0.9]) / 0.125
    assert np.all(m == np.round(m)) and np.abs(m).max() <= 8
    np.testing.assert_allclose(m.mean(0), target, atol=0.02)
    assert set(np.unique(m[:, 0])) <= {np.floor(target[0]), np.floor(target[0]) + 1}
    # no quantisation: exact
    upd2 = ref.errors_and_updates(cfg.replace(quantise=False), p, fwd, np.zeros(N, int))
    np.testing.assert_allclose(upd2["m"][2][0], target)
    np.testing.assert_allclose(upd2["u"][1][0], 0.125 * target @ p["W"][1])
    # clipping
    upd3 = ref.errors_and_updates(cfg.replace(q=0.01, n_err=3), p, fwd, np.zeros(N, int),
                                  np.random.default_rng(0))
    assert np.abs(upd3["m"][2]).max() == 3


def test_update_formula_factorised():
    rng = np.random.default_rng(4)
    cfg = ref.Config(sizes=(12, 9, 4), quantise=False, eta=(0.3, 0.2), eta_b=(0.1, 0.05),
                     batch_reduce="mean", dtype="float64")
    p = _random_net(rng)
    spikes = (rng.random((10, 2, 12)) < 0.5).astype(float)
    f = ref.forward(NEURON, p, spikes)
    upd = ref.errors_and_updates(cfg, p, f, np.array([1, 3]))
    u2 = upd["delta"]
    np.testing.assert_allclose(u2, f["rate"][2] - np.eye(4)[[1, 3]])
    g2 = u2 * f["psibar"][2]
    np.testing.assert_allclose(upd["dW"][1], -0.2 * g2.T @ f["xbar"][1] / 2)
    np.testing.assert_allclose(upd["db"][1], -0.05 * g2.sum(0) / 2)
    u1 = g2 @ p["W"][1]  # q * (psibar u / q) @ W
    np.testing.assert_allclose(upd["u"][1], u1)
    np.testing.assert_allclose(upd["dW"][0], -0.3 * (u1 * f["psibar"][1]).T @ f["xbar"][0] / 2)


def test_one_update_lowers_sample_loss():
    """Same image, a fixed set of 64 input spike trains: one (mean) update
    computed on them lowers their mean loss."""
    rng = np.random.default_rng(5)
    cfg = ref.Config(sizes=(30, 40, 3), T_f=16, eta=(0.2, 0.2), eta_b=(0.0, 0.0),
                     dtype="float64")
    p = _random_net(rng, sizes=(30, 40, 3), sigma=(0.15, 0.3), bias=0.0)
    img = rng.random(30)
    spikes = ref.sample_input_spikes(np.tile(img, (64, 1)), 16, rng, dtype=np.float64)
    lab = np.full(64, 2)
    f0 = ref.forward(NEURON, p, spikes)
    upd = ref.errors_and_updates(cfg, p, f0, lab, np.random.default_rng(0))
    loss0 = upd["loss"].mean()
    p1 = ref.apply_updates(p, upd)
    f1 = ref.forward(NEURON, p1, spikes)
    loss1 = ref.errors_and_updates(cfg, p1, f1, lab, np.random.default_rng(0))["loss"].mean()
    assert loss1 < loss0


def test_predict_ties_lowest_and_feedback_shapes():
    assert list(ref.predict(np.array([[0, 2, 2], [0, 0, 0], [1, 0, 1]]))) == [1, 0, 0]
    cfg = ref.Config(sizes=(20, 15, 5), feedback="fa", fb_scale=2.0, dtype="float64")
    rng = np.random.default_rng(0)
    p = ref.init_weights(cfg, rng)
    fb = ref.make_feedback(cfg, p, rng)
    assert len(fb) == 1 and fb[0].shape == (15, 5)
    assert np.abs(fb[0]).max() <= 2.0 / np.sqrt(5)
