"""EMSTDP's alignment plug-in: its loss, local error read-out and rate-network reference.

EMSTDP (:mod:`plausigrad.rules.emstdp`) learns the MSE on output rates,
L = ½ Σ_k (a_k − y_k)², y = one-hot(label) at 1 spike/step (the output error neurons count the
target's silent steps and the others' spikes). Its quantities for
:mod:`plausigrad.analysis.alignment`:

* reference forward: the non-leaky IF network of :mod:`plausigrad.models.integrate_and_fire`
  re-simulated in numpy (:mod:`plausigrad.analysis.references.emstdp`) on the recorded phase-1
  input spikes, with the same one-step latency per layer and the model's reset (here: to zero)::

      v^l[t] = v^l[t-1] + W^l s^{l-1}[t-1]   (t ≥ 1; v = 0 at t = 0),   s^l[t] = 1{v^l[t] ≥ θ^l}

  a^l = n1^l / T_1 (phase-1 counts, which the update also uses; the reference counts the
  recorded forward window, steps 0..F−1, which is the revised profile's n1 window; the published
  profile counts steps 2..F, so there the reference rates include the two start-up steps and
  drop the last one, an approximation of the rate network either way);
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
from plausigrad.analysis.references import emstdp as reference
from plausigrad.analysis.references import layer_lists
# if_forward: analysis/ann_baseline.py, tools/emstdp_hidden_saturation.py and the example rule
# import it from this plug-in
from plausigrad.analysis.references.emstdp import if_forward  # noqa: F401
from plausigrad.models.integrate_and_fire import forward_thresholds
from plausigrad.rules.emstdp import EMSTDP


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
        weights = layer_lists(state, biases=False)["W"]
        sizes = (weights[0].shape[1],) + tuple(w.shape[0] for w in weights)
        counts = reference.forward(reference.IFNetwork.from_neuron(sizes, rule.params.neuron),
                                   weights, input_spikes)
        steps = input_spikes.shape[0]
        rates = [c / steps for c in counts]
        derivative = [None] + [(c > 0).astype(np.float64) for c in counts[1:-1]]
        derivative.append(np.ones_like(counts[-1]))
        return {"count": counts, "rate": rates, "derivative": derivative}

