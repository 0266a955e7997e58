"""Surrogate-gradient BPTT for the BioGrad lab's LIF network: the backprop yardstick of issue 16.

The network is the one of BioGrad's published profile (:mod:`plausigrad.models.lif_neuron`,
[CODE: biograd/network_cells.py]), trained here by exact backpropagation through time with the
lab's pseudo-derivative standing in for dH/dv — the comparison "same architecture, same neuron,
same loss, gradient by backprop" [OURS]. Discrete time, batch first; layer l = 1..L, x^0 the
input frames::

    v^l[t] = d · v^l[t−1] · (1 − s^l[t−1]) + W^l x^{l−1}[t] + b^l,   s^l[t] = H(v^l[t] − V_th)
    x^l[t] = s^l[t];    n = Σ_t s^L[t];    loss = −log softmax(n)_y   (the lab's loss on counts)

Backward, with ψ[t] = a · 1{|v[t] − V_th| < w} for ds/dv and the reset path kept
(∂v[t+1]/∂v[t] = d (1 − s[t]), ∂v[t+1]/∂s[t] = −d v[t]), from t = T − 1 down::

    g_s[t] = ∂loss/∂s[t] (from above: (W^{l+1})ᵀ g_v^{l+1}[t]; output: softmax(n) − onehot(y))
             − d · v[t] · g_v[t+1]
    g_v[t] = ψ[t] · g_s[t] + d · (1 − s[t]) · g_v[t+1]
    ∂loss/∂W^l = Σ_t g_v^l[t] (x^{l−1}[t])ᵀ,   ∂loss/∂b^l = Σ_t g_v^l[t]

For the output layer this gradient is (softmax − y) times the lab's reset-aware trace e
(``trace_dw``): the trace is the forward-mode form of the same derivative (tested in
``tests/test_lif_bptt.py``, with a forward-mode reference for the hidden layers too). Optimiser:
Adam (β = 0.9, 0.999, ε = 1e-8) on the batch-mean gradient [OURS].
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LIF:
    """The lab's (vdecay, vth, grad_win, grad_amp) [CODE: run_biograd_training.py, snn_param]."""

    vdecay: float = 0.3
    vth: float = 0.3
    grad_win: float = 0.3
    grad_amp: float = 1.0


def init_params(rng, sizes):
    """``nn.Linear``'s default W, b ~ U(−1/√n_in, 1/√n_in), as the lab's network starts."""
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(n_in)
        params.append((rng.uniform(-bound, bound, (n_out, n_in)), rng.uniform(-bound, bound, n_out)))
    return params


def forward(params, x, neuron=LIF()):
    """Run the network on input spikes ``x`` (T, batch, n_in); returns the per-layer (v, s) with
    shapes (T, batch, n_l), the output counts (batch, n_L) last."""
    T, batch = x.shape[:2]
    layers, inputs = [], x
    for W, b in params:
        v = np.zeros((T, batch, len(b)))
        s = np.zeros_like(v)
        current = inputs @ W.T + b
        previous_v, previous_s = np.zeros((batch, len(b))), np.zeros((batch, len(b)))
        for t in range(T):
            v[t] = neuron.vdecay * previous_v * (1 - previous_s) + current[t]
            s[t] = v[t] > neuron.vth
            previous_v, previous_s = v[t], s[t]
        layers.append((v, s))
        inputs = s
    return layers


def softmax(z):
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def loss_and_gradients(params, x, labels, neuron=LIF()):
    """Mean cross-entropy of softmax(output counts) over the batch and its BPTT gradients
    [(dW, db)] (batch means), with the pseudo-derivative ψ for ds/dv."""
    layers = forward(params, x, neuron)
    counts = layers[-1][1].sum(axis=0)
    batch = len(labels)
    p = softmax(counts)
    loss = float(-np.mean(np.log(np.maximum(p[np.arange(batch), labels], 1e-300))))
    delta = p.copy()
    delta[np.arange(batch), labels] -= 1.0
    delta /= batch
    T = x.shape[0]
    grads = [None] * len(params)
    g_s_from_above = np.broadcast_to(delta, (T, *delta.shape))
    for l in range(len(params) - 1, -1, -1):
        v, s = layers[l]
        psi = neuron.grad_amp * (np.abs(v - neuron.vth) < neuron.grad_win)
        g_v = np.zeros_like(v)
        following = np.zeros(v.shape[1:])
        for t in range(T - 1, -1, -1):
            g_s = g_s_from_above[t] - neuron.vdecay * v[t] * following
            g_v[t] = psi[t] * g_s + neuron.vdecay * (1 - s[t]) * following
            following = g_v[t]
        inputs = x if l == 0 else layers[l - 1][1]
        W = params[l][0]
        grads[l] = (np.einsum("tbj,tbi->ji", g_v, inputs), g_v.sum(axis=(0, 1)))
        g_s_from_above = g_v @ W
    return loss, grads, counts


class Adam:
    """Adam on a list of (W, b) pairs, in place."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0
        self.m = [[np.zeros_like(a) for a in pair] for pair in params]
        self.v = [[np.zeros_like(a) for a in pair] for pair in params]

    def step(self, params, grads):
        self.t += 1
        b1, b2 = self.betas
        for l, (pair, grad) in enumerate(zip(params, grads)):
            for k in range(2):
                self.m[l][k] = b1 * self.m[l][k] + (1 - b1) * grad[k]
                self.v[l][k] = b2 * self.v[l][k] + (1 - b2) * grad[k] ** 2
                m_hat = self.m[l][k] / (1 - b1 ** self.t)
                v_hat = self.v[l][k] / (1 - b2 ** self.t)
                pair[k][...] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def accuracy(params, x, labels, neuron=LIF(), batch=100):
    """Fraction of samples whose output count argmax (first maximum) is the label; ``x`` is
    (T, n, n_in)."""
    correct = 0
    for start in range(0, x.shape[1], batch):
        counts = forward(params, x[:, start:start + batch], neuron)[-1][1].sum(axis=0)
        correct += int((counts.argmax(axis=1) == labels[start:start + batch]).sum())
    return correct / x.shape[1]


def train(params, x, labels, *, epochs, lr=1e-3, batch=32, rng, neuron=LIF(), evaluate=None,
          log=print):
    """Adam over shuffled mini-batches of (T, n, n_in) spikes ``x``; after each epoch
    ``evaluate(params)`` (e.g. a validation accuracy) is logged and collected."""
    params = [(W.copy(), b.copy()) for W, b in params]
    optimiser = Adam(params, lr)
    history = []
    for epoch in range(epochs):
        order = rng.permutation(x.shape[1])
        losses = []
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            loss, grads, _ = loss_and_gradients(params, x[:, rows], labels[rows], neuron)
            optimiser.step(params, grads)
            losses.append(loss)
        score = evaluate(params) if evaluate else None
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "score": score})
        log(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}" +
            (f", score {score:.4f}" if score is not None else ""))
    return params, history
