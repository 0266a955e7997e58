"""EMSTDP: a two-phase, error-modulated STDP-like rule that approximates backprop with spikes.

Source: Shrestha, Fang, Wu, Qiu, "Approximating Back-propagation for a Biologically Plausible Local
Learning Rule in Spiking Neural Networks", ICONS 2019, as the authors' public numpy code computes
it: zmeidd/EMSTDP, ``EMSTDP_python/EMSTDP_algo.py`` (``Network``) and the MNIST script
``EMSTDP_python/EMSTDP_main.py`` (../shared/ALGORITHMS.md §3). Neurons, error units and windows:
:mod:`plausigrad.models.integrate_and_fire`; our numpy port of the code:
:mod:`plausigrad.analysis.references.emstdp_code`. Per TRAIN slot (one sample):

1. phase 1: the input streams, non-leaky IF neurons integrate and fire; every neuron counts its
   spikes n1 in the phase-1 window;
2. phase 2: the same input keeps streaming; the output error neurons integrate the loss signal
   and emit signed error spikes, which travel to the hidden error units (``feedback``:
   ``symmetric`` through the forward weights themselves, ``fa`` through fixed random B^l from the
   layer above, ``dfa`` through fixed random B^l straight from the output); every error spike
   injects ±one threshold into its own soma, so the phase-2 counts n2 differ from n1 by about
   the error;
3. last step of the slot: every synapse with an active presynaptic neuron (n1_pre > 0)
   accumulates its contrastive term, and at the mini-batch boundary every synapse applies the
   mean with an RMSprop-style normalisation and clipping (all statements local to the synapse)
   [CODE: ``Train``, ``tpp``, ``lm_h``/``lm_o``]::

       g_ji = (1/B) Σ_b n1_i^pre · (n2_j^post − n1_j^post) / T_1
       m_ji ← ρ m_ji + (1 − ρ) g_ji²                       (m starts at 1)
       W_ji ← clip(W_ji + η g_ji / √(m_ji + ε_m), −w_max, +w_max)

   T_1 is the length of the n1 window (the code's ``twin``); B is the number of samples actually
   accumulated (``pending``), so a final partial batch is averaged correctly. The normaliser m is
   learned state (``rms1``, ``rms2``, ...), carried across epochs and checkpointed like the
   weights. The code updates the weights of a batch at once after running its samples side by
   side with the same weights; accumulating sample by sample with the weights held fixed until
   the batch boundary is the same computation.

In the output layer n2 − n1 ≈ κ · (net error spikes) ∝ (ρy − r): the delta rule of the MSE on
rates with a one-hot target at ρ spikes/step (ρ = 1 in the code; ``--target-rate``, see
models/integrate_and_fire.py); in hidden layers the injected error approximates the backprop
error (with B in place of Wᵀ for fa/dfa); see ALGORITHMS.md §3.5.

Profiles (``profile``)
----------------------
``published`` (the default) computes what ``EMSTDP_algo.py`` computes with the MNIST script's
options (``rel = 0``, ``delt = 5``, ``dr = 1``, ``init = 0``, ``norm = 0``, ``evt = 0``, no bias,
no dropout), spike for spike: tests/test_emstdp_published.py runs Brian2 and our numpy port of
the code on the same input spikes and requires every spike and every error spike to agree, and
every weight and normaliser after the last of two mini-batches, for one and two hidden layers and all three
feedback modes. Windows ``(F, F)``: the code's T = 2F steps, twin = F − 1 (the script's T = 100:
``Windows(50, 50)``, the default); unequal windows are refused, since the code then updates at
several steps of a sample. ``revised`` keeps the departures we measured and chose (below); its
windows are ``(49, 50)``: 49 counted steps per phase plus the update step. The revised profile is
bit-identical to EMSTDP before profiles existed (the golden runs, tests/test_golden.py), except
for the fa/dfa error thresholds, which were a bug (below). Every results page measured before
the profiles existed is a revised-profile result.

Every departure from the code, in one table (profile: where it applies; the ``revised`` rows but
the windows can also be chosen one by one in the published profile):

=====================  ========  =============================  ==============================
what (ours vs code)    profile   why                            measured effect
=====================  ========  =============================  ==============================
hidden error reset     revised   zero throws away E − ϑ, so     +1.0 point: 91.45 vs 90.45 %
``subtract`` (code:              the propagated error           (784-100-10, first 10 000
``zero``, rel = 0)               saturates like sign(F) once    images, 4 epochs, 2000 test)
                                 weights outgrow ϑ
phase-2 restart from   revised   in our windows the start-up    without it W1's std grew 0.06
rest (code:                      adds n2 − n1 ≈ +1 to every     → 0.47 in 2 epochs, accuracy
continuous)                      active neuron                  fell (models/integrate_and_
                                                                fire.py)
windows 49 + 50:       revised   counting from step 0 with      all revised departures
counts 0..48 / 49..97,           the update step outside both   together, full MNIST:
errors act in the                phases                         docs/results/emstdp-profiles.md
step they are emitted,
EVAL counts the
forward window (code:
2..50 / 51..99, one
step later, all 100)
independent input      revised   a rate code with independent   not measured separately
draws (code: one                 pixels (the code's draw makes
number per step for              brighter pixels' spikes
all pixels)                      supersets of dimmer ones')
derivative gate on     revised   ungated DFA with the subtract  17.95 % ungated vs 89.60 %
for dfa (code: off)              reset collapses: silent        gated (first 10 000 images,
                                 hidden neurons get every       2 epochs)
                                 positive error
η = 4e-3, ×0.7 per     both      5 epochs of 60 000 images      η sweep below (1e-4: 84.3 %,
epoch (code: η ≈ 1e-4,           cannot afford the code's       4e-3: 90.5 % on the 10 000-
1000 passes over                 1000 passes                    image setting)
10 000 images)
training order         both      the trainer's epochs           not measured
shuffled per epoch
(code: fixed)
initial weights from   both      one seeded generator for the   none expected (same
our generator (code:             whole run                      distributions); not measured
``np.random``)
=====================  ========  =============================  ==============================

The fa/dfa bug (fixed in both profiles): the hidden error thresholds ϑ did not follow the
feedback mode; the code's are √n_O larger for ``dfa = 1, 2`` than for symmetric feedback (0.6847
vs 0.2165 for 784-100-10), so hidden error spikes came about 3.2× too often. Re-measured after the
fix: docs/results/emstdp-profiles.md.

Longer windows train better, through finer spike counts (revised profile): full MNIST, symmetric,
η 4e-3 decayed ×0.5 per epoch, best test accuracy 95.31 / 95.93 / 96.12 % with 49 / 99 / 199
steps per phase (``--forward-steps F --feedback-steps F+1``, at 1× / 2× / 4× the time;
docs/results/emstdp-window-length.md).

Parameters (:class:`EMSTDPParameters`). [CODE]: the MNIST script's value; † our choice for the
shorter 5-epoch training:

=====================  ======  =========  ======================================================
parameter              symbol  default    meaning
=====================  ======  =========  ======================================================
profile                -       published  ``published`` (the code) or ``revised`` (ours)
learning_rate          η       0.004 †    step size (per weight layer, a tuple, or one value)
batch_size             B       10         samples per update [CODE]
feedback               -       symmetric  ``symmetric`` (dfa=0), ``fa`` (dfa=1), ``dfa`` (dfa=2)
derivative_gate        -       None       gate hidden error spikes by activity in the gate
                                          window; None: published on except dfa [CODE: dr = 1,
                                          skipped for dfa = 2]; revised on, except dfa with the
                                          ``zero`` reset †
input_rate             r_in    1.0        spike probability per step of a white pixel (fr)
input_draw             -       profile    ``shared`` (one number per step for all pixels,
                                          [CODE: randy]) or ``independent`` (revised) †
rms_decay              ρ       0.9        RMS normaliser decay [CODE]
rms_epsilon            ε_m     1e-8       [CODE]
weight_limit           w_max   1.0        weight clipping bound (clp, lim) [CODE]
feedback_init_scale    -       1.0        B ~ U(−s/√n, s/√n), n = size of the error-sending
                                          layer [CODE: s = 1]
init_scale             -       1.0        W^l ~ N(0, (s·√(3/fan_in))²) [CODE: s = 1]
restart_phase2         -       profile    somata restart from rest at the start of phase 2
                                          (published: off [CODE]; revised: on †)
neuron                 -       -          :class:`IntegrateAndFireParameters` (thresholds, ε, κ,
                                          resets; ``error_reset`` by profile)
=====================  ======  =========  ======================================================

η: with the RMS normaliser every synapse moves by about η per mini-batch whatever its gradient's
scale, so η sets the noise floor directly. Swept on the first 10 000 MNIST images (revised
timing, 4 epochs, constant η, first 2000 test images): 5e-5 80.9 %, 1e-4 84.3, 2e-4 86.8, 5e-4
88.3, 1e-3 89.2, 2e-3 90.6, 4e-3 90.5, 8e-3 90.3 (error reset ``zero``); with ``subtract`` 2e-3
91.2, 4e-3 91.5. Full-MNIST runs use 4e-3 with the trainer's decay of 0.7 per epoch.

Derivative gate and DFA: the code never gates DFA's hidden errors, and every public script
resets error units to zero. With the revised ``subtract`` reset ungated DFA collapses
(784-100-10, first 10 000 images, 2 epochs, η 4e-3, first 2000 test images: 17.95 % ungated,
89.60 % gated, 89.05 % ungated with ``zero``; full MNIST ungated+subtract: 23 % after 5 epochs),
because a hidden neuron silent in phase 1 still receives every positive error, fires in phase 2
and only ever grows its weights. So the revised auto turns the gate on for DFA unless
``--error-reset zero`` restores the scripts' combination; ``--derivative-gate on|off`` overrides
either way. With the gate in the same state and one hidden layer, dfa and fa are the same
network (the only hidden layer hears the output errors through the same seeded B, and both now
use the same ϑ); they differ in deeper networks, where dfa feeds every hidden layer from the
output.

Not implemented (off in every public script): the bias term β, dropout, the ``evt`` binary
presynaptic variant, the other loss options (``delt`` ≠ 5) and the code's ``rel = 1`` output
error unit (threshold 1, no reset: with ``error_reset = "subtract"`` our output unit keeps ε and
subtracts it).
"""

from dataclasses import dataclass, replace

import numpy as np

from plausigrad.models.errors import (
    ConfigurationError,
    require_choice,
    require_positive,
    require_rate,
)
from plausigrad.models.integrate_and_fire import (TIMINGS, IntegrateAndFireParameters,
                                                  error_feedback_synapses, error_pathways,
                                                  forward_thresholds, network_if_layer,
                                                  streaming_input)
from plausigrad.models.parameters import param
from plausigrad.models.synapses import feedforward_synapses
from plausigrad.rules.base import LR_FLAGS, LearningRule, RuleParameters
from plausigrad.rules.losses import RateMSE

FEEDBACK_MODES = ("symmetric", "fa", "dfa")
PROFILES = ("published", "revised")
INPUT_DRAWS = ("shared", "independent")

#: What each profile sets where the user sets nothing (None fields; see the module docstring).
PROFILE_DEFAULTS = {
    "published": {"error_reset": "zero", "restart_phase2": False, "input_draw": "shared"},
    "revised": {"error_reset": "subtract", "restart_phase2": True, "input_draw": "independent"},
}

#: (forward_steps, feedback_steps) per profile: the code's T = 100 (twin = 49) as 50 + 50 steps;
#: ours 49 counted steps per phase plus the update step.
PROFILE_WINDOWS = {"published": (50, 50), "revised": (49, 50)}

#: Presynaptic events: ``learn`` (last step of a TRAIN slot, neurons active in phase 1) and
#: ``apply_batch`` (first step of a mini-batch, if samples were accumulated).
LEARN_EVENTS = {"learn": "learn_step > 0 and count > 0",
                "apply_batch": "batch_start > 0 and pending > 0"}

SYNAPSE_MODEL = '''
learning_rate : 1 (shared)
grad : 1    # Σ over the mini-batch of n1_pre · (n2_post - n1_post)
m : 1       # RMS normaliser of the update
'''

#: The contrastive term of one sample (``learn`` pathway, after the resets of the last step, so
#: that a spike in that step is counted first).
ACCUMULATE = "grad += count_pre * (n2_post - count_post)"

#: The mini-batch update (``apply_batch`` pathway); ``{counted_steps}`` is T_1 (= twin), the
#: length of the n1 window of the profile's timing.
APPLY = '''
g = grad / (pending_pre * {counted_steps})
m = rms_decay * m + (1 - rms_decay) * g**2
w = clip(w + learning_rate * g / sqrt(m + rms_epsilon), -weight_limit, weight_limit)
grad = 0
'''

@dataclass(frozen=True)
class EMSTDPParameters(RuleParameters):
    """Hyper-parameters of EMSTDP (see the module docstring's table)."""

    profile: str = param("published", "published (zmeidd/EMSTDP's EMSTDP_algo.py step for "
                         "step) or revised (our departures: subtract error reset, phase-2 "
                         "restart, independent input draws, our windows)", choices=PROFILES)
    learning_rate: tuple = param((0.004,), "η: step size, one value or one per weight layer, "
                                 "the last repeating", flags=LR_FLAGS)
    batch_size: int = param(10, "samples per update (the code's)")
    feedback: str = param("symmetric", "symmetric (dfa=0), fa (fixed random B, dfa=1) or dfa "
                          "(direct from the output, dfa=2)", choices=FEEDBACK_MODES)
    derivative_gate: bool = param(None, "gate hidden error spikes by phase-1 activity "
                                  "(default: published: off for dfa only, the code's; revised: "
                                  "on, except dfa with --error-reset zero)")
    input_rate: float = param(1.0, "r_in: spike probability per step of a white pixel (fr)")
    input_draw: str = param(None, "shared (one random number per step for all pixels, the "
                            "code's) or independent (one per pixel); default: the profile's",
                            choices=INPUT_DRAWS)
    rms_decay: float = param(0.9, "ρ of the RMS normaliser (the code's)")
    rms_epsilon: float = param(1e-8, "ε_m of the RMS normaliser (the code's)")
    weight_limit: float = param(1.0, "w_max: weights are clipped to [-w_max, w_max]")
    feedback_init_scale: float = param(1.0, "s: B ~ U(-s/√n, s/√n), n = size of the "
                                       "error-sending layer")
    init_scale: float = param(1.0, "s: W^l ~ N(0, (s·√(3/fan_in))²)")
    restart_phase2: bool = param(None, "somata restart from rest at the start of phase 2 "
                                 "(off = the code's continuous membrane; default: the profile's)",
                                 flags=("--phase2-restart", "--restart-phase2"))
    neuron: IntegrateAndFireParameters = param(factory=IntegrateAndFireParameters,
                                               help="thresholds and error constants")

    def __post_init__(self):
        super().__post_init__()
        require_choice("EMSTDP profile", self.profile, PROFILES)
        defaults = PROFILE_DEFAULTS[self.profile]
        if self.neuron.error_reset is None:
            object.__setattr__(self, "neuron",
                               replace(self.neuron, error_reset=defaults["error_reset"]))
        for name in ("restart_phase2", "input_draw"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, defaults[name])
        require_choice("feedback mode", self.feedback, FEEDBACK_MODES)
        require_choice("input draw", self.input_draw, INPUT_DRAWS)
        if self.restart_phase2 not in (True, False):
            raise ConfigurationError(
                f"restart_phase2 must be true or false, got {self.restart_phase2!r}")
        if self.derivative_gate not in (None, True, False):
            raise ConfigurationError(
                f"derivative gate must be true, false or None (auto), got {self.derivative_gate!r}")
        for name in ("rms_epsilon", "weight_limit", "feedback_init_scale", "init_scale"):
            require_positive(name.replace("_", " "), getattr(self, name))
        require_rate("input rate", self.input_rate)
        if not 0 <= self.rms_decay < 1:
            raise ConfigurationError(f"rms decay must lie in [0, 1), got {self.rms_decay!r}")

    @property
    def gated(self):
        """Whether hidden error spikes are gated by phase-1 activity.

        Auto (``None``): published, the code's ``dr = 1``: on, except for dfa (the code skips
        the derivative when ``dfa == 2``). Revised: on, except dfa with the ``zero`` error reset
        (ungated DFA with the ``subtract`` reset collapses: silent hidden neurons receive the
        full positive error, their weights only grow).
        """
        if self.derivative_gate is not None:
            return self.derivative_gate
        if self.profile == "published":
            return self.feedback != "dfa"
        return not (self.feedback == "dfa" and self.neuron.error_reset == "zero")

    @property
    def timing(self):
        """The profile's :class:`~plausigrad.models.integrate_and_fire.SlotTiming`."""
        return TIMINGS[self.profile]


class EMSTDP(LearningRule):
    """The EMSTDP plug-in (see the module docstring)."""

    name = "emstdp"
    parameters_class = EMSTDPParameters
    #: (forward_steps, feedback_steps) of the default (published) profile; an instance has its
    #: own profile's (:data:`PROFILE_WINDOWS`)
    default_windows = PROFILE_WINDOWS["published"]
    alignment_plugin = "plausigrad.analysis.emstdp_alignment:EMSTDPAlignment"
    #: Event input: both phases present the sample's bins from bin 0 (the stimulus is shown in
    #: both, as the static image is) [OURS: the code has static images only].
    event_input_step = "step_in_slot - forward_steps * int(step_in_slot >= forward_steps)"

    def __init__(self, params=None):
        super().__init__(params)
        self.default_windows = PROFILE_WINDOWS[self.params.profile]

    def count_steps(self, windows):
        """Published: n1 covers F − 1 steps (2..F), EVAL the whole slot (the code's ``Test()``);
        revised: the forward window, both."""
        if self.params.profile == "published":
            return windows.forward_steps - 1, windows.slot_steps
        return windows.forward_steps, windows.forward_steps

    def check_windows(self, windows, n_layers):
        """The published timing is the code's single update per sample: T = 2 (twin + 1), i.e.
        equal windows (the code updates at every t > 2 twin, so a longer T updates repeatedly)."""
        if self.params.profile == "published" and windows.feedback_steps != windows.forward_steps:
            raise ConfigurationError(
                f"EMSTDP's published profile needs equal windows (the code's T = 2·(twin + 1)), "
                f"got {windows.forward_steps} + {windows.feedback_steps}: give --feedback-steps "
                f"{windows.forward_steps}, or use --profile revised")

    @property
    def loss(self):
        """MSE on output rates against ρ · one-hot, ρ = the neuron's ``output_target_rate``."""
        return RateMSE(self.params.neuron.output_target_rate)

    def state_layout(self, layer_sizes):
        n_layers = len(layer_sizes) - 1
        layout = {}
        for l in range(1, n_layers + 1):
            layout[f"W{l}"] = layout[f"rms{l}"] = (layer_sizes[l], layer_sizes[l - 1])
        for l in range(1, n_layers):
            name = self.feedback_name(l, n_layers)
            if name is not None:
                layout[name] = (layer_sizes[l], layer_sizes[self.feedback_sender(l, n_layers)])
        return layout

    def feedback_name(self, layer, n_layers):
        """State name of the fixed feedback matrix into hidden layer ``layer`` (None if symmetric).

        ``B{l}`` (shaped like (W^{l+1})ᵀ) for fa and for dfa's last hidden layer; ``D{l}``
        (shaped (n_l, n_out)) for dfa's deeper layers, which bypass W^{l+1}.
        """
        if self.params.feedback == "symmetric":
            return None
        if self.params.feedback == "dfa" and layer < n_layers - 1:
            return f"D{layer}"
        return f"B{layer}"

    def initial_state(self, layer_sizes, rng):
        p = self.params
        forward_thresholds(layer_sizes, p.neuron)  # validates the architecture
        state = {}
        n_layers = len(layer_sizes) - 1
        for l in range(1, n_layers + 1):
            fan_in, n = layer_sizes[l - 1], layer_sizes[l]
            state[f"W{l}"] = rng.normal(0.0, p.init_scale * np.sqrt(3.0 / fan_in), size=(n, fan_in))
            state[f"rms{l}"] = np.ones((n, fan_in))
        for l in range(1, n_layers):
            name = self.feedback_name(l, n_layers)
            if name is not None:
                sender = layer_sizes[self.feedback_sender(l, n_layers)]
                bound = p.feedback_init_scale / np.sqrt(sender)
                state[name] = rng.uniform(-bound, bound, size=(layer_sizes[l], sender))
        return state

    # -- network hooks (wired by plausigrad.rules.builder) -------------------------------------
    state_variables = {"W": ("weights", "w"), "rms": ("weights", "m"), "B": ("feedback", "B"),
                       "D": ("feedback", "B")}

    def feedback_sender(self, layer, n_layers):
        """The layer above (symmetric, fa) or the output (dfa)."""
        return n_layers if self.params.feedback == "dfa" else layer + 1

    def input_layer(self, ctx, name):
        return streaming_input(ctx.layer_sizes[0], ctx.pixel_expression, ctx.schedule_equations,
                               name=name, timing=self.params.timing, draw=self.params.input_draw,
                               extra_events=dict(LEARN_EVENTS))

    def neuron_layer(self, layer, ctx, name):
        return network_if_layer(ctx.layer_sizes, layer, self.params.neuron, ctx.schedule_equations,
                                name=name, target_expression=ctx.target_expression,
                                derivative_gate=self.params.gated,
                                feedback=self.params.feedback, timing=self.params.timing,
                                extra_events=dict(LEARN_EVENTS))

    def weights(self, pre, post, layer, ctx, name):
        symmetric = self.params.feedback == "symmetric" and layer >= 2
        on_post, error_events = error_pathways("w", "pre") if symmetric else ({}, {})
        apply = APPLY.format(counted_steps=self.params.timing.counted_steps)
        synapses = feedforward_synapses(
            pre.group, post.group, name=name, extra_model=SYNAPSE_MODEL,
            extra_on_pre={"learn": ACCUMULATE, "apply_batch": apply}, extra_on_post=on_post,
            extra_events={"learn": "learn", "apply_batch": "apply_batch", **error_events})
        synapses.learn.when = "after_resets"  # the last step's spikes are counted first
        return synapses

    def feedback(self, upper, lower, layer, ctx, name):
        return error_feedback_synapses(upper.group, lower.group, name=name)

    def namespace(self):
        p = self.params
        return {"input_rate": p.input_rate, "error_scale": p.neuron.error_scale,
                "target_rate": p.neuron.output_target_rate,
                "restart_phase2": 1.0 if p.restart_phase2 else 0.0,
                "rms_decay": p.rms_decay, "rms_epsilon": p.rms_epsilon,
                "weight_limit": p.weight_limit}
