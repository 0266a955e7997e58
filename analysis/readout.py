"""Slot read-outs: per-slot arrays from what a run recorded.

A run presents one sample per *slot* of ``slot_steps`` time steps; slot k covers the steps
``[k · slot_steps, (k + 1) · slot_steps)`` counted from the start of the run, and within a slot
the forward window is the offsets ``[0, forward_steps)``. The engine records spikes as pairs
(neuron index, step) (``EpochRecord.spikes[group]``) and state variables as ``StateMonitor``
probes (``{"t": steps, variable: (n_indices, n_steps)}``); these functions turn them into arrays
indexed by slot, so every analysis reads slots the same way.
"""

import numpy as np


def _slot_and_offset(steps, slot_steps):
    """Slot index and offset within the slot of every step."""
    return np.divmod(np.asarray(steps), slot_steps)


def _in_window(slot, offset, n_slots, window):
    """Mask of the spikes in the first ``n_slots`` slots whose offset lies in ``window``."""
    keep = slot < n_slots
    if window is not None:
        start, stop = window
        keep &= (offset >= start) & (offset < stop)
    return keep


def slot_counts(indices, steps, n_neurons, n_slots, slot_steps, window=None):
    """Spike counts per slot and neuron, a float array of shape ``(n_slots, n_neurons)``.

    ``indices`` and ``steps`` are the recorded spikes (neuron index, time step of the run).
    ``window`` is ``(start, stop)``: only spikes at offsets ``start <= offset < stop`` within
    their slot count (``(0, forward_steps)``: the forward window); ``None`` counts the whole
    slot. Spikes of slots ``>= n_slots`` are ignored.

    Example: with ``slot_steps = 5``, spikes of neuron 1 at steps 0 and 3 and of neuron 0 at
    step 6 give ``[[0, 2], [1, 0]]`` for two slots and the whole slot, ``[[0, 1], [1, 0]]``
    with ``window=(0, 2)`` and ``[[0, 1]]`` for one slot.
    """
    slot, offset = _slot_and_offset(steps, slot_steps)
    keep = _in_window(slot, offset, n_slots, window)
    counts = np.zeros((n_slots, n_neurons))
    np.add.at(counts, (slot[keep], np.asarray(indices)[keep]), 1.0)
    return counts


def slot_spike_array(indices, steps, n_neurons, n_slots, slot_steps, window_steps):
    """The spikes of the first ``window_steps`` steps of every slot as a 0/1 float array.

    Shape ``(window_steps, n_slots, n_neurons)``: entry ``[t, k, i]`` is 1 if neuron ``i``
    spiked at offset ``t`` of slot ``k`` (the layout of the numpy reference networks' input
    spike trains). Spikes of slots ``>= n_slots`` or at offsets ``>= window_steps`` are ignored.
    """
    slot, offset = _slot_and_offset(steps, slot_steps)
    keep = _in_window(slot, offset, n_slots, (0, window_steps))
    spikes = np.zeros((window_steps, n_slots, n_neurons))
    spikes[offset[keep], slot[keep], np.asarray(indices)[keep]] = 1.0
    return spikes


def slot_end_values(probe, variable, n_slots, slot_steps):
    """A probed variable at the last step of each of the first ``n_slots`` slots.

    ``probe`` is one entry of ``EpochRecord.probes`` (``"t"``: the recorded steps, sorted;
    ``variable``: shape ``(n_indices, n_steps)``). Returns shape ``(n_slots, n_indices)``.
    """
    last = np.arange(n_slots) * slot_steps + slot_steps - 1
    return np.asarray(probe[variable])[:, np.searchsorted(probe["t"], last)].T
