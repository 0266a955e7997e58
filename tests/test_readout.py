"""Slot read-outs (plausigrad.analysis.readout) on hand-made recordings."""

import numpy as np

from plausigrad.analysis.readout import slot_counts, slot_end_values, slot_spike_array

# slot_steps = 5: slot 0 is steps 0-4, slot 1 steps 5-9, slot 2 steps 10-14
SLOT_STEPS = 5
INDICES = np.array([1, 1, 0, 2, 1, 2, 0])
STEPS = np.array([0, 3, 6, 6, 9, 10, 1])


def test_counts_of_the_whole_slot():
    expected = np.array([[1, 2, 0],    # slot 0: neuron 1 at 0 and 3, neuron 0 at 1
                         [1, 1, 1],    # slot 1: neurons 0 and 2 at 6, neuron 1 at 9
                         [0, 0, 1]])   # slot 2: neuron 2 at 10
    counts = slot_counts(INDICES, STEPS, 3, 3, SLOT_STEPS)
    assert counts.dtype == np.float64
    np.testing.assert_array_equal(counts, expected)


def test_counts_of_a_window_and_of_the_first_slots_only():
    np.testing.assert_array_equal(slot_counts(INDICES, STEPS, 3, 3, SLOT_STEPS, window=(0, 2)),
                                  [[1, 1, 0], [1, 0, 1], [0, 0, 1]])
    np.testing.assert_array_equal(slot_counts(INDICES, STEPS, 3, 3, SLOT_STEPS, window=(2, 5)),
                                  [[0, 1, 0], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(slot_counts(INDICES, STEPS, 3, 2, SLOT_STEPS),
                                  [[1, 2, 0], [1, 1, 1]])  # slot 2's spike is dropped


def test_docstring_example():
    indices, steps = np.array([1, 1, 0]), np.array([0, 3, 6])
    np.testing.assert_array_equal(slot_counts(indices, steps, 2, 2, 5), [[0, 2], [1, 0]])
    np.testing.assert_array_equal(slot_counts(indices, steps, 2, 2, 5, window=(0, 2)),
                                  [[0, 1], [1, 0]])
    np.testing.assert_array_equal(slot_counts(indices, steps, 2, 1, 5), [[0, 2]])


def test_spike_array_holds_the_window_of_every_slot():
    spikes = slot_spike_array(INDICES, STEPS, 3, 2, SLOT_STEPS, 2)
    assert spikes.shape == (2, 2, 3)
    expected = np.zeros((2, 2, 3))
    expected[0, 0, 1] = expected[1, 0, 0] = 1   # steps 0 and 1
    expected[1, 1, 0] = expected[1, 1, 2] = 1   # step 6 = offset 1 of slot 1
    np.testing.assert_array_equal(spikes, expected)
    np.testing.assert_array_equal(spikes.sum(axis=0),
                                  slot_counts(INDICES, STEPS, 3, 2, SLOT_STEPS, window=(0, 2)))


def test_values_at_slot_ends():
    t = np.arange(0, 15)
    probe = {"t": t, "u": np.vstack([t * 1.0, -t * 2.0])}  # two probed neurons
    np.testing.assert_array_equal(slot_end_values(probe, "u", 3, SLOT_STEPS),
                                  [[4, -8], [9, -18], [14, -28]])
