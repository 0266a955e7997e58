"""Checkpoints: learned state + optimiser state + configuration, written atomically every epoch.

Layout of a run directory::

    checkpoint.npz    learned arrays (W1, b1, B1, ...) after the last finished epoch
    checkpoint.json   {"epoch": k, "config": {...}, "optimizer": {...}, "rng": {...}}
    metrics.json      one entry per finished epoch

The optimiser of all rules here is plain SGD with a per-epoch learning-rate decay, so its state
is the epoch count and the current learning-rate factor; the numpy generator state makes a resumed
run draw the same shuffles and seeds as an uninterrupted one.
"""

import json
import os

import numpy as np

from plausigrad.models.errors import PlausigradError


class CheckpointError(PlausigradError):
    """A checkpoint that is missing, unreadable, or from a different configuration."""


def _atomic_write(path, write):
    tmp = f"{path}.tmp"
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(directory, epoch, state, config, optimizer, rng):
    """Write the checkpoint of ``epoch`` (the number of finished epochs) into ``directory``."""
    os.makedirs(directory, exist_ok=True)

    def write_arrays(tmp):
        with open(tmp, "wb") as handle:
            np.savez(handle, **state)

    _atomic_write(os.path.join(directory, "checkpoint.npz"), write_arrays)
    meta = {"epoch": epoch, "config": config, "optimizer": optimizer,
            "rng": rng.bit_generator.state}
    write_json(os.path.join(directory, "checkpoint.json"), meta)


def load_checkpoint(directory):
    """Return (meta, state) of the checkpoint in ``directory``."""
    meta_path = os.path.join(directory, "checkpoint.json")
    arrays_path = os.path.join(directory, "checkpoint.npz")
    if not os.path.exists(meta_path) or not os.path.exists(arrays_path):
        raise CheckpointError(f"no checkpoint in {directory} (expected checkpoint.json and "
                              "checkpoint.npz)")
    try:
        with open(meta_path) as handle:
            meta = json.load(handle)
        with np.load(arrays_path) as arrays:
            state = {name: arrays[name] for name in arrays.files}
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"unreadable checkpoint in {directory}: {exc}") from None
    return meta, state


def restore_rng(meta):
    """The numpy generator saved in a checkpoint."""
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]
    return rng


def write_json(path, payload):
    _atomic_write(path, lambda tmp: _dump(tmp, payload))


def _dump(path, payload):
    with open(path, "w") as handle:
        json.dump(payload, handle, indent=2, default=_jsonable)
        handle.write("\n")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
