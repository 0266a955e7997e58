"""The alignment plug-in of ``dfa_if``: what ``plausigrad align`` and ``plausigrad figures`` read.

plausigrad's alignment analysis (``plausigrad.analysis.alignment``) is rule-agnostic; this class
tells it, for ``dfa_if``:

* which Brian2 groups to read (``input``, ``layer{l}``: the defaults of ``AlignmentModel``);
* the local error of hidden layer l: −(net signed error spikes ``nerr`` of its error units) at
  the end of each slot, the gated DFA error the rule injects, in the gradient's sign convention;
* the reference forward pass: the IF network re-simulated in numpy on the input spikes Brian2
  recorded (``if_forward`` of plausigrad's EMSTDP plug-in: same neurons, same one-step latency),
  with a^l = n1^l / T_1 and the derivative ψ̄ = 1{n1 > 0} in hidden layers (the rule's gate),
  1 in the output layer (its error units are not gated);
* no surrogate-gradient network (R2 is ``None``): the rule's only derivative is the gate;
* the dynamics figure: soma v with θ, the error unit E, n1 and n2 of a ``layer1`` neuron, the
  presynaptic phase-1 count and n1_pre·(n2 − n1), the contrastive term the update accumulates.

The loss (``output_error``), the probe rule (one mini-batch of P samples), the learning rates and
the feedback matrices (B^{L−1} against W^L; ``D{l}`` of deeper layers has no forward counterpart)
come from ``AlignmentModel``'s defaults, which read the rule's contract.
"""

import numpy as np
from plausigrad.analysis.alignment import AlignmentModel
from plausigrad.analysis.emstdp_alignment import if_forward
from plausigrad.analysis.figures import DynamicsSpec
from plausigrad.analysis.readout import slot_end_values
from plausigrad.models.integrate_and_fire import forward_thresholds


class DirectFeedbackIFAlignment(AlignmentModel):
    rule_name = "dfa_if"

    def error_probes(self, layer_sizes):
        return {self.layer_group(l): (("nerr",), tuple(range(layer_sizes[l])))
                for l in range(1, len(layer_sizes) - 1)}

    def local_errors(self, record, n_samples, windows, layer_sizes):
        return {l: -slot_end_values(record.probes[self.layer_group(l)], "nerr", n_samples,
                                    windows.slot_steps)
                for l in range(1, len(layer_sizes) - 1)}

    def reference_forward(self, rule, state, input_spikes):
        weights = [np.asarray(state[f"W{l}"], dtype=np.float64)
                   for l in range(1, 1 + sum(name.startswith("W") for name in state))]
        sizes = (weights[0].shape[1],) + tuple(w.shape[0] for w in weights)
        counts = if_forward(weights, forward_thresholds(sizes, rule.params.neuron), input_spikes,
                            rule.params.neuron.forward_reset)
        derivative = [None] + [(c > 0).astype(np.float64) for c in counts[1:-1]]
        return {"count": counts, "rate": [c / input_spikes.shape[0] for c in counts],
                "derivative": derivative + [np.ones_like(counts[-1])]}

    def dynamics_spec(self, rule, windows, layer_sizes):
        def contrast(pre, post, k, syn):
            return ("n1_pre·(n2 − n1) so far", np.asarray(pre["count"][0])
                    * (np.asarray(post["n2"][k]) - np.asarray(post["count"][k])))

        return DynamicsSpec(
            neuron_group="layer1", soma="v",
            threshold=forward_thresholds(layer_sizes, rule.params.neuron)[0],
            compartments=(("E", "error unit E"), ("count", "n1: phase-1 spikes"),
                          ("n2", "n2: phase-2 spikes")),
            input_group="input", trace="count", synapses="W1", eligibility=contrast)
