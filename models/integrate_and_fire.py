"""Non-leaky integrate-and-fire neurons with paired signed error units (EMSTDP).

Source: Shrestha, Fang, Wu, Qiu, "Approximating Back-propagation for a Biologically Plausible Local
Learning Rule in Spiking Neural Networks", ICONS 2019 (DOI 10.1145/3354265.3354275), as the
authors' public numpy code computes it: zmeidd/EMSTDP, ``EMSTDP_python/EMSTDP_algo.py``
(``Network.Train``, ``Network.Test``, ``Network.Init_Threshold``) with the MNIST script
``EMSTDP_python/EMSTDP_main.py``. Equations and thresholds marked [CODE] are read in that code;
the ICONS'19 paper itself was not available to check them. (An earlier version of these
docstrings cited ``EMSTDP_algo_new.py`` of zmeidd/loihi_2_EMSTDP: that is a different variant —
no inter-layer delay, a strict threshold, halved updates — and not the code followed here.)
What is *ours*: the Brian2 mapping (one group per layer holding soma and error unit, custom
events for the signed error spikes, the one-step input buffers that keep the code's order of
operations). Our numpy port of the code, against which the published profile is tested spike
for spike: :mod:`plausigrad.analysis.references.emstdp_code`.

Discrete time, one step = one ``dt`` (1 ms); every variable is dimensionless. Per step ``t``
[CODE]::

    soma          v[t]  = v[t-1] + I[t] + κ θ σ[t-1-δ]        I[t] = Σ_i W_ji s_i[t-1]
                  s[t]  = 1{v[t] ≥ θ}      then v <- 0 (``forward_reset = "subtract"``:
                                           v <- v - θ, ours, an option)
    output error  D[t]  = D[t-1] + y (ρ - s[t-1]) - (1 - y) s[t-1]      (error window only)
    hidden error  E[t]  = E[t-1] + Σ_k F_jk σ_k[t-1]       F = W^{l+1}ᵀ (symmetric), a fixed
                                                           random B (fa) or B^{(l)} from the
                                                           output errors (dfa)
    error spike   σ[t]  = +1 if D ≥ ε (E ≥ ϑ), -1 if D ≤ -ε (E ≤ -ϑ), then D (E) <- 0
                  (``error_reset = "subtract"``: E <- E ∓ ϑ, the code's ``rel = 1`` for hidden
                  units; the code's ``rel = 1`` output unit — threshold 1, no reset — is not
                  implemented)
    gate          σ_j   is emitted only if the neuron fired in the gate window, when
                  ``derivative_gate`` is on: the ReLU derivative estimated from phase-1 activity

The error spike σ[t] reaches the soma after the spike reset of step t + δ: δ = 1 in the code
(``U[t] += scale·θ·sdelta[t-1]`` after the threshold of step t), δ = 0 in the revised profile.
y is 1 for the labelled output unit, else 0: the target unit's error neuron counts its silent
steps, the others count their spikes, so the net error-spike count of output k is about
(T_2/ε)·(ρ y_k - r_k), the negative gradient of ½‖ρ y - r‖² (MSE on rates; target rate ρ =
``output_target_rate``, 1 in the code). Every error spike adds (σ = +1) or removes (σ = -1) one
threshold of membrane, i.e. about one forward spike (κ = ``error_scale`` = 1).

Windows (:class:`SlotTiming`; F = ``forward_steps``, S = ``slot_steps``; the input streams
through the whole TRAIN slot, phase 2 included):

====================  ===========================  ==========================================
                      published [CODE]             revised [OURS]
====================  ===========================  ==========================================
slot                  T = S = 2 F (code: 100)      S = F + T_b (default 49 + 50)
n1 (phase-1 count)    steps 2 .. F                 0 .. F − 1
n2 (phase-2 count)    F + 1 .. S − 1               F .. S − 2
error window          F .. S − 1 (t > twin)        F .. S − 2
derivative gate       spikes in 0 .. F − 2         spikes in n1's window
update                step S − 1, after its spikes  step S − 1 (no counting in it)
EVAL prediction       output spikes in 0 .. S − 1  output spikes in 0 .. F − 1
error injection       next step (δ = 1)            same step (δ = 0)
phase-2 membrane      continuous                   restarts from rest at step F
====================  ===========================  ==========================================

The published windows are the code's because of its latencies: input of step t reaches layer 1
in step t + 1, so the code counts from t = 2 and shifts phase 2 by the same amount.

Phase-2 restart (``restart_phase2``, revised profile, *ours*): at the first step of phase 2
(``feedback_onset``) every soma restarts from rest — v and the buffered input are cleared — so
phase 2 replays phase 1's start-up and n2 − n1 measures the error alone. In our windows a
continuous membrane gives every active neuron n2 − n1 ≈ +1 from the start-up alone; on MNIST that
bias drove W1 up (std 0.06 → 0.47 in two epochs) until the hidden layer fired on 90 % of the
steps and accuracy fell. In the code's windows the start-up gain is smaller (measured by an
independent comparison: about +0.3 spikes for hidden units, +0.6 for output units), which is
why the code can do without the restart.

Brian2 order inside a step: synaptic input and error input arrive in the ``synapses`` slot of step
t and are buffered (``I_basal``, ``E_in``) until the ``groups`` slot of step t+1, so that the
spike reset (``resets``) and the error-unit reset (``after_resets``) of step t cannot erase them;
the error injection runs ``after_resets``: in the revised profile in the on-event code of the
error spike itself, in the published one from ``sigma`` in the next step (a ``run_regularly``
ordered before that step's error events). The update pathway ``learn`` also runs
``after_resets``, so that a spike in the last step is counted first.

Thresholds (the code's ``init = 0``, ``norm = 0``), for sizes (n_0, h_0 ... h_{L-1}, n_O) with L
hidden layers (0-based hidden index i):

====================  =============================================================
quantity              formula
====================  =============================================================
θ of hidden 0         (√(3 n_0) / 2) · h_thr / (L + 1)
θ of hidden i+1       (√(3 h_i) / 2) · h_thr / (L - i)
θ of the output       (√(3 h_{L-1}) / 2) · o_thr
ϑ of hidden i         by the feedback mode, :func:`error_thresholds`
====================  =============================================================

e.g. 784-100-10: θ¹ = 6.062, θ^O = 0.866, ϑ¹ = 0.2165 (symmetric) or 0.6847 (fa, dfa).

Parameters (:class:`IntegrateAndFireParameters`):

===================  ======  =======  ===========================================================
name                 symbol  default  meaning
===================  ======  =======  ===========================================================
hidden_threshold     h_thr   0.5      scale of the hidden forward thresholds (code: ``h_thr``)
output_threshold     o_thr   0.1      scale of the output forward threshold (code: ``o_thr``)
error_threshold      e_thr   0.5      scale of the hidden error thresholds (code: ``e_thr``)
output_epsilon       ε       3        output error threshold (code: ``epsilon``; T = 100)
output_target_rate   ρ       1        the labelled unit's target rate in spikes/step (code: 1,
                                      it counts silent steps; < 1 is *ours*, see below)
error_scale          κ       1        thresholds injected per error spike (code: ``scale``)
error_reset          -       profile  after an error spike: ``subtract`` removes ϑ and keeps
                                      the residual (code: ``rel = 1``; the revised profile's),
                                      ``zero`` sets E to 0 (code: ``rel = 0``, every public
                                      script; the published profile's)
forward_reset        -       zero     after a forward spike: ``zero`` sets v to 0 (the code);
                                      ``subtract`` removes θ and keeps the residual (*ours*)
===================  ======  =======  ===========================================================

Why ``subtract`` matters for hidden layers: an output error spike moves a hidden error unit by
±F_jk, a real number. Reset to zero discards E − ϑ, so a unit emits one error spike per output
error spike whenever |F_jk| ≥ ϑ, whatever |F_jk| is: the propagated error saturates like
sign(F) once the weights outgrow ϑ (trained |W2| ≈ 0.3 vs ϑ = 0.22 on 784-100-10). Subtracting
keeps the count ≈ Σ F σ / ϑ, proportional to the backprop error. The output error units step by
±1 with an integer ε, so both resets act the same there. Measured (revised profile, symmetric,
784-100-10, first 10 000 MNIST images, 4 epochs, η 4e-3, first 2000 test images): 91.45 % with
``subtract``, 90.45 % with ``zero``; hence the revised profile departs from the public scripts.

Why ``forward_reset`` exists: reset to zero throws away v - θ at every spike, so a neuron driven
by a constant input I per step fires at 1/⌈θ/I⌉, a staircase (I = 0.55 θ and 0.95 θ both give
1/2), not the rate r = min(I/θ, 1) that the backprop reading of the rule assumes. Subtracting θ
keeps the residual and makes the long-run rate that linear function (a test checks both). It
does not help learning: with ``subtract`` (784-100-10, first 10 000 MNIST images, 4 epochs,
η 4e-3, first 2000 test images) accuracy fell to 86.55 % from 91.45 %, the hidden layer drifted
into saturation (81 % of hidden units firing on ≥ 47 of 49 steps vs 12 %; mean |W1| 0.54 vs
0.17). The residual that reset to zero discards acts as a soft bound on the rate. So the default
stays ``zero``, as in the spec and the code; ``--forward-reset subtract`` is an ablation.

Why ``output_target_rate`` exists (ρ, *ours*; the code's loss has ρ = 1): the labelled unit's
error neuron adds ρ − s per phase-2 step instead of 1 − s, so the loss is ½‖ρy − r‖². With ρ = 1
the target is out of reach: phase 2 starts with two silent start-up steps and a noisy drive
fires every step only far above θ, so the labelled unit's error stays positive, and through the
feedback it keeps pushing the hidden layer up. Measured (784-100-10, full MNIST, default settings,
49 spikes per phase counted on 1000 test images): after 5 epochs with ρ = 1, 48 % of the hidden
(unit, image) pairs fire on ≥ 47 of 49 steps and mean |W1| is 0.44; with ρ = 0.8 after 6 epochs
13 % and 0.20 (a backprop-trained ANN of the same shape, run in this network: 2.9 % and 0.13;
``tools/emstdp_hidden_saturation.py``).
Test accuracy after epochs 1–3: 95.05 / 95.46 / 95.88 % with ρ = 0.8 against 94.73 / 94.86 /
94.96 % with ρ = 1 (docs/results/emstdp-target-rate.md); with windows of 199 + 200 steps ρ = 0.7 reaches 97.14 %
and ρ = 0.8 97.00 / 97.02 % (two seeds), and ρ < 1 also lifts fixed random feedback. The default
stays 1, the code's, so that the rule as published is what ``--rule emstdp`` runs; ρ = 0.7–0.8
is the recommended range for accuracy (96.62 % with ρ = 0.7 and the spec's windows after 6
epochs).
"""

from dataclasses import dataclass

import numpy as np
from brian2 import NeuronGroup, Synapses
from plausigrad.models.encoders import bernoulli_source
from plausigrad.models.schedule_signals import EVAL
from plausigrad.models.layer import make_layer
from plausigrad.models.errors import (ConfigurationError, require_choice, require_positive,
                                      require_rate)
from plausigrad.models.parameters import param
from plausigrad.models.synapses import connect_all_to_all, signed_pathways


@dataclass(frozen=True)
class IntegrateAndFireParameters:
    """Threshold scales and error constants of the EMSTDP neurons (all dimensionless)."""

    hidden_threshold: float = param(0.5, "h_thr: scale of the hidden forward thresholds "
                                    "(θ¹ = √(3 n_in)/2 · h_thr/(L+1))")
    output_threshold: float = param(0.1, "o_thr: scale of the output forward threshold")
    error_threshold: float = param(0.5, "e_thr: scale of the hidden error thresholds")
    output_epsilon: float = param(3.0, "ε: output error threshold",
                                  flags=("--epsilon", "--output-epsilon"))
    output_target_rate: float = param(1.0, "ρ: the labelled output unit's target rate in "
                                      "spikes/step (1, the code's; 0.7-0.8 train better)",
                                      flags=("--target-rate", "--output-target-rate"))
    error_scale: float = param(1.0, "κ: scale of the error injected into the soma")
    error_reset: str = param(None, "error units after a spike: subtract (the code's rel=1, "
                             "keeps the residual) or zero (rel=0, the public scripts); default: "
                             "the rule's profile (EMSTDP published: zero, revised: subtract)",
                             choices=("zero", "subtract"))
    forward_reset: str = param("zero", "forward somata after a spike: zero (the code) or "
                               "subtract (keep the residual)", choices=("zero", "subtract"))

    def __post_init__(self):
        if self.error_reset is not None:
            require_choice("error reset", self.error_reset, ERROR_RESETS)
        require_choice("forward reset", self.forward_reset, FORWARD_RESETS)
        for name in ("hidden_threshold", "output_threshold", "error_threshold", "output_epsilon"):
            require_positive(name.replace("_", " "), getattr(self, name))
        require_rate("output target rate", self.output_target_rate, " spike/step")
        if isinstance(self.error_scale, bool) or not self.error_scale >= 0:
            raise ConfigurationError(f"error scale must be >= 0, got {self.error_scale!r}")

    @property
    def resolved_error_reset(self):
        """The error reset in force: ``error_reset``, or ``subtract`` where nothing chose one
        (a rule with profiles sets it from its profile, :mod:`plausigrad.rules.emstdp`)."""
        return self.error_reset or "subtract"


def forward_thresholds(layer_sizes, params):
    """θ^l for l = 1..L+1 (hidden layers, then the output), by the code's formulas."""
    _check_sizes(layer_sizes)
    hidden = layer_sizes[1:-1]
    n_hidden = len(hidden)
    thresholds = [np.sqrt(3.0 * layer_sizes[0]) / 2.0 * params.hidden_threshold / (n_hidden + 1)]
    for i in range(n_hidden - 1):
        thresholds.append(np.sqrt(3.0 * hidden[i]) / 2.0 * params.hidden_threshold / (n_hidden - i))
    thresholds.append(np.sqrt(3.0 * hidden[-1]) / 2.0 * params.output_threshold)
    return [float(t) for t in thresholds]


def error_thresholds(layer_sizes, params, feedback="symmetric"):
    """ϑ^l of the hidden error units, l = 1..L, by the code's formulas for ``feedback``.

    [CODE: zmeidd/EMSTDP, EMSTDP_python/EMSTDP_algo.py, ``Network.Init_Threshold`` with
    ``init = 0``, ``norm = 0``] ϑ = n_s · (√(3 / n_r) / 2) · e_thr / (i + 2) for hidden layer i
    (0-based), with n_s the size of the error-sending layer above and n_r the size in the root:

    ==========  ==========================  ==========================
    feedback    last hidden layer           deeper hidden layer i
    ==========  ==========================  ==========================
    symmetric   n_O · √(3 / h_i) / 2        h_{i+1} · √(3 / h_i) / 2
    fa          n_O · √(3 / n_O) / 2        h_{i+1} · √(3 / h_{i+1}) / 2
    dfa         n_O · √(3 / n_O) / 2        n_O · √(3 / n_O) / 2
    ==========  ==========================  ==========================

    (each times e_thr / (i + 2)). For 784-100-10: 0.2165 (symmetric), 0.6847 (fa, dfa).
    """
    _check_sizes(layer_sizes)
    require_choice("feedback mode", feedback, ("symmetric", "fa", "dfa"))
    hidden, n_out = layer_sizes[1:-1], layer_sizes[-1]
    thresholds = []
    for i in range(len(hidden)):
        last = i == len(hidden) - 1
        above = n_out if last else hidden[i + 1]
        if feedback == "symmetric":
            sender, root = above, hidden[i]
        elif feedback == "fa":
            sender, root = above, above
        else:
            sender, root = n_out, n_out
        thresholds.append(float(sender * np.sqrt(3.0 / root) / 2.0 * params.error_threshold
                                / (i + 2)))
    return thresholds


def _check_sizes(layer_sizes):
    if len(layer_sizes) < 3:
        raise ConfigurationError("EMSTDP needs at least one hidden layer (sizes n_in, h..., n_out)")
    for size in layer_sizes:
        require_positive("layer size", size)


@dataclass(frozen=True)
class SlotTiming:
    """Where, among the steps of a slot, an IF network counts, feeds errors back and learns.

    Every bound is a Brian2 expression of the engine's namespace constants ``forward_steps`` (F)
    and ``slot_steps`` (S); a window ``(a, b)`` holds the steps a ≤ k < b of a TRAIN slot. The
    weight update reads the counts on ``learn_step``, the last step S − 1, after that step's
    spikes are counted (the ``learn`` pathway runs after the resets).

    ==============  ==========================================================================
    field           meaning
    ==============  ==========================================================================
    n1              window of the phase-1 counts n1 (``count``)
    n2              window of the phase-2 counts n2
    error           window in which the error units integrate and emit error spikes
    gate            window of the count the derivative gate reads (``gate_count``)
    eval_stop       EVAL slots: the input streams and the output counts in [0, eval_stop)
    counted_steps   T_1 of the update, the length of the n1 window
    error_delay     steps from an error spike to its ±κθ in the own soma: 0 (the same step,
                    after the spike reset) or 1 (the next step, after its spike reset)
    ==============  ==========================================================================
    """

    name: str
    n1: tuple
    n2: tuple
    error: tuple
    gate: tuple
    eval_stop: str
    counted_steps: str
    error_delay: int

    def equations(self):
        """The window flags as subexpressions (integers 0/1) for a group's model."""
        def window(bounds):
            return (f"int(step_in_slot >= {bounds[0]} and step_in_slot < {bounds[1]})"
                    " * training_slot")
        evaluating = f"int(step_in_slot < {self.eval_stop}) * int(slot_type == {EVAL})"
        return f'''
n1_window = {window(self.n1)} + {evaluating} : integer
n2_window = {window(self.n2)} : integer
error_window = {window(self.error)} : integer
gate_window = {window(self.gate)} : integer
stimulus = training_slot + {evaluating} : integer
'''


#: [CODE: zmeidd/EMSTDP, EMSTDP_python/EMSTDP_algo.py, ``Network.Train``/``Test``] with T = S
#: steps t = 0..S-1 and ``twin`` = F − 1 (the code's T = 100, twin = 49: ``Windows(50, 50)``):
#: the error starts at t > twin, the counts are t ∈ [2, twin + 2) and [twin + 2, T) (``tmp0``,
#: ``tmp1`` at t = T − 1), the gate reads t ∈ [0, twin) (``derivative``), ``Test()`` counts the
#: whole window, and an error spike of step t enters the soma after the reset of step t + 1
#: (``U[t] += scale·θ·sdelta[t-1]``, after the threshold of t).
PUBLISHED_TIMING = SlotTiming(
    "published", n1=("2", "forward_steps + 1"), n2=("forward_steps + 1", "slot_steps"),
    error=("forward_steps", "slot_steps"), gate=("0", "forward_steps - 1"),
    eval_stop="slot_steps", counted_steps="(forward_steps - 1)", error_delay=1)

#: [OURS] phase 1 = the forward window [0, F), phase 2 = [F, S − 1), the update step S − 1
#: outside both; errors act in the step they are emitted; EVAL counts the forward window.
REVISED_TIMING = SlotTiming(
    "revised", n1=("0", "forward_steps"), n2=("forward_steps", "slot_steps - 1"),
    error=("forward_steps", "slot_steps - 1"), gate=("0", "forward_steps"),
    eval_stop="forward_steps", counted_steps="forward_steps", error_delay=0)

TIMINGS = {timing.name: timing for timing in (PUBLISHED_TIMING, REVISED_TIMING)}


#: State of an IF layer; the slot reset (generated from it) zeroes everything but ``pending``
#: and the constants.
IF_STATE = '''
v : 1              # [soma] membrane potential U
I_basal : 1        # [soma] synaptic input of this step, integrated in the next one
count : 1          # [soma] n1: spikes in the phase-1 window
n2 : 1             # [soma] spikes in the phase-2 window
gate_count : 1     # [soma] spikes in the gate window (the derivative gate's activity)
E : 1              # [error] accumulated signed error (D for the output layer)
E_in : 1           # [error] error input of this step (hidden layers), integrated in the next
fired : 1          # [soma] 1 in the step after a spike: s[t-1]
nerr : 1           # [error] net signed error spikes emitted in this slot (σ summed)
pending : 1        # [soma] training samples accumulated since the last mini-batch update
theta : 1 (constant, shared)    # [soma] forward threshold θ
eth : 1 (constant, shared)      # [error] error threshold (ε for the output, ϑ for hidden)
'''

#: With an error delay of one step: the error spike of the previous step, injected now.
DELAYED_ERROR_STATE = '''
sigma : 1          # [error] σ of the previous step, injected into the soma in this one
'''

#: Per-step map (``groups`` slot, before the thresholds). The neurons are non-leaky: nothing
#: decays, so there is no ODE; the map only integrates the input that arrived in the step.
IF_STEP = '''
v = (v + I_basal) * (1 - restart_phase2 * feedback_onset)
I_basal = 0
pending += learn_step
'''

HIDDEN_ERROR_STEP = '''
E += E_in
E_in = 0
'''

#: The output error neuron: counts silent steps of the target, spikes of the others (phase 2).
OUTPUT_ERROR_STEP = '''
E += error_window * (target * target_rate - fired)
fired = 0
'''

#: The delayed injection (``error_delay`` 1), after the spike reset and before this step's
#: error events set a new σ.
DELAYED_INJECTION = '''
v += error_scale * theta * sigma
sigma = 0
'''

#: How a forward soma resets after its spike (``forward_reset``).
FORWARD_RESETS = {"zero": "v = 0", "subtract": "v -= theta"}

#: The spike bookkeeping that follows either reset.
IF_COUNT = 'count += n1_window; n2 += n2_window; gate_count += gate_window; fired = 1'

#: How an error unit resets after its spike (``error_reset``): the code's ``rel`` 0 and 1.
ERROR_RESETS = {"zero": ("E = 0", "E = 0"), "subtract": ("E -= eth", "E += eth")}


def error_on_event(error_reset, error_delay=0):
    """Error spikes reset the error unit and inject ±κθ into the own soma after the spike
    reset, in the same step (``error_delay`` 0) or, through ``sigma``, the next (1)."""
    positive, negative = ERROR_RESETS[error_reset]
    if error_delay:
        up, down = "sigma = 1", "sigma = -1"
    else:
        up, down = "v += error_scale * theta", "v -= error_scale * theta"
    return {"error_positive": f"{positive}\nnerr += 1\n{up}",
            "error_negative": f"{negative}\nnerr -= 1\n{down}"}


def if_layer(n_neurons, schedule_equations, *, role, name, threshold, error_threshold,
             target_expression=None, derivative_gate=False, error_reset="subtract",
             forward_reset="zero", timing=REVISED_TIMING, extra_events=None):
    """One layer of non-leaky IF neurons with their paired error units (a
    :class:`~plausigrad.models.layer.Layer`).

    ``role`` is ``"hidden"`` (error input ``E_in`` from feedback synapses, optional derivative
    gate) or ``"output"`` (error neuron of the loss, needs ``target_expression``). Spikes are
    allowed whenever the stimulus is on (``stimulus``: all of a TRAIN slot, the first
    ``timing.eval_stop`` steps of an EVAL slot). ``timing`` (:class:`SlotTiming`) places the
    counts, the errors and the gate. ``extra_events`` are a rule's additional custom events.
    """
    if role not in ("hidden", "output"):
        raise ValueError(f"role must be 'hidden' or 'output', got {role!r}")
    declarations = IF_STATE + (DELAYED_ERROR_STATE if timing.error_delay else "")
    model = declarations + schedule_equations + timing.equations()
    gate = ""
    if role == "output":
        if target_expression is None:
            raise ValueError("an output layer needs target_expression")
        model += f"target = {target_expression} : 1\n"
        step = IF_STEP + OUTPUT_ERROR_STEP
    else:
        step = IF_STEP + HIDDEN_ERROR_STEP
        if derivative_gate:
            gate = " and gate_count > 0"
    events = {"error_positive": f"error_window > 0 and E >= eth{gate}",
              "error_negative": f"error_window > 0 and E <= -eth{gate}",
              **(extra_events or {})}
    group = NeuronGroup(n_neurons, model, threshold="stimulus > 0 and v >= theta",
                        reset=f"{FORWARD_RESETS[forward_reset]}; {IF_COUNT}", events=events,
                        name=name)
    group.theta = threshold
    group.eth = error_threshold
    group.run_regularly(step, when="groups", name=f"{name}_step")
    if timing.error_delay:
        group.run_regularly(DELAYED_INJECTION, when="after_resets", order=-1,
                            name=f"{name}_error_injection")
    for event, code in error_on_event(error_reset, timing.error_delay).items():
        group.run_on_event(event, code)
    return make_layer(group, declarations, keep=("pending",))


#: Bookkeeping of the streaming input: its phase-1 spike count (n1 of the presynaptic side of
#: the first weight layer) and the samples pending in the mini-batch.
INPUT_STATE = '''
count : 1      # [axon] n1: spikes in the phase-1 window
pending : 1    # [axon] training samples accumulated since the last mini-batch update
'''


def streaming_input(n_inputs, pixel_expression, schedule_equations, *, name="input",
                    timing=REVISED_TIMING, draw="independent", extra_events=None):
    """Input layer: pixel i spikes with probability ``input_rate · p_i`` while the stimulus is on
    (all of a TRAIN slot: the input keeps streaming in phase 2). ``draw``: one random number per
    pixel and step (``independent``) or one per step shared by all pixels (``shared``, the code's
    ``randy``), see :func:`plausigrad.models.encoders.bernoulli_source`."""
    layer = bernoulli_source(n_inputs, pixel_expression, schedule_equations + timing.equations(),
                             state=INPUT_STATE, reset="count += n1_window", gate="stimulus",
                             name=name, extra_events=extra_events, keep=("pending",), draw=draw)
    layer.group.run_regularly("pending += learn_step", when="groups", name=f"{name}_step")
    _reset_pending_on_apply(layer, extra_events)
    return layer


def _reset_pending_on_apply(layer, events):
    """A presynaptic layer whose rule applies mini-batches (an ``apply_batch`` event) starts
    counting pending samples anew when it fires that event."""
    if events and "apply_batch" in events:
        layer.group.run_on_event("apply_batch", "pending = 0")


def network_if_layer(layer_sizes, layer, params, schedule_equations, *, name, target_expression,
                     derivative_gate, feedback="symmetric", timing=REVISED_TIMING,
                     extra_events=None):
    """Layer ``layer`` (1..L) of an IF network of ``layer_sizes``, with the code's thresholds.

    The role follows the position (L: output, with the error neuron of the loss and threshold
    ε; else hidden, with ϑ^l of :func:`error_thresholds` for ``feedback``); θ^l from
    :func:`forward_thresholds`; resets from ``params`` (:class:`IntegrateAndFireParameters`);
    windows from ``timing``. ``extra_events`` (a rule's presynaptic events) go to hidden layers
    only; with an ``apply_batch`` event the layer resets ``pending`` on it.
    """
    output = layer == len(layer_sizes) - 1
    error_threshold = (params.output_epsilon if output
                       else error_thresholds(layer_sizes, params, feedback)[layer - 1])
    built = if_layer(layer_sizes[layer], schedule_equations, role="output" if output else "hidden",
                     name=name, threshold=forward_thresholds(layer_sizes, params)[layer - 1],
                     error_threshold=error_threshold,
                     target_expression=target_expression if output else None,
                     derivative_gate=derivative_gate, error_reset=params.resolved_error_reset,
                     forward_reset=params.forward_reset, timing=timing,
                     extra_events=None if output else extra_events)
    if not output:
        _reset_pending_on_apply(built, extra_events)
    return built


def error_pathways(weight, receiver):
    """Error spikes into the error units of the layer below, as (pathways, on_event):
    ``E_in_<receiver> ±= weight`` on ``error_positive`` / ``error_negative``. ``receiver`` is
    ``"post"`` on a feedback synapse, ``"pre"`` on the transposed read of a forward synapse."""
    return signed_pathways("error", f"E_in_{receiver} {{sign}}= {weight}")


def error_feedback_synapses(upper, lower, *, name):
    """Fixed all-to-all feedback ``B`` from the error units of ``upper`` into those of ``lower``."""
    on_pre, on_event = error_pathways("B", "post")
    synapses = Synapses(upper, lower, model="B : 1  # fixed feedback weight\n", on_pre=on_pre,
                        on_event=on_event, name=name)
    connect_all_to_all(synapses)
    return synapses
