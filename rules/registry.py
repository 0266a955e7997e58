"""The one registry of learning rules: built-in rules and rules installed by other packages.

Training, evaluation, the benchmark, the alignment analysis, the figures and the CLI all find a
rule here by name. A package adds its own rule through the entry-point group
:data:`ENTRY_POINT_GROUP` (Python's standard plug-in mechanism), e.g. in its ``pyproject.toml``::

    [project.entry-points."plausigrad.rules"]
    dfa_if = "my_package.rule:DirectFeedbackIF"

The value names a :class:`~plausigrad.rules.base.LearningRule` subclass; the registry checks the
contract's class attributes when it loads it. Names are listed without importing any rule (so
``plausigrad --help`` needs no Brian2); a rule's module is imported on first use.
See ``docs/writing-a-rule.md``.
"""

import importlib
from importlib.metadata import entry_points

from plausigrad.models.errors import ConfigurationError

ENTRY_POINT_GROUP = "plausigrad.rules"

#: The rules shipped with plausigrad: name -> "module:Class".
BUILTIN_RULES = {"biograd": "plausigrad.rules.biograd:BioGrad",
                 "emstdp": "plausigrad.rules.emstdp:EMSTDP",
                 "ssnnbp": "plausigrad.rules.ssnnbp:SSNNBP"}


def _installed():
    """name -> "module:Class" of every rule: built-ins first, then entry points (which may not
    replace a built-in)."""
    rules = dict(BUILTIN_RULES)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        rules.setdefault(point.name, point.value)
    return rules


def rule_names():
    """Names of all registered rules (built-ins first), without importing them."""
    return tuple(_installed())


def load_object(target):
    """Import ``"module:attribute"`` and return the attribute (one-line error if it fails)."""
    module_name, _, attribute = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load {target!r}: {exc}") from None


def rule_class(name):
    """The :class:`LearningRule` subclass registered as ``name``."""
    from plausigrad.rules.base import LearningRule, RuleParameters
    rules = _installed()
    if name not in rules:
        raise ConfigurationError(f"unknown rule {name!r}; choose one of: {', '.join(rules)}")
    cls = load_object(rules[name])
    problems = []
    if not (isinstance(cls, type) and issubclass(cls, LearningRule)):
        problems.append("is not a LearningRule subclass")
    else:
        if cls.name != name:
            problems.append(f"declares name {cls.name!r}")
        if not (isinstance(cls.parameters_class, type)
                and issubclass(cls.parameters_class, RuleParameters)):
            problems.append("has no RuleParameters subclass as parameters_class")
        windows = cls.default_windows
        if not (isinstance(windows, tuple) and len(windows) == 2
                and all(isinstance(w, int) and w > 0 for w in windows)):
            problems.append("has no default_windows (forward_steps, feedback_steps)")
    if problems:
        raise ConfigurationError(f"rule {name!r} ({rules[name]}) {'; '.join(problems)}")
    return cls


def make_rule(name, rule_params=None):
    """An instance of rule ``name`` with parameters from the dict ``rule_params``."""
    cls = rule_class(name)
    try:
        params = cls.parameters_class(**(rule_params or {}))
    except TypeError as exc:
        raise ConfigurationError(f"bad parameters for rule {name}: {exc}") from None
    return cls(params)
