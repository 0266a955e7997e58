"""Compartment tags: which compartment (basal, soma, apical, axon, ...) each state variable is in.

The neuron models tag their state declarations with comments, ``v : 1  # [soma] membrane``, and
register each group they build with :func:`declare_compartments`; the locality audit
(:mod:`plausigrad.analysis.audit`) reads :func:`compartments` of a group to name where a value
a plasticity statement reads lives. Brian2 drops equation comments, so the table is kept here,
beside the group (a weak reference: it goes when the group goes), not on the Brian2 object.
"""

import weakref

_TABLES = weakref.WeakKeyDictionary()


def compartments_of(equations):
    """{variable: compartment} from the ``# [compartment]`` tags of model equations."""
    table = {}
    for line in equations.strip().splitlines():
        name, _, comment = line.partition("#")
        if comment.strip().startswith("["):
            table[name.split(":")[0].split("=")[0].strip()] = comment.strip()[1:].split("]")[0]
    return table


def declared_variables(equations):
    """Names of the variables ``equations`` declare (``name : unit``), in order; subexpressions
    (``name = expr : unit``) and constants (``(constant)`` flags) are left out."""
    names = []
    for line in equations.strip().splitlines():
        code = line.partition("#")[0]
        if ":" not in code:
            continue
        head, _, tail = code.partition(":")
        if "=" in head or "constant" in tail:
            continue
        names.append(head.strip())
    return names


def declare_compartments(group, equations):
    """Record the compartment tags of ``equations`` for ``group``; returns the group."""
    _TABLES[group] = compartments_of(equations)
    return group


def compartments(group):
    """The {variable: compartment} table declared for ``group`` (empty if none was)."""
    try:
        return dict(_TABLES.get(group, {}))
    except TypeError:  # not weak-referenceable: nothing was declared for it
        return {}
