"""SSNN-BP's composite stochastic neuron and its winner-take-all (softmax) output layer.

Source: Biswas, Saraswat, Ganguly, "A Temporally and Spatially Local Spike-based Backpropagation
Algorithm to Enable Training in Hardware", arXiv:2207.09755 (2022), Neuromorph. Comput. Eng.
(2023). The abstract fixes the ingredients (one composite neuron computing the forward
activation and the backward gradient at the same time with stochastic spike trains, signed
gradients split into positive and negative streams, softmax cross-entropy through lateral
inhibition enforcing winner-take-all); the equations are the team's reconstruction
(../shared/ALGORITHMS.md §4.2, §4.4), *not* read in the paper.

Discrete time, one step = one ``dt``; every variable is dimensionless. One composite neuron j of
layer l emits three event streams per step t (ALGORITHMS.md §4.2)::

    drive            z_j[t]  = Σ_i W_ji x_i[t-1] + b_j          (spikes of the layer below,
                                                                 delivered one step earlier)
    forward spike    x_j[t]  ~ Bernoulli(f(z_j[t])),   f(z) = clip(z, 0, 1)
    derivative       f'_j[t] = 1{0 < z_j[t] < 1}
    gradient+        g⁺_j[t] ~ Bernoulli(clip(+α ν_j[t] f'_j[t - D], 0, 1))     event ``gpos``
    gradient−        g⁻_j[t] ~ Bernoulli(clip(−α ν_j[t] f'_j[t - D], 0, 1))     event ``gneg``
                     ν_j[t]  = Σ_k W_kj (g⁺_k − g⁻_k)[t-1]      (the layer above's gradient
                                                                 events, through the SAME W)

The forward spike is Brian2's ``spike``; g⁺ and g⁻ are two custom events of the same group, so
the three streams of one neuron live in one ``NeuronGroup`` (the "composite neuron"). Gradient
events need no phase: they run concurrently with the forward stream, only shifted by the
pipeline latency.

Pipeline latency and the histories. Brian2 delivers a spike one step after it is emitted, so a
sample's forward sweep and backward sweep form a pipeline: the input spikes of step s reach
layer l at step s + l and the output (layer L) at s + L, whose gradient events reach hidden layer
l at step s + 2L − l. To reproduce the paper's per-step semantics (forward sweep, then backward
sweep, for the *same* stochastic sample), every neuron keeps short shift registers of its own
past: the derivative f'_j of the step whose spike produced the gradient now arriving
(``D = 2(L − l)`` steps back), and its own forward spikes (``h1 = spiked one step ago`` ...), so
that a synapse can pair a gradient event with the presynaptic spike that caused it. These are a
few neuron-level numbers, no per-synapse state.

Windows. With T = ``forward_steps``: the input spikes in slot steps [0, T); layer l spikes in
[l, T + l); the gradient events of layer l occur in [2L − l, T + 2L − l) of TRAIN slots only
(EVAL slots are forward-only). The slot therefore needs ``feedback_steps ≥ 2L − 1`` (3 for a
two-layer network) for all T gradient samples of the lowest layer to fit; every layer then uses
exactly T steps. Everything is reset at the start of a slot.

Output layer: softmax sampled by a winner-take-all race [PROPOSAL, ALGORITHMS.md §4.4]. Each
output unit k is an exponential clock of rate exp(z_k): its arrival time in the step is
τ_k = E_k · exp(−z_k), E_k ~ Exp(1) = −log U_k. All-to-all lateral inhibitory synapses (``i ≠ j``)
let the first arrival silence the others: unit k receives from every earlier-arriving unit one
inhibition (``n_earlier``, a summed synaptic variable) and fires only if nothing arrived before
it. Exactly one output spikes per step and, for independent exponential clocks,

    P(winner = k) = exp(z_k) / Σ_j exp(z_j) = softmax(z)_k

exactly — the continuous-time Poisson race of the spec's K-sub-step proposal without its
discretisation error. The arrival is computed in log form, ``race_key = −log τ_k =
z_k − log(−log U_k)`` (a Gumbel-max key, no overflow), the largest key arriving first. The same
lateral synapses also sum exp(z_j − z_k), so every unit knows its own softmax probability
(``softmax = 1 / partition``); its mean over the window (``psum / T``) is recorded for the
analysis only, never used by the learning rule.

Output gradient events (cross-entropy, ALGORITHMS.md §4.2)::

    g⁺_k[t] = o_k[t] (1 − y_k)     a wrong unit won: push its logit down
    g⁻_k[t] = y_k (1 − o_k[t])     the labelled unit lost: push it up

so E[g⁺ − g⁻] = softmax(z)_k − y_k = ∂CE/∂z_k.

Reconstructed choices (the paper is silent or was not read): f = clip(z, 0, 1) and memoryless
per-step sampling (spec variant A); derivative gating by the neuron's own f' of the step that
caused the gradient; α (``gradient_scale``) scales the hidden gradient probabilities; the race
as exact exponential clocks.

Parameters (constants in the namespace, set by :mod:`plausigrad.rules.ssnnbp`):

==============  ======  =======================================================================
name            symbol  meaning
==============  ======  =======================================================================
input_rate      r_in    spike probability per step of a white pixel
gradient_scale  α       hidden gradient spike probability per unit of α·ν·f'
==============  ======  =======================================================================
"""

from brian2 import NeuronGroup, Synapses

from plausigrad.models.encoders import bernoulli_source
from plausigrad.models.layer import make_layer
from plausigrad.models.schedule_signals import EVAL, TRAIN


def history_names(prefix, depth):
    """Names of a shift register: ``prefix1`` (one step ago) ... ``prefix{depth}``."""
    return [f"{prefix}{k}" for k in range(1, depth + 1)]


def shift_code(prefix, depth, newest):
    """Statements shifting a register by one step, ``newest`` entering as ``prefix1``."""
    names = history_names(prefix, depth)
    lines = [f"{names[k]} = {names[k - 1]}" for k in range(depth - 1, 0, -1)]
    if depth:
        lines.append(f"{names[0]} = {newest}")
    return "\n".join(lines) + ("\n" if lines else "")


def forward_window(layer):
    """Flag of the steps in which layer ``layer`` emits forward spikes (TRAIN or EVAL slots)."""
    return (f"int(step_in_slot >= {layer} and step_in_slot < forward_steps + {layer} and "
            f"(slot_type == {TRAIN} or slot_type == {EVAL}))")


def gradient_window(layer, n_layers):
    """Flag of the steps in which layer ``layer`` emits gradient events (TRAIN slots only)."""
    start = 2 * n_layers - layer
    return (f"int(step_in_slot >= {start} and step_in_slot < forward_steps + {start}) "
            "* training_slot")


def spike_history_depth(layer, n_layers):
    """How many steps a presynaptic layer must remember its spikes: 2(L − layer) − 1."""
    return 2 * (n_layers - layer) - 1


def derivative_history_depth(layer, n_layers):
    """Delay between a hidden neuron's forward spike and its gradient events: 2(L − layer)."""
    return 2 * (n_layers - layer)


def stochastic_input(n_inputs, pixel_expression, schedule_equations, *, spike_history,
                     name="input", extra_events=None):
    """Bernoulli input ``x_i[t] ~ Bernoulli(r_in · p_i)`` in the forward window, with a spike
    history of ``spike_history`` steps (``h1`` = spiked one step ago, ...).

    Zero pixels skip the random draw. ``count`` is the number of spikes in the slot.
    """
    registers = "".join(f"{n} : 1\n" for n in history_names("h", spike_history))
    layer = bernoulli_source(n_inputs, pixel_expression, schedule_equations,
                             state=f"hnow : 1  # 1 if the neuron spiked in this step\ncount : 1\n"
                                   f"{registers}",
                             reset="hnow = 1\ncount += 1", name=name, extra_events=extra_events)
    layer.group.run_regularly(shift_code("h", spike_history, "hnow") + "hnow = 0",
                              when="groups", name=f"{name}_step")
    return layer


#: Per-step map of a hidden composite neuron (``groups`` slot, before thresholds); the histories
#: are shifted first (see :func:`composite_layer`).
COMPOSITE_STEP = '''
zin = z + b
z = 0
fprime = int(zin > 0 and zin < 1) * fwd_window
fpsum += fprime
nuin = nu
nu = 0
nusum += nuin * grad_window
'''

COMPOSITE_STATE = '''
z : 1        # Σ_i W_ji x_i delivered in this step (the drive of the next step)
zin : 1      # drive of this step, z + b
b : 1        # bias
fprime : 1   # f'(zin) = 1{0 < zin < 1} in the forward window
fpsum : 1    # Σ f' over the slot (analysis: mean derivative)
nu : 1       # Σ_k W_kj (g⁺_k − g⁻_k) delivered in this step by the layer above
nuin : 1     # ν of this step
nusum : 1    # Σ ν over the gradient window (analysis: the local error e^l)
gnet : 1     # net gradient events in the slot (g⁺ − g⁻)
count : 1    # forward spikes in the slot
hnow : 1     # 1 if the neuron spiked in this step
'''

def composite_layer(n_neurons, schedule_equations, *, layer, n_layers, name, extra_model="",
                    extra_events=None, on_gradient=None):
    """One hidden layer of composite neurons: forward ``spike`` plus ``gpos``/``gneg`` events.

    Needs ``gradient_scale`` in the namespace. ``on_gradient`` maps ``gpos``/``gneg`` to extra
    statements a rule runs on the neuron's own gradient events (its bias update). Returns a
    :class:`~plausigrad.models.layer.Layer`; its slot reset zeroes everything but the bias.
    """
    depth_x = spike_history_depth(layer, n_layers)
    depth_f = derivative_history_depth(layer, n_layers)
    registers = "".join(f"{n} : 1\n" for n in history_names("h", depth_x) +
                        history_names("fp", depth_f))
    gate = f"fp{depth_f}"
    model = (COMPOSITE_STATE + registers +
             f"fwd_window = {forward_window(layer)} : integer\n"
             f"grad_window = {gradient_window(layer, n_layers)} : integer\n"
             + schedule_equations + extra_model)
    events = {"gpos": f"grad_window > 0 and nuin * {gate} > 0 and "
                      f"rand() < gradient_scale * nuin * {gate}",
              "gneg": f"grad_window > 0 and nuin * {gate} < 0 and "
                      f"rand() < -gradient_scale * nuin * {gate}",
              **(extra_events or {})}
    group = NeuronGroup(n_neurons, model,
                        threshold="fwd_window > 0 and rand() < clip(zin, 0, 1)",
                        reset="hnow = 1\ncount += 1", events=events, name=name)
    step = (shift_code("h", depth_x, "hnow") + "hnow = 0\n" +
            shift_code("fp", depth_f, "fprime") + COMPOSITE_STEP)
    group.run_regularly(step, when="groups", name=f"{name}_step")
    _gradient_event_code(group, on_gradient)
    return make_layer(group, COMPOSITE_STATE + registers, keep=("b",))


WTA_STATE = '''
z : 1           # Σ_j W_kj x_j delivered in this step (the logit of the next step, less b)
zin : 1         # logit of this step, z + b
b : 1           # bias
race_key : 1    # −log of this step's arrival time: zin − log(−log U), U ~ U(0, 1)
n_earlier : 1   # (summed) units whose clock arrived before this one: lateral inhibition
partition : 1   # (summed) Σ_{j≠k} exp(z_j − z_k); softmax_k = 1 / (1 + partition)
psum : 1        # Σ softmax over the forward window (analysis only)
count : 1       # wins in the slot: the prediction is its argmax
gnet : 1        # net gradient events in the slot
'''

WTA_STEP = '''
zin = z + b
z = 0
race_key = zin - log(-log(rand()))
'''

#: Lateral inhibition of the race (all-to-all, i ≠ j): a unit counts the units that arrived first.
LATERAL_MODEL = '''
n_earlier_post = int(race_key_pre > race_key_post) : 1 (summed)
partition_post = exp(zin_pre - zin_post) : 1 (summed)
'''


def _gradient_event_code(group, on_gradient):
    """Count the net gradient events (``gnet``) plus a rule's statements on them."""
    extra = on_gradient or {}
    group.run_on_event("gpos", "gnet += 1\n" + extra.get("gpos", ""))
    group.run_on_event("gneg", "gnet -= 1\n" + extra.get("gneg", ""))


def wta_output_layer(n_neurons, schedule_equations, *, layer, name, target_expression,
                     extra_model="", extra_events=None, on_gradient=None):
    """The softmax output layer: a winner-take-all race with lateral inhibition.

    Returns a :class:`~plausigrad.models.layer.Layer` whose companion is the lateral synapses;
    its slot reset zeroes everything but the bias and the two summed variables (recomputed by
    the lateral synapses every step). The spike is the race's winner; the custom events
    ``gpos``/``gneg`` are the cross-entropy gradient streams (TRAIN slots only).
    """
    window = forward_window(layer)
    model = (WTA_STATE + f"fwd_window = {window} : integer\n"
             f"grad_window = fwd_window * training_slot : integer\n"
             f"y = {target_expression} : 1\n"
             "winner = int(n_earlier < 0.5) * fwd_window : integer\n"
             + schedule_equations + extra_model)
    events = {"gpos": "grad_window > 0 and winner > 0 and y < 0.5",
              "gneg": "grad_window > 0 and winner == 0 and y > 0.5",
              **(extra_events or {})}
    group = NeuronGroup(n_neurons, model, threshold="winner > 0", reset="count += 1",
                        events=events, name=name)
    # before the summed-variable updaters (order target.order - 1 = -1) of the lateral synapses
    group.run_regularly(WTA_STEP, when="groups", order=-2, name=f"{name}_race")
    group.run_regularly("psum += fwd_window / (1 + partition)", when="groups", order=1,
                        name=f"{name}_softmax_readout")
    _gradient_event_code(group, on_gradient)
    lateral = Synapses(group, group, model=LATERAL_MODEL, name=f"{name}_lateral_inhibition")
    lateral.connect(condition="i != j")
    return make_layer(group, WTA_STATE, keep=("b", "n_earlier", "partition"),
                      companions=(lateral,))
