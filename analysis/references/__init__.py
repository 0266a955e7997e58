"""Numpy references of the three rules, side by side, in one shape (Norse style).

=========================================  ====================================================
module                                     reference
=========================================  ====================================================
:mod:`.biograd`                            the discrete-time compartment network (forward
                                           window, exact/factorised eligibility) and BioGrad's
                                           update; training helpers for hyper-parameter search
:mod:`.emstdp`                             EMSTDP's phase-1 IF network and its mini-batch RMS
                                           update on phase-1/phase-2 counts
:mod:`.ssnnbp`                             SSNN-BP's per-step sampling (forward sweep, WTA race,
                                           gradient spikes, coincidences) and its update; the
                                           expected-rate ANN
:mod:`.common`                             what they share: :func:`run` (the loop over a step),
                                           :func:`bernoulli`, :func:`predict`, layer lists
=========================================  ====================================================

Every module has

* a frozen parameters dataclass (the Brian2 model's or rule's own where it fits:
  ``CompartmentNeuronParameters``, ``EMSTDPParameters``, ``SSNNBPParameters``; else its own:
  ``biograd.Config``, ``emstdp.IFNetwork``),
* a ``State`` (a frozen dataclass of numpy arrays, batch on axis 0) and ``initial_state(...)``,
* ``step(params, weights, state, inputs_t) -> (new_state, outputs)``: one time step, pure (its
  arguments are not changed; randomness only from an explicit ``np.random.Generator`` passed as
  ``rng=`` or from pre-drawn arrays),
* window helpers written as :func:`run` over ``step`` (``forward``, ``window``),
* the rule's update as a pure function returning new weights (``update``).

The equations, with their units and the Brian2 code they mirror (``models/``, ``rules/``), are in
each module's docstring. Dependency direction: models <- rules <- protocols <- analysis; the
references import from models and rules only.
"""

from plausigrad.analysis.references.common import (bernoulli, layer_lists, n_weight_layers,
                                                   predict, run)

__all__ = ["bernoulli", "layer_lists", "n_weight_layers", "predict", "run"]
