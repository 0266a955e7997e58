"""EMSTDP's alignment plug-in: its loss, local error read-out and rate-network reference.

EMSTDP (:mod:`plausigrad.rules.emstdp`) learns the MSE on output rates,
L = ½ Σ_k (a_k − y_k)², y = one-hot(label) at 1 spike/step (the output error neurons count the
target's silent steps and the others' spikes). Its quantities for
:mod:`plausigrad.analysis.alignment`:

* reference forward: the non-leaky IF network of :mod:`plausigrad.models.integrate_and_fire`
  re-simulated in numpy on the recorded phase-1 input spikes, with the same one-step latency per
  layer and reset to zero::

      v^l[t] = v^l[t-1] + W^l s^{l-1}[t-1]   (t ≥ 1; v = 0 at t = 0),   s^l[t] = 1{v^l[t] ≥ θ^l}

  a^l = n1^l / T_1 (phase-1 counts, which the update also uses);
* derivative: hidden layers 1{n1 > 0} — the rule's own derivative gate, the ReLU derivative of
  the rate network estimated from phase-1 activity (used for every setting, also where the rule
  itself does not gate, e.g. dfa with the zero error reset: R1 is the true rate-network
  gradient); output layer 1, since the
  rule's output error neurons are not gated (a silent target unit still receives + errors);
* output error: ∂L/∂a^L = a^L − y;
* local error in hidden layer l: −(net signed error spikes) of its error units in the slot,
  i.e. the gated error the rule injects, in the gradient's sign convention;
* R2: ``None``. EMSTDP has no pseudo-derivative of the spike (its only derivative is the phase-1
  gate) and no temporal credit assignment; a surrogate-gradient BPTT would need a surrogate the
  rule does not define, so R1 is the reference for this rule.
"""

import numpy as np
from plausigrad.analysis.alignment import AlignmentModel
from plausigrad.analysis.figures import DynamicsSpec
from plausigrad.analysis.readout import slot_end_values
from plausigrad.models.errors import require_choice
from plausigrad.models.integrate_and_fire import FORWARD_RESETS, forward_thresholds
from plausigrad.rules.emstdp import EMSTDP


def if_forward(weights, thresholds, input_spikes, forward_reset="zero"):
    """Phase-1 spike counts per layer of the non-leaky IF network on ``input_spikes`` (T, P, n_0).

    ``forward_reset``: ``zero`` (v <- 0 after a spike) or ``subtract`` (v <- v - θ).

    Returns a list ``counts`` with ``counts[0]`` the input counts and ``counts[l]`` (P, n_l).
    """
    require_choice("forward reset", forward_reset, FORWARD_RESETS)
    steps, n_samples, _ = input_spikes.shape
    n_layers = len(weights)
    v = [None] + [np.zeros((n_samples, w.shape[0])) for w in weights]
    last = [np.asarray(input_spikes[0], dtype=np.float64)] + [np.zeros((n_samples, w.shape[0]))
                                                              for w in weights]
    counts = [np.asarray(input_spikes, dtype=np.float64).sum(axis=0)] + [
        np.zeros((n_samples, w.shape[0])) for w in weights]
    for t in range(steps):
        now = [np.asarray(input_spikes[t], dtype=np.float64)]
        for l in range(1, n_layers + 1):
            if t > 0:
                v[l] = v[l] + last[l - 1] @ weights[l - 1].T
            spikes = (v[l] >= thresholds[l - 1]).astype(np.float64)
            if forward_reset == "subtract":
                v[l] = v[l] - spikes * thresholds[l - 1]
            else:
                v[l] = v[l] * (1.0 - spikes)
            counts[l] += spikes
            now.append(spikes)
        last = now
    return counts


class EMSTDPAlignment(AlignmentModel):
    """The :class:`~plausigrad.analysis.alignment.AlignmentModel` of EMSTDP."""

    rule_name = EMSTDP.name

    def dynamics_spec(self, rule, windows, layer_sizes):
        """Soma U with θ, error unit E, n1, n2, the input's phase-1 count, n_pre·(n2 − n1), w."""
        def contrast(pre, post, k, syn):
            return ("n_pre·(n2 − n1) so far", np.asarray(pre["count"][0])
                    * (np.asarray(post["n2"][k]) - np.asarray(post["count"][k])))

        return DynamicsSpec(
            neuron_group="layer1", soma="v",
            threshold=forward_thresholds(layer_sizes, rule.params.neuron)[0],
            compartments=(("E", "error unit E"), ("count", "n1: phase-1 spikes"),
                          ("n2", "n2: phase-2 spikes")),
            input_group="input", trace="count", synapses="W1", eligibility=contrast)

    def error_probes(self, layer_sizes):
        return {self.layer_group(l): (("nerr",), tuple(range(layer_sizes[l])))
                for l in range(1, len(layer_sizes) - 1)}

    def local_errors(self, record, n_samples, windows, layer_sizes):
        """−(net error spikes) of every hidden neuron at the last step of each slot, (P, n_l)."""
        return {l: -slot_end_values(record.probes[self.layer_group(l)], "nerr", n_samples,
                                   windows.slot_steps)
                for l in range(1, len(layer_sizes) - 1)}

    def reference_forward(self, rule, state, input_spikes):
        n_layers = sum(1 for name in state if name.startswith("W"))
        weights = [np.asarray(state[f"W{l}"], dtype=np.float64) for l in range(1, n_layers + 1)]
        sizes = (weights[0].shape[1],) + tuple(w.shape[0] for w in weights)
        counts = if_forward(weights, forward_thresholds(sizes, rule.params.neuron), input_spikes,
                            rule.params.neuron.forward_reset)
        steps = input_spikes.shape[0]
        rates = [c / steps for c in counts]
        derivative = [None] + [(c > 0).astype(np.float64) for c in counts[1:-1]]
        derivative.append(np.ones_like(counts[-1]))
        return {"count": counts, "rate": rates, "derivative": derivative}

