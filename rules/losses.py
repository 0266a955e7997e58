"""The losses the rules descend, as objects: one definition for the logged metric and the analysis.

A rule names its loss (:attr:`plausigrad.rules.base.LearningRule.loss`). The trainer logs
``loss.metric(counts, labels, steps)`` per epoch (``train_loss`` / ``test_loss`` in
``metrics.json``, with ``loss.name``), and the alignment analysis backpropagates
``loss.output_error(activations, labels)``. Both read the output layer's forward-window spike
counts, so a loss is a pure numpy function of (counts or activations, labels).

========================  =====================================================================
loss                      definition (per sample; y = label, K output units, T forward steps)
========================  =====================================================================
:class:`RateMSE`          a = n / T,  L = ½ Σ_k (a_k − ρ·1[k = y])²,  ∂L/∂a = a − ρ·onehot(y)
                          (BioGrad, EMSTDP; ρ = the rule's target rate)
:class:`SoftmaxCrossEntropy`  p = softmax(z) (analysis: the WTA's mean winning probability),
                          L = −log p_y, ∂L/∂z = p − onehot(y) (SSNN-BP). Logged from the
                          empirical win frequencies with the Krichevsky–Trofimov estimate
                          p̂_k = (n_k + ½) / (T + K/2), which is finite when the label never
                          wins (the plain frequency n_y / T would give −log 0)
========================  =====================================================================
"""

from dataclasses import dataclass

import numpy as np


def one_hot(labels, n_classes):
    """(n_samples, n_classes) float array with a 1 at each label."""
    return np.eye(n_classes)[np.asarray(labels, dtype=int)]


@dataclass(frozen=True)
class RateMSE:
    """Mean squared error of the output spike rates against ρ · one-hot (see the table)."""

    target_rate: float = 1.0
    name = "mse_on_rates"
    label = "MSE loss on rates"

    def output_error(self, rates, labels):
        """∂L/∂a per sample, (n, K), and the loss per sample, (n,)."""
        error = np.asarray(rates, dtype=np.float64) - self.target_rate * one_hot(
            labels, np.shape(rates)[1])
        return error, 0.5 * np.sum(error ** 2, axis=1)

    def metric(self, counts, labels, steps):
        """Mean loss over samples from forward-window spike counts (n, K) of ``steps`` steps."""
        return float(np.mean(self.output_error(np.asarray(counts) / steps, labels)[1]))


@dataclass(frozen=True)
class SoftmaxCrossEntropy:
    """Cross-entropy of a softmax output (see the table)."""

    name = "softmax_cross_entropy"
    label = "cross-entropy of the win frequencies"

    def output_error(self, probabilities, labels):
        """∂L/∂z = p − onehot(y) per sample, and the loss −log p_y per sample."""
        labels = np.asarray(labels, dtype=int)
        error = np.array(probabilities, dtype=np.float64)
        rows = np.arange(len(labels))
        loss = -np.log(np.maximum(error[rows, labels], 1e-300))
        error[rows, labels] -= 1.0
        return error, loss

    def metric(self, counts, labels, steps):
        """Mean −log p̂_y of the win counts (n, K) over ``steps`` steps (KT estimate, finite)."""
        counts = np.asarray(counts, dtype=np.float64)
        estimate = (counts + 0.5) / (steps + 0.5 * counts.shape[1])
        return float(np.mean(self.output_error(estimate, labels)[1]))
