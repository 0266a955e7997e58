"""What the three numpy references share: the loop over a step, Bernoulli draws, the prediction.

Every reference module (:mod:`~plausigrad.analysis.references.biograd`,
:mod:`~plausigrad.analysis.references.emstdp`, :mod:`~plausigrad.analysis.references.ssnnbp`)
has a pure ``step(params, weights, state, inputs_t) -> (new_state, outputs)``; its window
helpers are :func:`run` over that step. Weights are passed as *layer lists*
``{"W": [W^1 .. W^L], "b": [b^1 .. b^L]}`` (``W^l`` of shape (n_l, n_{l-1})); :func:`layer_lists`
reads them from a rule's state dict (``W1``, ``b1``, ...).
"""

import numpy as np

__all__ = ["run", "bernoulli", "predict", "layer_lists", "n_weight_layers"]


def run(step, params, weights, state, inputs, *, observe=None, **extra):
    """Fold ``step`` over ``inputs`` (an iterable of per-step inputs); return the final state.

    ``observe(t, new_state, outputs)`` is called after every step (recording); ``extra`` keyword
    arguments (e.g. ``rng``) are passed to every step.
    """
    for t, inputs_t in enumerate(inputs):
        state, outputs = step(params, weights, state, inputs_t, **extra)
        if observe is not None:
            observe(t, state, outputs)
    return state


def bernoulli(probability, rng, *, steps=None, uniform_dtype=np.float64, dtype=np.float64):
    """Spikes ``1{U < p}`` with ``U ~ U[0, 1)`` drawn in one call of ``rng.random``.

    ``steps``: draw ``steps`` independent copies at once (shape ``(steps,) + p.shape``, axis 0 is
    time). ``uniform_dtype`` is the dtype of the uniforms (float32 halves the draws' cost; it is
    part of the random stream), ``dtype`` that of the returned 0/1 array.
    """
    probability = np.asarray(probability)
    shape = probability.shape if steps is None else (steps,) + probability.shape
    return (rng.random(shape, dtype=uniform_dtype) < probability).astype(dtype)


def predict(counts):
    """Argmax of the output counts per sample (last axis); ties go to the lowest index."""
    return np.argmax(counts, axis=-1)


def n_weight_layers(state):
    """Number of weight layers of a rule's state dict (keys ``W1`` .. ``WL``)."""
    return sum(1 for name in state if name.startswith("W"))


def layer_lists(state, *, biases=True, dtype=np.float64):
    """``{"W": [W1 .. WL], "b": [b1 .. bL]}`` from a rule's state dict (``b`` only if ``biases``);
    arrays converted to ``dtype`` (None: as they are)."""
    n_layers = n_weight_layers(state)
    names = ("W", "b") if biases else ("W",)
    return {name: [np.asarray(state[f"{name}{l}"], dtype=dtype) for l in range(1, n_layers + 1)]
            for name in names}
