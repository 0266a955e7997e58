"""BioGrad's alignment plug-in: its loss, local error read-out, reference network and R2 by BPTT.

BioGrad (:mod:`plausigrad.rules.biograd`) learns with the MSE on output rates,
L = ½ Σ_k (a_k − y_k)², y = ``target_rate`` · one-hot(label); its local error in hidden layer l is
the apical compartment u^l at the end of the feedback window, and its pseudo-derivative is the
rectangular surrogate ψ = 1{|v − V_th| < w} / (2w) (ψ̄ = its mean over the forward window).

R2 is backprop through time through the identical discrete-time network of
:mod:`plausigrad.models.compartment_neuron` (the numpy form is
:mod:`plausigrad.analysis.references.biograd`)::

    I^l[t] = W^l s^{l-1}[t-1]                       (I^l[0] = 0; s^0 = the recorded input spikes)
    c^l[t] = d_c c^l[t-1] + I^l[t] + b^l
    v^l[t] = d_v v^l[t-1] (1 − s^l[t-1]) + c^l[t]
    s^l[t] = H(v^l[t] − V_th),    ∂s/∂v := ψ(v)    (the rule's own surrogate)
    a^L    = Σ_{t<T_f} s^L[t] / T_f

and, backwards in time (g_x = ∂L/∂x)::

    g_s^l[t] = [l = L] (a^L − y)/T_f + (W^{l+1})ᵀ g_c^{l+1}[t+1] − [reset kept] d_v v^l[t] g_v^l[t+1]
    g_v^l[t] = ψ^l[t] g_s^l[t] + d_v (1 − s^l[t]) g_v^l[t+1]
    g_c^l[t] = g_v^l[t] + d_c g_c^l[t+1]
    ∇_{W^l} L = Σ_t g_c^l[t] (s^{l-1}[t-1])ᵀ

The reset is detached by default (no gradient through the spike that resets the membrane), as
BioGrad's own exact eligibility trace (which is zeroed at a spike) and common surrogate-gradient
practice (Zenke & Vogels 2021) do; ``detach_reset=False`` keeps it. With a smooth spike function
(``spike_function="sigmoid"``) the same code is the exact gradient of a differentiable network,
which is how the tests check it against finite differences.
"""

import numpy as np

from plausigrad.analysis.alignment import AlignmentModel
from plausigrad.analysis.figures import DynamicsSpec
from plausigrad.analysis.readout import slot_end_values
from plausigrad.analysis.references import biograd as reference
from plausigrad.analysis.references import layer_lists
from plausigrad.rules.biograd import BioGrad
from plausigrad.rules.losses import one_hot


def _spike_function(kind, threshold, halfwidth, steepness):
    if kind == "heaviside":
        return (lambda v: (v > threshold).astype(np.float64),
                lambda v: (np.abs(v - threshold) < halfwidth) / (2.0 * halfwidth))
    if kind == "sigmoid":
        def sig(v):
            return 1.0 / (1.0 + np.exp(-steepness * (v - threshold)))
        return sig, lambda v: steepness * sig(v) * (1.0 - sig(v))
    raise ValueError(f"unknown spike function {kind!r}")


def bptt_gradients(weights, biases, input_spikes, targets, neuron, *, spike_function="heaviside",
                   steepness=10.0, detach_reset=True):
    """Mean loss and mean gradients ∇_{W^l} L over the batch by BPTT (see the module docstring).

    ``weights[l-1]`` is W^l (n_l, n_{l-1}); ``input_spikes`` is (T_f, P, n_0); ``targets`` the
    (P, n_L) target rates; ``neuron`` a :class:`CompartmentNeuronParameters`. Returns
    ``(loss, gradients)`` with the loss L = mean_p ½ Σ_k (a_k − y_k)².
    """
    d_c, d_v = neuron.basal_decay, neuron.membrane_decay
    spike, derivative = _spike_function(spike_function, neuron.threshold,
                                        neuron.surrogate_halfwidth, steepness)
    n_layers = len(weights)
    steps, n_samples, _ = input_spikes.shape
    s = [np.asarray(input_spikes, dtype=np.float64)]
    v_pre, psi = [None], [None]
    for l in range(1, n_layers + 1):
        n = weights[l - 1].shape[0]
        s.append(np.zeros((steps, n_samples, n)))
        v_pre.append(np.zeros((steps, n_samples, n)))
        psi.append(np.zeros((steps, n_samples, n)))
    c = [None] + [np.zeros((n_samples, w.shape[0])) for w in weights]
    v = [None] + [np.zeros((n_samples, w.shape[0])) for w in weights]
    for t in range(steps):
        for l in range(1, n_layers + 1):
            current = s[l - 1][t - 1] @ weights[l - 1].T if t > 0 else 0.0
            c[l] = d_c * c[l] + current + biases[l - 1]
            reset = (1.0 - s[l][t - 1]) if t > 0 else 1.0
            v[l] = d_v * v[l] * reset + c[l]
            v_pre[l][t] = v[l]
            s[l][t] = spike(v[l])
            psi[l][t] = derivative(v[l])
    rates = s[n_layers].sum(axis=0) / steps
    error = rates - targets
    loss = float(np.mean(0.5 * np.sum(error ** 2, axis=1)))

    gradients = [np.zeros_like(w, dtype=np.float64) for w in weights]
    g_c_next = [None] + [np.zeros((n_samples, w.shape[0])) for w in weights]
    g_v_next = [None] + [np.zeros((n_samples, w.shape[0])) for w in weights]
    for t in range(steps - 1, -1, -1):
        g_c_now, g_v_now = [None] * (n_layers + 1), [None] * (n_layers + 1)
        for l in range(n_layers, 0, -1):
            g_s = error / (n_samples * steps) if l == n_layers else 0.0
            if l < n_layers:
                g_s = g_s + g_c_next[l + 1] @ weights[l]
            if not detach_reset:
                g_s = g_s - d_v * v_pre[l][t] * g_v_next[l]
            g_v = psi[l][t] * g_s + d_v * (1.0 - s[l][t]) * g_v_next[l]
            g_c = g_v + d_c * g_c_next[l]
            if t > 0:
                gradients[l - 1] += g_c.T @ s[l - 1][t - 1]
            g_c_now[l], g_v_now[l] = g_c, g_v
        g_c_next, g_v_next = g_c_now, g_v_now
    return loss, gradients


class BioGradAlignment(AlignmentModel):
    """The :class:`~plausigrad.analysis.alignment.AlignmentModel` of BioGrad."""

    rule_name = BioGrad.name

    def dynamics_spec(self, rule, windows, layer_sizes):
        """Soma v, basal c, apical u, error unit D, input trace x̂, eligibility ē and w of W1."""
        p = rule.params
        steps = windows.forward_steps

        def eligibility(pre, post, k, syn):
            if p.eligibility == "exact":  # ē accumulates Σ_t ψ ε; the update reads ē / T_f
                return "ē = Σ ψ·ε / T_f", np.asarray(syn["ebar"][k]) / steps
            return "ē = ψ̄·x̄ so far", (np.asarray(post["psisum"][k]) / steps
                                        * np.asarray(pre["xsum"][0]) / steps)

        return DynamicsSpec(
            neuron_group="layer1", soma="v", threshold=p.neuron.threshold,
            compartments=(("c", "basal c"), ("u", "apical u"), ("err", "error unit D")),
            input_group="input", trace="xhat", synapses="W1",
            synapse_variables=(("grad", "Σ u·ē over the batch"),) if p.batch_size > 1 else (),
            post_variables=("psisum",), pre_variables=("xsum",),
            synapse_extra=("ebar",) if p.eligibility == "exact" else (),
            eligibility=eligibility)

    def error_probes(self, layer_sizes):
        return {self.layer_group(l): (("u",), tuple(range(layer_sizes[l])))
                for l in range(1, len(layer_sizes) - 1)}

    def local_errors(self, record, n_samples, windows, layer_sizes):
        """Apical u of every hidden neuron at the last step of each probe slot, (P, n_l)."""
        return {l: slot_end_values(record.probes[self.layer_group(l)], "u", n_samples,
                                   windows.slot_steps)
                for l in range(1, len(layer_sizes) - 1)}

    def reference_forward(self, rule, state, input_spikes):
        out = reference.forward(rule.params.neuron, layer_lists(state), input_spikes)
        return {"count": out["count"], "rate": out["rate"], "derivative": out["psibar"]}

    def surrogate_gradient(self, rule, state, input_spikes, labels):
        params = layer_lists(state)
        n_out = params["W"][-1].shape[0]
        _, gradients = bptt_gradients(params["W"], params["b"], input_spikes,
                                      rule.loss.target_rate * one_hot(labels, n_out),
                                      rule.params.neuron)
        return gradients
