"""SSNN-BP: stochastic spike-based backprop with composite neurons and coincidence (RPU) updates.

Source: Biswas, Saraswat, Ganguly, "A Temporally and Spatially Local Spike-based Backpropagation
Algorithm to Enable Training in Hardware", arXiv:2207.09755 (2022) / Neuromorph. Comput. Eng.
(2023); equations reconstructed in ../shared/ALGORITHMS.md §4 (not confirmed against the paper).
Neurons: :mod:`plausigrad.models.composite_neuron`.

No phases. In every step of a TRAIN slot, forward spikes x, and the signed gradient streams g⁺, g⁻
of the same sample travel at the same time (pipelined, one step per layer). Every weight W^l_ji
is ONE ``Synapses`` variable that serves both directions:

* forward, on a presynaptic ``spike``:          z_j += W_ji
* backward, on a postsynaptic ``gpos``/``gneg``: ν_i += ±W_ji   (transposed read of the crossbar;
  only for hidden presynaptic layers)
* update, on the same postsynaptic event (the RPU coincidence rule)::

      ΔW_ji = −Δw_min · x_i · (g⁺_j − g⁻_j)          Δb_j = −Δw_b · (g⁺_j − g⁻_j)

  where x_i is the presynaptic spike that caused the gradient (the presynaptic neuron's spike
  history ``h{K}``, K = 2(L − l) + 1 steps back; see the model's docstring). The synapse reads
  one presynaptic bit and one postsynaptic event: the update is local in space and time and is
  applied at every step (``batch_size`` 1, the rule as published).

Expectation over a window of T steps (ALGORITHMS.md §4.2): at the output E[g⁺ − g⁻] =
softmax(z) − y, in hidden layers E[g⁺ − g⁻] = α f' Σ_k W_kj (softmax − y)_k when the
probabilities are not clipped, so E[ΔW^l] ≈ −Δw_min · T · x · δ^l: SGD on the softmax
cross-entropy with η = Δw_min · T (and α Δw_min T for hidden layers), whose per-sample quantisation
noise falls like 1/T ("approaches BP with sufficiently long spike trains").

With ``batch_size`` B > 1 the coincidences are accumulated per synapse (``grad``) and the mean
over B samples is applied at the batch boundary (an ``apply_batch`` event of the presynaptic
layer); the alignment analysis uses this with B = probe size so every probe sample sees the same
weights. This is an analysis device, not part of the published rule.

Prediction: argmax over the output units of their wins in the window (the WTA's empirical
softmax). Evaluation slots are forward-only.

Parameters (:class:`SSNNBPParameters`); † = our choice (the paper's values are unknown):

=====================  ========  =======  ======================================================
parameter              symbol    default  meaning
=====================  ========  =======  ======================================================
learning_rate          Δw_min    †        weight change per coincidence, per weight layer
bias_learning_rate     Δw_b      0 †      bias change per gradient event (0: biases fixed)
gradient_scale         α         1 †      hidden gradient spike probability per unit of ν f'
batch_size             B         1        1 = online, every step (the rule); >1 for analysis
input_rate             r_in      1.0      spike probability per step of a white pixel
init_std               σ_l       †        W^l ~ N(0, σ_l²), per layer
=====================  ========  =======  ======================================================

T (the spike-train length) is the engine's ``forward_steps`` (``--forward-steps``); the feedback
window only drains the pipeline: it must be ≥ 2L − 1 steps, and that is its default (3 for one
hidden layer, 5 for two); a shorter one is refused (the lowest layers would lose the last
gradient samples of every slot).
"""

from dataclasses import dataclass

import numpy as np
from brian2 import Synapses

from plausigrad.models.composite_neuron import (composite_layer, spike_history_depth,
                                                stochastic_input, wta_output_layer)
from plausigrad.models.errors import ConfigurationError, require_positive, require_rate
from plausigrad.models.parameters import param
from plausigrad.models.synapses import connect_all_to_all, signed_pathways
from plausigrad.rules.base import (BIAS_LR_FLAGS, LR_FLAGS, BiasedRuleParameters, LearningRule,
                                   per_layer, positive_tuple)
from plausigrad.rules.losses import SoftmaxCrossEntropy

#: Presynaptic event applying an accumulated mini-batch (only built when batch_size > 1). Pass a
#: copy to every group: Brian2 adds the ``spike`` event to the dict it is given.
APPLY_BATCH_EVENT = {"apply_batch": "batch_start > 0"}

#: Bias update when mini-batches are used: apply at the boundary, accumulate on events.
BIAS_BATCH_STEP = """
b -= bias_learning_rate * bgrad / batch_size * batch_start
bgrad = bgrad * (1 - batch_start)
"""


@dataclass(frozen=True)
class SSNNBPParameters(BiasedRuleParameters):
    """Hyper-parameters of the SSNN-BP rule (see the module docstring's table)."""

    learning_rate: tuple = param((0.0005, 0.0005), "Δw_min: weight change per coincidence, "
                                 "one value or one per weight layer, the last repeating",
                                 flags=LR_FLAGS)
    bias_learning_rate: float = param(0.0, "Δw_b: bias change per gradient event (0: fixed)",
                                      flags=BIAS_LR_FLAGS)
    gradient_scale: float = param(1.0, "α: hidden gradient spike probability per unit of ν·f'")
    batch_size: int = param(1, "1 = online, every step (the rule); > 1 for analysis")
    input_rate: float = param(1.0, "r_in: spike probability per step of a white pixel")
    init_std: tuple = param((0.05, 0.1), "σ_l: W^l ~ N(0, σ_l²), per weight layer, the last "
                            "repeating for deeper layers")

    learning_rate_label = "learning rate (Δw_min)"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "init_std", positive_tuple("init_std", self.init_std))
        require_positive("gradient scale", self.gradient_scale)
        require_rate("input rate", self.input_rate)


class SSNNBP(LearningRule):
    """The SSNN-BP plug-in (see the module docstring)."""

    name = "ssnnbp"
    parameters_class = SSNNBPParameters
    #: (T, drain): spike trains of T = 32 steps; 3 steps drain a one-hidden-layer pipeline
    #: (deeper networks: :meth:`windows_for`)
    default_windows = (32, 3)
    alignment_plugin = "plausigrad.analysis.ssnnbp_alignment:SSNNBPAlignment"

    def windows_for(self, n_layers):
        """T = 32 and the drain the pipeline of ``n_layers`` weight layers needs, 2L − 1."""
        return self.default_windows[0], max(self.default_windows[1], 2 * n_layers - 1)

    def check_windows(self, windows, n_layers):
        """The feedback window drains the pipeline: ≥ 2L − 1 steps
        (:mod:`plausigrad.models.composite_neuron`), else the gradient events of the lowest
        layers fall beyond the slot and are lost."""
        need = 2 * n_layers - 1
        if windows.feedback_steps < need:
            raise ConfigurationError(
                f"SSNN-BP with {n_layers} weight layers needs a feedback (drain) window of at "
                f"least 2L - 1 = {need} steps, got {windows.feedback_steps}; raise "
                f"--feedback-steps (or leave it out for that default)")

    @property
    def loss(self):
        """Softmax cross-entropy: the WTA output samples the softmax (logged from the win counts,
        :class:`~plausigrad.rules.losses.SoftmaxCrossEntropy`); accuracy is the argmax of the
        wins."""
        return SoftmaxCrossEntropy()

    def state_layout(self, layer_sizes):
        layout = {}
        for l in range(1, len(layer_sizes)):
            layout[f"W{l}"] = (layer_sizes[l], layer_sizes[l - 1])
            layout[f"b{l}"] = (layer_sizes[l],)
        return layout

    def initial_state(self, layer_sizes, rng):
        stds = per_layer("init_std values", self.params.init_std, len(layer_sizes) - 1)
        state = {}
        for l in range(1, len(layer_sizes)):
            state[f"W{l}"] = rng.normal(0.0, stds[l - 1], size=(layer_sizes[l], layer_sizes[l - 1]))
            state[f"b{l}"] = np.zeros(layer_sizes[l])
        return state

    # -- network hooks (wired by plausigrad.rules.builder) -------------------------------------
    state_variables = {"W": ("weights", "w"), "b": ("layer", "b")}

    @property
    def _batched(self):
        return self.params.batch_size > 1

    def input_layer(self, ctx, name):
        return stochastic_input(ctx.layer_sizes[0], ctx.pixel_expression, ctx.schedule_equations,
                                spike_history=spike_history_depth(0, ctx.n_layers), name=name,
                                extra_events=dict(APPLY_BATCH_EVENT) if self._batched else None)

    def neuron_layer(self, layer, ctx, name):
        batched, n = self._batched, ctx.layer_sizes[layer]
        bias_model = "bias_learning_rate : 1 (shared)\n" + ("bgrad : 1\n" if batched else "")
        if batched:
            on_gradient = {"gpos": "bgrad += 1", "gneg": "bgrad -= 1"}
        else:
            on_gradient = {"gpos": "b -= bias_learning_rate", "gneg": "b += bias_learning_rate"}
        if layer == ctx.n_layers:
            built = wta_output_layer(n, ctx.schedule_equations, layer=layer, name=name,
                                     target_expression=ctx.target_expression,
                                     extra_model=bias_model, on_gradient=on_gradient)
        else:
            built = composite_layer(n, ctx.schedule_equations, layer=layer,
                                    n_layers=ctx.n_layers, name=name, extra_model=bias_model,
                                    extra_events=dict(APPLY_BATCH_EVENT) if batched else None,
                                    on_gradient=on_gradient)
        if batched:
            built.group.run_regularly(BIAS_BATCH_STEP, when="groups", order=2,
                                      name=f"{name}_bias_batch")
        return built

    def weights(self, pre, post, layer, ctx, name):
        """W^l: forward on pre spikes; transposed read and coincidence update on post events."""
        history = f"h{spike_history_depth(layer - 1, ctx.n_layers)}_pre"
        batched = self._batched
        model = "w : 1\nlearning_rate : 1 (shared)\n" + ("grad : 1\n" if batched else "")
        code = "nu_pre {sign}= w\n" if layer >= 2 else ""  # the transposed read
        code += (f"grad {{sign}}= {history}" if batched
                 else f"w {{opposite}}= learning_rate * {history}")
        on_post, gradient_events = signed_pathways("gradient", code, events=("gpos", "gneg"))
        on_pre, on_event = {"forward": "z_post += w"}, {"forward": "spike", **gradient_events}
        if batched:
            on_pre["apply_batch"] = "w -= learning_rate * grad / batch_size\ngrad = 0"
            on_event["apply_batch"] = "apply_batch"
        synapses = Synapses(pre.group, post.group, model=model, on_pre=on_pre, on_post=on_post,
                            on_event=on_event, name=name)
        connect_all_to_all(synapses)
        return synapses

    def namespace(self):
        return {"input_rate": self.params.input_rate,
                "gradient_scale": self.params.gradient_scale}
