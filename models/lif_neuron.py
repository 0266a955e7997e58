"""Single-compartment LIF layer of BioGrad's *published* profile: the lab code's neuron, with
per-synapse reset-aware eligibility, online error neurons and direct feedback from the output.

Source: the BioGrad lab code (Tang et al. 2021), ``biograd/network_cells.py`` (classes
``OnlineHiddenCell``, ``OnlineOutputCell``) and ``biograd/network_w_biograd.py`` (class
``BioGradNetworkWithSleep``), as reused in j0sh162/FederatedLearning-SNN; its numpy transcription
is :mod:`plausigrad.analysis.references.biograd_lab` (the equations, each with the method it is
read from, are in that module's docstring and not repeated in full here).

Discrete time, one step = one ``dt``; all variables dimensionless. Lab step t of layer l::

    v[t] = d · v[t-1] · (1 − s[t-1]) + (Σ_i W_ji x_i[t] + b_j)       s[t] = 1{v[t] > V_th}
    ψ[t] = a · 1{|v[t] − V_th| < w}                                  [CODE: train_forward_step]
    p_ji ← d p_ji + x_i[t];  e_ji ← e_ji + p_ji ψ_j[t];  p_ji ← p_ji (1 − s_j[t] − v_j[t] ψ_j[t])
    q_j ← d q_j + 1;         f_j ← f_j + q_j ψ_j[t];     q_j ← q_j (1 − s_j[t] − v_j[t] ψ_j[t])

**Pipelining** [OURS]. The lab code runs all layers in the same step (layer l integrates the
spikes layer l−1 emitted in that very step). Brian2 delivers a spike in the step it is emitted
and the receiving group integrates it in the next one, so here layer l computes lab step t in
Brian2 step ``t + l`` of the slot (its *depth* l): it is ``active`` in steps [l, l + T_f) of a
TRAIN or EVAL slot. Every spike, potential and trace is the lab's, shifted by l steps (the
agreement test, ``tests/test_biograd_published.py``, compares them step by step). The input is
on in steps [0, T_f) (``in_forward``); ``x_i[t]`` is the presynaptic ``spk_prev`` (the spike of
the previous Brian2 step). Per Brian2 step, in this order:

* ``groups`` (order 0): ``spk_prev = spk``; if active: v (the formula above; the input current
  ``I_syn`` is what the synapses delivered in the previous step), ψ; ``I_syn = 0``;
* ``thresholds``: spike if active and v > V_th; reset ``spk = 1``, ``count += 1`` (TRAIN/EVAL)
  or ``sleep_count += 1`` (SLEEP) — v is *not* reset (the lab's (1 − s) factor does it);
* ``synapses``: ``I_syn_post += w`` (graded input: ``w · c``, c the event count of the cell);
* ``end``: the traces (q, f here; in the ``per_step`` form also p, e on the synapses,
  :data:`SYNAPSE_TRACE_STEP`), which need the spike of this step; only in TRAIN slots (the
  lab's test pass has no traces). The event-driven form of p, e is below.

Event-driven eligibility [OURS: a rewrite of the lab's per-step recurrence with the same
values to rounding; ``trace_form="event"``, the default; ``"per_step"`` runs the recurrence
above on every synapse at every step]. The per-step factors a_t = d · k_t,
k_t = 1 − s_t − v_t ψ_t, belong to the post neuron j, so j keeps over the learning steps since
its last *rebase* (``EVENT_TRACE_STEP``, ``thresholds`` slot)::

    H ← H + d ψ_t P          P ← P · d · k_t          (P = 1, H = 0 at the slot start)

and a synapse keeps c = p / P and ê = e − c · H (``trace_scaled``, ``trace_offset``): between its
inputs p = c · P and e = ê + c · H change without the synapse being touched (``trace_in`` and
``trace_dw`` are these subexpressions). A synapse is touched

* at an x of its input (event ``trace_input`` of the pre layer: ``spk_prev > 0`` in a TRAIN
  slot): c += k_t / P, ê += ψ_t − (k_t / P) · H — x = 1 adds k_t to p and ψ_t to e;
* at a rebase of its post neuron (event ``trace_rebase``, when |P| < ``TRACE_REBASE_BELOW`` =
  1e-4 or P = 0 after a spike without ψ): ê += c · H, c ← c · P, then P = 1, H = 0; this
  bounds the cancellation in ê + c · H to ~1e-16 / 1e-4. The rebase pathway runs before the
  input pathway of the same step (pathway order 1 < 2);
* at the update (``learn``), which reads e and clears c and ê for the next TRAIN slot.

Nothing runs on a synapse in SLEEP and EVAL slots, where the per-step form does its full
pass. The numpy prototype of the same scheme is
:func:`plausigrad.analysis.references.biograd_lab.event_driven_traces`.

Online error (output layer, depth L) [CODE: ``train_online``, ``OnlineOutputCell.train_feedback_step``]:
for lab steps t ≥ t_soft, i.e. Brian2 steps [t_soft + L + 1, T_f + L + 1) (``errwin``), the
error neurons read the output count n (which includes the spike of the step before) and
integrate δ = softmax(n) − y; softmax_k = 1 / Z_k, Z_k = Σ_j exp(n_j − n_k), a summed variable of
the all-to-all ``softmax`` synapses of the output onto itself [OURS: the form; the value is the
lab's]. E⁺ += δ, E⁻ −= δ (``epos``, ``eneg``); events ``error_positive`` (E⁺ > 1) and
``error_negative`` (E⁻ > 1) subtract 1 (the lab subtracts last step's spike before adding δ:
the same sequence of values) and add ±1 to the output's error dendrite u; the feedback synapses
B (output → every hidden layer) add ±B_jk to the hidden dendrite u_j. The update reads u / K,
K = T_f − t_soft (the lab's ``feedback_step``).

Sleep [CODE: ``sleep_feedback_update``]: in a SLEEP slot one hidden layer m is *driven*
(``driven = 1 + slot index mod (L − 1)``, so a block of (L − 1)·N sleep slots drives every
layer N times [OURS: the lab runs the layers one after the other, each on a sleep batch; the B
updates are independent and W is fixed in sleep, so the order is immaterial]). Its neurons do
not integrate; in steps [1, 1 + S) each emits ``sleep_pos`` and ``sleep_neg`` events with
probability r (``sleep_rate``, U(0, 1), drawn per layer at every TRAIN slot start, so one value
per sleep block), the noise trace h += 1 / −= 1, and the W synapses above deliver ±w. Layer
l > m is active in steps [1 + l − m, 1 + l − m + S); the layer right above m gets no bias (the
lab's ``forward_func(pos) − forward_func(neg)`` cancels it), the layers further up do. The
output counts its sleep spikes o (``sleep_count``). ``sleep_learn`` (last step of the slot,
driven layer) makes the B synapses accumulate Σ h_j o_k, Σ o_k^P and the number of sleep
samples (:mod:`plausigrad.rules.biograd`); B is updated at the start of the next non-SLEEP slot.

Parameters (:class:`LIFNeuronParameters`):

==========  ======  =======  ===========================================================
name        symbol  default  meaning [CODE: run_biograd_training.py, snn_param]
==========  ======  =======  ===========================================================
vdecay      d       0.3      per-step decay of the membrane potential
vth         V_th    0.3      firing threshold (spike when v > V_th)
grad_win    w       0.3      half-width of the rectangular pseudo-derivative
grad_amp    a       1.0      height of the rectangular pseudo-derivative
==========  ======  =======  ===========================================================
"""

from dataclasses import dataclass

from brian2 import NeuronGroup, Synapses

from plausigrad.models.errors import ConfigurationError, require_positive
from plausigrad.models.layer import make_layer
from plausigrad.models.parameters import param
from plausigrad.models.schedule_signals import EVAL, TRAIN, slot_kind_condition
from plausigrad.models.synapses import connect_all_to_all


@dataclass(frozen=True)
class LIFNeuronParameters:
    """Constants of the lab code's discrete LIF neuron (all dimensionless, per step): the four
    entries of its ``neuron_param`` tuple ``(vdecay, vth, grad_win, grad_amp)``
    [CODE: biograd/network_cells.py, OnlineHiddenCell.__init__]; the lab scripts use
    (0.3, 0.3, 0.3, 1.0) for every layer [CODE: biograd/run_biograd_training.py, snn_param]."""

    vdecay: float = param(0.3, "d: per-step decay of the LIF membrane (published profile)")
    vth: float = param(0.3, "V_th: LIF firing threshold, spike when v > V_th (published)")
    grad_win: float = param(0.3, "w: half-width of the rectangular pseudo-derivative (published)")
    grad_amp: float = param(1.0, "a: height of the rectangular pseudo-derivative (published)")

    def __post_init__(self):
        value = self.vdecay
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ConfigurationError(f"LIF vdecay must lie in [0, 1), got {value!r}")
        for name in ("vth", "grad_win", "grad_amp"):
            require_positive(f"LIF {name}", getattr(self, name))

    def namespace(self):
        """Names of the constants in the Brian2 equations."""
        return {"lif_decay": self.vdecay, "lif_threshold": self.vth,
                "lif_window": self.grad_win, "lif_amplitude": self.grad_amp}


#: State of a LIF layer; the slot reset zeroes all but ``b``, ``bias_grad``, ``sleep_rate``, ``Z``.
LIF_STATE = '''
v : 1            # [soma] membrane potential
spk : 1          # [soma] 1 in the step of a spike (set by the reset)
spk_prev : 1     # [axon] spike of the previous step: the x the layer above integrates now
I_syn : 1        # [soma] input delivered in the previous step (Σ w over the spikes)
psi : 1          # [soma] pseudo-derivative ψ
b : 1            # [soma] bias (learned, kept across slots)
bias_grad : 1    # [soma] Σ over the mini-batch of (u / K) · f (kept until applied)
trace_bias : 1   # [soma] q: reset-aware trace of the bias
trace_db : 1     # [soma] f: Σ_t q ψ
dend : 1         # [apical] error dendrite u
count : 1        # [soma] spikes in the window (TRAIN/EVAL)
sleep_count : 1  # [soma] spikes in a sleep slot (o, read by the output's feedback synapses)
noise_trace : 1  # [soma] h: Σ (z⁺ − z⁻) of the sleep noise of a driven layer
sleep_rate : 1 (shared)  # [soma] r: sleep noise probability of this layer, drawn per block
'''

OUTPUT_STATE = '''
epos : 1         # [error] positive error neuron E⁺ (IF, soft reset by 1)
eneg : 1         # [error] negative error neuron E⁻
Z : 1            # [error] Σ_j exp(n_j − n_k): 1 / Z is softmax_k of the counts
'''

#: groups, order 0: the soma (lab: ``train_forward_step`` / ``test_forward_step`` /
#: ``sleep_forward_step``); ``bias_on`` is 0 for the layer right above a driven one in sleep.
LIF_STEP = '''
spk_prev = spk
spk = 0
v = int(active > 0) * (lif_decay * v * (1 - spk_prev) + (I_syn + b * bias_on)) + int(active == 0) * v
I_syn = 0
psi = active * int(abs(v - lif_threshold) < lif_window) * lif_amplitude
'''

#: end slot: the bias trace, after the spike of this step is known (TRAIN slots only).
LIF_TRACE_STEP = '''
trace_bias = int(learning > 0) * (lif_decay * trace_bias + 1) + int(learning == 0) * trace_bias
trace_db = trace_db + trace_bias * psi * learning
trace_bias = trace_bias * (1 - learning * spk - learning * v * psi)
'''

#: the same for every synapse of the layer's input (p = trace_pre, e = trace_dw).
SYNAPSE_TRACE_MODEL = '''
trace_in : 1     # p: reset-aware presynaptic trace (the lab's trace_pre)
trace_dw : 1     # e: Σ_t p ψ_post
'''
SYNAPSE_TRACE_STEP = '''
trace_in = int(learning_post > 0) * (lif_decay * trace_in + spk_prev_pre) + int(learning_post == 0) * trace_in
trace_dw = trace_dw + trace_in * psi_post * learning_post
trace_in = trace_in * (1 - learning_post * spk_post - learning_post * v_post * psi_post)
'''

#: The spike condition (the thresholder's; the event-driven trace evaluates it too).
LIF_THRESHOLD = "active > 0 and v > lif_threshold"

#: Below this |P| a neuron rebases the event-driven traces of its synapses: it bounds the
#: cancellation in e = ê + c·H to ~1e-16 / TRACE_REBASE_BELOW (the agreement tests hold to
#: 1e-10 against the per-step form).
TRACE_REBASE_BELOW = 1e-4

#: Event-driven form of the synapse trace [OURS, same values as SYNAPSE_TRACE_STEP to rounding]:
#: the post neuron's share (see the module docstring, "Event-driven eligibility").
EVENT_TRACE_STATE = '''
trace_factor : 1    # [soma] k = 1 − s − v ψ of this learning step (1 otherwise)
trace_product : 1   # [soma] P: Π d·k over the learning steps since the last rebase
trace_sum : 1       # [soma] H: Σ d ψ P_{t−1} over the same steps
rebase_product : 1  # [soma] P of this step before the rebase decision (read at a rebase)
rebase_sum : 1      # [soma] H of this step before the rebase decision
rebase : 1          # [soma] 1 in a step where the neuron rebases its synapses
'''

#: thresholds, order 1 (after the soma and its ψ; the ``trace_rebase`` event is evaluated at
#: order 2): P, H and the rebase decision. The spike of this step is the thresholder's
#: condition on the same v. Recorders at ``thresholds`` order −1 see P and H of the previous
#: step, like the synapses' c and ê (updated in the ``synapses`` slot).
EVENT_TRACE_STEP = f'''
trace_factor = 1 - learning * (int({LIF_THRESHOLD}) + v * psi)
rebase_sum = trace_sum + learning * lif_decay * psi * trace_product
rebase_product = trace_product * (1 - learning + learning * lif_decay * trace_factor)
rebase = int(learning > 0 and abs(rebase_product) < trace_rebase_below)
trace_sum = rebase_sum * (1 - rebase)
trace_product = rebase_product * (1 - rebase) + rebase
'''
#: (P and H of this step go through ``rebase_*`` first: ``rebase_sum = trace_sum`` followed by an
#: in-place update of ``trace_sum`` would alias one array on Brian2's numpy target.)

#: The post layer's event: rebase (P written into every synapse, then P = 1, H = 0).
EVENT_TRACE_REBASE_EVENT = {"trace_rebase": "rebase > 0"}

#: The pre layer's event: an x of this step (last step's spike) in a TRAIN slot.
EVENT_TRACE_INPUT_EVENT = {"trace_input": "spk_prev > 0 and training_slot > 0"}

#: The synapse's share: c = p / P and ê = e − c·H; p and e are subexpressions.
EVENT_SYNAPSE_TRACE_MODEL = '''
trace_scaled : 1  # c = p / P_post: the presynaptic trace in units of the post neuron's P
trace_offset : 1  # ê = e − c · H_post
trace_in = trace_scaled * trace_product_post : 1               # p (the lab's trace_pre)
trace_dw = trace_offset + trace_scaled * trace_sum_post : 1    # e
'''

#: ``trace_input`` pathway (runs after ``trace_rebase``): an input x adds x · k to p and x · ψ to e
#: (x = ``spk_prev_pre``: 1 for a spike, the event count for graded input).
EVENT_TRACE_ON_INPUT = '''
trace_offset += learning_post * spk_prev_pre * (psi_post - trace_factor_post / trace_product_post * trace_sum_post)
trace_scaled += learning_post * spk_prev_pre * trace_factor_post / trace_product_post
'''

#: ``trace_rebase`` pathway (post event): write p and e out in the new reference (P = 1, H = 0).
EVENT_TRACE_ON_REBASE = '''
trace_offset += trace_scaled * rebase_sum_post
trace_scaled = trace_scaled * rebase_product_post
'''

#: after the update read the trace (``learn`` pathway): the slot's traces start again from 0.
EVENT_TRACE_CLEAR = "trace_scaled = 0\ntrace_offset = 0"

LIF_RESET = '''
spk = 1
count += 1 - in_sleep
sleep_count += in_sleep
'''

#: groups, order 1 (after the soma): the output's error neurons (lab: OnlineOutputCell).
ERROR_NEURON_STEP = '''
epos = epos + errwin * (1 / Z - target)
eneg = eneg - errwin * (1 / Z - target)
'''


def _flags(depth, n_layers, soft_error_step):
    """Per-layer subexpressions: activity windows of this depth (see the module docstring)."""
    hidden = max(n_layers - 1, 1)
    lag = f"({depth} - driven)"
    return f'''
driven = 1 + (timestep(t, dt) // slot_steps) % {hidden} : integer
sleep_active = int(in_sleep > 0 and {n_layers} > 1 and {depth} > driven and step_in_slot >= 1 + {lag} and step_in_slot < 1 + {lag} + sleep_steps) : integer
active = int((slot_type == {TRAIN} or slot_type == {EVAL}) and step_in_slot >= {depth} and step_in_slot < {depth} + forward_steps) + sleep_active : integer
learning = active * training_slot : integer
bias_on = 1 - int(sleep_active > 0 and {depth} == driven + 1) : integer
noise_on = int(in_sleep > 0 and driven == {depth} and step_in_slot >= 1 and step_in_slot < 1 + sleep_steps) : integer
errwin = int(training_slot > 0 and step_in_slot >= {soft_error_step} + {depth} + 1 and step_in_slot < forward_steps + {depth} + 1) : integer
'''


#: custom events of a hidden layer: paired sleep noise, end of its sleep slot.
SLEEP_EVENTS = {"sleep_pos": "noise_on > 0 and rand() < sleep_rate",
                "sleep_neg": "noise_on > 0 and rand() < sleep_rate",
                "sleep_learn": "in_sleep > 0 and driven == DEPTH and step_in_slot == slot_steps - 1"}

#: error events of the output layer.
ERROR_EVENTS = {"error_positive": "errwin > 0 and epos > 1",
                "error_negative": "errwin > 0 and eneg > 1"}


def lif_layer(n_neurons, depth, n_layers, schedule_equations, *, name, soft_error_step,
              target_expression=None, extra_model="", extra_events=None, event_traces=False):
    """One LIF layer at ``depth`` l (1..L; L: the output, with the error neurons); returns its
    :class:`~plausigrad.models.layer.Layer`. Needs ``lif_*``, ``sleep_steps`` and the schedule
    constants in the namespace (and ``trace_rebase_below`` with ``event_traces``); the output
    needs the ``softmax`` synapses (:func:`softmax_synapses`) for ``Z``. ``event_traces``: the
    neuron keeps the post share (P, H, rebase) of the event-driven synapse traces."""
    output = depth == n_layers
    trace_state = EVENT_TRACE_STATE if event_traces else ""
    model = (LIF_STATE + (OUTPUT_STATE if output else "") + trace_state + schedule_equations
             + _flags(depth, n_layers, soft_error_step) + extra_model)
    events = dict(extra_events or {})
    if event_traces:
        events.update(EVENT_TRACE_REBASE_EVENT)
    if output:
        if target_expression is None:
            raise ValueError("the output layer needs target_expression")
        model += f"target = {target_expression} : 1\n"
        events.update(ERROR_EVENTS)
    else:
        events.update({k: c.replace("DEPTH", str(depth)) for k, c in SLEEP_EVENTS.items()})
    group = NeuronGroup(n_neurons, model, threshold=LIF_THRESHOLD,
                        reset=LIF_RESET, events=events, method="exact", name=name)
    group.run_regularly(LIF_STEP, when="groups", order=0, name=f"{name}_step")
    group.run_regularly(LIF_TRACE_STEP, when="end", order=0, name=f"{name}_traces")
    if event_traces:
        group.run_regularly(EVENT_TRACE_STEP, when="thresholds", order=1,
                            name=f"{name}_trace_product")
        group.thresholder["trace_rebase"].order = 2
    if output:
        group.run_regularly(ERROR_NEURON_STEP, when="groups", order=1, name=f"{name}_errors")
        group.run_on_event("error_positive", "epos -= 1\ndend += 1")
        group.run_on_event("error_negative", "eneg -= 1\ndend -= 1")
    else:
        group.run_on_event("sleep_pos", "noise_trace += 1")
        group.run_on_event("sleep_neg", "noise_trace -= 1")
    declarations = LIF_STATE + (OUTPUT_STATE if output else "") + trace_state
    keep = ("b", "bias_grad", "sleep_rate") + (("Z",) if output else ())
    return make_layer(group, declarations, keep=keep,
                      start={"trace_product": 1} if event_traces else None)


def draw_sleep_rate(layer, slot_duration):
    """r ~ U(0, 1) at every TRAIN slot start (kept through the sleep block that follows)."""
    train = slot_kind_condition(TRAIN)
    layer.group.run_regularly(f"sleep_rate = sleep_rate * (1 - {train}) + {train} * rand()",
                              dt=slot_duration, when="start", order=1,
                              name=f"{layer.name}_sleep_rate")


def softmax_synapses(output, *, name):
    """All-to-all synapses of the output onto itself computing Z_k = Σ_j exp(n_j − n_k)."""
    synapses = Synapses(output.group, output.group,
                        model="Z_post = exp(count_pre - count_post) : 1 (summed)", name=name)
    connect_all_to_all(synapses)
    return synapses


def lif_input_layer(n_inputs, pixel_expression, schedule_equations, *, name, extra_events=None,
                    graded=False):
    """Bernoulli input (:func:`plausigrad.models.encoders.bernoulli_source`) keeping ``spk`` /
    ``spk_prev`` like a LIF layer, so the first layer's traces read x the same way.

    ``graded``: the pixel expression gives event counts c (count frames, r_in = 1): a cell with
    c > 0 spikes and its spike carries x = c (``spk = pixel``), which the W synapses deliver as
    w · x and the traces add as x, the lab's W · x on frame values
    [CODE: network_cells.py, OnlineHiddenCell.train_forward_step; run_biograd_training.py]."""
    from plausigrad.models.encoders import bernoulli_source
    state = ("spk : 1  # [axon] x in the step of a spike (1; the event count for graded input)\n"
             "spk_prev : 1  # [axon] x of the previous step\n"
             "count : 1  # [axon] Σ x in the slot\n")
    reset = "spk = pixel\ncount += pixel" if graded else "spk = 1\ncount += 1"
    layer = bernoulli_source(n_inputs, pixel_expression, schedule_equations, state=state,
                             reset=reset, name=name, extra_events=extra_events)
    layer.group.run_regularly("spk_prev = spk\nspk = 0", when="groups", order=0,
                              name=f"{name}_step")
    return layer

