"""User-facing errors of plausigrad.

Every error a user can cause by bad input (an impossible parameter, an unknown device, a corrupt
dataset file, a missing toolchain) is a :class:`PlausigradError`. The command-line interface prints
its message as a single line and exits with status 2; library callers can catch it. It lives in the
bottom layer (``models``) so that every layer above can raise it.
"""

import dataclasses
import math
import numbers


class PlausigradError(Exception):
    """A problem with the user's input or environment, reported as one clear line."""


class ConfigurationError(PlausigradError, ValueError):
    """An impossible parameter value (non-positive window, learning rate, layer size ...)."""


def _is_number(value):
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def require_finite(name, value):
    """Raise :class:`ConfigurationError` if ``value`` is a number that is not finite (inf, NaN).

    Non-numbers pass (their own checks report them); inf and NaN never reach a compiled binary,
    whose command-line parser cannot read them, nor a JSON file, which cannot hold them."""
    if _is_number(value) and not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number, got {value!r}")
    return value


def require_positive(name, value):
    """Raise :class:`ConfigurationError` unless ``value`` is a finite number greater than zero."""
    if not _is_number(value) or not value > 0:
        raise ConfigurationError(f"{name} must be positive, got {value!r}")
    return require_finite(name, value)


def require_finite_fields(params, prefix=""):
    """Raise :class:`ConfigurationError` if any number in the dataclass ``params`` is not finite:
    its fields, the entries of its tuple and list fields and, recursively, its nested
    dataclasses (named ``prefix`` + field, e.g. ``neuron.threshold``)."""
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            require_finite_fields(value, prefix=f"{name}.")
        elif isinstance(value, (tuple, list)):
            for entry in value:
                require_finite(name.replace("_", " "), entry)
        else:
            require_finite(name.replace("_", " "), value)
    return params


def require_rate(name, value, unit=""):
    """Raise :class:`ConfigurationError` unless ``value`` is a rate in (0, 1] (per step)."""
    require_positive(name, value)
    if value > 1:
        raise ConfigurationError(f"{name} must be <= 1{unit}, got {value!r}")
    return value


def require_choice(name, value, choices):
    """Raise :class:`ConfigurationError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigurationError(
            f"unknown {name} {value!r}; choose one of: {', '.join(map(str, choices))}")
    return value
