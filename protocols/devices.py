"""Choosing the Brian2 device a simulation runs on: runtime, C++ standalone or CUDA standalone.

Public API::

    DEVICE_CHOICES = ("runtime", "cpp", "cuda")
    Device(kind="runtime", build_directory=None, threads=0, runtime_target="cython",
           compute_capability=8.0)        where and how a network runs (validated once, here)
        .standalone, .activate(), .build(compile=True), .build_lock(), .insert_seed(array),
        .run_standalone(run_args), .release_results()
    remove_orphaned_results(build_directory)
    as_device(device) -> Device           a Device, or a kind string for Device(kind)
    activate_device(kind, build_directory=None, *, threads=0, runtime_target="cython",
                    compute_capability=8.0) -> brian2 Device
    is_standalone(kind) -> bool
    build_standalone(directory=None, *, run=False, compile=True, clean=False) -> str
    nvcc_available() -> bool
    cxx_available() -> bool
    gpu_visible() -> bool

:func:`activate_device` may be called any number of times in one Python process (the test suite
runs runtime, C++ and CUDA networks one after another). Before switching it re-initialises every
Brian2 device (``Device.reinit()``: a standalone device forgets the code objects, arrays and
networks of the previous build) and the cached toolkit/GPU detection of brian2cuda, then calls
``set_device``. Brian2 objects created before a switch belong to the old device: create the
network *after* :func:`activate_device`. ``defaultclock.dt`` is carried over by Brian2 itself.
Calling ``device.reinit()`` yourself afterwards also drops the cuRAND link directories that are
set on the CUDA device object, so call :func:`activate_device` again instead.

CUDA 13 settings applied for ``kind="cuda"`` (brian2cuda 1.0b1 was written for CUDA 11/12):

``-std=c++17`` (nvcc, via ``prefs.devices.cuda_standalone.cuda_backend.extra_compile_args_nvcc``)
    The CUDA 13 headers (CCCL: thrust/cub, used by brian2cuda) require C++17. brian2cuda's
    makefile hard-codes ``-std=c++11`` before our flags; nvcc keeps the last value and prints the
    harmless ``nvcc warning : incompatible redefinition for option 'std'`` for every file.
``-std=c++17`` for the host compiler (``prefs.codegen.cpp.extra_compile_args_gcc``)
    brian2cuda forwards Brian2's gcc flags to the host compiler with ``-Xcompiler``; Brian2's
    default ``-std=c++11`` there overrides nvcc's choice and the C++17 headers then fail to
    compile. We replace it with ``-std=c++17``; the pref is global, so later C++/Cython builds in
    the same process also use C++17 (harmless with any C++17 compiler).
``-I<cuRAND include>`` (nvcc) and ``-L<dir with libcurand.so>`` / rpath (linker)
    brian2cuda always links ``-lcurand`` (rand(), randn() use the cuRAND host API). When the
    toolkit lacks cuRAND we use the ``nvidia-curand-cu12`` wheel (found through
    ``nvidia.curand.__path__``). Include directories Brian2 passes only reach the host compiler
    (inside ``-Xcompiler``), so the include path goes to nvcc directly. The wheel ships only
    ``libcurand.so.10``, so a ``libcurand.so`` symlink is made in ``<build_directory>/_curand``
    (a temporary directory without one) and put on the link path; the wheel's lib directory goes
    into the binary's rpath so it also runs on a GPU machine.
``detect_gpus = False`` and ``gpu_id = 0`` when no GPU is visible (``nvidia-smi -L`` missing or
failing)
    GPU detection runs ``nvidia-smi``; without a GPU brian2cuda can only cross-compile, and then
    insists on an explicit ``gpu_id`` and ``compute_capability``.
``compute_capability`` (default 8.0 -> ``-arch=sm_80``)
    Set explicitly so compilation never depends on detection. ``-arch=sm_XY`` also embeds PTX,
    which newer GPUs JIT-compile. Pass ``None`` to use the detected GPU's (needs a GPU).
"""

import contextlib
import functools
import importlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tempfile
from dataclasses import dataclass

from plausigrad.models.errors import PlausigradError

# Brian2 is imported where it is used, not here: the CLI reads DEVICE_CHOICES and must start
# (``plausigrad --help``, a bad option) without the ~2 s that importing Brian2 takes.

__all__ = ["DEVICE_CHOICES", "Device", "DeviceError", "as_device", "activate_device",
           "is_standalone", "build_standalone", "remove_orphaned_results", "nvcc_available",
           "cxx_available", "gpu_visible"]

DEVICE_CHOICES = ("runtime", "cpp", "cuda")
RUNTIME_TARGETS = ("cython", "numpy")


class DeviceError(PlausigradError):
    """An unknown device or a missing toolchain (C++ compiler, nvcc, cuRAND)."""


def _check_kind(kind):
    if kind not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {kind!r}; choose one of: {', '.join(DEVICE_CHOICES)}")
    return kind


def is_standalone(kind):
    """True for the code-generating devices ("cpp", "cuda") that need :func:`build_standalone`."""
    return _check_kind(kind) != "runtime"


def nvcc_available():
    """True if an ``nvcc`` executable is on PATH."""
    return shutil.which("nvcc") is not None


def cxx_available():
    """True if the C++ compiler Brian2 uses (``$CXX`` or ``g++``) compiles a trivial program."""
    return _compiler_works(os.environ.get("CXX", "g++"))


@functools.lru_cache(maxsize=None)
def _compiler_works(name):
    cxx = shutil.which(name)
    if cxx is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run([cxx, "-x", "c++", "-", "-o", os.path.join(tmp, "a.out")],
                                  input=b"int main() { return 0; }\n", capture_output=True,
                                  timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
    return done.returncode == 0


def gpu_visible():
    """True if ``nvidia-smi -L`` runs and lists at least one GPU."""
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and done.stdout.lstrip().startswith("GPU ")


def _reset_brian_devices():
    """Forget the state of every device (code objects, arrays, networks of earlier builds)."""
    from brian2.devices.device import all_devices
    for brian_device in all_devices.values():
        brian_device.reinit()
    if "cuda_standalone" in all_devices:
        from brian2cuda.utils import gputools
        gputools.reset_cuda_installation()  # brian2cuda caches nvcc path and GPU selection
        gputools.reset_gpu_selection()      # module-wide; re-detect with the new prefs


@dataclass(frozen=True)
class Device:
    """Where and how a network runs: the one object that owns activation, building, seeding and
    the results folders, for runtime, C++ and CUDA alike.

    ==================  =========================================================================
    field               meaning
    ==================  =========================================================================
    kind                ``"runtime"`` (Cython/numpy code generation), ``"cpp"`` or ``"cuda"``
    build_directory     standalone project directory (None: a temporary one at build time)
    threads             OpenMP threads of C++ standalone (0: no OpenMP)
    runtime_target      code generation target of the runtime device (``cython`` or ``numpy``)
    compute_capability  GPU architecture CUDA code is compiled for (None: the detected GPU's)
    ==================  =========================================================================

    Every field is validated here, once; a bad value is a :class:`DeviceError`.
    """

    kind: str = "runtime"
    build_directory: str = None
    threads: int = 0
    runtime_target: str = "cython"
    compute_capability: float = 8.0

    def __post_init__(self):
        _check_kind(self.kind)
        if self.runtime_target not in RUNTIME_TARGETS:
            raise DeviceError(f"unknown runtime target {self.runtime_target!r}; "
                              f"choose one of: {', '.join(RUNTIME_TARGETS)}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise DeviceError(f"threads must be a non-negative integer, got {self.threads!r}")

    @property
    def standalone(self):
        """True for the code-generating devices (cpp, cuda): compiled once, run with run_args."""
        return is_standalone(self.kind)

    def activate(self):
        """Make this the active Brian2 device (see :func:`activate_device`); returns it."""
        return _activate(self)

    def build(self, *, compile=True):
        """Write (and compile) the active standalone project (:func:`build_standalone`)."""
        return build_standalone(self.build_directory, run=False, compile=compile)

    def build_lock(self):
        """An inter-process lock on the build directory: two processes that share a build (same
        network, e.g. a learning-rate sweep) compile one after the other, never both at once."""
        from brian2.utils.filelock import FileLock
        if self.build_directory is None:  # a private temporary directory
            return contextlib.nullcontext()
        os.makedirs(self.build_directory, exist_ok=True)
        return FileLock(os.path.join(self.build_directory, ".plausigrad-build.lock"))

    def insert_seed(self, array_name):
        """Seed the standalone random generators from the run-time variable ``array_name``.

        Brian2's ``seed()`` bakes a constant into the binary; reading a variable that
        ``run_args`` sets (inserted right after ``set_from_command_line``) lets every run use its
        own seed without recompiling. C++: one generator per OpenMP thread. CUDA: brian2cuda's
        ``random_number_buffer`` seeds cuRAND's host and device generators (what its own
        ``seed()`` compiles to, ``brian2cuda/device.py``); the host copy of a ``run_args``
        value is set before it is copied to the GPU (``templates/objects.cu``).
        """
        from brian2 import prefs
        from brian2.devices.device import get_device
        active = get_device()
        if self.kind == "cuda":
            active.insert_code("main", f"brian::random_number_buffer.set_seed("
                                       f"(unsigned long long)brian::{array_name}[0]);")
        elif self.kind == "cpp":
            threads = max(1, prefs.devices.cpp_standalone.openmp_threads)
            active.insert_code("main", f"for (int _i = 0; _i < {threads}; _i++) "
                                       f"brian::_random_generators[_i].seed("
                                       f"(unsigned long)brian::{array_name}[0] + _i);")
        else:
            raise DeviceError("insert_seed is for standalone devices; seed the runtime "
                              "device with brian2.seed()")

    def run_standalone(self, run_args, labels=None, on_report=None):
        """Run the compiled binary once with ``run_args``, writing into this process's own
        ``results_<pid>`` folder (so runs that share a build can run side by side); the folders
        of processes that are gone are removed first.

        The binary's standard error goes into ``stderr.txt`` of the results folder. A binary
        that cannot read a value or an array it is given only says so there (``Error reading
        'inf': file size -1 does not match expected size 8``) and goes on with its compile-time
        value; any such complaint, and a failed run, is a :class:`DeviceError` that names the
        variable (:func:`binary_complaint`; ``labels`` maps ``run_args`` keys to the names
        used there, e.g. the learned-state name ``W1`` for a synapse group's weights).
        ``on_report(simulated_seconds)`` is called from a watcher thread whenever the binary
        reports its progress (:mod:`plausigrad.protocols.progress`)."""
        from plausigrad.protocols.progress import ReportWatcher
        from brian2 import prefs
        from brian2.devices.device import get_device
        active = get_device()
        remove_orphaned_results(active.project_dir)
        results = f"results_{os.getpid()}"
        # absolute: the binary runs in the project directory
        stderr_path = os.path.abspath(os.path.join(active.project_dir, results, "stderr.txt"))
        command = prefs.devices.cpp_standalone.run_cmd_unix
        command = [command] if isinstance(command, str) else list(command)
        # the binary runs in the shim's place (exec: same pid), its stderr into the file, and
        # dies with this process (SIGKILL included): see guarded_command
        prefs.devices.cpp_standalone.run_cmd_unix = guarded_command(
            command, signal.SIGKILL, stderr_path)
        report = os.path.join(active.project_dir, results, "stdout.txt")
        try:
            if on_report is None:
                active.run(results_directory=results, run_args=run_args, with_output=False)
            else:
                with ReportWatcher(report, on_report):
                    active.run(results_directory=results, run_args=run_args,
                               with_output=False)
            failed = None
        except RuntimeError as exc:
            failed = exc
        finally:
            prefs.devices.cpp_standalone.run_cmd_unix = command if len(command) > 1 else command[0]
        complaint = binary_complaint(_read_text(stderr_path), _run_arg_names(run_args, labels))
        if complaint or failed:
            self.release_results()
            raise DeviceError(complaint or f"the compiled binary failed ({failed}); nothing "
                              "of this run was kept")

    def release_results(self):
        """Remove the results folder of the last run (once its values have been read)."""
        from brian2.devices.device import get_device
        shutil.rmtree(get_device().results_dir, ignore_errors=True)


# Run by ``sys.executable -I -S -c`` in front of a child process: arms the Linux parent-death
# signal (prctl PR_SET_PDEATHSIG; kept across exec), gives up if the parent is already gone
# (it died before the signal was armed), sends standard error into a file if one is named, then
# becomes the command (exec: same pid, so the parent's kill reaches it).
_SHIM = """
import ctypes, os, sys
signum, parent, stderr_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
try:
    ctypes.CDLL(None).prctl(1, signum, 0, 0, 0)
except (OSError, AttributeError):
    pass
if os.getppid() != parent:
    os._exit(1)
if stderr_path:
    fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
os.execvp(sys.argv[4], sys.argv[4:])
"""


def guarded_command(command, signum=signal.SIGKILL, stderr_path=""):
    """``command`` (a list) prefixed so that the process it starts gets ``signum`` when this
    process dies, however it dies (SIGKILL too), and writes its standard error into
    ``stderr_path`` (if given). Without it a compiled binary whose ``plausigrad`` was killed
    goes on running with PPID 1, and a compile goes on writing into a build directory that the
    next run may be compiling into. Linux only (elsewhere the command just runs).

    The signal fires when the *thread* that started the child ends: start the child from a
    thread that waits for it (``subprocess.call`` does)."""
    return [sys.executable, "-I", "-S", "-c", _SHIM, str(int(signum)), str(os.getpid()),
            stderr_path, *command]


INCOMPLETE = ".plausigrad-build-incomplete"  #: in a build directory while it is being built


def _compile_source(active, directory, compiler, debug, clean):
    """``make`` of a standalone project, in place of Brian2's ``compile_source`` (which runs
    ``os.system``: SIGINT is ignored in this process while make runs, and a failure prints the
    whole make log). The log goes to ``make.log`` in the project; make dies with this process
    (SIGTERM: make passes it on to the compilers and deletes the targets they left half-written).
    Ctrl-C or SIGTERM here ends make first and is raised again, marked ``during = "compile"``;
    a failed make is a :class:`DeviceError` naming the log and its first error."""
    from brian2 import prefs
    from brian2.utils.filetools import in_directory
    make = shlex.split(prefs.devices.cpp_standalone.make_cmd_unix)
    extra = [word for arg in prefs.devices.cpp_standalone.extra_make_args_unix
             for word in shlex.split(arg)]
    with in_directory(directory):
        log_path = os.path.abspath("make.log")
        with open(log_path, "w") as log:
            if clean:
                started = time.time()
                _wait_make(guarded_command([*make, "clean"], signal.SIGTERM), log)
                active.timers["compile"]["clean"] = time.time() - started
            started = time.time()
            code = _wait_make(guarded_command([*make, *extra], signal.SIGTERM), log)
            active.timers["compile"]["make"] = time.time() - started
    if code != 0:
        first = next((line.strip() for line in _read_text(log_path).splitlines()
                      if "error" in line.lower()), "no error line")
        raise DeviceError(f"the compile failed (make exit status {code}): {first} (the whole "
                          f"log: {log_path})")


def _wait_make(command, log):
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    try:
        return process.wait()
    except BaseException as exc:  # Ctrl-C, SIGTERM: make cleans up, then the signal goes on
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if isinstance(exc, KeyboardInterrupt):
            exc.during = "compile"
        raise


def _read_text(path):
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def _run_arg_names(run_args, labels=None):
    """``{text the binary is given: variable name}`` for the entries of a ``run_args`` dict: a
    single value appears as its ``repr`` on the command line, an array as a file
    ``static_arrays/init_<group>_<name>_<md5>.dat`` (Brian2's ``device.run``). The name is
    ``labels[key]`` where given, else Brian2's ``group.variable``."""
    import numpy as np
    names = {}
    for key, value in (run_args or {}).items():
        owner = getattr(key, "group_name", None)
        name = (labels or {}).get(key) or (f"{owner}.{key.name}" if owner else key.name)
        values = np.asarray(value)
        if values.size == 1:
            names[repr(values.item())] = name
        names[f"init_{owner}_{key.name}_" if owner else f"init_{name}_values_"] = name
    return names


def binary_complaint(stderr, names=None):
    """One line for what a standalone binary wrote to its standard error, or None if nothing.

    ``names`` maps a text that may appear in a complaint (a value, an array file name; see
    :func:`_run_arg_names`) to the variable it was given for, which the line then names."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return None
    first = lines[0]
    variable = next((name for text, name in (names or {}).items()
                     if f"'{text}'" in first or text in first and text.startswith("init_")),
                    None)
    more = f" (and {len(lines) - 1} more lines)" if len(lines) > 1 else ""
    if variable:
        return (f"the compiled binary could not read the value given for {variable}: {first}"
                f"{more}; nothing of this run was kept")
    return f"the compiled binary reported: {first}{more}; nothing of this run was kept"


def as_device(device):
    """``device`` as a :class:`Device`: a Device is returned as is, a kind string ("runtime",
    "cpp", "cuda") becomes ``Device(kind)``."""
    if isinstance(device, Device):
        return device
    if isinstance(device, str):
        return Device(device)
    raise DeviceError(f"device must be a Device or one of {', '.join(DEVICE_CHOICES)}, "
                      f"got {device!r}")


def remove_orphaned_results(build_directory):
    """Remove the ``results_<pid>`` folders in ``build_directory`` whose process is gone.

    A run killed mid-epoch (Ctrl-C, SIGKILL, a lost session) never reaches
    :meth:`Device.release_results`; its folder holds a whole network's state and would pile up.
    """
    if not build_directory or not os.path.isdir(build_directory):
        return
    for name in os.listdir(build_directory):
        prefix, _, pid = name.partition("_")
        if prefix != "results" or not pid.isdigit() or _process_alive(int(pid)):
            continue
        shutil.rmtree(os.path.join(build_directory, name), ignore_errors=True)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def activate_device(kind, build_directory=None, *, threads=0, runtime_target="cython",
                    compute_capability=8.0):
    """Make ``kind`` ("runtime", "cpp" or "cuda") the active Brian2 device and return it.

    ``build_directory`` is where a standalone project is written (None: a temporary directory
    chosen at build time). ``threads`` is the OpenMP thread count of C++ standalone (0: no
    OpenMP). ``runtime_target`` is the code generation target of the runtime device.
    ``compute_capability`` is the GPU architecture CUDA code is compiled for (see module doc).
    Raises :class:`DeviceError` for an unknown kind or a missing toolchain. The same as
    ``Device(kind, ...).activate()``.
    """
    return Device(kind, build_directory, threads, runtime_target, compute_capability).activate()


def _activate(spec):
    from brian2 import prefs
    from brian2.devices.device import get_device, set_device
    kind, build_directory, threads = spec.kind, spec.build_directory, spec.threads
    runtime_target, compute_capability = spec.runtime_target, spec.compute_capability
    if kind in ("cpp", "cuda") and not cxx_available():
        raise DeviceError(f"device {kind!r} needs a working C++ compiler "
                          f"({os.environ.get('CXX', 'g++')} not found or not working)")
    if kind == "cuda":
        if not nvcc_available():
            raise DeviceError("device 'cuda' needs the CUDA toolkit: nvcc not found on PATH")
        try:
            import brian2cuda  # noqa: F401  (registers the 'cuda_standalone' device and prefs)
        except ImportError as exc:
            raise DeviceError(f"device 'cuda' needs brian2cuda ({exc})") from None

    _reset_brian_devices()
    # Ctrl-C interrupts: Brian2's "graceful stop" would end an epoch early and let it be taken
    # for a whole one (runtime), or swallow the signal while a standalone binary runs
    prefs.core.stop_on_keyboard_interrupt = False
    if kind == "runtime":
        prefs.codegen.target = runtime_target
        set_device("runtime")
    elif kind == "cpp":
        prefs.devices.cpp_standalone.openmp_threads = threads
        set_device("cpp_standalone", directory=build_directory, build_on_run=False)
    else:
        prefs.devices.cpp_standalone.openmp_threads = 0  # OpenMP is not used by brian2cuda
        set_device("cuda_standalone", directory=build_directory, build_on_run=False)
        _configure_cuda(get_device(), build_directory, compute_capability)
    return get_device()


def _configure_cuda(cuda_device, build_directory, compute_capability):
    from brian2 import prefs
    backend = prefs.devices.cuda_standalone.cuda_backend
    if gpu_visible():
        backend.detect_gpus = True
    else:
        if compute_capability is None:
            raise DeviceError("no GPU visible (nvidia-smi): give compute_capability explicitly")
        backend.detect_gpus = False
        if backend.gpu_id is None:
            backend.gpu_id = 0
    backend.compute_capability = None if compute_capability is None else float(compute_capability)

    nvcc_flags = ["-w", "-use_fast_math", "-std=c++17"]  # brian2cuda's defaults + C++17
    curand = _curand_paths(build_directory)
    if curand is not None:
        include_dir, link_dir, runtime_dir = curand
        nvcc_flags.append(f"-I{include_dir}")
        cuda_device.library_dirs.append(link_dir)
        cuda_device.runtime_library_dirs.append(runtime_dir)
    backend.extra_compile_args_nvcc = nvcc_flags  # a new list: brian2cuda edits it in place
    prefs.codegen.cpp.extra_compile_args_gcc = [
        "-std=c++17" if flag.startswith("-std=") else flag
        for flag in prefs.codegen.cpp.extra_compile_args_gcc]


def _toolkit_has_curand():
    """True if the CUDA toolkit that provides nvcc ships cuRAND (header and library)."""
    nvcc = os.path.realpath(shutil.which("nvcc"))
    roots = {os.environ.get("CUDA_PATH"), os.path.dirname(os.path.dirname(nvcc)), "/usr/local/cuda"}
    for root in filter(None, roots):
        if os.path.exists(os.path.join(root, "include", "curand.h")) and any(
                os.path.exists(os.path.join(root, lib, "libcurand.so"))
                for lib in ("lib64", "lib", "targets/x86_64-linux/lib")):
            return True
    return False


def _curand_paths(build_directory):
    """(include dir, link dir, runtime dir) for cuRAND from the wheel, or None if not needed."""
    if _toolkit_has_curand():
        return None
    try:
        package_dir = importlib.import_module("nvidia.curand").__path__[0]
    except ImportError:
        raise DeviceError("cuRAND not found in the CUDA toolkit nor as the nvidia-curand-cu12 "
                          "wheel (pip install nvidia-curand-cu12)") from None
    include_dir = os.path.join(package_dir, "include")
    lib_dir = os.path.join(package_dir, "lib")
    libs = sorted(name for name in os.listdir(lib_dir) if name.startswith("libcurand.so"))
    if not libs:
        raise DeviceError(f"the nvidia-curand wheel at {package_dir} has no libcurand.so*")
    if "libcurand.so" in libs:
        return include_dir, lib_dir, lib_dir
    if build_directory is None:
        link_dir = tempfile.mkdtemp(prefix="plausigrad_curand_")
    else:
        link_dir = os.path.join(os.path.abspath(build_directory), "_curand")
        os.makedirs(link_dir, exist_ok=True)
    link = os.path.join(link_dir, "libcurand.so")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.join(lib_dir, libs[-1]), link)
    return include_dir, link_dir, lib_dir


def build_standalone(directory=None, *, run=False, compile=True, clean=False):
    """Write (and compile, and optionally run) the active standalone project; return its directory.

    Wraps ``device.build(directory=..., compile=..., run=..., clean=...)``. ``directory`` defaults
    to the ``build_directory`` given to :func:`activate_device`. Brian2 rewrites only source files
    whose content changed and ``make`` rebuilds only out-of-date objects, so rebuilding an
    unchanged network in the same directory from a new process recompiles little, but not
    nothing: the generated code is not byte-identical across processes (Brian2 orders clocks, and
    brian2cuda also variables, by set iteration order), so ``main.cpp``/``main.cu`` and, for CUDA,
    a few code objects (monitors, synapse creation; fewer with ``PYTHONHASHSEED=0``) are usually
    rebuilt. ``clean=True`` forces a full rebuild, and so does a build directory whose last build
    did not finish (killed: it holds the :data:`INCOMPLETE` marker). ``make`` runs through
    :func:`_compile_source` (log in ``make.log``; one-line :class:`DeviceError` on failure).
    Timings: ``get_device().timers["compile"]``.
    """
    from brian2.devices.device import get_device
    active = get_device()
    if not hasattr(active, "project_dir"):
        raise DeviceError("build_standalone needs a standalone device (activate 'cpp' or 'cuda')")
    if directory is None:
        directory = active.build_options.get("directory")
    if not compile:
        active.build(directory=directory, compile=False, run=run, clean=clean,
                     with_output=False)
        return active.project_dir
    # a build that was killed (in the code generation or the compile) leaves this marker: its
    # object files may be half-written yet newer than their sources, so make would take them
    # for done; the next build of the directory starts from clean
    marker = os.path.join(directory, INCOMPLETE) if directory else None
    if marker:
        os.makedirs(directory, exist_ok=True)
        clean = clean or os.path.exists(marker)
        with open(marker, "w"):
            pass
    active.compile_source = functools.partial(_compile_source, active)
    try:
        active.build(directory=directory, compile=True, run=run, clean=clean,
                     with_output=False)
    finally:
        del active.compile_source  # Brian2's method again
    if marker:
        os.remove(marker)
    return active.project_dir
