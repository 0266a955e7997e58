"""``dfa_if``: direct feedback alignment on non-leaky integrate-and-fire neurons, plain SGD.

Source: direct feedback alignment (DFA), A. Nøkland, "Direct Feedback Alignment Provides
Learning in Deep Neural Networks", NIPS 2016: every hidden layer receives the output error
through its own fixed random matrix B^l, not through the forward weights. Here DFA is carried by
the spiking two-phase network of plausigrad's EMSTDP neurons (Shrestha et al., ICONS 2019;
``plausigrad.models.integrate_and_fire``): the same neurons and error units, built from the same
blocks, but with DFA only, the derivative gate always on and a plain mini-batch SGD step instead
of EMSTDP's RMS-normalised one (so the learned state is the weights alone).

Per TRAIN slot, phase 1 (forward window, T_1 steps) counts every neuron's spikes n1; in phase 2
the input keeps streaming, the output error units emit signed spikes σ_k from the loss, and they
reach every hidden layer's error units through B^l (n_l × n_out); each error spike injects ±one
threshold into its own soma, so the phase-2 counts n2 differ from n1 by about the error::

    hidden error   E_j^l += Σ_k B^l_jk σ_k        (σ_j^l emitted only if n1_j^l > 0: the gate)
    update         g_ji  = (1/B) Σ_b n1_i^pre (n2_j^post − n1_j^post) / T_1
                   W_ji  ← clip(W_ji + η g_ji, −w_max, +w_max)     (every B samples)

The loss is the MSE on output rates, ½‖ρ·onehot(y) − n1/T_1‖² (``plausigrad.rules.losses``).

====================  ======  =======  ========================================================
parameter             symbol  default  meaning
====================  ======  =======  ========================================================
learning_rate         η       0.01     step size per weight layer (one value or one per layer)
batch_size            B       1        samples per update (1: online)
weight_limit          w_max   1.0      weight clipping bound
feedback_init_scale   s_B     1.0      B^l ~ U(−s_B/√n_out, s_B/√n_out), fixed
neuron                -       -        IntegrateAndFireParameters (thresholds, ε, ρ, resets)
====================  ======  =======  ========================================================

learning_rate and batch_size are inherited from ``RuleParameters`` with its defaults. Fixed:
input rate 1 (a white pixel spikes every step of both phases), somata restart at the start of
phase 2, W^l ~ N(0, 3/fan_in).
"""

from dataclasses import dataclass

import numpy as np
from plausigrad.models.errors import require_positive
from plausigrad.models.parameters import param
from plausigrad.models.integrate_and_fire import (IntegrateAndFireParameters,
                                                  error_feedback_synapses, forward_thresholds,
                                                  network_if_layer, streaming_input)
from plausigrad.models.synapses import feedforward_synapses
from plausigrad.rules.base import LearningRule, RuleParameters
from plausigrad.rules.losses import RateMSE

#: custom events of the presynaptic groups: the update step (neuron active in phase 1) and the
#: first step of a mini-batch with samples pending
EVENTS = {"learn": "learn_step > 0 and count > 0", "apply_batch": "batch_start > 0 and pending > 0"}
PLASTICITY = "learning_rate : 1 (shared)\ngrad : 1  # Σ_b n1_pre (n2_post - n1_post)\n"
ON_PRE = {"learn": "grad += count_pre * (n2_post - count_post)",
          "apply_batch": "w = clip(w + learning_rate * grad / (pending_pre * forward_steps), "
                         "-weight_limit, weight_limit)\ngrad = 0"}


@dataclass(frozen=True)
class DFAParameters(RuleParameters):
    weight_limit: float = param(1.0, "w_max: weights are clipped to [-w_max, w_max]")
    feedback_init_scale: float = param(1.0, "s_B: B^l ~ U(-s_B/√n_out, s_B/√n_out), fixed")
    neuron: IntegrateAndFireParameters = param(factory=IntegrateAndFireParameters,
                                               help="thresholds and error constants")

    def __post_init__(self):
        super().__post_init__()  # learning rates, batch size, a neuron given as a dict
        for name in ("weight_limit", "feedback_init_scale"):
            require_positive(name.replace("_", " "), getattr(self, name))


class DirectFeedbackIF(LearningRule):
    name = "dfa_if"
    parameters_class = DFAParameters
    default_windows = (20, 21)  # phase 1: 20 steps; phase 2: 20 error steps + the update step
    alignment_plugin = "plausigrad_dfa_example.alignment:DirectFeedbackIFAlignment"

    @property
    def loss(self):
        return RateMSE(self.params.neuron.output_target_rate)

    def feedback_name(self, layer, n_layers):  # B: shaped like (W^{l+1})ᵀ; D: deeper layers
        return f"B{layer}" if layer == n_layers - 1 else f"D{layer}"

    def state_layout(self, sizes):
        layout = {f"W{l}": (sizes[l], sizes[l - 1]) for l in range(1, len(sizes))}
        layout.update({self.feedback_name(l, len(sizes) - 1): (sizes[l], sizes[-1])
                       for l in range(1, len(sizes) - 1)})
        return layout

    def initial_state(self, sizes, rng):
        p = self.params
        forward_thresholds(sizes, p.neuron)  # validates the architecture (>= 1 hidden layer)
        state = {}
        for name, (n, m) in self.state_layout(sizes).items():  # m: fan-in, or n_out for B
            if name.startswith("W"):
                state[name] = rng.normal(0.0, np.sqrt(3.0 / m), size=(n, m))
            else:
                bound = p.feedback_init_scale / np.sqrt(m)
                state[name] = rng.uniform(-bound, bound, size=(n, m))
        return state

    # network hooks: the shared builder (plausigrad.rules.builder) wires them
    state_variables = {"W": ("weights", "w"), "B": ("feedback", "B"), "D": ("feedback", "B")}

    def feedback_sender(self, layer, n_layers):  # DFA: every hidden layer hears the output
        return n_layers

    def input_layer(self, ctx, name):
        return streaming_input(ctx.layer_sizes[0], ctx.pixel_expression, ctx.schedule_equations,
                               name=name, extra_events=dict(EVENTS))

    def neuron_layer(self, l, ctx, name):
        return network_if_layer(ctx.layer_sizes, l, self.params.neuron, ctx.schedule_equations,
                                name=name, target_expression=ctx.target_expression,
                                derivative_gate=True, extra_events=dict(EVENTS))

    def weights(self, pre, post, l, ctx, name):
        return feedforward_synapses(pre.group, post.group, name=name, extra_model=PLASTICITY,
                                    extra_on_pre=ON_PRE,
                                    extra_events={event: event for event in EVENTS})

    def feedback(self, upper, lower, l, ctx, name):  # fixed B^l from the output's error units
        return error_feedback_synapses(upper.group, lower.group, name=name)

    def namespace(self):
        p = self.params
        return {"input_rate": 1.0, "error_scale": p.neuron.error_scale,
                "target_rate": p.neuron.output_target_rate, "restart_phase2": 1.0,
                "weight_limit": p.weight_limit}
