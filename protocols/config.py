"""Experiment files: a whole training run as TOML, read with the standard library's ``tomllib``.

The file mirrors :class:`plausigrad.protocols.training.RunConfig`: its fields at the top level,
the rule's parameters in a ``[rule_params]`` table (nested dataclasses such as the neuron
constants in sub-tables)::

    # experiments/emstdp_rho07_T199.toml
    rule = "emstdp"
    hidden = [100]
    epochs = 5
    data_dir = "../shared/data/mnist"
    forward_steps = 199
    feedback_steps = 200
    lr_decay = 0.5

    [rule_params.neuron]
    output_target_rate = 0.7

``plausigrad train --config FILE`` starts from the file; options given on the command line
override it (rule parameters key by key). Every run directory gets ``config.toml``: the resolved
configuration (every rule parameter spelled out, defaults included), which ``--config`` reads
back to repeat the run. TOML has no null: a parameter whose value is None (meaning "automatic")
is left out, which means the same.
"""

import math
import os
import tomllib

from plausigrad.models.errors import ConfigurationError
from plausigrad.protocols.rundir import atomic_write

CONFIG_FILE = "config.toml"


def read_config(path):
    """The dict of a TOML experiment file (one-line errors for a missing or malformed file)."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError(f"config file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from None


def merge(base, override):
    """``base`` updated by ``override``, sub-tables merged key by key (neither is modified)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _value(value, where):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigurationError(f"{where} = {value!r} cannot be written to a config file")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v, where) for v in value) + "]"
    raise ConfigurationError(f"{where} = {value!r} cannot be written to a config file")


def to_toml(config, header=""):
    """TOML text of a dict of scalars, lists and sub-dicts (None values are left out)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]

    def table(mapping, name):
        scalars = [(k, v) for k, v in mapping.items() if v is not None and not isinstance(v, dict)]
        tables = [(k, v) for k, v in mapping.items() if isinstance(v, dict)]
        if name and (scalars or not tables):
            lines.extend(["", f"[{name}]"])
        for key, value in scalars:
            lines.append(f"{key} = {_value(value, key)}")
        for key, value in tables:
            table(value, f"{name}.{key}" if name else key)

    table(config, "")
    return "\n".join(lines).lstrip("\n") + "\n"


def write_config(directory, config, header=""):
    """Write ``config.toml`` into ``directory`` (atomically) and return its path."""
    text = to_toml(config, header).encode()
    return atomic_write(os.path.join(directory, CONFIG_FILE), lambda handle: handle.write(text))
