"""Three-compartment spiking neuron of BioGrad: basal dendrite, soma, apical dendrite (+ error unit).

Source: Tang, Kumar, Polykretis, Michmizos, "BioGrad: Biologically plausible gradient-based learning
for spiking neural networks", arXiv:2110.14092 (2021). The paper's abstract fixes the ingredients
(multi-compartment neurons, local eligibility traces, signed error spikes, periodic sleep); the
equations below are the team's reconstruction (../shared/ALGORITHMS.md §2.3), using the authors'
lab's discrete current-based LIF (combra-lab, ``sddpg_networks.py``). Every line marked
*reconstructed* is not read in the paper.

Discrete time, one step = one ``dt`` (1 ms); all variables dimensionless. Per step ``t``::

    basal dendrite   c[t]   = d_c · c[t-1] + I[t] + b          I[t] = Σ_i W_ji s_i[t-1]
    soma             v[t]   = d_v · v[t-1] · (1 - s[t-1]) + c[t]
                     s[t]   = H(v[t] - V_th)                    (reset: v <- 0)
    surrogate        ψ[t]   = 1{|v[t] - V_th| < w} / (2w)       (pseudo-derivative ∂s/∂v)
    outgoing trace   x̂[t]   = d_c · x̂[t-1] + s[t]               (what this neuron adds to the
                                                                 basal current of the next layer)
    apical dendrite  u      += ±q · B_jk  per error spike of unit k above (not leaky; does not
                                                                 drive the soma; reset per sample)
    error unit       D      accumulates the gated apical signal ψ̄ · Δu / q and emits one signed
                            error event per step: ``error_positive`` when D ≥ 1 (D -= 1),
                            ``error_negative`` when D < 0 (D += 1)                  [reconstructed]

The output layer's apical compartment receives the local teaching signal at the first feedback
step: u = a - y (MSE on rates, a = spike count / T_f, y = y_on (``target_rate``) for the labelled
unit, else 0), and its error unit starts from D = ψ̄ · u / q + ξ, ξ ~ U[0, 1): dithered quantisation, so the expected
net number of error events is exactly ψ̄ · u / q [reconstructed; the paper's error coding is
unknown]. Hidden error units start from D = ξ. With ``error_dither = 0`` the start value is 1/2
instead (deterministic rounding; used by tests that compare devices).

Sleep: hidden layers (``sleep_noise=True``) fire Bernoulli noise with probability
``sleep_noise_rate`` per step; every neuron keeps the basal input it integrated in the current step
(``I_last``) and its running sum over the sleep slot (``Isum``), and emits ``sleep_echo`` in the
step after a sleep spike — the trigger and the quantities of the feedback Hebbian rule
(:mod:`plausigrad.rules.sleep`). The soma is silent during the feedback window (v may still
integrate the decaying basal current there; it is reset at the next slot).

How it is written in Brian2. Between steps the basal current, the membrane and the trace decay
as differential equations, integrated by Brian2's exact solver (``method="exact"``)::

    dc/dt = −c / τ_c        dv/dt = −v / τ_v        dx̂/dt = −x̂ / τ_c

with τ = −dt / ln d (τ_c = 1.443 ms for d_c = 0.5, τ_v = 3.476 ms for d_v = 0.75), so that one
step of the solution, x ← x · exp(−dt/τ), is exactly the per-step factor d of the discrete map
(measured: exp(−dt/τ) == d in double precision for both defaults, and the golden runs of
``tests/test_golden.py`` are bit-identical to the former per-step statements). What enters in a
step (I, b, the spike resets) stays discrete: a ``run_regularly`` before the decay (order −2:
x̂ of the previous step is kept as ``xlag``, the arrived input is taken), the state updater
(order −1), and a ``run_regularly`` after it (order 0: c += I + b, v += c, ψ), all in the
``groups`` slot; input that arrives *at* a step is not an ODE term, so it cannot be written as
one. The schedule flags the statements read (``in_forward``, ``error_step``, ...) are
subexpressions from :mod:`plausigrad.models.schedule_signals`; the timelines that drive them are
built by :mod:`plausigrad.protocols.schedule`.

Parameters (:class:`CompartmentNeuronParameters`):

====================  ======  =======  =====================================================
name                  symbol  default  meaning
====================  ======  =======  =====================================================
basal_decay           d_c     0.5      per-step decay of the basal current (combra-lab);
                                       τ_c = −dt / ln d_c = 1.443 ms
membrane_decay        d_v     0.75     per-step decay of the somatic membrane (combra-lab);
                                       τ_v = −dt / ln d_v = 3.476 ms
threshold             V_th    0.5      somatic firing threshold (combra-lab)
surrogate_halfwidth   w       0.5      half-width of the rectangular pseudo-derivative
====================  ======  =======  =====================================================
"""

import math
from dataclasses import dataclass

from brian2 import NeuronGroup

from plausigrad.models.compartments import compartments_of
from plausigrad.models.errors import ConfigurationError, require_positive
from plausigrad.models.layer import make_layer
from plausigrad.models.parameters import param
from plausigrad.models.clock import STEP


@dataclass(frozen=True)
class CompartmentNeuronParameters:
    """Constants of the discrete current-based LIF soma and its dendrites (all dimensionless)."""

    basal_decay: float = param(0.5, "d_c: per-step decay of the basal current")
    membrane_decay: float = param(0.75, "d_v: per-step decay of the membrane potential")
    threshold: float = param(0.5, "V_th: firing threshold of the soma")
    surrogate_halfwidth: float = param(0.5, "half-width of the rectangular pseudo-derivative ψ")

    def __post_init__(self):
        for name in ("basal_decay", "membrane_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ConfigurationError(f"{name.replace('_', ' ')} must lie in (0, 1) "
                                         f"(a decay per step, exp(-dt/tau)), got {value!r}")
        require_positive("threshold", self.threshold)
        require_positive("surrogate_halfwidth", self.surrogate_halfwidth)

    @property
    def basal_time_constant(self):
        """τ_c = −dt / ln d_c (1.443 ms for d_c = 0.5): exp(−dt/τ_c) = d_c."""
        return -STEP / math.log(self.basal_decay)

    @property
    def membrane_time_constant(self):
        """τ_v = −dt / ln d_v (3.476 ms for d_v = 0.75): exp(−dt/τ_v) = d_v."""
        return -STEP / math.log(self.membrane_decay)

    def namespace(self):
        """Names the equations below use for the constants (d_v also for BioGrad's exact
        eligibility, whose ε decays like the membrane)."""
        return {"tau_basal": self.basal_time_constant,
                "tau_membrane": self.membrane_time_constant, "d_v": self.membrane_decay,
                "v_th": self.threshold, "halfwidth": self.surrogate_halfwidth}


#: State variables of a compartment neuron. The slot reset (generated from this declaration,
#: :mod:`plausigrad.models.layer`) sets all of them to zero at the start of every slot, except
#: the bias ``b`` (learned) and ``dither`` (drawn anew: :data:`DITHER_START`).
COMPARTMENT_STATE = '''
b : 1            # [basal] bias current into the basal dendrite (learned, kept across slots)
dc/dt = -c / tau_basal : 1      # [basal] feedforward current, decays with τ_c
I_basal : 1      # [basal] synaptic input that arrived in this step, integrated by c in the next
dv/dt = -v / tau_membrane : 1   # [soma] membrane potential, decays with τ_v
psi : 1          # [soma] pseudo-derivative ψ = ∂s/∂v (rectangular surrogate)
psisum : 1       # [soma] Σ ψ over the forward window
count : 1        # [soma] spikes in the forward window
dxhat/dt = -xhat / tau_basal : 1  # [axon] outgoing presynaptic trace x̂, decays with τ_c
xlag : 1         # [axon] x̂ of the previous step: the trace that shaped the next layer's c now
xsum : 1         # [axon] Σ x̂ over the forward window
noise : 1        # [soma] 1 in a step where sleep noise fires the neuron
I_last : 1       # [basal] basal input integrated in this step (sent by the layer below)
Isum : 1         # [basal] Σ I_last over the sleep slot so far
fired : 1        # [soma] 1 from a spike until the next step
echo : 1         # [soma] 1 in the step after a spike
u : 1            # [apical] accumulated error signal
err : 1          # [apical] error unit: quantised, gated copy of u awaiting emission as events
dither : 1       # [apical] U[0,1) drawn once per slot, start value of the error unit
'''

#: Which compartment each state variable belongs to (the ``[tag]`` of COMPARTMENT_STATE's
#: comments), e.g. ``u`` -> "apical"; the locality audit names compartments with it.
COMPARTMENTS = compartments_of(COMPARTMENT_STATE)

#: Subexpressions derived from the state (T_f = ``forward_steps`` comes from the schedule).
COMPARTMENT_READOUTS = '''
rate = count / forward_steps : 1     # [soma] a: forward-window firing rate (spikes/step)
psibar = psisum / forward_steps : 1  # [soma] ψ̄: mean pseudo-derivative
xbar = xsum / forward_steps : 1      # [axon] x̄: mean presynaptic trace
'''

#: Before the decay (``groups`` slot, order -2): keep the trace of the previous step and take
#: the input that arrived in it.
COMPARTMENT_BEFORE_DECAY = '''
xlag = xhat
xsum += xlag * in_forward
echo = fired
fired = 0
I_last = I_basal
Isum += I_last * in_sleep
I_basal = 0
'''

#: Then Brian2's exact integrator decays c, v and x̂ over one step (order -1), and after it
#: (order 0) the input enters (left to right, as in the discrete map).
COMPARTMENT_STEP = '''
c = c + I_last + b
v = v + c
psi = int(abs(v - v_th) < halfwidth) / (2 * halfwidth)
psisum += psi * in_forward
'''

#: Spike reset: soma to zero, count in the forward window, bump the outgoing trace.
COMPARTMENT_RESET = '''
v = 0
count += in_forward
xhat += 1
fired = 1
'''

#: Start value of the error unit's dither in every slot: U[0, 1), or 1/2 without dithering.
DITHER_START = "0.5 + error_dither * (rand() - 0.5)"

#: Sleep noise: the draw is short-circuited outside sleep, so it costs nothing in training.
SLEEP_NOISE_STEP = 'noise = int(in_sleep > 0 and rand() < sleep_noise_rate)'

#: The output layer's local teacher: apical u = a - y at the first feedback step.
OUTPUT_TEACHER = '''
u = u * (1 - feedback_onset) + feedback_onset * (rate - target_rate * target)
err = err * (1 - feedback_onset) + feedback_onset * (psibar * u / error_quantum + dither)
'''

#: Hidden error units start from the dither value at the first feedback step.
HIDDEN_ERROR_ONSET = 'err = err * (1 - feedback_onset) + feedback_onset * dither'

#: Custom events: signed error spikes, and the step after a sleep spike (the Hebbian trigger,
#: one step later so the layer above has integrated the spike: see plausigrad.rules.sleep).
COMPARTMENT_EVENTS = {"error_positive": "error_step > 0 and err >= 1",
                      "error_negative": "error_step > 0 and err < 0",
                      "sleep_echo": "in_sleep > 0 and echo > 0"}


def compartment_layer(n_neurons, params, schedule_equations, *, role, name,
                      target_expression=None, sleep_noise=False, extra_model="",
                      extra_events=None):
    """Create one layer of three-compartment neurons; returns its :class:`~plausigrad.models.layer.Layer`.

    Parameters
    ----------
    n_neurons : int
        Layer size.
    params : CompartmentNeuronParameters
        Its constants enter through :meth:`CompartmentNeuronParameters.namespace`.
    schedule_equations : str
        The schedule flags (:func:`plausigrad.models.schedule_signals.schedule_equations`).
    role : {"hidden", "output"}
        Output neurons receive the teaching signal ``target`` in their apical compartment; hidden
        neurons receive error spikes through feedback synapses.
    target_expression : str
        For ``role="output"``: expression for y_j (1 for the labelled unit, else 0).
    sleep_noise : bool
        Fire independent Bernoulli noise spikes with probability ``sleep_noise_rate`` per step
        during sleep (the drive of the Hebbian feedback alignment).
    extra_model, extra_events :
        Variables and events a learning rule adds (e.g. its ``learn`` event).
    """
    if role not in ("hidden", "output"):
        raise ValueError(f"role must be 'hidden' or 'output', got {role!r}")
    model = COMPARTMENT_STATE + COMPARTMENT_READOUTS + schedule_equations + extra_model
    if role == "output":
        if target_expression is None:
            raise ValueError("an output layer needs target_expression")
        model += f"target = {target_expression} : 1\n"
    group = NeuronGroup(n_neurons, model, threshold="spiking_allowed > 0 and (v > v_th or noise > 0)",
                        reset=COMPARTMENT_RESET, events={**COMPARTMENT_EVENTS, **(extra_events or {})},
                        method="exact", name=name)
    step = COMPARTMENT_STEP + (SLEEP_NOISE_STEP + "\n" if sleep_noise else "")
    step += OUTPUT_TEACHER if role == "output" else HIDDEN_ERROR_ONSET
    group.run_regularly(COMPARTMENT_BEFORE_DECAY, when="groups", order=-2,
                        name=f"{name}_before_decay")
    group.state_updater.order = -1  # the exact decay of c, v and x̂
    group.run_regularly(step, when="groups", name=f"{name}_step")
    group.run_on_event("error_positive", "err -= 1")
    group.run_on_event("error_negative", "err += 1")
    return make_layer(group, COMPARTMENT_STATE + COMPARTMENT_READOUTS, keep=("b",),
                      start={"dither": DITHER_START})
