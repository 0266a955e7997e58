"""Compartment tags: which compartment (basal, soma, apical, axon, ...) each state variable is in.

The neuron models tag their state declarations with comments, ``v : 1  # [soma] membrane``, and
register each group they build with :func:`declare_compartments`; the locality audit
(:mod:`plausigrad.analysis.audit`) reads :func:`compartments` of a group to name where a value
a plasticity statement reads lives. Brian2 drops equation comments, so the table is kept here,
beside the group (a weak reference: it goes when the group goes), not on the Brian2 object.
"""

import re
import weakref

_TABLES = weakref.WeakKeyDictionary()


def declared_name(line):
    """The variable a line of model equations declares: ``v`` for ``v : 1``, ``dv/dt = ... : 1``
    and ``v = ... : 1``; None for a line without a declaration."""
    code = line.partition("#")[0]
    if ":" not in code:
        return None
    head = code.rpartition(":")[0] if "(" in code.rpartition(":")[2] else code.partition(":")[0]
    lhs = head.split("=")[0].strip()
    match = re.fullmatch(r"d(\w+)/dt", lhs)
    return match.group(1) if match else lhs


def compartments_of(equations):
    """{variable: compartment} from the ``# [compartment]`` tags of model equations."""
    table = {}
    for line in equations.strip().splitlines():
        comment = line.partition("#")[2].strip()
        name = declared_name(line)
        if name and comment.startswith("["):
            table[name] = comment[1:].split("]")[0]
    return table


def declared_variables(equations):
    """Names of the state variables ``equations`` declare (``name : unit`` and differential
    equations ``dname/dt = ... : unit``), in order; subexpressions (``name = expr : unit``) and
    constants (``(constant)`` flags) are left out."""
    names = []
    for line in equations.strip().splitlines():
        code = line.partition("#")[0]
        name = declared_name(line)
        if name is None or "constant" in code.rpartition(":")[2]:
            continue
        head = code.partition(":")[0]
        if "=" in head and not head.strip().startswith(f"d{name}/dt"):
            continue  # a subexpression
        names.append(name)
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
