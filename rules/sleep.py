"""Sleep phase: Hebbian alignment of the feedback weights B with the feedforward weights Wᵀ.

Source: BioGrad abstract ("a periodic 'sleep' phase, in which a local Hebbian rule aligns the
feedback and feedforward weights"); the rule itself is reconstructed (ALGORITHMS.md §2.5) after
the weight-mirror mechanism (Akrout et al. 2019), where B learns from the correlation of a noise
input x with the linear response y = W x of the layer above.

During a SLEEP slot the input is silent and every hidden layer fires independent Bernoulli noise
(probability ``sleep_noise_rate`` per step). A spike of unit j in layer l reaches the basal
dendrite of every unit k in layer l+1 one step later, as part of k's input current
I_k = Σ_j' W_kj' s_j'. The feedback synapse B_jk (presynaptic: unit k of layer l+1, postsynaptic:
unit j of layer l) learns at that moment, triggered by j's ``sleep_echo`` event (the step after
j's spike)::

    on sleep_echo of j:        B_jk += η_s · (I_k[t] - ⟨I_k⟩)     (spike-triggered dendritic input)
    at every sleep slot start: B_jk -= λ_s · B_jk                 (decay keeps B bounded)

⟨I_k⟩ is k's own running mean of its input over steps 1..t of the slot (``Isum / step``; step 0
never carries input, as nothing fired before it, and the echo comes at t ≥ 1). With independent
noise, E[I_k − ⟨I_k⟩ | s_j = 1] = W_kj (1 − r_s)(1 − 1/t), so B drifts toward
c · (W^{l+1})ᵀ — through the dendritic input itself, before k's threshold, so the estimate does
not depend on k firing — while the decay forgets B's random start. Everything read is local: the
synapse, its postsynaptic neuron's own spike, its presynaptic neuron's dendritic input, and the
phase flag.

The decay stays a ``run_regularly`` statement on the slot clock, not a ``dB/dt = −B/τ`` ODE: it
acts once per *sleep* slot (B is fixed in training and evaluation slots), a discrete event of the
schedule, not a continuous decay in time.

An earlier version averaged over steps 0..t (``Isum / (step + 1)``). The empty step 0 biased the
mean toward zero, so every echo added a share of k's mean input Σ_j' W_kj' r_s to the whole
column B_·k: a rank-one error that held the angle of a trained 784-500-10 network near 47° (a
numpy simulation of this rule on its frozen W2 stays at 47° for 400 slots; averaging over 1..t
reaches 16°).

The first version triggered on k's spikes and read j's trace; it aligned B far more slowly
(a random 20-60-10 network: 91.6° -> ~70-75° in 40 sleep slots), because k's threshold
nonlinearity discards most of the correlation.

==================  ======  =======================================================
parameter           symbol  meaning
==================  ======  =======================================================
sleep_noise_rate    r_s     noise spike probability per step of hidden neurons
sleep_learning_rate η_s     Hebbian step per spike of the postsynaptic unit
sleep_decay         λ_s     fraction of B forgotten per sleep slot
==================  ======  =======================================================
"""

from plausigrad.models.schedule_signals import SLEEP, slot_kind_condition

HEBBIAN_ON_ECHO = "B += sleep_learning_rate * (I_last_pre - Isum_pre / step_in_slot_pre)"
DECAY_AT_SLOT_START = f"B -= sleep_decay * B * {slot_kind_condition(SLEEP)}"
