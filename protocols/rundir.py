"""Run directories: prepared, probed and locked before any work; files written atomically.

:func:`open_run_directory` is the first thing a training run does with its ``--out``: it creates
the directory, proves that a file can be written, synced and removed there, and takes an
exclusive lock (``fcntl.flock`` on ``.plausigrad.lock``, released when the process ends however it
ends) so that two runs never write into one directory. All of it happens before the data are
loaded, the network is compiled or an epoch is trained, and each problem (``--out`` is a file, a
read-only directory, a full disk, another run holding the lock) is one
:class:`RunDirectoryError` line.

:func:`atomic_write` writes a file beside its target, syncs it to disk and renames it over the
target: a reader sees the old file or the new one, never a part; a failed write (disk full)
removes its partial file and leaves the old file as it was.
"""

import contextlib
import errno
import fcntl
import os
import tempfile

from plausigrad.models.errors import PlausigradError

LOCK_FILE = ".plausigrad.lock"


class RunDirectoryError(PlausigradError):
    """An output directory that cannot be created, written or locked."""


def _reason(exc):
    """The short reason of an OSError ("Permission denied", "No space left on device")."""
    return exc.strerror or str(exc)


def fsync_directory(path):
    """Sync a directory's entries (renames, new files) to disk; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def usual_permissions(path):
    """Give ``path`` (made by ``tempfile``, which makes it private) the permissions a plain
    ``open`` or ``mkdir`` would have given it under the process's umask."""
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~_umask())


def write_synced(path, write, mode="wb"):
    """Create ``path``, let ``write(handle)`` fill it, then flush and fsync it."""
    with open(path, mode) as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write(path, write, mode="wb"):
    """Write ``path`` atomically: ``write(handle)`` fills a temporary file beside it, which is
    synced and renamed over ``path``. On failure the temporary file is removed, ``path`` is
    unchanged and a :class:`RunDirectoryError` names the file and the reason."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                   dir=directory)
        os.close(fd)
        usual_permissions(tmp)
        write_synced(tmp, write, mode)
        os.replace(tmp, path)
        tmp = None
        fsync_directory(directory)
    except OSError as exc:
        raise RunDirectoryError(f"cannot write {path}: {_reason(exc)} (the previous "
                                "version, if any, is unchanged)") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)
    return path


def _probe_writable(directory):
    """Write, sync and remove a small file in ``directory`` (raises OSError when it cannot)."""
    fd, probe = tempfile.mkstemp(prefix=".plausigrad-probe.", dir=directory)
    try:
        os.write(fd, b"plausigrad write probe\n")
        os.fsync(fd)
    finally:
        os.close(fd)
        os.remove(probe)


class RunLock:
    """The exclusive lock of a run directory, held from :func:`open_run_directory` until
    :meth:`release` (or the end of the process). A context manager."""

    def __init__(self, directory, handle):
        self.directory, self._handle = directory, handle

    def release(self):
        if self._handle is not None:
            self._handle.close()  # closing the file drops the flock
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _lock(directory, what):
    path = os.path.join(directory, LOCK_FILE)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            by = f" (pid {holder})" if holder.isdigit() else ""
            raise RunDirectoryError(f"{directory} is in use by another plausigrad run{by}; "
                                    f"wait for it to finish or choose another {what}") from None
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return RunLock(directory, handle)


def open_run_directory(directory, what="--out"):
    """Create ``directory`` if needed, check that files can be written there and lock it for
    this process; returns the :class:`RunLock`. ``what`` names the option in messages."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise RunDirectoryError(f"{what} {directory} exists and is not a directory; choose a "
                                "directory")
    try:
        os.makedirs(directory, exist_ok=True)
        _probe_writable(directory)
        return _lock(directory, what)
    except OSError as exc:
        raise RunDirectoryError(f"cannot write into {what} {directory}: {_reason(exc)}; "
                                "choose a writable directory") from None
