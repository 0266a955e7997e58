"""The plug-in interface every learning rule implements.

A rule turns an architecture into Brian2 objects: it chooses the neuron and synapse models from
:mod:`plausigrad.models`, adds its plasticity (equations, on-event statements, ``run_regularly``
code) and declares which variables are *learned state* — the arrays the protocol carries from one
run to the next (``run_args`` on standalone), checkpoints, and hands to the analysis.

The protocol supplies a :class:`NetworkContext` (how to read the input and the label, the schedule
flags, the slot duration); :meth:`LearningRule.build` returns a :class:`BuiltNetwork`, wired by the
shared builder (:mod:`plausigrad.rules.builder`) from the rule's hooks: its input layer, its
neuron layers, its weights with their plasticity and its feedback. Nothing in a rule knows about
epochs, devices or files.
"""

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np

from plausigrad.models.errors import ConfigurationError, require_finite_fields, require_positive
from plausigrad.models.parameters import param
from plausigrad.rules.builder import BuiltNetwork, NetworkContext, StateVariable, build_network

__all__ = ["LearningRule", "RuleParameters", "BiasedRuleParameters", "NetworkContext",
           "BuiltNetwork", "StateVariable", "LR_FLAGS", "BIAS_LR_FLAGS", "per_layer",
           "positive_tuple"]


def positive_tuple(name, values):
    """``values`` (one number or a sequence) as a non-empty tuple of positive floats."""
    if not isinstance(values, (tuple, list)):
        values = (values,)
    if not values:
        raise ConfigurationError(f"{name} needs at least one value")
    for value in values:
        require_positive(name, value)
    return tuple(float(v) for v in values)


def per_layer(name, values, n_layers):
    """``values`` for each of ``n_layers`` weight layers, from the input upwards: one value is
    broadcast; fewer values than layers hold for the lowest layers and the last one repeats for
    the layers above (so a rule's (first layer, the rest) default such as BioGrad's init_std
    (0.01, 0.1) also serves a deeper network); more values than layers is an error."""
    if len(values) > n_layers:
        raise ConfigurationError(f"{len(values)} {name} given for {n_layers} weight "
                                 f"layer{'s' if n_layers != 1 else ''}")
    return tuple(values) + (values[-1],) * (n_layers - len(values))


#: option spellings of the learning rates (the short ones first: they are the documented ones)
LR_FLAGS = ("--lr", "--learning-rate")
BIAS_LR_FLAGS = ("--bias-lr", "--bias-learning-rate")


@dataclass(frozen=True)
class RuleParameters:
    """What every rule's parameters have: the learning rates and the mini-batch size.

    A rule's parameter dataclass derives from this one (frozen); its own ``__post_init__`` calls
    ``super().__post_init__()`` first, so these two are validated once, here.

    =================  ==========================================================================
    field              meaning
    =================  ==========================================================================
    learning_rate      step size per weight layer: one value (broadcast), one per layer, or
                       fewer (the last repeats for the layers above, :func:`per_layer`)
    batch_size         samples per weight update (1: online)
    =================  ==========================================================================
    """

    learning_rate: tuple = param((0.01,), "learning rate, one value or one per weight layer, "
                                 "the last repeating for deeper layers (e.g. 0.02,0.2)",
                                 flags=LR_FLAGS)
    batch_size: int = param(1, "samples per weight update (1: online)")

    #: how the learning rate is called in error messages (SSNN-BP: "learning rate (Δw_min)")
    learning_rate_label = "learning rate"

    def __post_init__(self):
        for f in dataclasses.fields(self):  # nested parameters given as a dict (CLI, TOML, JSON)
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(f.type) and isinstance(value, dict):
                try:
                    object.__setattr__(self, f.name, f.type(**value))
                except TypeError as exc:
                    raise ConfigurationError(f"bad {f.name} parameters: {exc}") from None
        require_finite_fields(self)  # inf / NaN pass "> 0" checks of the subclasses otherwise
        object.__setattr__(self, "learning_rate",
                           positive_tuple(self.learning_rate_label, self.learning_rate))
        if (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer))
                or self.batch_size < 1):
            raise ConfigurationError(f"batch size must be a positive integer, got {self.batch_size!r}")

    def layer_learning_rates(self, n_layers):
        """One learning rate per weight layer (:func:`per_layer`: the last value repeats)."""
        return per_layer("learning rates", self.learning_rate, n_layers)

    def learning_rate_values(self, n_layers, factor=1.0):
        """Values of the shared learning-rate variables (state name -> value), times ``factor``:
        ``W{l}`` gets the rate of weight layer l."""
        return {f"W{l}": rate * factor
                for l, rate in enumerate(self.layer_learning_rates(n_layers), start=1)}


@dataclass(frozen=True)
class BiasedRuleParameters(RuleParameters):
    """:class:`RuleParameters` of a rule whose neurons learn a bias ``b{l}`` per layer.

    =================  ==========================================================================
    bias_learning_rate step size of the biases (0 disables bias learning)
    =================  ==========================================================================
    """

    bias_learning_rate: float = param(0.0, "step size of the biases (0 disables)",
                                      flags=BIAS_LR_FLAGS)

    def __post_init__(self):
        super().__post_init__()
        if (isinstance(self.bias_learning_rate, bool)
                or not isinstance(self.bias_learning_rate, (int, float, np.floating))
                or not self.bias_learning_rate >= 0):
            raise ConfigurationError(
                f"bias learning rate must be >= 0 (0 disables), got {self.bias_learning_rate!r}")

    def learning_rate_values(self, n_layers, factor=1.0):
        """As :meth:`RuleParameters.learning_rate_values`, plus ``b{l}`` for every layer."""
        values = super().learning_rate_values(n_layers, factor)
        values.update({f"b{l}": self.bias_learning_rate * factor
                       for l in range(1, n_layers + 1)})
        return values


class LearningRule:
    """Base class of a plug-in rule: the whole contract between a rule and the rest of plausigrad.

    Class attributes a rule sets (the registry checks them when it loads a rule):

    ======================  =====================================================================
    ``name``                the registry name (``plausigrad train --rule NAME``)
    ``parameters_class``    its :class:`RuleParameters` subclass (a frozen dataclass)
    ``default_windows``     (forward_steps, feedback_steps) used when the user gives none
                            (:meth:`windows_for` may make them depend on the depth)
    ``alignment_plugin``    ``"module:Class"`` of its alignment plug-in
                            (:class:`plausigrad.analysis.alignment.AlignmentModel`), or None;
                            a string, so that the rule does not import the analysis layer
    ``state_variables``     state-name prefix -> (owner kind, Brian2 variable): where the
                            builder finds each array of :meth:`state_layout` (owner kinds:
                            ``"layer"`` l, ``"weights"`` W^l, ``"feedback"`` into layer l)
    ``learning_rate_variables``  the same for the keys of :meth:`learning_rate_values`
    ``default_lr_decay``    learning-rate factor per epoch when the user gives none (0.7)
    ``event_input_step``    Brian2 integer expression: the bin of event input a step presents
                            (default ``step_in_slot``: the slot plays the sample's bins once)
    ``accepts_event_counts`` whether the input layer integrates event counts as graded input
                            (x = the count; ``NetworkContext.graded_input``); False: every
                            input event is one spike, and count frames are refused
    ======================  =====================================================================

    Per instance (``rule = Rule(params)``): ``params``, ``batch_size``, :attr:`uses_sleep`,
    :attr:`loss` (a :mod:`plausigrad.rules.losses` object), :meth:`state_layout`,
    :meth:`feedback_name`, :meth:`feedback_sender`, :meth:`feedback_pairs`,
    :meth:`initial_state`, :meth:`check_windows`, :meth:`count_steps`, :meth:`sleep_defaults`,
    :meth:`build`, :meth:`describe`, :meth:`learning_rate_values`. An instance may replace
    ``default_windows`` with its own (a rule whose profiles use different windows).

    Network hooks, called by :func:`plausigrad.rules.builder.build_network` (``build``):
    :meth:`input_layer`, :meth:`neuron_layer`, :meth:`weights`, :meth:`feedback` and
    :meth:`namespace`. A rule implements them, or overrides :meth:`build` altogether.
    """

    name = None
    parameters_class = RuleParameters
    default_windows = None
    alignment_plugin = None
    state_variables = {"W": ("weights", "w")}
    learning_rate_variables = {"W": ("weights", "learning_rate"),
                               "b": ("layer", "bias_learning_rate")}
    event_input_step = "step_in_slot"
    default_lr_decay = 0.7
    accepts_event_counts = False

    def __init__(self, params=None):
        if params is None:
            params = self.parameters_class()
        if not isinstance(params, self.parameters_class):
            raise ConfigurationError(f"rule {self.name} takes {self.parameters_class.__name__}, "
                                     f"got {type(params).__name__}")
        self.params = params

    @property
    def batch_size(self):
        """Samples per weight update (1: online)."""
        return self.params.batch_size

    @property
    def uses_sleep(self):
        """Whether the training timeline has sleep blocks for this rule (default: no)."""
        return False

    @property
    def loss(self):
        """The loss the rule descends (:mod:`plausigrad.rules.losses`)."""
        raise NotImplementedError

    def state_layout(self, layer_sizes):
        """The learned state: name -> shape, exactly the arrays :meth:`initial_state` returns and
        :meth:`build` declares (weights ``W{l}`` are (post, pre))."""
        raise NotImplementedError

    def feedback_name(self, layer, n_layers):
        """Name of the state array that carries errors into hidden layer ``layer``, or None when
        errors travel back through the forward weights (W^{l+1})ᵀ themselves (default)."""
        return None

    def feedback_sender(self, layer, n_layers):
        """Index of the layer whose error units send the feedback into hidden layer ``layer``:
        the layer above (default), or e.g. the output for direct feedback alignment."""
        return layer + 1

    def feedback_pairs(self, layer_sizes):
        """[(feedback name, forward name)]: feedback matrices from the layer above, the
        counterpart of the transpose of the forward matrix above them (B^l against W^{l+1}),
        whose angle the trainer logs."""
        n_layers = len(layer_sizes) - 1
        pairs = []
        for l in range(1, n_layers):
            name = self.feedback_name(l, n_layers)
            if name is not None and self.feedback_sender(l, n_layers) == l + 1:
                pairs.append((name, f"W{l + 1}"))
        return pairs

    def sleep_defaults(self, n_hidden):
        """(samples between sleep blocks, slots per block) when the user gives none, for a
        network of ``n_hidden`` hidden layers (only read for rules that sleep)."""
        return 1000, 20

    def count_steps(self, windows):
        """(train, eval): how many steps the output counts of a TRAIN and of an EVAL slot cover
        (default: the forward window, both)."""
        return windows.forward_steps, windows.forward_steps

    def windows_for(self, n_layers):
        """(forward_steps, feedback_steps) used when the user gives none, for ``n_layers``
        weight layers; default: :attr:`default_windows` at every depth."""
        return self.default_windows

    def check_windows(self, windows, n_layers):
        """Raise ConfigurationError if the rule cannot run with ``windows``
        (:class:`~plausigrad.protocols.schedule.Windows`) on ``n_layers`` weight layers;
        default: any windows."""

    def build(self, context):
        """Return a :class:`BuiltNetwork` for ``context``: the shared builder wires the rule's
        hooks (:func:`plausigrad.rules.builder.build_network`)."""
        return build_network(self, context)

    # -- network hooks (see plausigrad.rules.builder) -----------------------------------------
    def input_layer(self, context, name):
        """The input :class:`~plausigrad.models.layer.Layer` (spike sources of the pixels)."""
        raise NotImplementedError

    def neuron_layer(self, layer, context, name):
        """The :class:`~plausigrad.models.layer.Layer` of layer ``layer`` (1..L; L: output)."""
        raise NotImplementedError

    def weights(self, pre, post, layer, context, name):
        """The ``Synapses`` of W^layer from Layer ``pre`` to Layer ``post``, with plasticity."""
        raise NotImplementedError

    def feedback(self, upper, lower, layer, context, name):
        """The feedback ``Synapses`` from Layer ``upper`` into hidden Layer ``lower``."""
        raise NotImplementedError

    def namespace(self):
        """Constants the rule's equations use (``batch_size`` is added by the builder)."""
        return {}

    def initial_state(self, layer_sizes, rng):
        """Initial learned state: name -> numpy array shaped like ``StateVariable.shape``."""
        raise NotImplementedError

    def check_state(self, state, layer_sizes, where="the learned state"):
        """Raise :class:`ConfigurationError` unless ``state`` holds exactly the arrays of
        :meth:`state_layout` for ``layer_sizes``, each of its shape and finite (a run must never
        start from arrays a compiled binary would refuse, or from another network's)."""
        layout = self.state_layout(tuple(layer_sizes))
        missing = [name for name in layout if name not in state]
        extra = sorted(set(state) - set(layout))
        network = f"{self.name} {'-'.join(map(str, layer_sizes))}"
        if missing or extra:
            problem = (f"has no array {missing[0]}" if missing
                       else f"has array {extra[0]}, which {network} does not have")
            raise ConfigurationError(f"{where} {problem} (expected {', '.join(layout)})")
        for name, shape in layout.items():
            array = np.asarray(state[name])
            if array.shape != tuple(shape):
                raise ConfigurationError(f"{where}: {name} has shape {array.shape}, "
                                         f"{network} needs {tuple(shape)}")
            if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
                raise ConfigurationError(f"{where}: {name} holds non-finite or non-numeric "
                                         "values")
        return state

    def describe(self):
        """A dict of the rule's hyper-parameters, written into metrics and checkpoints."""
        return {"rule": self.name, **asdict(self.params)}

    def learning_rate_values(self, n_layers, factor=1.0):
        """Values of the shared learning-rate variables, scaled by a schedule ``factor``
        (:meth:`RuleParameters.learning_rate_values`)."""
        return self.params.learning_rate_values(n_layers, factor)
