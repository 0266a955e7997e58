"""Checkpoints: learned state + optimiser state + configuration + metrics, one atomic unit.

Layout of a run directory::

    checkpoint-0003/          the checkpoint after epoch 3, written whole before it is used:
        checkpoint.npz        learned arrays (W1, b1, B1, ...)
        checkpoint.json       {"format": 2, "epoch": k, "config": {...}, "optimizer": {...},
                              "rng": {...}}
        metrics.json          one entry per finished epoch (up to k)
        manifest.json         written last: format version, rule, epoch, layer sizes, the shape
                              of every array and the size and SHA-256 of each file above
    checkpoint-latest -> checkpoint-0003     the one pointer, replaced by one atomic rename
    checkpoint.npz -> checkpoint-latest/checkpoint.npz   (and checkpoint.json, metrics.json:
                              fixed links, so that readers of the files keep working)
    config.toml               the resolved configuration (:mod:`plausigrad.protocols.config`)

A new checkpoint is written into a fresh temporary directory beside the old one, every file
synced to disk, the directory renamed to ``checkpoint-NNNN`` and only then ``checkpoint-latest``
swapped to it; older checkpoints are removed after the swap. A kill or a full disk at any point
leaves the previous checkpoint whole and in force. Loading checks the manifest (sizes, checksums,
shapes, rule) and every file's structure; any problem is one :class:`CheckpointError` line that
says what is wrong and what to do.

The format before this one (format 1: ``checkpoint.npz``, ``checkpoint.json`` and
``metrics.json`` as plain files in the run directory, no manifest) still loads; the next
checkpoint of such a run is written in the current format.

The optimiser of all rules here is plain SGD with a per-epoch learning-rate decay, so its state
is the epoch count and the current learning-rate factor; the numpy generator state makes a resumed
run draw the same shuffles and seeds as an uninterrupted one.
"""

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import zipfile
import zlib

import numpy as np

from plausigrad.models.errors import PlausigradError
from plausigrad.protocols.rundir import (atomic_write, fsync_directory, usual_permissions,
                                         write_synced)

FORMAT_VERSION = 2
LATEST = "checkpoint-latest"
ARRAYS, META, METRICS, MANIFEST = ("checkpoint.npz", "checkpoint.json", "metrics.json",
                                   "manifest.json")
_UNIT = (ARRAYS, META, METRICS)  #: the files a checkpoint holds besides its manifest
_PREFIX = "checkpoint-"
_TMP_PREFIX = ".checkpoint-"
_GENERATION = re.compile(r"checkpoint-\d{4,}(\.\w+)?")  #: names of checkpoint directories
_FRESH = "start a new --out (or restore the run directory from a copy)"


class CheckpointError(PlausigradError):
    """A checkpoint that is missing, unreadable, or from a different configuration."""


# -- JSON --------------------------------------------------------------------------------------

def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _first_non_finite(value, where):
    """The path of the first inf/NaN in a JSON payload (None when it has none)."""
    if isinstance(value, (float, np.floating)):
        return None if math.isfinite(value) else f"{where} = {value!r}"
    if isinstance(value, np.ndarray):
        return None if np.isfinite(value).all() else f"{where} (an array)"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, entry in items:
        found = _first_non_finite(entry, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def json_safe(value):
    """``value`` with every non-finite float replaced by None (JSON null: undefined), for
    measurements that may be undefined (a loss or an angle of nothing)."""
    if isinstance(value, dict):
        return {key: json_safe(entry) for key, entry in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(entry) for entry in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return None
    return value


def json_text(payload):
    """Strict JSON text of ``payload`` (numpy scalars and arrays allowed): a non-finite number,
    which JSON cannot hold (``Infinity``/``NaN`` are not JSON), is a :class:`CheckpointError`."""
    found = _first_non_finite(payload, "")
    if found:
        raise CheckpointError(f"refusing to write a non-finite value into JSON: {found}")
    return json.dumps(payload, indent=2, default=_jsonable, allow_nan=False) + "\n"


def write_json(path, payload):
    """Write ``payload`` as strict JSON to ``path``, atomically."""
    text = json_text(payload).encode()
    atomic_write(path, lambda handle: handle.write(text))


# -- writing -----------------------------------------------------------------------------------

def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_finite_state(state, epoch):
    for name, array in state.items():
        if not np.isfinite(np.asarray(array, dtype=float)).all():
            raise CheckpointError(f"epoch {epoch} ended with non-finite values in {name} (the "
                                  "learning diverged); nothing was written and the previous "
                                  "checkpoint is unchanged: lower the learning rates")


def save_checkpoint(directory, epoch, state, config, optimizer, rng, *, metrics=None,
                    layer_sizes=None):
    """Write the checkpoint of ``epoch`` (the number of finished epochs) into ``directory`` as
    one unit (see the module docstring): the arrays of ``state``, the JSON ``config`` and
    ``optimizer`` state, the generator ``rng`` and, if given, the ``metrics`` dict
    (``metrics.json``, ``{"epochs": [...], ...}``). ``layer_sizes`` goes into the manifest. The
    previous checkpoint stays in force until this one is complete."""
    _check_finite_state(state, epoch)
    meta = {"format": FORMAT_VERSION, "epoch": epoch, "config": config, "optimizer": optimizer,
            "rng": rng.bit_generator.state}
    texts = {META: json_text(meta).encode()}
    if metrics is not None:
        texts[METRICS] = json_text(metrics).encode()
    os.makedirs(directory, exist_ok=True)
    tmp = None
    try:
        tmp = tempfile.mkdtemp(prefix=_TMP_PREFIX, suffix=".tmp", dir=directory)
        usual_permissions(tmp)
        write_synced(os.path.join(tmp, ARRAYS), lambda handle: np.savez(handle, **state))
        for name, text in texts.items():
            write_synced(os.path.join(tmp, name), lambda handle, text=text: handle.write(text))
        manifest = {"format": FORMAT_VERSION, "rule": config.get("rule"), "epoch": epoch,
                    "layer_sizes": list(layer_sizes) if layer_sizes is not None else None,
                    "arrays": {name: list(np.shape(array)) for name, array in state.items()},
                    "files": {name: {"bytes": os.path.getsize(os.path.join(tmp, name)),
                                     "sha256": _sha256(os.path.join(tmp, name))}
                              for name in (ARRAYS, *texts)}}
        manifest_text = json_text(manifest).encode()
        write_synced(os.path.join(tmp, MANIFEST), lambda handle: handle.write(manifest_text))
        fsync_directory(tmp)
        final = _generation_name(directory, epoch)
        os.rename(tmp, final)
        tmp = None
        fsync_directory(directory)
        _point_latest_to(directory, os.path.basename(final))
    except OSError as exc:
        raise CheckpointError(f"cannot write the checkpoint of epoch {epoch} into {directory}: "
                              f"{exc.strerror or exc}; the previous checkpoint is unchanged "
                              "(free space or fix the directory, then --resume)") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    _link_unit_files(directory)
    _remove_stale(directory)


def _generation_name(directory, epoch):
    """``directory/checkpoint-NNNN`` for ``epoch``; a leftover of that name that is not the
    checkpoint in force (a write killed before the swap) is removed."""
    final = os.path.join(directory, f"{_PREFIX}{epoch:04d}")
    current = _current_target(directory)
    if current is not None and os.path.realpath(final) == current:
        final = f"{final}.p{os.getpid()}"  # never replace the checkpoint in force
    if os.path.islink(final) or os.path.isfile(final):
        os.remove(final)
    elif os.path.isdir(final):
        shutil.rmtree(final)
    return final


def _current_target(directory):
    latest = os.path.join(directory, LATEST)
    return os.path.realpath(latest) if os.path.islink(latest) else None


def _replace_with_link(path, target):
    """Make ``path`` a symbolic link to ``target`` with one atomic rename."""
    tmp = f"{path}.{os.getpid()}.link"
    with contextlib.suppress(FileNotFoundError):
        os.remove(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, path)


def _point_latest_to(directory, name):
    latest = os.path.join(directory, LATEST)
    if os.path.isdir(latest) and not os.path.islink(latest):
        shutil.rmtree(latest)  # a copy that dereferenced the link (shutil.copytree)
    _replace_with_link(latest, name)
    fsync_directory(directory)


def _link_unit_files(directory):
    """The fixed links ``checkpoint.npz`` etc. -> ``checkpoint-latest/...`` (replacing the plain
    files of format 1 one by one; the loader reads through ``checkpoint-latest``, so a run killed
    half-way through this still loads the new checkpoint)."""
    for name in _UNIT:
        path, target = os.path.join(directory, name), os.path.join(LATEST, name)
        if os.path.islink(path) and os.readlink(path) == target:
            continue
        with contextlib.suppress(OSError):
            _replace_with_link(path, target)


def _remove_stale(directory):
    """Remove checkpoints older than the one in force and temporary directories of killed
    writes."""
    current = _current_target(directory)
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        stale = (name.startswith(_TMP_PREFIX) and name.endswith(".tmp")) or (
            _GENERATION.fullmatch(name) and os.path.realpath(path) != current)
        if stale and os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)


# -- reading -----------------------------------------------------------------------------------

def _read_json(path, what):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise CheckpointError(f"{what}: {path} is missing; {_FRESH}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{what}: {path} is not readable JSON ({exc}); {_FRESH}") from None


def _read_arrays(path, what):
    try:
        with np.load(path) as arrays:
            return {name: arrays[name] for name in arrays.files}
    except FileNotFoundError:
        raise CheckpointError(f"{what}: {path} is missing; {_FRESH}") from None
    except (OSError, ValueError, KeyError, EOFError, AttributeError, zipfile.BadZipFile,
            zlib.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "allow_pickle" in reason or "pickled" in reason:
            reason = "not an archive of numeric arrays"
        raise CheckpointError(f"{what}: {path} is not a readable array archive ({reason}); "
                              f"{_FRESH}") from None


def _check_manifest(folder, manifest, what):
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise CheckpointError(f"{what}: {MANIFEST} is not a checkpoint manifest; {_FRESH}")
    version = manifest.get("format")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{what} has format {version!r}, newer than this plausigrad "
                              f"reads ({FORMAT_VERSION}); update plausigrad")
    for name in (ARRAYS, META, *({METRICS} & manifest["files"].keys())):
        entry = manifest["files"].get(name)
        path = os.path.join(folder, name)
        if not isinstance(entry, dict) or not os.path.isfile(path):
            raise CheckpointError(f"{what}: {name} is missing; {_FRESH}")
        if os.path.getsize(path) != entry.get("bytes") or _sha256(path) != entry.get("sha256"):
            raise CheckpointError(f"{what}: {name} does not match its manifest (changed or "
                                  f"corrupted after it was written); {_FRESH}")


def _check_meta(meta, what):
    if not isinstance(meta, dict):
        raise CheckpointError(f"{what}: {META} holds {type(meta).__name__}, not a checkpoint; "
                              f"{_FRESH}")
    for key, kind in (("epoch", int), ("config", dict), ("rng", dict)):
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise CheckpointError(f"{what}: {META} has no valid {key!r}; {_FRESH}")
    if meta["epoch"] < 0:
        raise CheckpointError(f"{what}: {META} says epoch {meta['epoch']}; {_FRESH}")
    if not isinstance(meta["config"].get("rule"), str):
        raise CheckpointError(f"{what}: {META} names no rule; {_FRESH}")


def _check_metrics(metrics, epoch, what):
    epochs = metrics.get("epochs") if isinstance(metrics, dict) else None
    if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
        raise CheckpointError(f"{what}: {METRICS} has no list of epochs; {_FRESH}")
    if len(epochs) < epoch:
        raise CheckpointError(f"{what}: {METRICS} holds {len(epochs)} epochs, the checkpoint "
                              f"{epoch}; {_FRESH}")


def _locate(directory):
    """(folder holding the files, format) of the checkpoint in ``directory``."""
    latest = os.path.join(directory, LATEST)
    if os.path.islink(latest) and not os.path.exists(latest):
        raise CheckpointError(f"checkpoint in {directory}: {LATEST} points to the missing "
                              f"{os.readlink(latest)}; {_FRESH}")
    if os.path.isdir(latest):
        return latest, FORMAT_VERSION
    if all(os.path.isfile(os.path.join(directory, name)) for name in (META, ARRAYS)):
        return directory, 1
    raise CheckpointError(f"no checkpoint in {directory} (expected {LATEST}/ or "
                          f"{META} and {ARRAYS})")


def read_checkpoint(directory):
    """``(meta, state, metrics)`` of the checkpoint in ``directory``, every file checked
    (``metrics`` is None for a checkpoint without ``metrics.json``)."""
    try:
        return _read_checkpoint(directory)
    except OSError as exc:  # a file that exists but cannot be opened or read through
        raise CheckpointError(f"checkpoint in {directory} cannot be read: {exc.strerror or exc}"
                              f" ({exc.filename or 'a file'})") from None


def _read_checkpoint(directory):
    folder, version = _locate(directory)
    what = f"checkpoint in {directory}"
    if version == FORMAT_VERSION:
        manifest = _read_json(os.path.join(folder, MANIFEST), what)
        _check_manifest(folder, manifest, what)
    meta = _read_json(os.path.join(folder, META), what)
    _check_meta(meta, what)
    state = _read_arrays(os.path.join(folder, ARRAYS), what)
    metrics_path = os.path.join(folder, METRICS)
    metrics = None
    if os.path.exists(metrics_path):
        metrics = _read_json(metrics_path, what)
        _check_metrics(metrics, meta["epoch"], what)
    if version == FORMAT_VERSION:
        if manifest.get("rule") != meta["config"]["rule"]:
            raise CheckpointError(f"{what}: its arrays are of rule {manifest.get('rule')!r}, "
                                  f"its configuration of {meta['config']['rule']!r}; {_FRESH}")
        shapes = {name: list(array.shape) for name, array in state.items()}
        if shapes != manifest.get("arrays"):
            raise CheckpointError(f"{what}: its arrays do not match its manifest; {_FRESH}")
    return meta, state, metrics


def load_checkpoint(directory):
    """Return (meta, state) of the checkpoint in ``directory`` (see :func:`read_checkpoint`)."""
    meta, state, _ = read_checkpoint(directory)
    return meta, state


def has_checkpoint(directory):
    """Whether ``directory`` holds a checkpoint (of any format, sound or not)."""
    return (os.path.lexists(os.path.join(directory, LATEST))
            or os.path.lexists(os.path.join(directory, META)))


def restore_rng(meta):
    """The numpy generator saved in a checkpoint."""
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = meta["rng"]
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"the checkpoint's generator state is not usable ({exc}); "
                              f"{_FRESH}") from None
    return rng
