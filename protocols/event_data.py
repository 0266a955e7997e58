"""Event data: N-MNIST read in its original layout with tonic, binned into spike frames.

N-MNIST (Orchard et al. 2015) records each MNIST digit with an ATIS event camera moved in three
saccades (~100 ms each, ~300 ms in all); an event is (x, y, t in µs, polarity) on a 34 × 34
sensor with ON and OFF channels. The original release stores one file per sample::

    <root>/Train/<label>/<id>.bin      <root>/Test/<label>/<id>.bin

Each ``.bin`` holds 5-byte events (x, y, then polarity in bit 7 and a 23-bit timestamp); an
event with y = 240 is a timestamp-overflow marker that adds 2**13 µs to every later event. The
bytes are decoded by tonic (``tonic.io.read_mnist_file`` with ``tonic.datasets.NMNIST.dtype``),
after this module has checked the file's structure (:func:`read_nmnist_file`); tonic's dataset
class is not used for reading because it downloads unless the full zip files are present, which
a subset such as ``../shared/data/nmnist`` (1,000 train / 100 test files) is not.

Binning (:class:`Binning`) uses tonic's transforms: optional ``Denoise`` (drop events with no
neighbour within ``denoise_us``), optional first-saccade selection (events with t < 100 ms), and
``ToFrame``, so every sample has exactly ``n_bins`` frames of shape (2, 34, 34) (polarity, y, x).
The BioGrad lab code bins N-MNIST in two ways, and both are available:

* the default, ``Binning()``: 60 **binary** bins of 5 ms from t = 0 (300 ms), a fixed time
  window [CODE: SNN_Models/nmnist_dataset.py (``NMNISTDataset``: events on a 1 ms grid of
  ``timestep · dt`` = 60 · 5 ms, the maximum over each 5 ms bin) and the 2312-[500,100]-10
  script's ``snn_ts = 60``, ``dt = 5``, j0sh162/FederatedLearning-SNN];
* ``Binning(window="recording", binary=False, denoise_us=10_000)``: tonic ``Denoise`` of 10 ms,
  then 60 **count** bins over each recording's own span (``ToFrame(n_time_bins=60)``)
  [CODE: biograd/run_biograd_training.py, same repository]. Count input reaches only a rule with
  graded input (``LearningRule.accepts_event_counts``: BioGrad's published profile, whose lab
  neuron integrates W · x with x the frame value).

Frames are kept sparse (:class:`EventFrames`): per sample the (bin, input unit, count) of its
non-empty cells, the input unit being ``channel · 34 · 34 + y · 34 + x`` (2312 units).

Every problem (a truncated or malformed file, an empty folder, a label folder that is not a
digit, a missing split) is a one-line :class:`~plausigrad.protocols.datasets.DatasetError`.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plausigrad.models.encoders import PACKED_BITS
from plausigrad.protocols.datasets import DatasetError

#: Sensor size as tonic names it: (width x, height y, polarities).
SENSOR_SIZE = (34, 34, 2)
#: Input units of one sample: polarity × y × x.
N_UNITS = SENSOR_SIZE[0] * SENSOR_SIZE[1] * SENSOR_SIZE[2]
#: Bytes per event in a ``.bin`` file.
EVENT_BYTES = 5
#: y value of a timestamp-overflow marker.
OVERFLOW_Y = 240
#: End of the first saccade (µs): N-MNIST's three saccades take ~100 ms each.
FIRST_SACCADE_US = 100_000
#: The two splits of the original layout.
SPLITS = ("Train", "Test")


#: How the bins of a sample are laid in time (:class:`Binning` ``window``).
WINDOWS = ("fixed", "recording")


@dataclass(frozen=True)
class Binning:
    """How events become frames.

    ``window``: ``fixed`` — ``n_bins`` bins of ``bin_us`` µs from t = 0 (events later than
    ``n_bins · bin_us`` are dropped; tonic ``ToFrame(time_window=...)``); ``recording`` — each
    recording's own span, first to last event, cut into ``n_bins`` equal bins (tonic
    ``ToFrame(n_time_bins=...)``, as the BioGrad lab's N-MNIST script bins; ``bin_us`` unused).
    ``binary``: a cell is 1 if it holds any event, else its event count. Optional ``Denoise``
    (``denoise_us``, tonic's filter time; None: off) and ``first_saccade`` (only events with
    t < 100 ms)."""

    bin_us: int = 5000
    n_bins: int = 60
    binary: bool = True
    denoise_us: int | None = None
    first_saccade: bool = False
    window: str = "fixed"

    def __post_init__(self):
        for name in ("bin_us", "n_bins"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise DatasetError(f"binning {name} must be a positive integer, got {value!r}")
        if self.denoise_us is not None and (
                isinstance(self.denoise_us, bool) or not isinstance(self.denoise_us, (int, np.integer))
                or self.denoise_us < 1):
            raise DatasetError(f"binning denoise_us must be a positive integer or None, "
                               f"got {self.denoise_us!r}")
        for name in ("binary", "first_saccade"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise DatasetError(f"binning {name} must be true or false, "
                                   f"got {getattr(self, name)!r}")
        if self.window not in WINDOWS:
            raise DatasetError(f"binning window must be one of {', '.join(WINDOWS)}, "
                               f"got {self.window!r}")

    @property
    def duration_us(self):
        """The time the bins cover (µs) in the ``fixed`` window (None in ``recording``: it is
        each recording's own)."""
        return self.bin_us * self.n_bins if self.window == "fixed" else None

    def describe(self):
        """One phrase for logs: e.g. ``60 binary bins of 5 ms``."""
        kind = "binary " if self.binary else "count "
        span = (f"of {self.bin_us / 1000:g} ms" if self.window == "fixed"
                else "over each recording's span")
        extras = [f"denoise {self.denoise_us / 1000:g} ms"] if self.denoise_us else []
        extras += ["first saccade"] if self.first_saccade else []
        return f"{self.n_bins} {kind}bins {span}" + (f" ({', '.join(extras)})" if extras else "")


def read_nmnist_file(path):
    """The events of one N-MNIST ``.bin`` file as tonic's structured array (fields x, y, t, p;
    overflow markers applied and removed). The structure is checked first: a size that is not
    a whole number of 5-byte events, an empty file, or a coordinate outside the 34 × 34 sensor
    is a :class:`DatasetError` naming the file."""
    import tonic

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DatasetError(f"{path}: cannot read N-MNIST file ({err.strerror or err})") from None
    if not raw:
        raise DatasetError(f"{path}: empty N-MNIST file (no events)")
    if len(raw) % EVENT_BYTES:
        raise DatasetError(f"{path}: truncated or malformed N-MNIST file: {len(raw)} bytes is "
                           f"not a whole number of {EVENT_BYTES}-byte events")
    data = np.frombuffer(raw, dtype=np.uint8).reshape(-1, EVENT_BYTES)
    x, y = data[:, 0], data[:, 1]
    events = y != OVERFLOW_Y
    bad = events & ((x >= SENSOR_SIZE[0]) | (y >= SENSOR_SIZE[1]))
    if bad.any():
        first = int(np.argmax(bad))
        raise DatasetError(f"{path}: malformed N-MNIST file: event {first} at (x={x[first]}, "
                           f"y={y[first]}) lies outside the 34 x 34 sensor")
    # decode the bytes already read (the file is not read twice)
    return tonic.io.read_mnist_file(io.BytesIO(raw), dtype=tonic.datasets.NMNIST.dtype,
                                    is_stream=True)


def bin_events(events, binning=Binning()):
    """Frames (n_bins, 2, 34, 34) of one sample's events (tonic's ``ToFrame`` after the optional
    ``Denoise`` and first-saccade selection): event counts per cell, or 0/1 if ``binning.binary``."""
    import tonic.transforms as transforms

    events = np.asarray(events)
    if binning.denoise_us is not None and len(events):
        events = transforms.Denoise(filter_time=binning.denoise_us)(events)
    keep = np.ones(len(events), dtype=bool)
    if binning.window == "fixed":
        keep &= events["t"] < binning.duration_us
    if binning.first_saccade:
        keep &= events["t"] < FIRST_SACCADE_US
    events = events[keep]
    frames = np.zeros((binning.n_bins, SENSOR_SIZE[2], SENSOR_SIZE[1], SENSOR_SIZE[0]),
                      dtype=np.int16)
    if binning.window == "recording" and len(events) and (
            events["t"][-1] - events["t"][0]) // binning.n_bins == 0:
        # tonic would make empty zero-length bins; a recording shorter than one µs per bin has
        # nothing to bin by time (not in N-MNIST, whose recordings last ~300 ms)
        raise DatasetError(f"a recording of {events['t'][-1] - events['t'][0]} µs is too short "
                           f"for {binning.n_bins} bins over its span")
    if len(events):
        if binning.window == "fixed":
            to_frame = transforms.ToFrame(sensor_size=SENSOR_SIZE, time_window=binning.bin_us,
                                          start_time=0, end_time=binning.duration_us)
        else:
            to_frame = transforms.ToFrame(sensor_size=SENSOR_SIZE, n_time_bins=binning.n_bins)
        frames = to_frame(events)
        if frames.shape[0] != binning.n_bins:  # tonic's slicing contract, checked, not assumed
            raise RuntimeError(f"tonic ToFrame gave {frames.shape[0]} frames, expected "
                               f"{binning.n_bins}")
    return np.minimum(frames, 1) if binning.binary else frames


@dataclass(frozen=True)
class EventFrames:
    """Binned samples, sparse: sample s owns entries ``offsets[s]:offsets[s + 1]`` of ``bins``
    (uint16), ``units`` (uint16, 0..2311) and ``counts`` (uint16); ``labels`` (n,). Memory:
    6 bytes per non-empty cell plus 8 per sample (:meth:`nbytes`)."""

    offsets: np.ndarray
    bins: np.ndarray
    units: np.ndarray
    counts: np.ndarray
    labels: np.ndarray
    binning: Binning

    @classmethod
    def from_entries(cls, entries, labels, binning):
        """Stack per-sample (bins, units, counts) (:func:`frames_to_entries`) in sample order."""
        offsets = np.concatenate([[0], np.cumsum([len(e[0]) for e in entries])]).astype(np.int64)
        stack = [np.concatenate([e[k] for e in entries]) for k in range(3)]
        return cls(offsets, *stack, np.asarray(labels, dtype=np.int64), binning)

    def __len__(self):
        return len(self.labels)

    @property
    def nbytes(self):
        return sum(a.nbytes for a in (self.offsets, self.bins, self.units, self.counts,
                                      self.labels))

    def dense(self, sample):
        """The frames of one sample, (n_bins, 2312) — for tests and figures, not for training."""
        out = np.zeros((self.binning.n_bins, N_UNITS), dtype=np.int16)
        part = slice(self.offsets[sample], self.offsets[sample + 1])
        out[self.bins[part], self.units[part]] = self.counts[part]
        return out


def frames_to_entries(frames):
    """(bins, units, counts) of the non-empty cells of (n_bins, 2, 34, 34) frames, in (bin, unit)
    order; unit = channel · 1156 + y · 34 + x."""
    flat = np.asarray(frames).reshape(frames.shape[0], N_UNITS)
    bins, units = np.nonzero(flat)
    return bins.astype(np.uint16), units.astype(np.uint16), flat[bins, units].astype(np.uint16)


def list_split(root, split):
    """[(path, label)] of ``<root>/<split>/<digit>/*.bin``, sorted by file name (then label):
    N-MNIST numbers its files by the MNIST sample they record, so this is the dataset's own
    order, with the labels interleaved (a limit takes the first N samples, not one digit). A
    missing split folder, a label folder that is not a single digit, or a split without any
    ``.bin`` file is a :class:`DatasetError`."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise DatasetError(f"{folder}: N-MNIST split folder not found (expected "
                           f"{Path(root)}/{split}/<label>/<id>.bin)")
    files = []
    for entry in sorted(folder.iterdir()):
        if not entry.is_dir():
            continue
        if not (len(entry.name) == 1 and entry.name.isdigit()):
            raise DatasetError(f"{entry}: N-MNIST label folder must be a digit 0-9, got "
                               f"{entry.name!r}")
        files += [(path, int(entry.name)) for path in entry.glob("*.bin")]
    if not files:
        raise DatasetError(f"{folder}: no N-MNIST .bin files in its label folders")
    return sorted(files, key=lambda item: (item[0].name, item[1]))


def load_nmnist_split(root, split, binning=Binning(), limit=None):
    """Read and bin the first ``limit`` files (in :func:`list_split` order) of a split."""
    files = list_split(root, split)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
            raise DatasetError(f"{split.lower()} limit must be a positive integer, got {limit!r}")
        if limit > len(files):
            raise DatasetError(f"{split.lower()} limit {limit} exceeds the {len(files)} files in "
                               f"{Path(root) / split}")
        files = files[:limit]
    return EventFrames.from_entries(
        [frames_to_entries(bin_events(read_nmnist_file(path), binning)) for path, _ in files],
        [label for _, label in files], binning)


def locate_nmnist(data_dir):
    """The N-MNIST root under ``data_dir``: the directory itself when it holds ``Train/``, else
    its ``nmnist/`` sub-directory."""
    base = Path(os.path.expanduser(str(data_dir)))
    for candidate in (base, base / "nmnist"):
        if (candidate / SPLITS[0]).is_dir() or (candidate / SPLITS[1]).is_dir():
            return candidate
    if not base.is_dir():
        raise DatasetError(f"{base}: data directory does not exist")
    raise DatasetError(f"{base}: no N-MNIST here (expected Train/ and Test/ folders of "
                       f"<label>/<id>.bin files, in it or in its nmnist/ sub-directory)")


def count_bits(frames):
    """Bits per cell the packed layout of ``frames`` needs: 1 for binary frames, else enough
    for the largest count in them (a count c needs ceil(log2(c + 1)) bits)."""
    if frames.binning.binary:
        return 1
    largest = int(frames.counts.max()) if len(frames.counts) else 1
    return max(1, largest.bit_length())


def pack_frames(frames, samples=None, bits=None):
    """Packed rows (n, words) float64 of :class:`EventFrames`, the layout
    :func:`plausigrad.models.encoders.packed_event_expression` reads: cell
    k = bin · 2312 + unit is field k mod m of word k // m, m = 52 // ``bits`` cells per word;
    binary frames take one bit per cell, count frames ``bits`` (default :func:`count_bits`, which
    a dataset computes over train and test together). ``samples``: which rows (default all).
    A count that does not fit in ``bits`` is a :class:`DatasetError`."""
    from plausigrad.models.encoders import cells_per_word

    bits = count_bits(frames) if bits is None else bits
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= PACKED_BITS:
        raise DatasetError(f"bits per packed cell must be an integer in 1..{PACKED_BITS}, got {bits!r}")
    samples = np.arange(len(frames)) if samples is None else np.asarray(samples)
    per_word = cells_per_word(bits)
    words = -(-frames.binning.n_bins * N_UNITS // per_word)
    packed = np.zeros((len(samples), words), dtype=np.float64)
    if len(frames.counts) and int(frames.counts.max()) >= 2 ** bits:
        raise DatasetError(f"an event count of {int(frames.counts.max())} does not fit in "
                           f"{bits} bit(s) per packed cell")
    powers = 2.0 ** (bits * np.arange(per_word))
    for row, s in enumerate(samples):
        part = slice(frames.offsets[s], frames.offsets[s + 1])
        cells = frames.bins[part].astype(np.int64) * N_UNITS + frames.units[part]
        np.add.at(packed[row], cells // per_word, frames.counts[part] * powers[cells % per_word])
    return packed


def synthetic_frames(source, n_samples, rng, max_shift=3):
    """``n_samples`` synthetic samples with the event statistics of ``source``: each is a
    source sample, drawn uniformly with replacement, translated by a random (dx, dy) in
    [−max_shift, max_shift]² with wrap-around on the 34 × 34 sensor (polarity and bins kept).
    A translation maps cells one to one, so the number of events per sample and per bin, the
    ON/OFF balance and the timing are the source's exactly; only the positions move. Labels are
    the source's. For benchmarks at full dataset size (60 000 + 10 000) from a subset; not data
    to learn from."""
    width, height = SENSOR_SIZE[0], SENSOR_SIZE[1]
    picks = rng.integers(len(source), size=n_samples)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n_samples, 2))
    channel, rest = np.divmod(source.units.astype(np.int32), width * height)
    y, x = np.divmod(rest, width)
    entries = []
    for s, (dx, dy) in zip(picks, shifts):
        part = slice(source.offsets[s], source.offsets[s + 1])
        moved = (channel[part] * (width * height) + (y[part] + dy) % height * width
                 + (x[part] + dx) % width)
        entries.append((source.bins[part], moved.astype(np.uint16), source.counts[part]))
    return EventFrames.from_entries(entries, source.labels[picks], source.binning)


def load_event_dataset(data_dir, binning=Binning(), train_limit=None, test_limit=None):
    """N-MNIST as a :class:`~plausigrad.protocols.datasets.Dataset` for the engine: rows are the
    packed frames (:func:`pack_frames`; count frames with the bits the largest count of train and
    test needs), ``input_encoding`` a :class:`~plausigrad.models.encoders.PackedEvents` of 2312
    units, ``binning.n_bins`` bins and those bits, ``frames`` the sparse (train, test) frames."""
    from plausigrad.models.encoders import PackedEvents
    from plausigrad.protocols.datasets import Dataset

    root = locate_nmnist(data_dir)
    train = load_nmnist_split(root, SPLITS[0], binning, train_limit)
    test = load_nmnist_split(root, SPLITS[1], binning, test_limit)
    bits = max(count_bits(train), count_bits(test))
    cells = (len(train.units) + len(test.units)) / max(len(train) + len(test), 1)
    encoding = PackedEvents(N_UNITS, binning.n_bins, bits=bits, counts=not binning.binary)
    layout = "" if binning.binary else f", {bits} bits per cell"
    return Dataset(
        name="nmnist", train_images=pack_frames(train, bits=bits), train_labels=train.labels,
        test_images=pack_frames(test, bits=bits), test_labels=test.labels,
        source=(f"nmnist at {root} ({len(train)} train / {len(test)} test samples; "
                f"{binning.describe()}, {cells:.0f} non-empty cells per sample{layout}, "
                f"{encoding.words * 8} B per packed row)"),
        input_encoding=encoding, frames=(train, test))


def download_nmnist(dest_dir):
    """Fetch N-MNIST with tonic's downloader into ``dest_dir`` (``tonic.datasets.NMNIST``
    downloads and extracts both splits); returns the N-MNIST root. Offline or a failed download:
    one line."""
    import tonic

    dest = Path(os.path.expanduser(str(dest_dir)))
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            tonic.datasets.NMNIST(save_to=str(dest), train=train)
    except Exception as err:  # network, disk, archive errors of any library: one line
        raise DatasetError(" ".join(f"could not download nmnist into {dest}: "
                                    f"{type(err).__name__}: {err}".split())) from None
    return [locate_nmnist(dest / "NMNIST")]
