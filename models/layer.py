"""What a neuron model returns: a :class:`Layer` (its group, its per-slot reset, its companions).

A model declares the state of its neurons once, as Brian2 model equations whose comments name
the compartment of each variable (``v : 1  # [soma] membrane potential``). From that one
declaration come both the compartment table the locality audit reads
(:mod:`plausigrad.models.compartments`) and the *slot reset*: the statements run at the start of
every slot (every sample), which set each declared variable to zero, except

* the variables the model ``keep``\\ s across slots (a bias, a mini-batch counter, a summed
  variable that Brian2 recomputes every step), and
* those given another ``start`` value (an expression, e.g. a random draw).

Constants (``(constant)`` flags) and subexpressions are never reset. A variable added to the
declaration is therefore reset without anyone having to remember it.

The shared network builder (:mod:`plausigrad.rules.builder`) runs ``slot_reset`` on the slot
clock, in the ``start`` slot, as ``<group name>_slot_reset``.
"""

from dataclasses import dataclass

from plausigrad.models.compartments import declare_compartments, declared_variables


def slot_reset_code(declarations, *, keep=(), start=None):
    """Statements resetting every variable of ``declarations`` at a slot start.

    ``keep``: names left alone; ``start``: {name: expression} start values other than 0. Every
    name in ``keep`` and ``start`` must be declared (a typo is an error, not a silent no-op).
    """
    start = dict(start or {})
    names = declared_variables(declarations)
    unknown = sorted((set(keep) | set(start)) - set(names))
    if unknown:
        raise ValueError(f"slot reset names undeclared variables: {', '.join(unknown)}")
    return "\n".join(f"{name} = {start.get(name, 0)}" for name in names if name not in keep)


@dataclass(frozen=True)
class Layer:
    """One layer of a network, as a model builds it.

    ``group`` is the Brian2 ``NeuronGroup``; ``slot_reset`` the code run at every slot start
    (:func:`slot_reset_code`); ``companions`` further Brian2 objects that belong to the layer
    (e.g. the lateral inhibition of a winner-take-all output).
    """

    group: object
    slot_reset: str
    companions: tuple = ()

    @property
    def name(self):
        return self.group.name

    def __len__(self):
        return len(self.group)


def make_layer(group, declarations, *, keep=(), start=None, companions=()):
    """Register the compartment tags of ``declarations`` for ``group`` and return its
    :class:`Layer`, the slot reset generated from the same declarations."""
    declare_compartments(group, declarations)
    return Layer(group, slot_reset_code(declarations, keep=keep, start=start), tuple(companions))
