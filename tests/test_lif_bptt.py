"""The surrogate-gradient BPTT reference (analysis/references/lif_bptt.py) against two
independent computations of the same derivative: a forward-mode (real-time recurrent) Jacobian
of every membrane potential with respect to every parameter, and, for the output layer, the
BioGrad lab's reset-aware eligibility trace (biograd_lab.event_driven_traces)."""

import numpy as np

from plausigrad.analysis.references import biograd_lab as lab
from plausigrad.analysis.references import lif_bptt as bptt

SIZES = (5, 4, 3, 3)
T, BATCH = 10, 3


def _case(seed=2):
    rng = np.random.default_rng(seed)
    params = [(W * 2.5 + 0.1, b) for W, b in bptt.init_params(rng, SIZES)]
    x = (rng.random((T, BATCH, SIZES[0])) < 0.5).astype(float)
    labels = np.array([0, 2, 1])
    return params, x, labels


def _forward_mode_gradients(params, x, labels, neuron):
    """d loss / d θ by carrying dv/dθ forward in time (the same pseudo-derivative)."""
    layers = bptt.forward(params, x, neuron)
    shapes = [(W.shape, b.shape) for W, b in params]
    sizes = [W.size + b.size for W, b in params]
    n_params = sum(sizes)
    offsets = np.cumsum([0] + sizes)
    d = neuron.vdecay
    grads_out = np.zeros((BATCH, SIZES[-1], n_params))  # d n / d θ
    for batch in range(BATCH):
        below = [np.zeros((SIZES[0], n_params)) for _ in range(T)]  # d x^0 / d θ = 0
        for l, (W, b) in enumerate(params):
            v, s = layers[l][0][:, batch], layers[l][1][:, batch]
            inputs = x[:, batch] if l == 0 else layers[l - 1][1][:, batch]
            psi = neuron.grad_amp * (np.abs(v - neuron.vth) < neuron.grad_win)
            J_v_prev = np.zeros((len(b), n_params))
            here = []
            for t in range(T):
                direct = np.zeros((len(b), n_params))
                block = direct[:, offsets[l]:offsets[l + 1]]
                for j in range(len(b)):  # ∂(W x[t] + b)_j / ∂W_ji = x_i[t], ∂/∂b_j = 1
                    block[j, j * W.shape[1]:(j + 1) * W.shape[1]] = inputs[t]
                    block[j, W.size + j] = 1.0
                if t == 0:
                    J_v = direct + W @ below[t]
                else:
                    factor = d * (1 - s[t - 1]) - d * v[t - 1] * psi[t - 1]
                    J_v = factor[:, None] * J_v_prev + direct + W @ below[t]
                here.append(psi[t][:, None] * J_v)  # d s[t] / d θ
                J_v_prev = J_v
            below = here
        grads_out[batch] = np.sum(below, axis=0)
    counts = layers[-1][1].sum(axis=0)
    delta = bptt.softmax(counts)
    delta[np.arange(BATCH), labels] -= 1.0
    flat = np.einsum("bk,bkp->p", delta / BATCH, grads_out)
    out = []
    for l, ((w_shape, b_shape), start) in enumerate(zip(shapes, offsets[:-1])):
        w_size = int(np.prod(w_shape))
        out.append((flat[start:start + w_size].reshape(w_shape),
                    flat[start + w_size:start + w_size + b_shape[0]]))
    return out


def test_bptt_equals_forward_mode_on_every_parameter():
    params, x, labels = _case()
    neuron = bptt.LIF()
    layers = bptt.forward(params, x, neuron)
    assert all(s.sum() > 0 for _, s in layers)  # every layer fires
    # both reset paths are used: spikes with ψ = 0 (factor 0) and with ψ > 0 (factor −d v)
    outside = [(s > 0) & (np.abs(v - neuron.vth) >= neuron.grad_win) for v, s in layers]
    inside = [(s > 0) & (np.abs(v - neuron.vth) < neuron.grad_win) for v, s in layers]
    assert any(o.any() for o in outside) and any(i.any() for i in inside)
    loss, grads, _ = bptt.loss_and_gradients(params, x, labels, neuron)
    reference = _forward_mode_gradients(params, x, labels, neuron)
    for l, ((dW, db), (rW, rb)) in enumerate(zip(grads, reference)):
        assert np.abs(rW).max() > 1e-3, f"layer {l + 1}: the gradient must not vanish"
        np.testing.assert_allclose(dW, rW, atol=1e-12, err_msg=f"dW{l + 1}")
        np.testing.assert_allclose(db, rb, atol=1e-12, err_msg=f"db{l + 1}")
    assert np.isfinite(loss) and loss > 0


def test_output_gradient_is_the_error_times_the_labs_trace():
    params, x, labels = _case(seed=4)
    neuron = bptt.LIF()
    layers = bptt.forward(params, x, neuron)
    _, grads, counts = bptt.loss_and_gradients(params, x, labels, neuron)
    v, s = layers[-1]
    psi = neuron.grad_amp * (np.abs(v - neuron.vth) < neuron.grad_win)
    _, e, _ = lab.event_driven_traces(lab.Config().neuron, layers[-2][1], v, s, psi)
    delta = bptt.softmax(counts)
    delta[np.arange(BATCH), labels] -= 1.0
    np.testing.assert_allclose(grads[-1][0], np.einsum("bj,bji->ji", delta / BATCH, e),
                               atol=1e-10)


def test_training_lowers_the_loss():
    rng = np.random.default_rng(0)
    params = bptt.init_params(rng, (12, 16, 3))
    prototypes = np.kron(np.eye(3), np.ones(4))  # class k: inputs 4k..4k+3
    labels = rng.integers(0, 3, 90)
    x = (rng.random((T, 90, 12)) < 0.7 * prototypes[labels][None]).astype(float)
    before = bptt.loss_and_gradients(params, x, labels)[0]
    trained, history = bptt.train(params, x, labels, epochs=15, lr=0.02, batch=15, rng=rng,
                                  log=lambda *_: None)
    after = bptt.loss_and_gradients(trained, x, labels)[0]
    assert after < 0.5 * before
    assert bptt.accuracy(trained, x, labels) > 0.9
