"""Training and evaluation runs: epochs, metrics, checkpoints, resume.

One epoch = one :meth:`Simulator.run`: every training sample in a fresh random order (with sleep
blocks for rules that sleep), then a forward-only pass over the evaluation set with the final
weights of the epoch. After each epoch the metrics are appended to ``metrics.json`` and the
learned state is checkpointed; ``resume=True`` continues a killed run from its last checkpoint,
drawing the same shuffles and seeds an uninterrupted run would have drawn, or trains a finished
run further when only ``epochs`` grew (the learning-rate schedule goes on from the epoch reached).
"""

import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from plausigrad.models.errors import (ConfigurationError, require_choice, require_finite_fields,
                                      require_positive)
from plausigrad.models.parameters import param
from plausigrad.protocols import interrupts
from plausigrad.protocols.angles import angle_degrees
from plausigrad.protocols.checkpoint import (CheckpointError, has_checkpoint, json_safe,
                                             read_checkpoint, restore_rng, save_checkpoint)
from plausigrad.protocols.config import CONFIG_FILE, write_config
from plausigrad.protocols.datasets import EVENT_DATASETS, DatasetError, load_dataset
from plausigrad.protocols.devices import DEVICE_CHOICES, Device
from plausigrad.protocols.resources import check_resources, epoch_slots
from plausigrad.protocols.rundir import open_run_directory
from plausigrad.protocols.schedule import SleepSchedule, Windows
from plausigrad.rules.registry import make_rule, rule_names

# The engine (and with it Brian2) is imported by train() and evaluate() when they run, so that
# RunConfig, which the CLI reads to build its parser, costs no Brian2 import.


def event_binning(event_bins=None, event_bin_ms=None, event_denoise_ms=None, event_window=None,
                  event_counts=None, event_first_saccade=None):
    """The :class:`~plausigrad.protocols.event_data.Binning` that the ``--event-*`` options
    (:attr:`RunConfig.EVENT_FIELDS`, in ms) describe; a None option takes the Binning default.
    Bad values are a :class:`ConfigurationError` or a ``DatasetError``, one line each."""
    from plausigrad.protocols.event_data import Binning
    default = Binning()
    if event_window == "recording" and event_bin_ms is not None:
        raise ConfigurationError("--event-bin-ms applies to --event-window fixed; with "
                                 "recording the bin width is each recording's span / "
                                 "--event-bins")
    return Binning(
        n_bins=default.n_bins if event_bins is None else event_bins,
        bin_us=default.bin_us if event_bin_ms is None else _whole_us(event_bin_ms,
                                                                     "--event-bin-ms"),
        denoise_us=(None if event_denoise_ms is None
                    else _whole_us(event_denoise_ms, "--event-denoise-ms")),
        window=event_window or default.window,
        binary=default.binary if event_counts is None else not event_counts,
        first_saccade=bool(event_first_saccade))


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run (written into checkpoints, metrics and the run's
    ``config.toml``). The command line's general options are generated from these fields; the
    windows default to the rule's ``windows_for`` the depth (its ``default_windows`` unless the
    rule says otherwise), the sleep schedule to its ``sleep_defaults``."""

    rule: str = param("biograd", "learning rule")
    hidden: tuple = param((500,), "hidden layer sizes, e.g. 500 or 500,100")
    epochs: int = param(5, "epochs to train (with --resume: may grow to train further)")
    device: str = param("cpp", "runtime, cpp (C++ standalone) or cuda (CUDA standalone)",
                        choices=DEVICE_CHOICES)
    threads: int = param(0, "OpenMP threads for --device cpp (0: none)")
    dataset: str = param("mnist", "mnist, fashion-mnist or nmnist (N-MNIST events, default 60 "
                                  "binary 5 ms bins: docs/event-data.md)")
    event_bins: int = param(None, "nmnist: time bins per sample (default 60)")
    event_bin_ms: float = param(None, "nmnist: bin width in ms, a whole number of µs "
                                      "(default 5)")
    event_denoise_ms: float = param(None, "nmnist: drop events with no neighbour within this "
                                          "many ms (tonic Denoise; default: off)")
    event_window: str = param(None, "nmnist: fixed (default: --event-bins bins of "
                                    "--event-bin-ms from t = 0) or recording (each recording's "
                                    "span in --event-bins equal bins, tonic n_time_bins)",
                              choices=("fixed", "recording"))
    event_counts: bool = param(None, "nmnist: on: cells hold event counts, integrated as graded "
                                     "input (biograd --profile published only); default off: "
                                     "binary frames")
    event_first_saccade: bool = param(None, "nmnist: on: only the events of the first saccade "
                                            "(t < 100 ms); default off")
    data_dir: str = param(None, "directory with the IDX .gz files or the N-MNIST folders "
                                "(default: $PLAUSIGRAD_DATA_DIR, else the bundled MNIST subset)")
    train_limit: int = param(None, "use the first N training samples")
    test_limit: int = param(None, "use the first N test samples")
    validation: int = param(None, "hold out the last N training samples (after --train-limit) "
                                  "as a validation split: not trained on, evaluated every epoch "
                                  "(validation_accuracy; the BioGrad lab holds out 10 000)")
    forward_steps: int = param(None, "forward window T_f in steps (default: the rule's)")
    feedback_steps: int = param(None, "feedback window T_b in steps (default: the rule's)")
    sleep_every: int = param(None, "samples between sleep blocks (rules that sleep; default: "
                                   "the rule's, 1000)")
    sleep_slots: int = param(None, "slots per sleep block (rules that sleep; default: the "
                                   "rule's, 20)")
    lr_decay: float = param(None, "learning-rate factor per epoch (default: the rule's, 0.7; "
                                  "1 for BioGrad's published profile)")
    seed: int = param(0, "random seed (initial weights, shuffles, spikes)")
    rule_params: dict = field(default_factory=dict)
    track_alignment: int = param(None, "measure gradient alignment to backprop every N slots "
                                       "(training samples plus sleep slots) on a fixed probe set")

    def __post_init__(self):
        require_choice("rule", self.rule, rule_names())
        rule = self.make_rule()  # validates the rule's parameters; its profile sets defaults
        require_choice("device", self.device, DEVICE_CHOICES)
        if self.lr_decay is None:
            object.__setattr__(self, "lr_decay", rule.default_lr_decay)
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.forward_steps is None or self.feedback_steps is None:
            forward, feedback = rule.windows_for(len(self.hidden) + 1)
            if self.forward_steps is None:
                object.__setattr__(self, "forward_steps", forward)
            if self.feedback_steps is None:
                object.__setattr__(self, "feedback_steps", feedback)
        if self.sleep_every is None or self.sleep_slots is None:
            every, slots = rule.sleep_defaults(len(self.hidden))
            if self.sleep_every is None:
                object.__setattr__(self, "sleep_every", every)
            if self.sleep_slots is None:
                object.__setattr__(self, "sleep_slots", slots)
        require_finite_fields(self)
        given = [name for name in self.EVENT_FIELDS if getattr(self, name) is not None]
        if given and self.dataset not in EVENT_DATASETS:
            raise ConfigurationError(f"--{given[0].replace('_', '-')} applies to event data "
                                     f"(--dataset {' or '.join(EVENT_DATASETS)}), not to "
                                     f"{self.dataset}")
        if given:
            if self.event_bins is not None:
                require_positive("--event-bins", self.event_bins)
                _require_count("event_bins", self.event_bins)
            try:
                self.binning()
            except DatasetError as exc:
                raise ConfigurationError(str(exc)) from None
            if self.event_counts and not rule.accepts_event_counts:
                raise ConfigurationError(f"--event-counts on: rule {self.rule} takes every input "
                                         "event as one spike; event counts need graded input "
                                         "(biograd --profile published)")
        if not self.hidden:
            raise ConfigurationError("--hidden needs at least one hidden layer size, "
                                     "e.g. --hidden 500")
        for size in self.hidden:
            require_positive("hidden layer size", size)
        require_positive("epochs", self.epochs)
        require_positive("learning-rate decay", self.lr_decay)
        if self.track_alignment is not None:
            require_positive("alignment tracking interval (samples)", self.track_alignment)
        if self.validation is not None:
            require_positive("validation samples", self.validation)
            if self.train_limit is not None and self.validation >= self.train_limit:
                raise ConfigurationError(f"--validation {self.validation} leaves no training "
                                         f"sample of --train-limit {self.train_limit}")
        for name in ("epochs", "threads", "seed", "sleep_every", "sleep_slots",
                     "track_alignment", "validation"):
            _require_count(name, getattr(self, name))
        try:
            growth = self.lr_decay ** self.epochs
        except OverflowError:
            growth = math.inf
        if not math.isfinite(growth):
            raise ConfigurationError(f"learning-rate decay {self.lr_decay!r} over {self.epochs} "
                                     "epochs overflows the learning rates")
        rule.check_windows(Windows(self.forward_steps, self.feedback_steps), len(self.hidden) + 1)

    def windows(self):
        return Windows(self.forward_steps, self.feedback_steps)

    #: The event-binning fields (each None: the :class:`Binning` default).
    EVENT_FIELDS = ("event_bins", "event_bin_ms", "event_denoise_ms", "event_window",
                    "event_counts", "event_first_saccade")

    def binning(self):
        """The :class:`~plausigrad.protocols.event_data.Binning` of an event dataset (its
        defaults where a field is None), or None for an image dataset."""
        if self.dataset not in EVENT_DATASETS:
            return None
        return event_binning(**{name: getattr(self, name) for name in self.EVENT_FIELDS})

    def check_data(self, rule, n_train, n_test):
        """Raise :class:`ConfigurationError` when the data cannot carry this run: a validation
        split that leaves no training sample, a mini-batch larger than the training set (it
        never completes: no weight would ever change). ``n_train``: the training samples the
        dataset has, validation split included."""
        if self.validation is not None:
            if self.validation >= n_train:
                raise ConfigurationError(f"--validation {self.validation} leaves no training "
                                         f"sample of the {n_train} there are; lower it or raise "
                                         "--train-limit")
            n_train -= self.validation
        if rule.batch_size > n_train:
            raise ConfigurationError(f"batch size {rule.batch_size} exceeds the {n_train} "
                                     "training samples: no weight would ever be updated; lower "
                                     "--batch-size or raise --train-limit")

    def make_rule(self):
        return make_rule(self.rule, self.rule_params)

    @classmethod
    def from_dict(cls, values, source="configuration"):
        """A RunConfig from a dict (a TOML file, a stored config); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigurationError(f"unknown key {unknown[0]!r} in {source} (known: "
                                     f"{', '.join(sorted(names))})")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigurationError(f"bad value in {source}: {exc}") from None

    def resolved(self):
        """This configuration with every rule parameter spelled out (defaults included)."""
        params = self.make_rule().describe()
        params.pop("rule")
        return {**self.to_json(), "rule_params": json.loads(json.dumps(params, default=str))}

    def sleep_schedule(self, rule):
        if not rule.uses_sleep:
            return None
        return SleepSchedule(self.sleep_every, self.sleep_slots)

    def to_json(self):
        return json.loads(json.dumps(asdict(self), default=str))


def _whole_us(ms, option):
    """Milliseconds as a positive whole number of microseconds (tonic's time unit)."""
    us = ms * 1000
    if not us >= 1 or abs(us - round(us)) > 1e-6:
        raise ConfigurationError(f"{option} must be a positive whole number of µs, got {ms!r} ms")
    return int(round(us))


def _require_count(name, value):
    """A non-negative integer (None passes: "automatic"); ``--seed -1`` is refused here."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigurationError(f"{name.replace('_', ' ')} must be an integer, got {value!r}")
    if value < 0:
        raise ConfigurationError(f"{name.replace('_', ' ')} must be >= 0, got {value!r}")


def build_key(config, rule, n_train, n_eval, encoding=None):
    """Hash of everything that changes the generated code (not learning rates, data or seeds);
    ``encoding``: the dataset's input encoding, whose packed layout of count frames depends on
    the data (bits per cell)."""
    params = rule.describe()
    for runtime_value in ("learning_rate", "bias_learning_rate"):
        params.pop(runtime_value, None)
    key = [params, config.hidden, config.forward_steps, config.feedback_steps,
           config.sleep_every if rule.uses_sleep else None,
           config.sleep_slots if rule.uses_sleep else None, config.device,
           config.threads, n_train, n_eval, config.track_alignment]
    if config.binning() is not None:  # the event input's expression holds the number of bins
        key.append(dataclasses.asdict(config.binning()))
    if getattr(encoding, "bits", 1) != 1:
        key.append(dataclasses.asdict(encoding))
    payload = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()[:12]


def default_build_root():
    return os.environ.get("PLAUSIGRAD_BUILD_DIR",
                          os.path.join(os.path.expanduser("~"), ".cache", "plausigrad", "builds"))


def _data(config):
    """(dataset, rows, labels): the training rows first, then the evaluation rows (validation
    split, if any: the last ``config.validation`` training samples, then the test set)."""
    dataset = load_dataset(config.dataset, data_dir=config.data_dir,
                           train_limit=config.train_limit, test_limit=config.test_limit,
                           binning=config.binning())
    images = np.concatenate([dataset.train_images, dataset.test_images])
    labels = np.concatenate([dataset.train_labels, dataset.test_labels])
    return dataset, images, labels


def _split(config, dataset):
    """(trained samples, evaluated samples, validation rows): the validation rows are
    ``range(trained, trained + validation)``, right after the trained rows, so the evaluation
    slots cover validation and test in one pass."""
    n_val = config.validation or 0
    n_train = dataset.num_train - n_val
    return n_train, n_val + dataset.num_test, (n_train, n_train + n_val)


def _same_run(saved, wanted, finished_epochs):
    """Whether a checkpoint's configuration may be resumed as ``wanted``: equal in everything but
    the number of epochs, which may grow (to train a finished run further) but not fall below
    the epochs already done. Rule parameters are compared as resolved by the rule (defaults
    filled in), so a checkpoint that spelled out a default matches one that left it out."""
    keys = (saved.keys() | wanted.keys()) - {"epochs", "rule_params"}
    return (all(saved.get(key) == wanted.get(key) for key in keys)
            and _resolved_rule(saved) == _resolved_rule(wanted)
            and wanted["epochs"] >= finished_epochs)


def _resolved_rule(config_json):
    """The rule description of a stored configuration (None if it no longer builds)."""
    try:
        return make_rule(config_json.get("rule"), config_json.get("rule_params")).describe()
    except ConfigurationError:
        return None


def train(config, out_dir, *, resume=False, log=print, build_root=None, epoch_hook=None,
          progress=None):
    """Train ``config`` for ``config.epochs`` epochs, writing metrics and checkpoints to ``out_dir``.

    Before any work, ``out_dir`` is prepared, probed for writing and locked for this run
    (:func:`plausigrad.protocols.rundir.open_run_directory`), the checkpoint to resume is
    checked whole, and the run is checked against the data and the machine
    (:meth:`RunConfig.check_data`, :func:`plausigrad.protocols.resources.check_resources`).
    After every epoch, its checkpoint and the metrics are written as one unit
    (:func:`plausigrad.protocols.checkpoint.save_checkpoint`).

    ``epoch_hook(epoch, record, state, n_train)``, if given, runs after every epoch's simulation
    (``epoch`` counts from 0; ``record`` is the :class:`EpochRecord`, with state snapshots when
    ``config.track_alignment`` is set); the dict it returns is merged into the epoch's metrics.
    ``progress``, if given (e.g. a :class:`plausigrad.protocols.progress.ProgressLine`), is
    called as ``progress(label, done, total)`` with the samples an epoch has simulated while a
    standalone binary runs, and ``progress.finish()`` after each epoch.
    Returns the list of per-epoch metric dicts (including those of resumed epochs).
    """
    if resume and not os.path.isdir(out_dir):
        raise CheckpointError(f"no checkpoint in {out_dir} (the directory does not exist); "
                              "drop --resume to start a new run")
    with open_run_directory(out_dir):
        return _train_locked(config, out_dir, resume, log, build_root, epoch_hook, progress)


def _resume_point(config, out_dir):
    """(rng, finished epochs, history, state) of the checkpoint in ``out_dir``, refused when it
    was written by another configuration."""
    meta, state, metrics = read_checkpoint(out_dir)
    if not _same_run(meta["config"], config.to_json(), meta["epoch"]):
        raise CheckpointError(f"checkpoint in {out_dir} was written by a different "
                              "configuration; start a new output directory or drop --resume")
    history = metrics["epochs"][:meta["epoch"]] if metrics is not None else []
    return restore_rng(meta), meta["epoch"], history, state


def checkpoint_config(meta, directory, **overrides):
    """The :class:`RunConfig` stored in a checkpoint's ``meta``, with ``overrides``; an unknown
    key or an impossible value is one :class:`ConfigurationError` line naming the checkpoint."""
    return RunConfig.from_dict({**meta["config"], **overrides},
                               source=f"the configuration of checkpoint {directory}")


def check_checkpoint_state(rule, state, sizes, where):
    """:meth:`LearningRule.check_state` for a loaded checkpoint, as a :class:`CheckpointError`."""
    try:
        rule.check_state(state, sizes, where=f"checkpoint in {where}")
    except ConfigurationError as exc:
        raise CheckpointError(f"{exc}; it was not written by this rule and network: start a "
                              "new --out") from None


def _train_locked(config, out_dir, resume, log, build_root, epoch_hook, progress):
    from plausigrad.protocols.engine import Simulator, slot_metrics  # imports Brian2
    from plausigrad.protocols.recorders import Snapshots
    rule = config.make_rule()
    if resume:
        rng, first_epoch, history, state = _resume_point(config, out_dir)
    elif has_checkpoint(out_dir):
        raise CheckpointError(f"{out_dir} already holds a checkpoint; use --resume to "
                              "continue it or choose another --out")
    dataset, images, labels = _data(config)
    config.check_data(rule, dataset.num_train, dataset.num_test)
    n_train, n_eval, validation_rows = _split(config, dataset)
    sizes = (dataset.n_inputs, *config.hidden, 10)
    check_resources(rule, sizes, config.windows(),
                    epoch_slots(n_train, n_eval, config.sleep_schedule(rule)), len(images),
                    threads=config.threads)
    if resume:
        check_checkpoint_state(rule, state, sizes, out_dir)
        log(f"resuming {out_dir} after epoch {first_epoch}")
    else:
        rng = np.random.default_rng(config.seed)
        state, first_epoch, history = rule.initial_state(sizes, rng), 0, []
    write_config(out_dir, config.resolved(),
                 header=f"plausigrad {config.rule}: resolved configuration of this run.\n"
                        f"Repeat it with: plausigrad train --config {CONFIG_FILE} --out DIR")
    key = build_key(config, rule, n_train, n_eval, dataset.input_encoding)
    build_dir = os.path.join(build_root or default_build_root(), f"{config.rule}-{key}")
    simulator = Simulator(rule, sizes, config.windows(), config.sleep_schedule(rule), images,
                          labels, n_train, n_eval, input_encoding=dataset.input_encoding,
                          device=Device(config.device, build_dir, config.threads),
                          recorders=[Snapshots(config.track_alignment)] if config.track_alignment
                          else [])
    profile = getattr(rule.params, "profile", None)
    named = f"{config.rule} ({profile} profile)" if profile else config.rule
    held_out = f" / {config.validation} validation" if config.validation else ""
    log(f"{named} {'-'.join(map(str, sizes))} on {config.device}: {n_train} train{held_out} / "
        f"{dataset.num_test} test samples ({dataset.source})")
    for epoch in range(first_epoch, config.epochs):
        interrupts.check()
        lr_factor = config.lr_decay ** epoch
        order = rng.permutation(n_train)
        seed = int(rng.integers(1, 2**31 - 1))
        started = time.perf_counter()
        if progress is not None:
            progress.start()
        record = simulator.run(state, order, seed,
                               rule.learning_rate_values(len(sizes) - 1, lr_factor),
                               progress=None if progress is None else
                               (lambda done, total, e=epoch: progress(f"epoch {e + 1}", done,
                                                                      total)))
        if progress is not None:
            progress.finish()
        state = record.state
        entry = {"epoch": epoch + 1,
                 **slot_metrics(record, labels, rule.count_steps(config.windows()), rule.loss,
                                validation_rows=validation_rows if config.validation else None),
                 "learning_rate_factor": lr_factor,
                 "run_seconds": round(record.run_seconds, 3),
                 "epoch_seconds": round(time.perf_counter() - started, 3),
                 "samples_per_second": round((n_train + n_eval) / record.run_seconds, 1),
                 "compile_seconds": simulator.compile_seconds,
                 "cpu_cores": os.cpu_count(),
                 **feedback_angles(record, state, rule.feedback_pairs(sizes))}
        log(format_epoch(entry, dict(rule.feedback_pairs(sizes))))
        if epoch_hook is not None:
            entry.update(epoch_hook(epoch, record, state, n_train) or {})
        history.append(json_safe(entry))
        interrupts.check()  # an epoch during which a signal arrived is not checkpointed
        save_checkpoint(out_dir, epoch + 1, state, config.to_json(),
                        {"kind": "sgd", "learning_rate_factor": lr_factor,
                         "next_learning_rate_factor": config.lr_decay ** (epoch + 1)}, rng,
                        metrics={"config": config.to_json(), "rule": rule.describe(),
                                 "loss": rule.loss.name, "layer_sizes": sizes,
                                 "epochs": history},
                        layer_sizes=sizes)
    return history


def feedback_angles(record, state, pairs):
    """angle(B^l, (W^{l+1})ᵀ) for each (feedback, forward) name pair at the end of the epoch,
    and across its sleep cycles."""
    angles, per_cycle = {}, {}
    for name, upper in pairs:
        angles[name] = angle_degrees(state[name], state[upper].T)
        per_cycle[name] = [angle_degrees(c[name], c[upper].T) for c in record.cycle_state]
    result = {}
    if angles:
        result["feedback_angle_degrees"] = angles
    if any(per_cycle.values()):
        result["feedback_angle_per_sleep_cycle"] = per_cycle
    return result


def format_epoch(entry, pairs=None):
    """One log line of an epoch's metrics; ``pairs`` maps feedback to forward names."""
    pairs = pairs or {}
    text = (f"epoch {entry['epoch']}: train acc {entry.get('train_accuracy', float('nan')):.4f} "
            f"loss {entry.get('train_loss', float('nan')):.4f} | "
            + (f"validation acc {entry['validation_accuracy']:.4f} | "
               if "validation_accuracy" in entry else "")
            + f"test acc {entry.get('test_accuracy', float('nan')):.4f} | "
            f"{entry['samples_per_second']:.0f} "
            f"samples/s, {entry['run_seconds']:.1f} s run")
    for name, angle in entry.get("feedback_angle_degrees", {}).items():
        shown = "undefined" if angle is None else f"{angle:.1f}°"
        text += f" | angle({name}, {pairs.get(name, '?')}ᵀ) {shown}"
    return text


def evaluate(checkpoint_dir, *, device=None, data_dir=None, test_limit=None, log=print,
             build_root=None):
    """Forward-only accuracy of a checkpoint on the test set."""
    from plausigrad.protocols.engine import Simulator, slot_metrics  # imports Brian2
    meta, state, _ = read_checkpoint(checkpoint_dir)
    saved = meta["config"]
    config = checkpoint_config(
        meta, checkpoint_dir, device=device or saved.get("device", "cpp"),
        data_dir=data_dir or saved.get("data_dir"), train_limit=1, validation=None,
        test_limit=test_limit if test_limit is not None else saved.get("test_limit"))
    rule = config.make_rule()
    dataset, images, labels = _data(config)
    images, labels = images[1:], labels[1:]  # no training rows
    sizes = (dataset.n_inputs, *config.hidden, 10)
    check_checkpoint_state(rule, state, sizes, checkpoint_dir)
    check_resources(rule, sizes, config.windows(), epoch_slots(0, dataset.num_test), len(images))
    key = build_key(config, rule, 0, dataset.num_test, dataset.input_encoding)
    build_dir = os.path.join(build_root or default_build_root(), f"eval-{key}")
    simulator = Simulator(rule, sizes, config.windows(), None, images, labels, 0,
                          dataset.num_test, device=Device(config.device, build_dir, config.threads),
                          input_encoding=dataset.input_encoding)
    record = simulator.run(state, np.arange(0), config.seed + 1,
                           rule.learning_rate_values(len(sizes) - 1))
    result = {"checkpoint": checkpoint_dir, "epoch": meta["epoch"],
              **slot_metrics(record, labels, rule.count_steps(config.windows()), rule.loss),
              "samples_per_second": round(dataset.num_test / record.run_seconds, 1)}
    log(f"test accuracy {result['test_accuracy']:.4f} on {result['test_samples']} samples")
    return result
