"""User-facing errors of plausigrad.

Every error a user can cause by bad input (an impossible parameter, an unknown device, a corrupt
dataset file, a missing toolchain) is a :class:`PlausigradError`. The command-line interface prints
its message as a single line and exits with status 2; library callers can catch it. It lives in the
bottom layer (``models``) so that every layer above can raise it.
"""


class PlausigradError(Exception):
    """A problem with the user's input or environment, reported as one clear line."""


class ConfigurationError(PlausigradError, ValueError):
    """An impossible parameter value (non-positive window, learning rate, layer size ...)."""


def require_positive(name, value):
    """Raise :class:`ConfigurationError` unless ``value`` is a number greater than zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(f"{name} must be positive, got {value!r}")
    return value


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
