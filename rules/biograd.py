"""BioGrad: gradient learning with compartment neurons, eligibility traces and a sleep phase.

Source: Tang, Kumar, Polykretis, Michmizos, arXiv:2110.14092 (2021); equations reconstructed in
ALGORITHMS.md §2 (the paper's own constants are not confirmed). Per TRAIN slot (one sample):

1. forward window (T_f steps): input spikes drive the basal dendrites; every neuron accumulates
   ψ̄ and x̄ (and, in the ``exact`` form, every synapse its ε and ē; see
   :mod:`plausigrad.rules.eligibility`);
2. feedback window (T_b steps): the output apical compartments receive u = a - y (MSE on rates)
   and their error units emit signed error events; feedback synapses carry them to the apical
   compartments below (``feedback``: plastic B with sleep, fixed random B, or B = Wᵀ through the
   feedforward synapse itself), whose error units pass ψ̄-gated copies further down;
3. last step: every feedforward synapse applies

       ΔW_ji = -η · u_j · ē_ji            Δb_j = -η_b · u_j · ψ̄_j

   either at once (``batch_size`` 1) or averaged over ``batch_size`` samples and applied at the
   batch boundary by the ``apply_batch`` pathway (a full pass over the synapses per batch). The update is event-driven: a presynaptic
   ``learn`` event (only for neurons with x̄ > 0) runs the ``learn`` pathway, so silent inputs
   cost nothing;
4. SLEEP slots (``feedback="sleep"``): noise-driven Hebbian alignment of B
   (:mod:`plausigrad.rules.sleep`).

With B = Wᵀ and an exact gradient pathway, u_j equals the rate-network backprop error
Σ_k W_kj ψ̄_k δ_k (up to the error quantisation), so the update is the surrogate gradient of the
rate network's MSE; with fixed random B it is spiking feedback alignment.

Parameters (:class:`BioGradParameters`); values marked † come from the team's numpy search
(``tools/tune_biograd_numpy.py``), not from the paper:

=====================  ======  ==========================================================
parameter              symbol  meaning
=====================  ======  ==========================================================
learning_rate          η       SGD step of the feedforward weights (per layer, a tuple) †
bias_learning_rate     η_b     SGD step of the biases †
batch_size             B       samples per weight update
eligibility            -       ``factorised`` or ``exact``
feedback               -       ``sleep``, ``fa`` (fixed random B) or ``symmetric`` (B = Wᵀ)
error_quantum          q       error carried by one error event †
target_rate            y_on    target rate of the labelled output unit (spikes/step) †;
                               below 1 because one step of latency per layer makes 1 unreachable
input_rate             r_in    spike probability per step of a white pixel
init_std               σ_l     W^l ~ N(0, σ_l²), per layer †
dithered_errors        -       error units start from U[0,1) (unbiased) or from 1/2 (rounding)
feedback_init_scale    -       B ~ U(-s/√n, s/√n), n = size of the upper layer; default 1 for
                               ``fa`` (B is fixed, so s sets the size of the hidden errors) and
                               0.1 for ``sleep`` (B starts weak and sleep builds it up) †
sleep_noise_rate       r_s     sleep noise probability per step
sleep_learning_rate    η_s     Hebbian step
sleep_decay            λ_s     decay of B per sleep slot
=====================  ======  ==========================================================

Profiles (``profile``). ``reconstruction`` (default) is everything above; its measured results
keep that name. ``published`` computes BioGrad as the lab's code does (j0sh162/FederatedLearning-
SNN, ``biograd/``; numpy port and per-equation provenance:
:mod:`plausigrad.analysis.references.biograd_lab`; neuron: :mod:`plausigrad.models.lif_neuron`):
one LIF compartment per neuron, per-synapse reset-aware eligibility, error neurons running online
from step ``soft_error_step`` of the same window on softmax(counts) − y, direct feedback B^l
(n_l × n_L) from the output initialised to (W^L ··· W^{l+1})ᵀ, SGD on every layer (output
included) with −η · mean_batch(u/K · e), and sleep by paired Bernoulli noise with the Oja-decayed
weight mirror. Same engine: compiled once, one run per epoch, sleep in SLEEP slots.

Published-profile parameters (defaults [CODE: run_biograd_training.py] unless marked):

===================  ==========  ==========================================================
parameter            default     meaning
===================  ==========  ==========================================================
learning_rate        0.001       η of W (every layer) [CODE: lr]
bias_learning_rate   0.001       η of b; the lab uses η for both [CODE: train_update_parameter_sgd]
batch_size           128         [CODE: train_batch_size]
soft_error_step      19          first step with error feedback [CODE: soft_error_start]
sleep_steps          50          noise steps of a sleep sample [CODE: sleep_spike_ts]
sleep_learning_rate  1e-4/3      η_s [CODE: sleep_lr]
oja_power            2           P of the Oja decay [CODE: sleep_oja_power]
lif.*                0.3/0.3/    vdecay / vth / grad_win / grad_amp [CODE: snn_param]
                     0.3/1.0
windows              (60, 5)     60 bins [CODE: snn_ts]; feedback 5 = L + 2 for L = 3 [OURS];
                                 T_b ≥ L + 2 and t_soft < T_f are checked (``check_windows``
                                 and, for L, at the build)
lr decay             1           constant learning rate over the epochs (``default_lr_decay``;
                                 --lr-decay overrides) [CODE: training_biograd.py]
sleep schedule       B, (L−1)·B  a block of (L − 1)·B sleep slots after every B = batch_size
                                 training samples (``sleep_defaults``; --sleep-every /
                                 --sleep-slots override) [CODE: training_biograd.py]
trace_form           event       how the per-synapse trace is computed: ``event`` touches a
                                 synapse only at its input's spikes, its post neuron's
                                 rebases and the update; ``per_step`` every synapse at every
                                 step (the lab's loop); the same values to ~1e-12 [OURS]
                                 (:mod:`plausigrad.models.lif_neuron`)
===================  ==========  ==========================================================

Remaining differences of the published profile from the lab code:

======================================  ==================================================  ========
what                                    why                                                 effect
======================================  ==================================================  ========
layer l runs lab step t in Brian2 step  Brian2 delivers spikes to the next step; every      none
t + l (pipelined); feedback window      value is the lab's, shifted (agreement test)        (tested)
must be ≥ L + 2 (checked)
input: Bernoulli(r_in · pixel) 0/1      the engine's encoder; the lab feeds N-MNIST event    not
spikes                                  *counts* per 5 ms bin (can exceed 1)                measured
one sample per slot; mini-batch = the   the engine's slot model; same weights within a      none
mean of per-slot gradients applied at   batch, update = the lab's mean
``batch_start`` (slots counted over
sleep slots too: keep the sleep block a
multiple of batch_size; the default is)
last partial batch of an epoch: its     the slot-clocked batch; the lab's DataLoader keeps  last
gradient is divided by batch_size and   the short last batch and means over its size       batch
applied inside the sleep block that                                                         only
follows (a first part of the block
sleeps on the old W)
sleep rate r ~ U(0,1) drawn per hidden  one shared variable per group [OURS]; the lab draws  not
layer (at every TRAIN slot start), not  one r per sleep call for all layers                 measured
one shared by all layers
sleep: slot index mod (L−1) picks the   one timeline; B updates are independent and W is    none
driven layer; the block must hold       fixed in sleep, so order is immaterial; the Oja     (tested)
(L−1)·N slots for N samples per layer;  mean divides by the samples actually seen
noise starts at step 1 of the slot
B update applied at the next non-SLEEP  slot-clocked; a block at the very end of a run      lost if
slot start                              with no evaluation slots after it is not applied    no eval
softmax as 1/Σ_j exp(n_j − n_k) in      Brian2 summed variable                              rounding
float64 (lab: torch.softmax, float32)
loss metric: cross-entropy of           the lab's loss; the alignment plug-in is off for    -
softmax(counts)                         this profile (it models the reconstruction)
feedback="sleep" only                   the lab code has no fa / symmetric variant          -
======================================  ==================================================  ========
"""

from dataclasses import dataclass, replace

import numpy as np
from brian2 import Synapses

from plausigrad.models.compartment_neuron import CompartmentNeuronParameters, compartment_layer
from plausigrad.models.encoders import bernoulli_input
from plausigrad.models.lif_neuron import (EVENT_SYNAPSE_TRACE_MODEL, EVENT_TRACE_CLEAR,
                                          EVENT_TRACE_INPUT_EVENT, EVENT_TRACE_ON_INPUT,
                                          EVENT_TRACE_ON_REBASE, LIFNeuronParameters,
                                          SYNAPSE_TRACE_MODEL, SYNAPSE_TRACE_STEP,
                                          TRACE_REBASE_BELOW, draw_sleep_rate, lif_input_layer,
                                          lif_layer, softmax_synapses)
from plausigrad.models.errors import (ConfigurationError, require_choice, require_positive,
                                      require_rate)
from plausigrad.models.parameters import param
from plausigrad.models.schedule_signals import SLEEP, slot_kind_condition
from plausigrad.models.synapses import (connect_all_to_all, feedback_synapses,
                                        feedforward_synapses, signed_pathways)
from plausigrad.rules.base import (BIAS_LR_FLAGS, LR_FLAGS, BiasedRuleParameters, LearningRule,
                                   per_layer, positive_tuple)
from plausigrad.rules.eligibility import ELIGIBILITY_FORMS, eligibility_code
from plausigrad.rules.losses import RateMSE
from plausigrad.rules.sleep import DECAY_AT_SLOT_START, HEBBIAN_ON_ECHO
from plausigrad.models.clock import STEP

FEEDBACK_MODES = ("sleep", "fa", "symmetric")
PROFILES = ("reconstruction", "published")
#: How the published profile computes its per-synapse trace: touching a synapse only at events
#: (presynaptic spikes, the post neuron's rebases, the update) or at every step; same values.
TRACE_FORMS = ("event", "per_step")

#: Values of the profile-dependent parameters left at None. Reconstruction: the team's numpy
#: search (the values before profiles existed). Published: the lab's N-MNIST script
#: [CODE: biograd/run_biograd_training.py: lr, train_batch_size, sleep_lr; the bias shares lr,
#: network_cells.py, OnlineHiddenCell.train_update_parameter_sgd].
PROFILE_DEFAULTS = {
    "reconstruction": {"learning_rate": (0.02, 0.2), "bias_learning_rate": 0.0, "batch_size": 8,
                       "sleep_learning_rate": 0.0025},
    "published": {"learning_rate": (1e-3,), "bias_learning_rate": 1e-3, "batch_size": 128,
                  "sleep_learning_rate": 1e-4 / 3},
}

#: Initial scale of B with sleep. With the scale of fixed random feedback (1.0) the random start
#: outweighs what sleep learns for the first ~10 000 samples (the decay forgets it slowly): full
#: MNIST, 784-500-10, test accuracy after epoch 1 / 2 was 91.96 / 94.76 % with 1.0 and
#: 94.48 / 96.83 % with 0.1.
SLEEP_INIT_SCALE = 0.1

#: The bias's gradient accumulator and learning rate (the bias b itself is the neuron's).
BIAS_MODEL = "bias_grad : 1\nbias_learning_rate : 1 (shared)\n"

#: Bias: apply the mini-batch mean at its boundary, then accumulate u · ψ̄ at the learn step.
BIAS_UPDATE = """
b -= bias_learning_rate * bias_grad / batch_size * batch_start
bias_grad = bias_grad * (1 - batch_start) + learn_step * u * psibar
"""

#: Presynaptic events: ``learn`` (last step of a TRAIN slot, active inputs only) triggers the
#: update pathway; ``apply_batch`` (mini-batch boundary) applies the accumulated gradient.
#: Events on the step clock, rather than a ``run_regularly`` on a batch-length clock, keep the
#: order of accumulation and application identical on every device.
LEARN_EVENT = {"learn": "learn_step > 0 and xsum > 0", "apply_batch": "batch_start > 0"}


@dataclass(frozen=True)
class BioGradParameters(BiasedRuleParameters):
    """Hyper-parameters of the BioGrad rule (see the module docstring's table)."""

    learning_rate: tuple = param(None, "η: SGD step of the feedforward weights, one value or one "
                                 "per weight layer, the last repeating (default: 0.02,0.2 "
                                 "reconstruction; 0.001 published)", flags=LR_FLAGS)
    bias_learning_rate: float = param(None, "η_b: SGD step of the biases, 0 disables (default: "
                                      "0 reconstruction; 0.001 published)", flags=BIAS_LR_FLAGS)
    batch_size: int = param(None, "samples per weight update (default: 8 reconstruction; 128 "
                            "published)")
    eligibility: str = param("factorised", "eligibility form: factorised ψ̄·x̄ or exact "
                             "(per-synapse trace)", choices=ELIGIBILITY_FORMS)
    feedback: str = param("sleep", "sleep (plastic B aligned in sleep), fa (fixed random B) or "
                          "symmetric (B = Wᵀ)", choices=FEEDBACK_MODES)
    error_quantum: float = param(0.125, "q: error carried by one error event")
    target_rate: float = param(0.8, "y_on: target rate of the labelled output unit "
                               "(spikes/step)")
    input_rate: float = param(1.0, "r_in: spike probability per step of a white pixel")
    init_std: tuple = param((0.01, 0.1), "σ_l: W^l ~ N(0, σ_l²), per weight layer, the last "
                            "repeating for deeper layers")
    feedback_init_scale: float = param(None, "s: initial B ~ U(-s/√n, s/√n), n = size of the "
                                       "layer above (default 1 for fa, 0.1 for sleep)")
    sleep_noise_rate: float = param(0.1, "r_s: noise spike probability per step of hidden "
                                    "neurons in sleep", flags=("--sleep-noise",
                                                               "--sleep-noise-rate"))
    sleep_learning_rate: float = param(None, "η_s: Hebbian step of B in sleep (default: 0.0025 "
                                       "reconstruction; 1e-4/3 published)",
                                       flags=("--sleep-lr", "--sleep-learning-rate"))
    sleep_decay: float = param(0.005, "λ_s: decay of B per sleep slot")
    dithered_errors: bool = param(True, "error units start from U[0,1) (unbiased) instead of 1/2")
    neuron: CompartmentNeuronParameters = param(factory=CompartmentNeuronParameters,
                                                help="soma and dendrite constants")
    profile: str = param("reconstruction", "reconstruction (from the paper, ALGORITHMS.md) or "
                         "published (computed as the lab's code computes it)", choices=PROFILES)
    soft_error_step: int = param(19, "published: first step of the window with error feedback")
    sleep_steps: int = param(50, "published: noise steps per sleep slot")
    oja_power: float = param(2.0, "published: power P of the Oja decay of B in sleep")
    trace_form: str = param("event", "published: per-synapse trace computed at events "
                            "(presynaptic spikes, rebases, update) or per_step (every synapse "
                            "every step); the same values to rounding", choices=TRACE_FORMS)
    lif: LIFNeuronParameters = param(factory=LIFNeuronParameters,
                                     help="published profile's LIF constants")

    def __post_init__(self):
        require_choice("BioGrad profile", self.profile, PROFILES)
        for name, value in PROFILE_DEFAULTS[self.profile].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        super().__post_init__()
        if self.profile == "published":
            if self.feedback != "sleep":
                raise ConfigurationError("the published profile has sleep feedback only (the lab "
                                         "code has no fa/symmetric variant)")
            for name in ("soft_error_step", "sleep_steps"):
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (
                        value < (0 if name == "soft_error_step" else 1)):
                    raise ConfigurationError(f"{name.replace('_', ' ')} must be a "
                                             f"{'non-negative' if name == 'soft_error_step' else 'positive'} "
                                             f"integer, got {value!r}")
            require_positive("oja power", self.oja_power)
            require_choice("trace form", self.trace_form, TRACE_FORMS)
        require_choice("eligibility form", self.eligibility, ELIGIBILITY_FORMS)
        require_choice("feedback mode", self.feedback, FEEDBACK_MODES)
        object.__setattr__(self, "init_std", positive_tuple("init_std", self.init_std))
        if self.feedback_init_scale is None:
            object.__setattr__(self, "feedback_init_scale", SLEEP_INIT_SCALE
                               if self.feedback == "sleep" else 1.0)
        for name in ("error_quantum", "feedback_init_scale", "sleep_learning_rate"):
            require_positive(name.replace("_", " "), getattr(self, name))
        for name in ("target_rate", "input_rate", "sleep_noise_rate", "sleep_decay"):
            require_rate(name.replace("_", " "), getattr(self, name))


class BioGrad(LearningRule):
    """The BioGrad plug-in (see the module docstring)."""

    name = "biograd"
    parameters_class = BioGradParameters
    default_windows = (20, 10)
    alignment_plugin = "plausigrad.analysis.biograd_alignment:BioGradAlignment"

    def __init__(self, params=None):
        super().__init__(params)
        self.published = self.params.profile == "published"
        if self.published:
            self.default_windows = PUBLISHED_WINDOWS
            self.default_lr_decay = 1.0  # a constant lr [CODE: training_biograd.py, lr]
            # the lab neuron integrates W · x with x the frame value, counts included
            # [CODE: network_cells.py, OnlineHiddenCell; run_biograd_training.py, ToFrame]
            self.accepts_event_counts = True
            self.alignment_plugin = None  # the plug-in models the reconstruction's network

    @property
    def uses_sleep(self):
        return self.params.feedback == "sleep"

    def check_windows(self, windows, n_layers):
        """Published: the error window needs forward steps after the soft start
        (K = T_f − t_soft > 0, the update divides by it) and the feedback window must cover the
        layer pipeline, T_b ≥ L + 2 (:func:`check_published_windows`)."""
        if self.published:
            check_published_windows(self.params, windows, n_layers)

    def sleep_defaults(self, n_hidden):
        """Published: the lab sleeps after every training batch, one sleep batch per hidden
        layer [CODE: training_biograd.py, biograd_snn_training: ``sleep_feedback_update`` after
        every ``train_update_parameter``; network_w_biograd.py, ``sleep_feedback_update``: a
        loop over the hidden layers, ``sleep_batch_size`` samples each], so a block of
        (L − 1) · B sleep slots after every B training samples (B = ``batch_size``; the lab's
        sleep batch equals its training batch, 128). Reconstruction: the base defaults."""
        if not self.published:
            return super().sleep_defaults(n_hidden)
        batch = self.params.batch_size
        return batch, max(n_hidden, 1) * batch

    @property
    def loss(self):
        if self.published:
            return CountSoftmaxCrossEntropy()
        return RateMSE(self.params.target_rate)

    def feedback_name(self, layer, n_layers):
        return None if self.params.feedback == "symmetric" else f"B{layer}"

    def feedback_sender(self, layer, n_layers):
        return n_layers if self.published else layer + 1

    def state_layout(self, layer_sizes):
        if self.published:
            return published_state_layout(layer_sizes)
        layout = {}
        for l in range(1, len(layer_sizes)):
            layout[f"W{l}"] = (layer_sizes[l], layer_sizes[l - 1])
            layout[f"b{l}"] = (layer_sizes[l],)
        for l in range(1, len(layer_sizes) - 1):
            if self.feedback_name(l, len(layer_sizes) - 1):
                layout[f"B{l}"] = (layer_sizes[l], layer_sizes[l + 1])
        return layout

    def initial_state(self, layer_sizes, rng):
        if self.published:
            return published_initial_state(layer_sizes, rng)
        p = self.params
        state = {}
        stds = per_layer("init_std values", p.init_std, len(layer_sizes) - 1)
        for l in range(1, len(layer_sizes)):
            fan_in, n = layer_sizes[l - 1], layer_sizes[l]
            state[f"W{l}"] = rng.normal(0.0, stds[l - 1], size=(n, fan_in))
            state[f"b{l}"] = np.zeros(n)
        if p.feedback != "symmetric":
            for l in range(1, len(layer_sizes) - 1):
                bound = p.feedback_init_scale / np.sqrt(layer_sizes[l + 1])
                state[f"B{l}"] = rng.uniform(-bound, bound, size=(layer_sizes[l], layer_sizes[l + 1]))
        return state

    # -- network hooks (wired by plausigrad.rules.builder) -------------------------------------
    state_variables = {"W": ("weights", "w"), "b": ("layer", "b"), "B": ("feedback", "B")}

    def input_layer(self, ctx, name):
        if self.published:
            return lif_input_layer(ctx.layer_sizes[0], ctx.pixel_expression,
                                   ctx.schedule_equations, name=name,
                                   extra_events=published_presynaptic_events(self.params),
                                   graded=ctx.graded_input)
        return bernoulli_input(ctx.layer_sizes[0], ctx.pixel_expression, ctx.schedule_equations,
                               name=name, extra_events=dict(LEARN_EVENT))

    def neuron_layer(self, layer, ctx, name):
        if self.published:
            return published_neuron_layer(self.params, layer, ctx, name)
        output = layer == ctx.n_layers
        built = compartment_layer(
            ctx.layer_sizes[layer], self.params.neuron, ctx.schedule_equations,
            role="output" if output else "hidden", name=name,
            target_expression=ctx.target_expression if output else None,
            sleep_noise=self.uses_sleep and not output, extra_model=BIAS_MODEL,
            extra_events=None if output else dict(LEARN_EVENT))
        built.group.run_regularly(BIAS_UPDATE, when="groups", order=1, name=f"{name}_bias_update")
        return built

    def feedback(self, upper, lower, layer, ctx, name):
        if self.published:
            return published_feedback(upper, lower, ctx, name)
        if not self.uses_sleep:
            return feedback_synapses(upper.group, lower.group, name=name)
        synapses = feedback_synapses(upper.group, lower.group, name=name,
                                     extra_on_post={"hebbian": HEBBIAN_ON_ECHO},
                                     extra_events={"hebbian": "sleep_echo"})
        synapses.run_regularly(DECAY_AT_SLOT_START, dt=ctx.slot_duration, when="start",
                               name=f"{name}_sleep_decay")
        return synapses

    def namespace(self):
        p = self.params
        if self.published:
            return {**p.lif.namespace(), "soft_error_step": p.soft_error_step,
                    "input_rate": p.input_rate,
                    "sleep_steps": p.sleep_steps, "sleep_learning_rate": p.sleep_learning_rate,
                    "oja_power": p.oja_power, "trace_rebase_below": TRACE_REBASE_BELOW}
        return {**p.neuron.namespace(), "error_quantum": p.error_quantum,
                "input_rate": p.input_rate, "sleep_noise_rate": p.sleep_noise_rate,
                "sleep_learning_rate": p.sleep_learning_rate, "sleep_decay": p.sleep_decay,
                "target_rate": p.target_rate, "error_dither": 1.0 if p.dithered_errors else 0.0}

    def weights(self, pre, post, layer, ctx, name):
        """Feedforward synapses of weight layer ``layer`` with eligibility and update."""
        p = self.params
        if self.published:
            return published_weights(p, pre, post, layer, ctx, name)
        elig = eligibility_code(p.eligibility)
        model = elig.model + "learning_rate : 1 (shared)\n"
        if p.batch_size == 1:
            learn = f"w -= learning_rate * u_post * {elig.readout}"
        else:
            model += "grad : 1  # Σ over the mini-batch of u_post · ē\n"
            learn = f"grad += u_post * {elig.readout}"
        if elig.slot_reset:
            learn += f"\n{elig.slot_reset}"
        pathways, events = {"learn": learn}, {"learn": "learn"}
        if p.batch_size > 1:
            pathways["apply_batch"] = "w -= learning_rate * grad / batch_size\ngrad = 0"
            events["apply_batch"] = "apply_batch"
        synapses = feedforward_synapses(
            pre.group, post.group, name=name,
            symmetric_feedback=p.feedback == "symmetric" and layer >= 2,
            extra_model=model, extra_on_pre=pathways,
            extra_on_post={"eligibility_reset": elig.on_post} if elig.on_post else None,
            extra_events=events)
        if elig.step:
            synapses.run_regularly(elig.step, when="groups", order=2, name=f"{name}_eligibility")
            synapses.run_regularly(elig.slot_reset, dt=ctx.slot_duration, when="start",
                                   name=f"{name}_eligibility_slot_reset")

        return synapses


# -- the published profile (the lab code, see the module docstring) ---------------------------

#: (forward, feedback) windows: the lab's 60 bins; feedback_steps must be ≥ L + 2 (the
#: pipeline's depth, one step for the last error spikes and one for the update): 5 covers the
#: lab's 2 hidden layers.
PUBLISHED_WINDOWS = (60, 5)

#: Every input/hidden neuron runs the update pathways (the per-synapse trace is non-zero only
#: for inputs that spiked, but a pass per slot is cheap next to the per-step trace).
PUBLISHED_LEARN_EVENT = {"learn": "learn_step > 0", "apply_batch": "batch_start > 0"}

#: u / K, the error the update reads (K = T_f − t_soft error steps) [CODE: train_update_parameter_sgd].
_ERROR = "({dend} / (forward_steps - soft_error_step))"


@dataclass(frozen=True)
class CountSoftmaxCrossEntropy:
    """The lab's loss: cross-entropy of softmax(output spike counts)
    [CODE: online_error_functions.py, cross_entropy_loss_error_function]."""

    name = "softmax_cross_entropy_of_counts"
    label = "cross-entropy of softmax(spike counts)"

    def output_error(self, counts, labels):
        counts = np.asarray(counts, dtype=np.float64)
        shifted = np.exp(counts - counts.max(axis=1, keepdims=True))
        p = shifted / shifted.sum(axis=1, keepdims=True)
        rows, labels = np.arange(len(counts)), np.asarray(labels, dtype=int)
        loss = -np.log(np.maximum(p[rows, labels], 1e-300))
        p[rows, labels] -= 1.0
        return p, loss

    def metric(self, counts, labels, steps):
        return float(np.mean(self.output_error(counts, labels)[1]))


def published_state_layout(layer_sizes):
    """W{l} (n_l, n_{l−1}), b{l}, and direct feedback B{l} (n_l, n_L) into every hidden layer."""
    layout = {}
    for l in range(1, len(layer_sizes)):
        layout[f"W{l}"] = (layer_sizes[l], layer_sizes[l - 1])
        layout[f"b{l}"] = (layer_sizes[l],)
    for l in range(1, len(layer_sizes) - 1):
        layout[f"B{l}"] = (layer_sizes[l], layer_sizes[-1])
    return layout


def published_initial_state(layer_sizes, rng):
    """``nn.Linear`` defaults W, b ~ U(−1/√n_in, 1/√n_in); B^l = (W^L ··· W^{l+1})ᵀ
    [CODE: network_w_biograd.py, BioGradNetworkWithSleep.__init__]."""
    state = {}
    for l in range(1, len(layer_sizes)):
        bound = 1.0 / np.sqrt(layer_sizes[l - 1])
        state[f"W{l}"] = rng.uniform(-bound, bound, (layer_sizes[l], layer_sizes[l - 1]))
        state[f"b{l}"] = rng.uniform(-bound, bound, layer_sizes[l])
    n_layers = len(layer_sizes) - 1
    product = state[f"W{n_layers}"]
    for l in range(n_layers - 1, 0, -1):
        state[f"B{l}"] = product.T.copy()
        product = product @ state[f"W{l}"]
    return state


def _slot_steps(ctx):
    return int(round(float(ctx.slot_duration / STEP)))


def check_published_windows(p, windows, n_layers):
    """Raise ConfigurationError unless ``windows`` suit the published profile with L =
    ``n_layers`` weight layers: t_soft < T_f (the update reads u / (T_f − t_soft)) and
    T_b ≥ L + 2 [OURS: layer l runs lab step t in Brian2 step t + l, so the output's last error
    step is T_f + L; its error spikes reach the hidden dendrites in that step, and the update
    (step T_f + T_b − 1) must come after it]."""
    if p.soft_error_step >= windows.forward_steps:
        raise ConfigurationError(
            f"BioGrad published: soft error step ({p.soft_error_step}) must be below the forward "
            f"window ({windows.forward_steps} steps), or no error step is left")
    if windows.feedback_steps < n_layers + 2:
        raise ConfigurationError(
            f"BioGrad published: feedback window must be >= L + 2 = {n_layers + 2} steps for "
            f"L = {n_layers} weight layers (the layer pipeline), got {windows.feedback_steps}")


def published_neuron_layer(p, layer, ctx, name):
    """A LIF layer (:func:`plausigrad.models.lif_neuron.lif_layer`) with its bias update; the
    output carries the softmax synapses, hidden layers their sleep-rate draw (the windows are
    checked by :meth:`BioGrad.check_windows`)."""
    n_layers = ctx.n_layers
    if p.feedback == "sleep" and n_layers > 1 and p.sleep_steps + n_layers + 1 > _slot_steps(ctx):
        raise ConfigurationError(
            f"sleep steps ({p.sleep_steps}) + layers ({n_layers}) + 1 exceed the slot "
            f"({_slot_steps(ctx)} steps): lengthen the windows or shorten --sleep-steps")
    output = layer == n_layers
    built = lif_layer(ctx.layer_sizes[layer], layer, n_layers, ctx.schedule_equations,
                      name=name, soft_error_step=p.soft_error_step,
                      target_expression=ctx.target_expression if output else None,
                      extra_model="bias_learning_rate : 1 (shared)\n",
                      extra_events=None if output else published_presynaptic_events(p),
                      event_traces=p.trace_form == "event")
    error = _ERROR.format(dend="dend")
    if p.batch_size == 1:
        update = f"b = b - learn_step * bias_learning_rate * ({error} * trace_db)"
    else:
        update = (f"b = b - bias_learning_rate * (bias_grad / batch_size) * batch_start\n"
                  f"bias_grad = bias_grad * (1 - batch_start) + learn_step * ({error} * trace_db)")
    built.group.run_regularly(update, when="groups", order=2, name=f"{name}_bias_update")
    if output:
        return replace(built, companions=built.companions
                       + (softmax_synapses(built, name=f"{name}_softmax"),))
    if p.feedback == "sleep":
        draw_sleep_rate(built, ctx.slot_duration)
    return built


def published_presynaptic_events(p):
    """Events of a layer feeding W synapses: the update pathways, and with the event-driven
    trace the x of each step in a TRAIN slot (``trace_input``)."""
    events = dict(PUBLISHED_LEARN_EVENT)
    if p.trace_form == "event":
        events.update(EVENT_TRACE_INPUT_EVENT)
    return events


def published_weights(p, pre, post, layer, ctx, name):
    """W^l with the per-synapse reset-aware trace (p, e) and the SGD update; from a hidden layer
    also the paired sleep-noise pathways (±w).

    Trace forms (``trace_form``), the same values to rounding (``tests/test_biograd_published.py``
    runs both against the lab port): ``per_step`` runs :data:`SYNAPSE_TRACE_STEP` on every
    synapse at every step (``end``) and clears it at every slot start; ``event`` touches a
    synapse only at its input's x (``trace_input``, after the post neuron's ``trace_rebase``
    in the same step) and at the update, which reads e and clears the trace
    (:mod:`plausigrad.models.lif_neuron`, "Event-driven eligibility")."""
    event = p.trace_form == "event"
    model = ("w : 1  # feedforward weight\nlearning_rate : 1 (shared)\n"
             + (EVENT_SYNAPSE_TRACE_MODEL if event else SYNAPSE_TRACE_MODEL))
    error = _ERROR.format(dend="dend_post")
    # W · x: x = 1 for a spike; graded input (event counts) delivers its count (``pixel`` of the
    # input at this step; its ``spk`` is set by the reset, which Brian2 runs after the synapses)
    graded = layer == 1 and ctx.graded_input
    on_pre = {"pre": "I_syn_post += w * pixel_pre" if graded else "I_syn_post += w"}
    events = {"pre": "spike"}
    clear = f"\n{EVENT_TRACE_CLEAR}" if event else ""
    if p.batch_size == 1:
        on_pre["learn"] = f"w = w - learning_rate * ({error} * trace_dw){clear}"
    else:
        model += "grad : 1  # Σ over the mini-batch of (u / K) · e\n"
        on_pre["learn"] = f"grad += {error} * trace_dw{clear}"
        on_pre["apply_batch"] = "w = w - learning_rate * (grad / batch_size)\ngrad = 0"
        events["apply_batch"] = "apply_batch"
    events["learn"] = "learn"
    if layer >= 2:
        on_pre["sleep_pos"], events["sleep_pos"] = "I_syn_post += w", "sleep_pos"
        on_pre["sleep_neg"], events["sleep_neg"] = "I_syn_post -= w", "sleep_neg"
    on_post = None
    if event:
        on_pre["trace_input"], events["trace_input"] = EVENT_TRACE_ON_INPUT, "trace_input"
        on_post, events["trace_rebase"] = {"trace_rebase": EVENT_TRACE_ON_REBASE}, "trace_rebase"
    synapses = Synapses(pre.group, post.group, model=model, on_pre=on_pre, on_post=on_post,
                        on_event=events, name=name)
    connect_all_to_all(synapses)
    if event:
        # a post pathway runs at order 1, a pre pathway at -1: the input's x must come after
        # the rebase of the same step (it adds k / P with the new P = 1)
        synapses.trace_input.order = 2
    else:
        synapses.run_regularly(SYNAPSE_TRACE_STEP, when="end", order=1, name=f"{name}_traces")
        synapses.run_regularly("trace_in = 0\ntrace_dw = 0", dt=ctx.slot_duration,
                               when="start", name=f"{name}_trace_slot_reset")
    return synapses


#: B^l: error spikes of the output into the hidden dendrite; in sleep the accumulated weight
#: mirror, applied at the next non-SLEEP slot start [CODE: sleep_feedback_update].
PUBLISHED_FEEDBACK_MODEL = """B : 1  # direct feedback weight, output k -> hidden j
corr_sum : 1  # Σ over the sleep samples of h_j o_k
oja_sum : 1   # Σ over the sleep samples of o_k^P
n_sleep : 1   # sleep samples of this layer in the block
"""
SLEEP_ACCUMULATE = """corr_sum += noise_trace_post * sleep_count_pre
oja_sum += sleep_count_pre ** oja_power
n_sleep += 1"""


def published_feedback(upper, lower, ctx, name):
    pathways, events = signed_pathways("error", "dend_post {sign}= B")
    synapses = Synapses(upper.group, lower.group, model=PUBLISHED_FEEDBACK_MODEL, on_pre=pathways,
                        on_post={"sleep_learn": SLEEP_ACCUMULATE},
                        on_event={**events, "sleep_learn": "sleep_learn"}, name=name)
    connect_all_to_all(synapses)
    awake = f"(1 - {slot_kind_condition(SLEEP)})"
    synapses.run_regularly(
        f"B = B + {awake} * (sleep_learning_rate * (corr_sum - oja_sum / (n_sleep + "
        f"int(n_sleep == 0)) * B))\n"
        f"corr_sum = corr_sum * (1 - {awake})\noja_sum = oja_sum * (1 - {awake})\n"
        f"n_sleep = n_sleep * (1 - {awake})",
        dt=ctx.slot_duration, when="start", name=f"{name}_sleep_update")
    return synapses
