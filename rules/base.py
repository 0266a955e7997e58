"""The plug-in interface every learning rule implements.

A rule turns an architecture into Brian2 objects: it chooses the neuron and synapse models from
:mod:`plausigrad.models`, adds its plasticity (equations, on-event statements, ``run_regularly``
code) and declares which variables are *learned state* — the arrays the protocol carries from one
run to the next (``run_args`` on standalone), checkpoints, and hands to the analysis.

The protocol supplies a :class:`NetworkContext` (how to read the input and the label, the schedule
flags, the slot and batch durations); the rule returns a :class:`BuiltNetwork`. Nothing in a rule
knows about epochs, devices or files.
"""

from dataclasses import dataclass, field

from plausigrad.models.errors import ConfigurationError, require_positive


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
    """``values`` for each of ``n_layers`` layers: one value is broadcast, else lengths must match."""
    if len(values) == 1:
        return tuple(values) * n_layers
    if len(values) != n_layers:
        raise ConfigurationError(f"{len(values)} {name} given for {n_layers} weight layers")
    return tuple(values)


@dataclass(frozen=True)
class NetworkContext:
    """What the protocol provides to a rule when building a network."""

    layer_sizes: tuple           #: (n_input, n_hidden..., n_output)
    pixel_expression: str        #: Brian2 expression of the input intensity of input neuron i
    target_expression: str       #: expression of y_j (1 for the labelled output unit, else 0)
    schedule_equations: str      #: the schedule flags (models.schedule_signals)
    slot_duration: object        #: Brian2 quantity: duration of one slot


@dataclass(frozen=True)
class StateVariable:
    """One learned array: ``owner.<variable>``; ``shape`` is its matrix shape (post, pre)."""

    owner: object
    variable: str
    shape: tuple


@dataclass
class BuiltNetwork:
    """The Brian2 objects of a rule's network and the handles the protocol needs."""

    objects: list                #: every Brian2 object to put into the Network
    input_group: object
    output_group: object
    state: dict                  #: name -> StateVariable, the learned state (weights, biases)
    learning_rates: dict         #: name -> (owner, variable) of shared learning-rate variables
    feedback_pairs: list = field(default_factory=list)  #: (feedback name, feedforward name)
    namespace: dict = field(default_factory=dict)       #: constants the equations use


class LearningRule:
    """Base class of a plug-in rule. Subclasses set ``name`` and implement :meth:`build`."""

    name = "abstract"

    @property
    def batch_size(self):
        """Samples per weight update (1: online)."""
        return 1

    def build(self, context):
        """Return a :class:`BuiltNetwork` for ``context``."""
        raise NotImplementedError

    def initial_state(self, layer_sizes, rng):
        """Initial learned state: name -> numpy array shaped like ``StateVariable.shape``."""
        raise NotImplementedError

    def describe(self):
        """A dict of the rule's hyper-parameters, written into metrics and checkpoints."""
        raise NotImplementedError

    def learning_rate_values(self, n_layers, factor=1.0):
        """Values of the shared learning-rate variables, scaled by a schedule ``factor``.

        ``W{l}`` gets the rule's rate of weight layer l (``params.learning_rate``, one value or
        one per layer); ``b{l}`` gets ``params.bias_learning_rate`` where the rule has biases.
        """
        rates = per_layer("learning rates", self.params.learning_rate, n_layers)
        bias_rate = getattr(self.params, "bias_learning_rate", None)
        values = {}
        for l, rate in enumerate(rates, start=1):
            values[f"W{l}"] = rate * factor
            if bias_rate is not None:
                values[f"b{l}"] = bias_rate * factor
        return values
