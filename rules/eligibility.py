"""Eligibility traces of BioGrad, in two selectable forms.

Source: ALGORITHMS.md §2.4 [RECONSTRUCTED]: the e-prop eligibility trace (Bellec et al. 2020) of a
non-recurrent current-based LIF neuron, computed forward in time from local quantities only.
For synapse i -> j of a layer (presynaptic trace x̂_i, postsynaptic pseudo-derivative ψ_j)::

    presynaptic trace       x̂_i[t]   = d_c · x̂_i[t-1] + s_i[t]             (neuron i, models)
    membrane sensitivity    ε_ji[t]  = d_v · ε_ji[t-1] · (1 - s_j[t-1]) + x̂_i[t-1]
                                       (= ∂v_j[t]/∂W_ji with the reset treated as constant)
    eligibility             ē_ji     = (1/T_f) Σ_t ψ_j[t] · ε_ji[t]         (≈ ∂a_j/∂W_ji)

* ``exact``: ε and ē are synaptic variables: ε decays like the membrane, ``dε/dt = −ε / τ_v``
  (exact integration, τ_v = −dt / ln d_v), and a synaptic ``run_regularly`` adds x̂_i[t-1] and
  accumulates ē every step; the postsynaptic spike resets ε (``on_post``) — per-synapse,
  per-step work.
* ``factorised``: ē_ji ≈ ψ̄_j · x̄_i with ψ̄_j = (1/T_f) Σ_t ψ_j[t] and x̄_i = (1/T_f) Σ_t x̂_i[t-1];
  both are neuron-level running sums (no per-synapse work until the update). It drops the
  membrane's temporal filtering and the covariance of ψ and x̂ (ALGORITHMS.md [PROPOSAL]); the
  constant gain between the two (≈ 1/(1-d_v) for a sub-threshold membrane) is absorbed by η.
  ``make bench`` and the tests measure the difference.
"""

from dataclasses import dataclass

ELIGIBILITY_FORMS = ("factorised", "exact")


@dataclass(frozen=True)
class EligibilityCode:
    """Brian2 pieces of one eligibility form, for a feedforward ``Synapses`` object."""

    model: str            #: synaptic variables
    readout: str          #: expression of ē_ji at the update
    step: str = ""        #: per-step synaptic statements (``run_regularly`` in ``groups``)
    on_post: str = ""     #: statement on a postsynaptic spike
    slot_reset: str = ""  #: statement at the start of every slot


def eligibility_code(form):
    """The Brian2 pieces implementing eligibility ``form`` (see module docstring)."""
    if form == "factorised":
        return EligibilityCode(model="", readout="psibar_post * xbar_pre")
    if form == "exact":
        return EligibilityCode(
            model="deps/dt = -eps / tau_membrane : 1 (clock-driven)  # ε = ∂v_post/∂w\n"
                  "ebar : 1  # Σ_t ψ_post ε over the forward window\n",
            readout="ebar / forward_steps",
            step="eps = eps + xlag_pre\nebar += psi_post * eps * in_forward_post",
            on_post="eps = 0",
            slot_reset="eps = 0; ebar = 0")
    raise ValueError(f"unknown eligibility form {form!r}; choose one of {ELIGIBILITY_FORMS}")
