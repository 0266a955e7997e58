"""N-MNIST reading and binning (protocols/event_data.py): the reader against hand-written
``.bin`` bytes (including the timestamp-overflow marker), the binning against a numpy count,
clean one-line errors for bad files and folders, and the shared N-MNIST subset."""

from pathlib import Path

import numpy as np
import pytest

from plausigrad.protocols.datasets import DatasetError
from plausigrad.protocols.event_data import (N_UNITS, Binning, bin_events, frames_to_entries,
                                             list_split, load_nmnist_split, locate_nmnist,
                                             read_nmnist_file)

SHARED_NMNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "nmnist"


def encode(events):
    """The 5-byte N-MNIST encoding of (x, y, t, p) tuples; y = 240 writes an overflow marker."""
    out = bytearray()
    for x, y, t, p in events:
        out += bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def test_reader_decodes_hand_written_bytes_with_an_overflow_marker(tmp_path):
    path = tmp_path / "00001.bin"
    # the third record is an overflow marker: every later event gains 2**13 µs
    path.write_bytes(encode([(3, 4, 10, 1), (33, 0, 8191, 0), (0, 240, 0, 0), (5, 33, 7, 1),
                             (1, 2, (1 << 23) - 1, 0)]))
    events = read_nmnist_file(path)
    np.testing.assert_array_equal(events["x"], [3, 33, 5, 1])
    np.testing.assert_array_equal(events["y"], [4, 0, 33, 2])
    np.testing.assert_array_equal(events["t"], [10, 8191, 7 + 8192, (1 << 23) - 1 + 8192])
    np.testing.assert_array_equal(events["p"], [1, 0, 1, 0])


@pytest.mark.parametrize("content, message", [
    (b"", "empty N-MNIST file"),
    (encode([(1, 1, 5, 0)]) + b"\x01\x02", "7 bytes is not a whole number of 5-byte events"),
    (encode([(1, 1, 5, 0), (34, 2, 6, 1)]), "event 1 at \\(x=34, y=2\\) lies outside"),
    (encode([(1, 35, 5, 0)]), "event 0 at \\(x=1, y=35\\) lies outside"),
])
def test_bad_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message) as info:
        read_nmnist_file(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_bad_folders_are_one_line_errors(tmp_path):
    with pytest.raises(DatasetError, match="split folder not found"):
        list_split(tmp_path, "Train")
    (tmp_path / "Train" / "3").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no N-MNIST .bin files"):
        list_split(tmp_path, "Train")
    (tmp_path / "Train" / "3" / "a.bin").write_bytes(encode([(1, 1, 5, 0)]))
    assert list_split(tmp_path, "Train") == [(tmp_path / "Train" / "3" / "a.bin", 3)]
    (tmp_path / "Train" / "ten").mkdir()
    with pytest.raises(DatasetError, match="label folder must be a digit 0-9, got 'ten'"):
        list_split(tmp_path, "Train")
    with pytest.raises(DatasetError, match="no N-MNIST here"):
        locate_nmnist(tmp_path / "Train")
    assert locate_nmnist(tmp_path) == tmp_path


def _numpy_frames(events, binning):
    """Reference binning by hand: count events per (bin, polarity, y, x). The ``recording``
    window cuts the kept events' span [t_first, t_last] into n equal bins of
    (t_last − t_first) // n µs each (tonic's ``n_time_bins`` slicing)."""
    frames = np.zeros((binning.n_bins, 2, 34, 34), dtype=np.int64)
    t = events["t"]
    keep = np.ones(len(t), dtype=bool) if binning.window == "recording" else t < binning.duration_us
    if binning.first_saccade:
        keep &= t < 100_000
    t = t[keep]
    if binning.window == "recording":
        width = (t[-1] - t[0]) // binning.n_bins
        bins, t0 = (t - t[0]) // width, t[0]
        inside = bins < binning.n_bins
    else:
        bins, inside = t // binning.bin_us, np.ones(len(t), dtype=bool)
    np.add.at(frames, (bins[inside], events["p"][keep][inside], events["y"][keep][inside],
                       events["x"][keep][inside]), 1)
    return np.minimum(frames, 1) if binning.binary else frames


@pytest.mark.parametrize("binning", [
    Binning(binary=False), Binning(),
    Binning(bin_us=1000, n_bins=150, first_saccade=True, binary=False),
    Binning(window="recording", binary=False),  # the lab's tonic binning, without Denoise
    Binning(window="recording", n_bins=7, first_saccade=True)])
def test_binning_equals_a_numpy_count(tmp_path, binning):
    rng = np.random.default_rng(0)
    n = 4000
    t = np.sort(rng.integers(0, 330_000, n))  # some events beyond the 300 ms window
    # a corner of the sensor gets most events, so cells hold several; the rest anywhere
    x = np.where(rng.random(n) < 0.7, rng.integers(0, 3, n), rng.integers(0, 34, n))
    y = np.where(x < 3, rng.integers(0, 3, n), rng.integers(0, 34, n))
    events = list(zip(x, y, t, rng.integers(0, 2, n)))
    # overflow markers as the recordings have them, one per 2**13 µs (timestamps stored mod it)
    records, stamp = [], 0
    for x, y, time, p in events:
        while time >= stamp + 8192:
            records.append((0, 240, 0, 0))
            stamp += 8192
        records.append((int(x), int(y), int(time - stamp), int(p)))
    path = tmp_path / "sample.bin"
    path.write_bytes(encode(records))
    read = read_nmnist_file(path)
    np.testing.assert_array_equal(read["t"], t)
    frames = bin_events(read, binning)
    assert frames.shape == (binning.n_bins, 2, 34, 34)
    np.testing.assert_array_equal(frames, _numpy_frames(read, binning))
    if not binning.binary:
        assert frames.max() > 1  # the count case is exercised
    bins, units, counts = frames_to_entries(frames)
    dense = np.zeros((binning.n_bins, N_UNITS), dtype=np.int64)
    dense[bins, units] = counts
    np.testing.assert_array_equal(dense, frames.reshape(binning.n_bins, N_UNITS))


@pytest.mark.skipif(not SHARED_NMNIST.is_dir(), reason="../shared/data/nmnist not present")
def test_shared_subset_loads_sparse_frames_equal_to_each_files_binning():
    frames = load_nmnist_split(SHARED_NMNIST, "Test", Binning(denoise_us=10_000), limit=5)
    files = list_split(SHARED_NMNIST, "Test")[:5]
    np.testing.assert_array_equal(frames.labels, [label for _, label in files])
    for s, (path, _) in enumerate(files):
        expected = bin_events(read_nmnist_file(path), frames.binning)
        np.testing.assert_array_equal(frames.dense(s), expected.reshape(60, N_UNITS))
    per_sample = frames.nbytes / len(frames)
    assert 0 < per_sample < 60 * N_UNITS  # sparse: far below one byte per dense cell
    with pytest.raises(DatasetError, match="test limit 101 exceeds the 100 files"):
        load_nmnist_split(SHARED_NMNIST, "Test", limit=101)


@pytest.mark.skipif(not SHARED_NMNIST.is_dir(), reason="../shared/data/nmnist not present")
def test_load_dataset_nmnist_gives_packed_rows_and_the_encoding(monkeypatch):
    from plausigrad.protocols.datasets import load_dataset
    from plausigrad.protocols.event_data import pack_frames
    data = load_dataset("nmnist", data_dir=str(SHARED_NMNIST.parent), train_limit=6,
                        test_limit=3)
    assert (data.num_train, data.num_test, data.n_inputs) == (6, 3, N_UNITS)
    assert data.input_encoding.n_bins == 60 and data.train_images.shape == (6, 2668)
    train, test = data.frames
    np.testing.assert_array_equal(data.train_images, pack_frames(train))
    np.testing.assert_array_equal(data.test_labels, test.labels)
    monkeypatch.delenv("PLAUSIGRAD_DATA_DIR", raising=False)
    with pytest.raises(DatasetError, match="nmnist is not bundled and needs a data directory"):
        load_dataset("nmnist")


@pytest.mark.skipif(not SHARED_NMNIST.is_dir(), reason="../shared/data/nmnist not present")
def test_synthetic_frames_translate_real_samples_and_keep_their_event_statistics():
    """The bench's synthetic full-size N-MNIST: each sample is one source sample moved on the
    sensor, found back here by trying every shift (a numpy reference with np.roll on the dense
    frames): same bins, same polarities, same number of events per bin."""
    from plausigrad.protocols.event_data import synthetic_frames
    source = load_nmnist_split(SHARED_NMNIST, "Test", limit=8)
    synthetic = synthetic_frames(source, 30, np.random.default_rng(3), max_shift=2)
    assert len(synthetic) == 30
    shifts = set()
    for s in range(len(synthetic)):
        got = synthetic.dense(s).reshape(60, 2, 34, 34)
        matches = [(k, dx, dy) for k in range(len(source)) for dx in range(-2, 3)
                   for dy in range(-2, 3)
                   if np.array_equal(got, np.roll(source.dense(k).reshape(60, 2, 34, 34),
                                                  (dy, dx), axis=(2, 3)))]
        assert matches, f"synthetic sample {s} is no translation of a source sample"
        k, dx, dy = matches[0]
        assert synthetic.labels[s] == source.labels[k]
        shifts.add((dx, dy))
    assert len(shifts) > 5  # the shifts vary


def test_count_frames_pack_into_the_fewest_bits_and_decode_exactly():
    """Count frames pack ``count_bits`` bits per cell (the largest count 5 needs 3: 17 cells per
    word); every cell decodes, with the expression's float arithmetic ((y mod 2**b) − (y mod 1),
    y = word / 2**(b · field)), to its count. A count that does not fit is one line."""
    from plausigrad.protocols.event_data import EventFrames, count_bits, pack_frames
    rng = np.random.default_rng(4)
    binning = Binning(n_bins=5, binary=False)
    entries = []
    for _ in range(3):
        dense = rng.choice(6, size=(5, N_UNITS), p=(0.9, 0.04, 0.03, 0.01, 0.01, 0.01))
        bins, units = np.nonzero(dense)
        entries.append((bins.astype(np.uint16), units.astype(np.uint16),
                        dense[bins, units].astype(np.uint16)))
    frames = EventFrames.from_entries(entries, [0, 1, 2], binning)
    assert count_bits(frames) == 3
    rows = pack_frames(frames)
    assert rows.shape == (3, -(-5 * N_UNITS // 17))
    k = np.arange(5 * N_UNITS)
    for s in range(3):
        y = rows[s][k // 17] / 2.0 ** (3 * (k % 17))
        np.testing.assert_array_equal((y % 8 - y % 1).reshape(5, N_UNITS), frames.dense(s))
    with pytest.raises(DatasetError, match="an event count of 5 does not fit in 2 bit"):
        pack_frames(frames, bits=2)


@pytest.mark.parametrize("options, message", [
    ({"rule": "ssnnbp", "event_counts": True}, "rule ssnnbp takes every input event as one spike"),
    ({"rule": "biograd", "event_counts": True}, "rule biograd takes every input event"),
    ({"event_window": "recording", "event_bin_ms": 5.0},
     "--event-bin-ms applies to --event-window fixed"),
    ({"event_window": "sliding"}, "binning window must be one of fixed, recording"),
    ({"dataset": "mnist", "event_counts": True}, "--event-counts applies to event data"),
])
def test_event_options_are_checked_before_any_work(options, message):
    """Count frames reach only a rule with graded input (BioGrad published); the recording
    window has no bin width; event options on an image dataset are refused."""
    from plausigrad.models.errors import ConfigurationError
    from plausigrad.protocols.training import RunConfig
    with pytest.raises(ConfigurationError, match=message):
        RunConfig(**{"dataset": "nmnist", **options})
    published = RunConfig(rule="biograd", dataset="nmnist", event_counts=True,
                          event_window="recording", rule_params={"profile": "published"})
    assert published.binning() == Binning(window="recording", binary=False)
