"""Sleep phase: Hebbian alignment of the feedback weights B with the feedforward weights Wᵀ.

Source: BioGrad abstract ("a periodic 'sleep' phase, in which a local Hebbian rule aligns the
feedback and feedforward weights"); the rule itself is reconstructed (ALGORITHMS.md §2.5) after
the weight-mirror mechanism (Akrout et al. 2019).

During a SLEEP slot the input is silent and every hidden layer fires independent Bernoulli noise
(probability ``sleep_noise_rate`` per step). Noise of layer l reaches layer l+1 through W^{l+1};
the feedback synapse B_jk (presynaptic: unit k of layer l+1, postsynaptic: unit j of layer l)
learns from the coincidence of k's spikes with j's recent activity::

    on a sleep spike of k:     B_jk += η_s · (x̂_j[t-1] - ⟨x̂_j⟩)          (covariance Hebbian rule)
    at every sleep slot start: B_jk -= λ_s · B_jk                        (decay keeps B bounded)

x̂_j[t-1] (``xlag``) is exactly the trace that drove k's basal current at this step, and ⟨x̂_j⟩ is
the postsynaptic neuron's own running mean over the slot so far (``xsum / (step + 1)``), so
E[ΔB_jk] ∝ Cov(x̂_j, s_k) ∝ f'_k · W_kj for white noise: B drifts toward c · (W^{l+1})ᵀ while the
decay forgets its random start. Everything read is local to the synapse, its two neurons, and the
phase flag.

==================  ======  =======================================================
parameter           symbol  meaning
==================  ======  =======================================================
sleep_noise_rate    r_s     noise spike probability per step of hidden neurons
sleep_learning_rate η_s     Hebbian step per coincidence
sleep_decay         λ_s     fraction of B forgotten per sleep slot
==================  ======  =======================================================
"""

from plausigrad.models.schedule_signals import SLEEP, slot_kind_condition

HEBBIAN_ON_SLEEP_SPIKE = ("B += sleep_learning_rate * "
                          "(xlag_post - xsum_post / (step_in_slot_post + 1))")
DECAY_AT_SLOT_START = f"B -= sleep_decay * B * {slot_kind_condition(SLEEP)}"
