"""The engine: one Brian2 network per (rule, architecture, windows, schedule shape), one run per epoch.

The engine is rule-agnostic. It gives a rule (:mod:`plausigrad.rules`) a
:class:`~plausigrad.rules.base.NetworkContext`, receives the rule's Brian2 objects, adds the data
``TimedArray`` objects and the read-out monitors, and runs whole epochs:

* **C++ / CUDA standalone** (a :class:`~plausigrad.protocols.devices.Device` owns activation,
  build, seeding and results folders): the network is generated and compiled once; every epoch
  after that is ``device.run(run_args=...)`` with the learned state (weights, biases, feedback
  weights), the learning rates, the epoch's timeline (shuffled order, sleep blocks) and the
  random seed carried in. Nothing is recompiled, and no Python code runs between samples. Processes may share a
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

import time
from dataclasses import dataclass

import numpy as np
from brian2 import (Network, NeuronGroup, TimedArray, defaultclock, device, second,
                    seed as brian_seed)

from plausigrad.models.errors import ConfigurationError, require_finite
from plausigrad.models.clock import STEP
from plausigrad.models.schedule_signals import EVAL, SLEEP, TRAIN, schedule_equations
from plausigrad.models.synapses import matrix_to_synapse_vector, synapse_vector_to_matrix
from plausigrad.protocols import interrupts
from plausigrad.protocols.devices import Device, as_device
from plausigrad.protocols.progress import REPORT_SECONDS
from plausigrad.protocols.recorders import OutputCounts, SleepCycles
from plausigrad.protocols.schedule import build_timeline
from plausigrad.rules.base import NetworkContext


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
        With ``input_encoding`` the rows are that encoding's (e.g. bit-packed event frames).
    labels : ndarray (n_rows,)
    n_train, n_eval : int
        Slots per run; fixed for the lifetime of the compiled binary.
    device : :class:`~plausigrad.protocols.devices.Device` or {"runtime", "cpp", "cuda"}
        Where it runs: the device owns activation, the build (its ``build_directory`` is keyed
        by the caller on everything that changes the code), seeding and the results folders.
    input_encoding : optional
        How a row becomes the input's p_i: None (default) reads ``pixels(row, i)``; an object
        with ``expression(table, row_time, step)`` (e.g.
        :class:`~plausigrad.models.encoders.PackedEvents`) gives the expression, read at the
        bin the rule's :attr:`~plausigrad.rules.base.LearningRule.event_input_step` names.
    recorders : sequence of :class:`~plausigrad.protocols.recorders.Recorder`, optional
        What else the run records (:mod:`plausigrad.protocols.recorders`: ``Probes`` for figures,
        ``Snapshots`` for alignment tracking); part of the compiled network. The output counts
        and, when the run sleeps, the feedback/forward pairs per sleep cycle are always recorded.
    """

    def __init__(self, rule, layer_sizes, windows, sleep, images, labels, n_train, n_eval, *,
                 device="cpp", recorders=(), input_encoding=None):
        rule.check_windows(windows, len(layer_sizes) - 1)
        self.rule, self.layer_sizes, self.windows = rule, tuple(layer_sizes), windows
        self.sleep = sleep
        self.images = np.ascontiguousarray(images, dtype=np.float64)
        self.labels = np.asarray(labels, dtype=np.float64)
        self.n_train, self.n_eval = n_train, n_eval
        self.input_encoding = input_encoding
        self.graded_input = bool(getattr(input_encoding, "counts", False))
        if self.graded_input and not rule.accepts_event_counts:
            raise ConfigurationError(f"rule {rule.name} takes every input event as one spike: "
                                     "event counts need a rule with graded input (biograd "
                                     "--profile published); bin binary frames instead")
        self.device = as_device(device)
        self.recorders = [OutputCounts(), SleepCycles(), *recorders]
        if (self.device.kind == "runtime" and self.device.runtime_target == "numpy"
                and rule.batch_size > 1):
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
            pixel_expression=(f"pixels({row_time}, i)" if self.input_encoding is None else
                              self.input_encoding.expression("pixels", row_time,
                                                             self.rule.event_input_step)),
            target_expression=f"int(i == int(labels({row_time}) + 0.5))",
            schedule_equations=schedule_equations(),
            slot_duration=self.slot_duration,
            graded_input=self.graded_input)
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
        Device("runtime", runtime_target=self.device.runtime_target).activate()
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
    def run(self, state, train_order, seed, learning_rates, progress=None):
        """Run one epoch (training slots in ``train_order``, then evaluation); returns a record.

        ``progress(done, total)``, on the standalone devices, is called while the binary runs
        with the training and evaluation samples it has simulated so far (sleep slots are not
        samples), from its reports (:mod:`plausigrad.protocols.progress`).

        ``learning_rates`` maps state names (``W1``, ``b1``, ...) to learning-rate values.
        ``state`` must hold the arrays of the rule's layout, of their shapes, and finite, and
        the learning rates must be finite numbers (:meth:`check_inputs`): a compiled binary
        would otherwise keep its compile-time values and run without a word.
        """
        self.check_inputs(state, learning_rates)
        timeline = self.timeline(train_order)
        if self.device.standalone:
            started = self._run_standalone(timeline, state, seed, learning_rates,
                                           self._report_to(progress, timeline))
        else:
            started = self._run_runtime(timeline, state, seed, learning_rates)
        elapsed = time.perf_counter() - started
        record = self._collect(timeline, elapsed)
        if self.device.standalone:
            self.device.release_results()
        interrupts.check()  # a signal during the run: its record is not returned
        return record

    def check_inputs(self, state, learning_rates):
        """Raise :class:`ConfigurationError` unless ``state`` fits the network
        (:meth:`~plausigrad.rules.base.LearningRule.check_state`) and every learning rate is a
        finite number."""
        self.rule.check_state(state, self.layer_sizes)
        for name, value in learning_rates.items():
            require_finite(f"learning rate of {name}", value)

    def _run_runtime(self, timeline, state, seed, learning_rates):
        self.device.activate()
        net, namespace = self._build(timeline)
        interrupts.check()  # rebuilding runs Brian2's weakref callbacks, which drop exceptions
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
            self.device.build(compile=False)
            return None
        if not self.compiled:
            self._generate()
            started = time.perf_counter()
            with self.device.build_lock():
                self.device.build()
            self.compile_seconds = time.perf_counter() - started
            self.compiled = True
        return self.compile_seconds

    def _generate(self):
        """Build the network on the standalone device and queue its one run (no compile yet)."""
        timeline = self.timeline(np.arange(self.n_train))
        self.device.activate()
        net, namespace = self._build(timeline)
        device.apply_run_args()
        self.device.insert_seed(device.get_array_name(self._handles["rng"].variables["rng_seed"]))
        net.run(timeline.n_slots * self.slot_duration, namespace=namespace,
                report="text", report_period=REPORT_SECONDS * second)

    def _report_to(self, progress, timeline):
        """``on_report(simulated seconds)`` for the device: samples done among the slots the
        binary has passed, or None without ``progress``."""
        if progress is None:
            return None
        is_sample = np.isin(timeline.kinds[:-1], (TRAIN, EVAL))
        done = np.concatenate([[0], np.cumsum(is_sample)])
        slot_seconds = float(self.slot_duration / second)

        def on_report(simulated):
            passed = min(int(simulated / slot_seconds + 1e-9), len(done) - 1)
            progress(int(done[passed]), int(done[-1]))
        return on_report

    def _run_standalone(self, timeline, state, seed, learning_rates, on_report=None):
        self.compile()
        h = self._handles
        run_args = {h["slot_kind"]: timeline.kinds, h["slot_row"]: timeline.rows,
                    h["rng"].rng_seed: int(seed)}
        labels = {}
        for name, view in self._state_views().items():
            run_args[view] = self._flat(name, state[name])
            labels[view] = name
        for name, (owner, variable) in h["built"].learning_rates.items():
            view = getattr(owner, variable)
            run_args[view] = float(learning_rates[name])
            labels[view] = f"the learning rate of {name}"
        started = time.perf_counter()
        # results in its own folder, released in run(); any complaint of the binary raises
        self.device.run_standalone(run_args, labels=labels, on_report=on_report)
        return started

    def _collect(self, timeline, elapsed):
        fields = {"probes": {}, "spikes": {}, "snapshots": []}
        for recorder in self.recorders:
            fields.update(recorder.collect(self, timeline))
        state = {name: self._unflat(name, view[:]) for name, view in self._state_views().items()}
        return EpochRecord(state=state, kinds=timeline.kinds[:-1].astype(int),
                           rows=timeline.rows[:-1].astype(int), run_seconds=elapsed, **fields)


def slot_metrics(record, labels, count_steps, loss, validation_rows=None):
    """Loss (the rule's ``loss.metric`` of the output counts) and accuracy (argmax of the counts)
    of the TRAIN and EVAL slots of a run. ``count_steps``: ``(train, eval)``, the steps the counts
    of each kind cover (:meth:`~plausigrad.rules.base.LearningRule.count_steps`).
    ``validation_rows``: ``(start, stop)``, the data rows of a validation split among the EVAL
    slots, reported as ``validation_*``; the other EVAL slots are the test set (``test_*``)."""
    metrics = {}
    kinds = record.kinds
    validation = np.zeros(len(kinds), dtype=bool)
    if validation_rows is not None:
        validation = (record.rows >= validation_rows[0]) & (record.rows < validation_rows[1])
    for slots, prefix, steps in ((kinds == TRAIN, "train", count_steps[0]),
                                 ((kinds == EVAL) & validation, "validation", count_steps[1]),
                                 ((kinds == EVAL) & ~validation, "test", count_steps[1])):
        if not slots.any():
            continue
        counts = record.output_counts[slots]
        y = labels[record.rows[slots]].astype(int)
        metrics[f"{prefix}_loss"] = loss.metric(counts, y, steps)
        metrics[f"{prefix}_accuracy"] = float(np.mean(np.argmax(counts, axis=1) == y))
        metrics[f"{prefix}_samples"] = int(slots.sum())
    metrics["sleep_slots"] = int(np.sum(record.kinds == SLEEP))
    return metrics
