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
