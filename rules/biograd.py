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
"""

from dataclasses import dataclass

import numpy as np

from plausigrad.models.compartment_neuron import CompartmentNeuronParameters, compartment_layer
from plausigrad.models.encoders import bernoulli_input
from plausigrad.models.errors import require_choice, require_positive, require_rate
from plausigrad.models.parameters import param
from plausigrad.models.synapses import feedback_synapses, feedforward_synapses
from plausigrad.rules.base import (BIAS_LR_FLAGS, LR_FLAGS, BiasedRuleParameters, LearningRule,
                                   per_layer, positive_tuple)
from plausigrad.rules.eligibility import ELIGIBILITY_FORMS, eligibility_code
from plausigrad.rules.losses import RateMSE
from plausigrad.rules.sleep import DECAY_AT_SLOT_START, HEBBIAN_ON_ECHO

FEEDBACK_MODES = ("sleep", "fa", "symmetric")

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

    learning_rate: tuple = param((0.02, 0.2), "η: SGD step of the feedforward weights, one "
                                 "value or one per weight layer", flags=LR_FLAGS)
    bias_learning_rate: float = param(0.0, "η_b: SGD step of the biases (0 disables)",
                                      flags=BIAS_LR_FLAGS)
    batch_size: int = param(8, "samples per weight update")
    eligibility: str = param("factorised", "eligibility form: factorised ψ̄·x̄ or exact "
                             "(per-synapse trace)", choices=ELIGIBILITY_FORMS)
    feedback: str = param("sleep", "sleep (plastic B aligned in sleep), fa (fixed random B) or "
                          "symmetric (B = Wᵀ)", choices=FEEDBACK_MODES)
    error_quantum: float = param(0.125, "q: error carried by one error event")
    target_rate: float = param(0.8, "y_on: target rate of the labelled output unit "
                               "(spikes/step)")
    input_rate: float = param(1.0, "r_in: spike probability per step of a white pixel")
    init_std: tuple = param((0.01, 0.1), "σ_l: W^l ~ N(0, σ_l²), per weight layer")
    feedback_init_scale: float = param(None, "s: initial B ~ U(-s/√n, s/√n), n = size of the "
                                       "layer above (default 1 for fa, 0.1 for sleep)")
    sleep_noise_rate: float = param(0.1, "r_s: noise spike probability per step of hidden "
                                    "neurons in sleep", flags=("--sleep-noise",
                                                               "--sleep-noise-rate"))
    sleep_learning_rate: float = param(0.0025, "η_s: Hebbian step of B in sleep",
                                       flags=("--sleep-lr", "--sleep-learning-rate"))
    sleep_decay: float = param(0.005, "λ_s: decay of B per sleep slot")
    dithered_errors: bool = param(True, "error units start from U[0,1) (unbiased) instead of 1/2")
    neuron: CompartmentNeuronParameters = param(factory=CompartmentNeuronParameters,
                                                help="soma and dendrite constants")

    def __post_init__(self):
        super().__post_init__()
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

    @property
    def uses_sleep(self):
        return self.params.feedback == "sleep"

    @property
    def loss(self):
        return RateMSE(self.params.target_rate)

    def feedback_name(self, layer, n_layers):
        return None if self.params.feedback == "symmetric" else f"B{layer}"

    def state_layout(self, layer_sizes):
        layout = {}
        for l in range(1, len(layer_sizes)):
            layout[f"W{l}"] = (layer_sizes[l], layer_sizes[l - 1])
            layout[f"b{l}"] = (layer_sizes[l],)
        for l in range(1, len(layer_sizes) - 1):
            if self.feedback_name(l, len(layer_sizes) - 1):
                layout[f"B{l}"] = (layer_sizes[l], layer_sizes[l + 1])
        return layout

    def initial_state(self, layer_sizes, rng):
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
        return bernoulli_input(ctx.layer_sizes[0], ctx.pixel_expression, ctx.schedule_equations,
                               name=name, extra_events=dict(LEARN_EVENT))

    def neuron_layer(self, layer, ctx, name):
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
        return {**p.neuron.namespace(), "error_quantum": p.error_quantum,
                "input_rate": p.input_rate, "sleep_noise_rate": p.sleep_noise_rate,
                "sleep_learning_rate": p.sleep_learning_rate, "sleep_decay": p.sleep_decay,
                "target_rate": p.target_rate, "error_dither": 1.0 if p.dithered_errors else 0.0}

    def weights(self, pre, post, layer, ctx, name):
        """Feedforward synapses of weight layer ``layer`` with eligibility and update."""
        p = self.params
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
