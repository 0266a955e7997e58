"""Documented parameters: a dataclass field that carries its own help text and CLI spelling.

Every rule's and neuron's parameters are frozen dataclasses. Declaring a field with
:func:`param` gives it one default and one help text, from which the command line is generated
(``plausigrad train RULE --help``; :mod:`plausigrad.protocols.cli`), so nothing is written twice::

    threshold: float = param(0.5, "firing threshold V_th of the soma")
    learning_rate: tuple = param((0.02, 0.2), "SGD step per weight layer", flags=("--lr",))

``flags`` lists the option spellings (default: ``--`` + the field name with hyphens); the first
is the canonical one. ``metavar`` and ``choices`` refine the generated option.
"""

import dataclasses


def param(default=dataclasses.MISSING, help="", *, flags=(), choices=None, factory=None):
    """A dataclass field with documentation (see the module docstring)."""
    metadata = {"help": help, "flags": tuple(flags), "choices": choices}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def field_help(f):
    """The help text of a dataclass field ('' if it was declared without :func:`param`)."""
    return f.metadata.get("help", "")
