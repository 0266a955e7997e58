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

:func:`sample_updates` is a vectorised numpy version of the same per-step algorithm (forward
sweep, WTA sample by the exponential race, backward sweep of gradient spikes, coincidence counts)
for fixed weights; without Brian2's pipeline latency it is the same stochastic process. The tests
use it for the angle-versus-T property; ``tools``/reports use it for quick sweeps.
"""

import numpy as np

from plausigrad.analysis.alignment import AlignmentModel, rate_backprop
from plausigrad.analysis.figures import DynamicsSpec
from plausigrad.analysis.readout import slot_counts, slot_end_values
from plausigrad.rules.losses import SoftmaxCrossEntropy
from plausigrad.rules.ssnnbp import SSNNBP


def sample_updates(weights, biases, pixels, labels, steps, *, gradient_scale=1.0,
                   input_rate=1.0, rng=None):
    """Run the SSNN-BP sampling for ``steps`` steps on every sample with fixed weights.

    ``weights[l-1]`` is W^l (n_l, n_{l-1}); ``pixels`` (P, n_0) in [0, 1]. Returns a dict with
    ``coincidences[l-1]`` = Σ_{samples, steps} (g⁺ − g⁻)_j x_i (so ΔW^l = −Δw_min · that / P for
    one mini-batch of P samples), and the recorded quantities of the alignment analysis:
    ``rate[l]`` (P, n_l) spikes / T, ``derivative[l]`` mean f', the output's mean softmax as
    ``rate[L]``, and ``nu[l]`` = Σ_t ν (the local error of hidden layer l).
    """
    rng = np.random.default_rng() if rng is None else rng
    n_layers = len(weights)
    labels = np.asarray(labels, dtype=int)
    n_samples = len(labels)
    y = np.eye(weights[-1].shape[0])[labels]
    probability = input_rate * np.asarray(pixels, dtype=np.float64)
    coincidences = [np.zeros_like(w, dtype=np.float64) for w in weights]
    counts = [np.zeros((n_samples, n)) for n in [probability.shape[1]] + [w.shape[0] for w in weights]]
    fpsum = [None] + [np.zeros((n_samples, w.shape[0])) for w in weights]
    nusum = [None] + [np.zeros((n_samples, w.shape[0])) for w in weights]
    for _ in range(steps):
        x = [(rng.random(probability.shape) < probability).astype(np.float64)]
        fprime = [None]
        for l in range(1, n_layers):
            z = x[-1] @ weights[l - 1].T + biases[l - 1]
            fprime.append(((z > 0) & (z < 1)).astype(np.float64))
            x.append((rng.random(z.shape) < np.clip(z, 0.0, 1.0)).astype(np.float64))
        z = x[-1] @ weights[-1].T + biases[-1]
        arrival_key = z - np.log(-np.log(rng.random(z.shape)))  # exponential race (Gumbel-max)
        winner = np.eye(z.shape[1])[np.argmax(arrival_key, axis=1)]
        x.append(winner)
        shifted = np.exp(z - z.max(axis=1, keepdims=True))
        counts[n_layers] += shifted / shifted.sum(axis=1, keepdims=True)
        g = winner - y  # g⁺ − g⁻ of the output: o(1 − y) − y(1 − o)
        for l in range(n_layers, 0, -1):
            coincidences[l - 1] += g.T @ x[l - 1]
            if l > 1:
                nu = g @ weights[l - 1]
                nusum[l - 1] += nu
                fpsum[l - 1] += fprime[l - 1]
                p = gradient_scale * nu * fprime[l - 1]
                g = np.sign(p) * (rng.random(p.shape) < np.abs(p))
        for l in range(n_layers):
            counts[l] += x[l]
    rates = [c / steps for c in counts]
    derivative = [None] + [f / steps for f in fpsum[1:n_layers]] + [np.ones_like(rates[-1])]
    return {"coincidences": coincidences, "rate": rates, "derivative": derivative,
            "nu": nusum}


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
        n_layers = sum(1 for name in state if name.startswith("W"))
        a = [np.asarray(input_spikes, dtype=np.float64).mean(axis=0)]
        derivative = [None]
        for l in range(1, n_layers + 1):
            z = a[-1] @ np.asarray(state[f"W{l}"]).T + np.asarray(state[f"b{l}"])
            if l < n_layers:
                derivative.append(((z > 0) & (z < 1)).astype(np.float64))
                a.append(np.clip(z, 0.0, 1.0))
            else:
                e = np.exp(z - z.max(axis=1, keepdims=True))
                a.append(e / e.sum(axis=1, keepdims=True))
                derivative.append(np.ones_like(z))
        return {"count": None, "rate": a, "derivative": derivative}

