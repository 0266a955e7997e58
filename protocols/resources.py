"""Sizing a run against the machine before anything is built.

A configuration whose arrays cannot fit into memory, whose epoch would simulate for days, or
that asks for more threads than the machine has cores fails here, with one
:class:`~plausigrad.models.errors.ConfigurationError` line, instead of as a MemoryError after the
data are loaded, a traceback from numpy, or a binary that runs until it is killed.

The memory estimate is a lower bound read off the shape of the run:

* the learned state (:meth:`~plausigrad.rules.base.LearningRule.state_layout`, float64), held
  at least three times (the Python state, the simulator's arrays, the state read back after the
  run), plus two int32 indices per synapse (Brian2's synapse arrays);
* per slot of an epoch (training, sleep, evaluation): the timeline (kind and data row, float64,
  in Python and in the simulator) and the recorded output spike counts;
* the data rows (float32 as loaded, float64 in the simulator).

It is compared with the machine's physical memory (``os.sysconf``).
"""

import math
import os

from plausigrad.models.errors import ConfigurationError

#: neuron-steps in one epoch beyond which a run is refused (hours at an optimistic 1e8
#: neuron-steps/s; full-MNIST epochs of the published profiles are below 1e11)
MAX_NEURON_STEPS = 1e12
#: steps of one slot (forward + feedback window) beyond which a run is refused: 100 s of model
#: time per sample (the published windows are at most a few hundred steps)
MAX_SLOT_STEPS = 100_000
_FLOAT, _INDEX = 8, 4
_GIB = 2 ** 30


def physical_memory():
    """Bytes of physical memory of this machine (None where ``os.sysconf`` cannot say)."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def epoch_slots(n_train, n_eval, sleep=None):
    """Slots of one epoch's timeline (:func:`plausigrad.protocols.schedule.build_timeline`):
    training samples, a sleep block after every ``sleep.every_samples`` of them, evaluation and
    the trailing idle slot."""
    blocks = math.ceil(n_train / sleep.every_samples) if sleep else 0
    return n_train + blocks * (sleep.slots if sleep else 0) + n_eval + 1


def estimate_memory(rule, layer_sizes, n_slots, n_rows):
    """Lower bound of the bytes a run of ``rule`` on ``layer_sizes`` needs (module docstring)."""
    state = sum(math.prod(shape) for shape in rule.state_layout(layer_sizes).values())
    synapses = sum(a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    per_slot = 4 * _FLOAT + layer_sizes[-1] * _FLOAT
    return (3 * state * _FLOAT + 2 * synapses * _INDEX + n_slots * per_slot
            + n_rows * layer_sizes[0] * (4 + _FLOAT))


def _gib(n_bytes):
    return f"{n_bytes / _GIB:.1f} GiB"


def check_resources(rule, layer_sizes, windows, n_slots, n_rows, *, threads=0, memory=None,
                    cores=None):
    """Raise :class:`ConfigurationError` when a run cannot fit this machine: its estimated
    memory exceeds the physical memory (``memory``, default :func:`physical_memory`), a slot
    exceeds :data:`MAX_SLOT_STEPS` or an epoch :data:`MAX_NEURON_STEPS`, or ``threads`` exceeds
    the CPU cores (``cores``, default ``os.cpu_count()``)."""
    cores = cores if cores is not None else os.cpu_count()
    if threads and cores and threads > cores:
        raise ConfigurationError(f"--threads {threads} exceeds the {cores} CPU cores of this "
                                 f"machine; use at most {cores}")
    memory = memory if memory is not None else physical_memory()
    needed = estimate_memory(rule, layer_sizes, n_slots, n_rows)
    if memory and needed > memory:
        shape = "-".join(map(str, layer_sizes))
        raise ConfigurationError(
            f"network {shape} with {n_slots} slots per epoch needs at least {_gib(needed)} of "
            f"memory, this machine has {_gib(memory)}; reduce --hidden, --sleep-slots or the "
            "data (--train-limit, --test-limit)")
    if windows.slot_steps > MAX_SLOT_STEPS:
        raise ConfigurationError(
            f"a slot of {windows.slot_steps} steps (forward + feedback window) is beyond the "
            f"{MAX_SLOT_STEPS} steps this package runs per sample; reduce --forward-steps or "
            "--feedback-steps")
    neuron_steps = float(n_slots) * windows.slot_steps * sum(layer_sizes)
    if neuron_steps > MAX_NEURON_STEPS:
        raise ConfigurationError(
            f"an epoch of {n_slots} slots of {windows.slot_steps} steps on "
            f"{sum(layer_sizes)} neurons is {neuron_steps:.1e} neuron-steps, beyond the "
            f"{MAX_NEURON_STEPS:.0e} this package runs (hours to days per epoch); reduce "
            "--forward-steps, --feedback-steps, --sleep-slots or the data")
