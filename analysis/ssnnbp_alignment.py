"""SSNN-BP's alignment plug-in, and a numpy reference of the rule's per-step sampling.

SSNN-BP (:mod:`plausigrad.rules.ssnnbp`) learns the softmax cross-entropy,
L = −log softmax(z^L)_y, with stochastic binary units. Its quantities for
:mod:`plausigrad.analysis.alignment`:

* reference forward: the network is stochastic, so no re-simulation can reproduce Brian2's spikes
  (``stochastic = True``: the analysis then uses :meth:`SSNNBPAlignment.recorded_forward` and
  reports ``count_mismatch`` as None). The activity is the one *recorded* in the probe run:
  a^l = forward spikes of layer l in its window / T (a^0 = input spikes / T), derivative
  f̄'^l = mean of the neuron's own f'(z) = 1{0 < z < 1} over its window (``fpsum / T``);
* output: the layer's "rate" is the mean softmax probability over the window (``psum / T``, the
  expectation of the WTA winner given the sampled logits), derivative 1, and
  ∂L/∂z^L = softmax − onehot(y); loss −log of the mean softmax of the label;
* local error in hidden layer l: ν summed over the gradient window (``nusum``), i.e.
  Σ_t Σ_k W_kj (g⁺_k − g⁻_k)[t] ≈ T · ((W^{l+1})ᵀ δ^{l+1})_j, the error the composite neuron
  received through the transposed read of the shared weights (same sign as e_BP);
* feedback weights: (W^{l+1})ᵀ itself (forward and backward share one weight), so θ_W = 0;
* R2: ``None``. SSNN-BP's neurons are memoryless (no membrane, no temporal state), so a BPTT
  through time adds nothing beyond the per-step gradient; the only non-differentiable element is
  the Bernoulli sampling, for which the rule defines no surrogate. R1 is the reference.

Norm ratio: ΔW^l ≈ −Δw_min · T · ∇ (output) and −α Δw_min T ∇ (hidden), so with the nominal
η = Δw_min the ratio ‖ΔW‖/‖η ∇L‖ is about T (α T for hidden layers), not 1.

:func:`~plausigrad.analysis.references.ssnnbp.sample_updates` (the numpy reference,
:mod:`plausigrad.analysis.references.ssnnbp`) is a vectorised numpy version of the same per-step
algorithm (forward sweep, WTA sample by the exponential race, backward sweep of gradient spikes,
coincidence counts) for fixed weights; without Brian2's pipeline latency it is the same
stochastic process. The tests use it for the angle-versus-T property; ``tools``/reports use it
for quick sweeps.
"""

import numpy as np

from plausigrad.analysis.alignment import AlignmentModel, rate_backprop
from plausigrad.analysis.figures import DynamicsSpec
from plausigrad.analysis.readout import slot_counts, slot_end_values
from plausigrad.analysis.references import layer_lists
from plausigrad.analysis.references.ssnnbp import expected_forward
# sample_updates: tests/test_ssnnbp.py imports it from this plug-in
from plausigrad.analysis.references.ssnnbp import sample_updates  # noqa: F401
from plausigrad.rules.losses import SoftmaxCrossEntropy
from plausigrad.rules.ssnnbp import SSNNBP


def r1_gradients(weights, recorded, labels):
    """R1 (rate-network CE gradient) from the recorded rates, derivatives and mean softmax."""
    error, loss = SoftmaxCrossEntropy().output_error(recorded["rate"][-1], labels)
    gradients, errors = rate_backprop(weights, recorded, error)
    return gradients, errors, loss


class SSNNBPAlignment(AlignmentModel):
    """The :class:`~plausigrad.analysis.alignment.AlignmentModel` of SSNN-BP."""

    rule_name = SSNNBP.name
    #: spikes are random draws: the forward activity is read from the probe run itself
    stochastic = True

    def dynamics_spec(self, rule, windows, layer_sizes):
        """Drive z (spike probability clip(z, 0, 1), no threshold), f', ν, net gradient events,
        the input's spike one step ago and w of W1 (it changes on every coincidence)."""
        return DynamicsSpec(
            neuron_group="layer1", soma="zin", threshold=None, soma_label="drive z",
            compartments=(("fprime", "f′(z)"), ("nuin", "backprop ν"),
                          ("gnet", "g⁺ − g⁻ events")),
            input_group="input", trace="h1", synapses="W1")

    def error_probes(self, layer_sizes):
        n_layers = len(layer_sizes) - 1
        probes = {self.layer_group(l): (("nusum", "fpsum"), tuple(range(layer_sizes[l])))
                  for l in range(1, n_layers)}
        probes[self.layer_group(n_layers)] = (("psum",), tuple(range(layer_sizes[-1])))
        return probes

    @staticmethod
    def _at_slot_ends(record, group, variable, n_samples, windows):
        """``variable`` of ``group`` at the last step of each probe slot, (P, n)."""
        return slot_end_values(record.probes[group], variable, n_samples, windows.slot_steps)

    def local_errors(self, record, n_samples, windows, layer_sizes):
        """Σ_t ν of every hidden neuron over its gradient window, (P, n_l)."""
        return {l: self._at_slot_ends(record, self.layer_group(l), "nusum", n_samples, windows)
                for l in range(1, len(layer_sizes) - 1)}

    def recorded_forward(self, rule, state, record, input_spikes, n_samples, windows,
                         layer_sizes):
        """Rates, derivatives and output softmax of the probe run (see the module docstring)."""
        steps = windows.forward_steps
        n_layers = len(layer_sizes) - 1
        counts = [np.asarray(input_spikes).sum(axis=0)]
        for l in range(1, n_layers + 1):  # every spike of the slot (the whole slot counts)
            counts.append(slot_counts(*record.spikes[self.layer_group(l)], layer_sizes[l],
                                      n_samples, windows.slot_steps))
        rates = [c / steps for c in counts[:n_layers]]
        rates.append(self._at_slot_ends(record, self.layer_group(n_layers), "psum", n_samples,
                                        windows) / steps)
        derivative = [None] + [
            self._at_slot_ends(record, self.layer_group(l), "fpsum", n_samples, windows) / steps
            for l in range(1, n_layers)] + [np.ones((n_samples, layer_sizes[-1]))]
        return {"count": counts, "rate": rates, "derivative": derivative}

    def reference_forward(self, rule, state, input_spikes):
        """The expected-rate ANN on the input spike rates (a^l = clip(W a + b, 0, 1), softmax
        output): the network SSNN-BP samples, for callers that want a deterministic reference."""
        out = expected_forward(layer_lists(state, dtype=None),
                               np.asarray(input_spikes, dtype=np.float64).mean(axis=0))
        return {"count": None, **out}

