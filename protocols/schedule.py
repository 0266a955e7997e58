"""The phase schedule of one epoch, laid out as slots of equal length inside ONE Brian2 run.

An epoch is a sequence of *slots*, each ``slot_steps = forward_steps + feedback_steps`` steps long:

* ``TRAIN`` slot: forward window (input on, spikes counted, traces accumulated), then feedback
  window (input off; signed error events travel down; last step: weight update), then the reset
  at the start of the next slot;
* ``SLEEP`` slot: no data; hidden layers fire Bernoulli noise and the feedback synapses learn by
  the Hebbian rule; a block of ``sleep_slots`` such slots follows every ``sleep_every`` samples;
* ``EVAL`` slot: forward window only (test set), no feedback, no learning;
* ``IDLE`` slot: one trailing slot so that the monitors, which record at slot starts, see the end
  of the last real slot.

Two ``TimedArray`` objects sampled at the slot duration drive everything: ``slot_kind(t)`` and
``slot_row(t)`` (which data row the slot presents). A new epoch, shuffle or data shard only
changes their values, so on C++ standalone it is a ``run_args`` change, never a recompile.

The flags the neurons and synapses read in each step are defined in
:mod:`plausigrad.models.schedule_signals`.
"""

from dataclasses import dataclass

import numpy as np

from plausigrad.models.errors import ConfigurationError, require_positive
from plausigrad.models.schedule_signals import EVAL, IDLE, SLEEP, TRAIN



@dataclass(frozen=True)
class Windows:
    """Lengths (in steps of ``dt``) of the forward and feedback windows of a sample."""

    forward_steps: int = 20
    feedback_steps: int = 10

    def __post_init__(self):
        for name in ("forward_steps", "feedback_steps"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        if self.feedback_steps < 2:
            raise ConfigurationError("feedback_steps must be at least 2 (emission + update)")

    @property
    def slot_steps(self):
        return self.forward_steps + self.feedback_steps


@dataclass(frozen=True)
class SleepSchedule:
    """A block of ``slots`` sleep slots after every ``every_samples`` training samples."""

    every_samples: int = 1000
    slots: int = 20

    def __post_init__(self):
        require_positive("sleep every (samples)", self.every_samples)
        require_positive("sleep slots", self.slots)


@dataclass(frozen=True)
class Timeline:
    """Per-slot arrays of one run: ``kinds`` (TRAIN/SLEEP/EVAL/IDLE) and data ``rows``."""

    kinds: np.ndarray
    rows: np.ndarray

    @property
    def n_slots(self):
        return len(self.kinds)

    def slots_of(self, kind):
        return np.flatnonzero(self.kinds == kind)


def build_timeline(train_rows, eval_rows, sleep=None):
    """Lay out one epoch: training samples (in the given order) with sleep blocks, then evaluation.

    ``train_rows``/``eval_rows`` index rows of the data ``TimedArray``. With ``sleep``, a block
    of ``sleep.slots`` SLEEP slots follows every ``sleep.every_samples`` training slots (also
    after the last, partial, group). The shape depends only on the counts, so shuffled epochs
    share one compiled binary.
    """
    kinds, rows = [], []
    train_rows = np.asarray(train_rows, dtype=np.int64)
    step = sleep.every_samples if sleep else max(len(train_rows), 1)
    for start in range(0, len(train_rows), step):
        chunk = train_rows[start:start + step]
        kinds.append(np.full(len(chunk), TRAIN))
        rows.append(chunk)
        if sleep:
            kinds.append(np.full(sleep.slots, SLEEP))
            rows.append(np.zeros(sleep.slots, dtype=np.int64))
    eval_rows = np.asarray(eval_rows, dtype=np.int64)
    kinds += [np.full(len(eval_rows), EVAL), [IDLE]]
    rows += [eval_rows, [0]]
    return Timeline(np.concatenate(kinds).astype(np.float64),
                    np.concatenate(rows).astype(np.float64))
