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

All of this is what EMSTDP's plug-in already says about the same neurons and error units, so the
class derives from it (``plausigrad.analysis.emstdp_alignment.EMSTDPAlignment``) and changes
only the rule it serves. The loss (``output_error``), the probe rule (one mini-batch of P samples), the learning rates and
the feedback matrices (B^{L−1} against W^L; ``D{l}`` of deeper layers has no forward counterpart)
come from ``AlignmentModel``'s defaults, which read the rule's contract.
"""

from plausigrad.analysis.emstdp_alignment import EMSTDPAlignment


class DirectFeedbackIFAlignment(EMSTDPAlignment):
    """The alignment plug-in of ``dfa_if`` (see the module docstring)."""

    rule_name = "dfa_if"
