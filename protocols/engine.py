"""The engine: one Brian2 network per (rule, architecture, windows, schedule shape), one run per epoch.

The engine is rule-agnostic. It gives a rule (:mod:`plausigrad.rules`) a
:class:`~plausigrad.rules.base.NetworkContext`, receives the rule's Brian2 objects, adds the data
``TimedArray`` objects and the read-out monitors, and runs whole epochs:

* **C++ / CUDA standalone**: the network is generated and compiled once; every epoch after that
  is ``device.run(run_args=...)`` with the learned state (weights, biases, feedback weights), the
  learning rates, the epoch's timeline (shuffled order, sleep blocks) and the random seed carried
  in. Nothing is recompiled, and no Python code runs between samples. Processes may share a
  build directory (the same network with other learning rates, seeds or data order, side by
  side): compiling is serialised by a lock file, and every process writes its results into its
  own ``results_<pid>`` folder, removed once the epoch's record is read (the folder of a
  process that was killed mid-epoch is removed by the next run that uses the build).
* **runtime** (Cython or numpy code generation): the network is rebuilt per epoch (Brian2 caches
  the compiled code objects) and runs as one ``Network.run``.

Data flow inside a run: a 2-D ``TimedArray`` ``pixels`` holds every data row (training rows, then
evaluation rows); ``slot_row(t)`` picks the row a slot presents and ``slot_kind(t)`` what the slot
does (:mod:`plausigrad.protocols.schedule`). What is recorded is a list of recorder objects
(:mod:`plausigrad.protocols.recorders`): always the output spike counts once per slot and, when
the run sleeps, the feedback and feedforward weights once per sleep cycle (so the alignment of B
with Wᵀ can be followed across sleep blocks); probes and state snapshots on request.
"""

import contextlib
import os
import shutil
import time
from dataclasses import dataclass

import numpy as np
from brian2 import (Network, NeuronGroup, TimedArray, defaultclock, device, ms, second,
                    seed as brian_seed)
from brian2.utils.filelock import FileLock

from plausigrad.models.errors import ConfigurationError
from plausigrad.models.schedule_signals import EVAL, SLEEP, TRAIN, schedule_equations
from plausigrad.models.synapses import matrix_to_synapse_vector, synapse_vector_to_matrix
from plausigrad.protocols.devices import activate_device, build_standalone, is_standalone
from plausigrad.protocols.recorders import OutputCounts, SleepCycles
from plausigrad.protocols.schedule import build_timeline
from plausigrad.rules.base import NetworkContext

STEP = 1 * ms


def remove_orphaned_results(build_directory):
    """Remove the ``results_<pid>`` folders in ``build_directory`` whose process is gone.

    A run killed mid-epoch (Ctrl-C, SIGKILL, a lost session) never reaches the clean-up in
    :meth:`Simulator.run`; its folder holds a whole network's state and would pile up.
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


@dataclass
class EpochRecord:
    """What one run returns."""

    state: dict                 #: learned state after the run (name -> array)
    output_counts: np.ndarray   #: (n_slots, n_output) forward-window spike counts per slot
    kinds: np.ndarray           #: slot kinds of the run
    rows: np.ndarray            #: data row of every slot
    cycle_state: list           #: per sleep cycle: {name: array} of feedback/feedforward pairs
    run_seconds: float          #: wall time of the simulation itself
    probes: dict = None         #: name -> {"t": steps, variable: (n_indices, n_steps)} (``Probes``)
    spikes: dict = None         #: group name -> (neuron indices, spike steps)
    snapshots: list = None      #: [(slot index, learned state)] (the ``Snapshots`` recorder)


class Simulator:
    """Builds a rule's network once and runs epochs on it.

    Parameters
    ----------
    rule : LearningRule
    layer_sizes : tuple of int
    windows : Windows
    sleep : SleepSchedule or None
        Sleep blocks in the training part of each run (only for rules that use sleep).
    images : ndarray (n_rows, n_input), values in [0, 1]
        All rows a run can present: the first ``n_train`` are training rows, the rest evaluation.
    labels : ndarray (n_rows,)
    n_train, n_eval : int
        Slots per run; fixed for the lifetime of the compiled binary.
    device : {"runtime", "cpp", "cuda"}
    build_directory : str
        Standalone project directory (keyed by the caller on everything that changes the code).
    recorders : sequence of :class:`~plausigrad.protocols.recorders.Recorder`, optional
        What else the run records (:mod:`plausigrad.protocols.recorders`: ``Probes`` for figures,
        ``Snapshots`` for alignment tracking); part of the compiled network. The output counts
        and, when the run sleeps, the feedback/forward pairs per sleep cycle are always recorded.
    """

    def __init__(self, rule, layer_sizes, windows, sleep, images, labels, n_train, n_eval, *,
                 device="cpp", build_directory=None, threads=0, runtime_target="cython",
                 recorders=()):
        self.rule, self.layer_sizes, self.windows = rule, tuple(layer_sizes), windows
        self.sleep = sleep
        self.images = np.ascontiguousarray(images, dtype=np.float64)
        self.labels = np.asarray(labels, dtype=np.float64)
        self.n_train, self.n_eval = n_train, n_eval
        self.device_kind, self.build_directory = device, build_directory
        self.threads, self.runtime_target = threads, runtime_target
        self.recorders = [OutputCounts(), SleepCycles(), *recorders]
        if device == "runtime" and runtime_target == "numpy" and rule.batch_size > 1:
            # Known problem: on the numpy target the apply_batch pathway corrupts other synaptic
            # arrays (B changed in fa mode); cython and C++ standalone agree exactly.
            raise ConfigurationError("mini-batches (batch size > 1) are not supported on the "
                                     "numpy runtime target; use cython or --device cpp")
        self.slot_duration = windows.slot_steps * STEP
        self.compiled = False
        self.compile_seconds = None

    def timeline(self, train_order):
        return build_timeline(train_order, self.n_train + np.arange(self.n_eval), self.sleep)

    # -- building ----------------------------------------------------------------------------
    def _build(self, timeline):
        """Create every Brian2 object for a run over ``timeline``; returns the handles."""
        defaultclock.dt = STEP
        slot_kind = TimedArray(timeline.kinds, dt=self.slot_duration, name="slot_kind")
        slot_row = TimedArray(timeline.rows, dt=self.slot_duration, name="slot_row")
        pixels = TimedArray(self.images, dt=self.slot_duration, name="pixels")
        labels = TimedArray(self.labels, dt=self.slot_duration, name="labels")
        row_time = "slot_row(t) * slot_duration"
        ctx = NetworkContext(
            layer_sizes=self.layer_sizes,
            pixel_expression=f"pixels({row_time}, i)",
            target_expression=f"int(i == int(labels({row_time}) + 0.5))",
            schedule_equations=schedule_equations(),
            slot_duration=self.slot_duration)
        built = self.rule.build(ctx)
        objects = list(built.objects)
        for recorder in self.recorders:
            objects += recorder.attach(self, built)
        rng = NeuronGroup(1, "rng_seed : integer (shared)", name="rng")
        objects.append(rng)
        namespace = {**built.namespace, "slot_kind": slot_kind, "slot_row": slot_row,
                     "pixels": pixels, "labels": labels,
                     "forward_steps": self.windows.forward_steps,
                     "slot_steps": self.windows.slot_steps, "slot_duration": self.slot_duration}
        self._handles = dict(built=built, slot_kind=slot_kind, slot_row=slot_row, rng=rng)
        return Network(objects), namespace

    def inspect(self, train_order=(0,)):
        """Build the network on the runtime device without running it; returns (Network, namespace).

        For tools that read the generated model (equations, pathways, ``run_regularly`` code),
        such as the locality audit in :mod:`plausigrad.analysis.audit`.
        """
        activate_device("runtime", runtime_target=self.runtime_target)
        return self._build(self.timeline(np.asarray(train_order)))

    def _state_views(self):
        built = self._handles["built"]
        return {name: getattr(var.owner, var.variable) for name, var in built.state.items()}

    def _flat(self, name, array):
        """Learned-state array -> the order of the Brian2 variable."""
        var = self._handles["built"].state[name]
        return matrix_to_synapse_vector(array) if len(var.shape) == 2 else np.asarray(array, float)

    def _unflat(self, name, values):
        var = self._handles["built"].state[name]
        if len(var.shape) == 2:
            return synapse_vector_to_matrix(values, var.shape[1], var.shape[0])
        return np.array(values, dtype=np.float64)

    # -- running -----------------------------------------------------------------------------
    def run(self, state, train_order, seed, learning_rates):
        """Run one epoch (training slots in ``train_order``, then evaluation); returns a record.

        ``learning_rates`` maps state names (``W1``, ``b1``, ...) to learning-rate values.
        """
        timeline = self.timeline(train_order)
        if is_standalone(self.device_kind):
            started = self._run_standalone(timeline, state, seed, learning_rates)
        else:
            started = self._run_runtime(timeline, state, seed, learning_rates)
        elapsed = time.perf_counter() - started
        record = self._collect(timeline, elapsed)
        if is_standalone(self.device_kind):
            shutil.rmtree(device.results_dir, ignore_errors=True)
        return record

    def _run_runtime(self, timeline, state, seed, learning_rates):
        activate_device("runtime", runtime_target=self.runtime_target)
        net, namespace = self._build(timeline)
        self._assign(state, learning_rates)
        brian_seed(seed)
        started = time.perf_counter()
        net.run(timeline.n_slots * self.slot_duration, namespace=namespace)
        return started

    def _assign(self, state, learning_rates):
        for name, view in self._state_views().items():
            view[:] = self._flat(name, state[name])
        for name, (owner, variable) in self._handles["built"].learning_rates.items():
            setattr(owner, variable, learning_rates[name])

    def compile(self, generate_only=False):
        """Generate and compile the standalone project (once); returns the compile seconds.

        The timeline built here only fixes the shape of the run (``n_train`` training slots);
        every run passes its own order through ``run_args``. On a machine without a GPU this is
        how a CUDA build is checked. ``generate_only=True`` writes the source files without
        compiling them (for tests that read the generated code); nothing is marked compiled.
        """
        if generate_only:
            self._generate()
            build_standalone(self.build_directory, run=False, compile=False)
            return None
        if not self.compiled:
            self._generate()
            started = time.perf_counter()
            with self._build_lock():
                build_standalone(self.build_directory, run=False)
            self.compile_seconds = time.perf_counter() - started
            self.compiled = True
        return self.compile_seconds

    def _generate(self):
        """Build the network on the standalone device and queue its one run (no compile yet)."""
        timeline = self.timeline(np.arange(self.n_train))
        activate_device(self.device_kind, self.build_directory, threads=self.threads)
        net, namespace = self._build(timeline)
        device.apply_run_args()
        self._insert_seed_code()
        net.run(timeline.n_slots * self.slot_duration, namespace=namespace,
                report="text", report_period=60 * second)

    def _build_lock(self):
        """An inter-process lock on the build directory: two processes that share a build (same
        network, e.g. a learning-rate sweep) compile one after the other, never both at once."""
        if self.build_directory is None:  # a private temporary directory
            return contextlib.nullcontext()
        os.makedirs(self.build_directory, exist_ok=True)
        return FileLock(os.path.join(self.build_directory, ".plausigrad-build.lock"))

    def _run_standalone(self, timeline, state, seed, learning_rates):
        self.compile()
        h = self._handles
        run_args = {h["slot_kind"]: timeline.kinds, h["slot_row"]: timeline.rows,
                    h["rng"].rng_seed: int(seed)}
        for name, view in self._state_views().items():
            run_args[view] = self._flat(name, state[name])
        for name, (owner, variable) in h["built"].learning_rates.items():
            run_args[getattr(owner, variable)] = float(learning_rates[name])
        remove_orphaned_results(device.project_dir)
        started = time.perf_counter()
        # each process writes its results into its own folder, so that runs sharing a build can
        # run side by side; the folder is removed once the record is collected (see run())
        device.run(results_directory=f"results_{os.getpid()}", run_args=run_args,
                   with_output=False)
        return started

    def _insert_seed_code(self):
        """Seed the standalone random generators from the ``rng_seed`` run-time variable.

        Brian2's ``seed()`` bakes a constant into the binary; reading a variable that
        ``run_args`` sets (inserted right after ``set_from_command_line``) lets every epoch use
        its own seed without recompiling. C++: one generator per OpenMP thread. CUDA: brian2cuda's
        ``random_number_buffer`` seeds cuRAND's host and device generators (what its own
        ``seed()`` compiles to, ``brian2cuda/device.py``); the host copy of a ``run_args``
        value is set before it is copied to the GPU (``templates/objects.cu``).
        """
        array = device.get_array_name(self._handles["rng"].variables["rng_seed"])
        if self.device_kind == "cuda":
            device.insert_code("main", f"brian::random_number_buffer.set_seed("
                                       f"(unsigned long long)brian::{array}[0]);")
            return
        from brian2 import prefs
        threads = max(1, prefs.devices.cpp_standalone.openmp_threads)
        device.insert_code("main", f"for (int _i = 0; _i < {threads}; _i++) "
                                   f"brian::_random_generators[_i].seed("
                                   f"(unsigned long)brian::{array}[0] + _i);")

    def _collect(self, timeline, elapsed):
        fields = {"probes": {}, "spikes": {}, "snapshots": []}
        for recorder in self.recorders:
            fields.update(recorder.collect(self, timeline))
        state = {name: self._unflat(name, view[:]) for name, view in self._state_views().items()}
        return EpochRecord(state=state, kinds=timeline.kinds[:-1].astype(int),
                           rows=timeline.rows[:-1].astype(int), run_seconds=elapsed, **fields)


def slot_metrics(record, labels, forward_steps, loss):
    """Loss (the rule's ``loss.metric`` of the forward-window counts) and accuracy (argmax of
    the counts) of the TRAIN and EVAL slots of a run."""
    metrics = {}
    for kind, prefix in ((TRAIN, "train"), (EVAL, "test")):
        slots = record.kinds == kind
        if not slots.any():
            continue
        counts = record.output_counts[slots]
        y = labels[record.rows[slots]].astype(int)
        metrics[f"{prefix}_loss"] = loss.metric(counts, y, forward_steps)
        metrics[f"{prefix}_accuracy"] = float(np.mean(np.argmax(counts, axis=1) == y))
        metrics[f"{prefix}_samples"] = int(slots.sum())
    metrics["sleep_slots"] = int(np.sum(record.kinds == SLEEP))
    return metrics
