"""Event input in the compiled run: N-MNIST-style binned frames, bit-packed into the data rows
(:func:`plausigrad.protocols.event_data.pack_frames`), enter every rule's input layer as spikes
that equal the frames exactly (input rate 1): in every TRAIN and EVAL slot, at the bin the
rule's ``event_input_step`` names, inside the rule's stimulus window, and nowhere else (no input
in sleep slots). Numpy runtime target (no compile) for the four rule profiles; the same check on
C++ standalone is ``slow``."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plausigrad.models.encoders import PackedEvents
from plausigrad.protocols.devices import Device
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.event_data import (N_UNITS, Binning, EventFrames, bin_events,
                                             frames_to_entries, pack_frames)
from plausigrad.protocols.recorders import Probes
from plausigrad.protocols.schedule import SleepSchedule, Windows
from plausigrad.rules.registry import make_rule

N_BINS = 12
N_BINS_FULL = 60  # the default binning of the N-MNIST files
SIZES = (N_UNITS, 6, 4)
SHARED_NMNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "nmnist"
N_TRAIN, N_EVAL = 3, 2


def synthetic_frames(n_samples, seed=0):
    """Binary frames of random events (~3 % of the cells), through the real binning."""
    rng = np.random.default_rng(seed)
    binning = Binning(bin_us=1000, n_bins=N_BINS)
    parts = []
    for _ in range(n_samples):
        n = 900
        events = np.zeros(n, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
        events["x"], events["y"] = rng.integers(0, 34, n), rng.integers(0, 34, n)
        events["t"] = np.sort(rng.integers(0, 14_000, n))  # some beyond the last bin
        events["p"] = rng.integers(0, 2, n)
        parts.append(frames_to_entries(bin_events(events, binning)))
    return EventFrames.from_entries(parts, rng.integers(0, 4, n_samples), binning)


#: rule, its parameters, windows, sleep schedule, and its stimulus: which steps of a TRAIN /
#: EVAL slot carry input, and the bin a step presents.
CASES = {
    "biograd-reconstruction": ("biograd", {"batch_size": 1}, Windows(N_BINS, 4),
                               SleepSchedule(every_samples=2, slots=2)),
    "biograd-published": ("biograd", {"profile": "published", "batch_size": 1,
                                      "soft_error_step": 4, "sleep_steps": 8},
                          Windows(N_BINS, 4), SleepSchedule(every_samples=2, slots=2)),
    "emstdp-published": ("emstdp", {"batch_size": 1}, Windows(N_BINS, N_BINS), None),
    "ssnnbp": ("ssnnbp", {}, Windows(N_BINS, 3), None),
}


def expected_steps(case, windows, kind):
    """[(step in slot, bin)] where the rule presents input, for a TRAIN or EVAL slot."""
    if case.startswith("emstdp"):  # both phases of TRAIN, the whole EVAL slot; bins per phase
        return [(s, s - windows.forward_steps * (s >= windows.forward_steps))
                for s in range(windows.slot_steps)]
    return [(s, s) for s in range(windows.forward_steps)]


def run_case(case, device, progress=None):
    rule_name, params, windows, sleep = CASES[case]
    rule = make_rule(rule_name, params)
    frames = synthetic_frames(N_TRAIN + N_EVAL)
    rows = pack_frames(frames)
    labels = frames.labels
    sim = Simulator(rule, SIZES, windows, sleep, rows, labels, N_TRAIN, N_EVAL, device=device,
                    recorders=[Probes({})], input_encoding=PackedEvents(N_UNITS, N_BINS))
    state = rule.initial_state(SIZES, np.random.default_rng(1))
    record = sim.run(state, np.array([2, 0, 1]), 3, rule.learning_rate_values(len(SIZES) - 1),
                     progress=progress)
    return frames, windows, record


def check_spikes_equal_frames(case, frames, windows, record):
    from plausigrad.models.schedule_signals import EVAL, SLEEP, TRAIN
    slot = windows.slot_steps
    i, t = record.spikes["input"]
    raster = np.zeros((len(record.kinds) * slot, N_UNITS), dtype=int)
    np.add.at(raster, (t[t < len(raster)], i[t < len(raster)]), 1)
    checked = 0
    for s, (kind, row) in enumerate(zip(record.kinds, record.rows)):
        got = raster[s * slot:(s + 1) * slot]
        if kind == SLEEP:
            assert got.sum() == 0, f"input spikes in sleep slot {s}"
            continue
        assert kind in (TRAIN, EVAL)
        expected = np.zeros_like(got)
        dense = frames.dense(row)
        for step, b in expected_steps(case, windows, kind):
            if 0 <= b < N_BINS:
                expected[step] = dense[b]
        np.testing.assert_array_equal(got, expected, err_msg=f"{case}: slot {s} (row {row})")
        checked += int(expected.sum())
    assert checked > 1000  # the frames are not empty


@pytest.mark.parametrize("case", sorted(CASES))
def test_event_input_spikes_equal_the_binned_frames(case):
    frames, windows, record = run_case(case, Device("runtime", runtime_target="numpy"))
    if CASES[case][3] is not None:  # the "no input in sleep" check has slots to look at
        from plausigrad.models.schedule_signals import SLEEP
        assert (record.kinds == SLEEP).any()
    check_spikes_equal_frames(case, frames, windows, record)


def test_packing_round_trip_and_size():
    """Every cell of the packed rows decodes (numpy, the expression's arithmetic) to the frames;
    2312 units × 60 bins pack into 2668 float64 words (21 344 bytes) per sample."""
    frames = synthetic_frames(4, seed=3)
    rows = pack_frames(frames)
    k = np.arange(N_BINS * N_UNITS)
    for s in range(4):
        word = rows[s][k // 52]
        bits = np.floor(word / 2.0 ** (k % 52)) - 2 * np.floor(word / 2.0 ** (k % 52 + 1))
        np.testing.assert_array_equal(bits.reshape(N_BINS, N_UNITS), frames.dense(s))
    full = EventFrames(np.array([0, 0]), *(np.zeros(0, np.uint16),) * 3, np.zeros(1, int),
                       Binning())
    assert pack_frames(full).nbytes == 2668 * 8


@pytest.mark.slow
def test_event_input_on_cpp_standalone(tmp_path):
    """The same equality on C++ standalone (BioGrad published: a full build); the run's progress
    reaches the caller from the binary's report, ending at all samples done."""
    case = "biograd-published"
    calls = []
    result = run_case(case, Device("cpp", build_directory=str(tmp_path)),
                      progress=lambda done, total: calls.append((done, total)))
    check_spikes_equal_frames(case, *result)
    assert calls and calls[-1] == (N_TRAIN + N_EVAL, N_TRAIN + N_EVAL), calls
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_raster_figure_shows_on_and_off_events(tmp_path, monkeypatch):
    """The raster of an event-input run draws the input's ON and OFF events in their colours
    (the points drawn are exactly the input spikes, split by polarity)."""
    import matplotlib
    matplotlib.use("Agg")
    from plausigrad.analysis import figures
    frames, windows, record = run_case("ssnnbp", Device("runtime", runtime_target="numpy"))
    drawn = {}
    save = figures._save

    def keep(fig, path):
        drawn.update({line.get_label(): line for line in fig.axes[0].get_lines()})
        save(fig, path)
    monkeypatch.setattr(figures, "_save", keep)
    figures.plot_raster(record, windows, str(tmp_path / "raster.png"), groups=["input"],
                        event_input=N_UNITS // 2)
    i, _ = record.spikes["input"]
    assert len(drawn["ON events"].get_xdata()) == int((i >= N_UNITS // 2).sum()) > 0
    assert len(drawn["OFF events"].get_xdata()) == int((i < N_UNITS // 2).sum()) > 0
    assert drawn["ON events"].get_color() == figures.POLARITY_COLOURS[1]
    assert (tmp_path / "raster.png").is_file()


# -- the trainer and the command line on N-MNIST ------------------------------------------------

#: the run's event options and the Binning they must give: the default, a chosen fixed window,
#: and the lab's tonic binning (Denoise 10 ms, 60 count bins over each recording's span)
BINNINGS = {
    "default": ({}, {}),
    "fixed-20x10ms": ({"event_bins": 20, "event_bin_ms": 10.0}, {"n_bins": 20, "bin_us": 10_000}),
    "lab-tonic-counts": ({"event_window": "recording", "event_counts": True,
                          "event_denoise_ms": 10.0},
                         {"window": "recording", "binary": False, "denoise_us": 10_000}),
}


@pytest.mark.skipif(not SHARED_NMNIST.is_dir(), reason="../shared/data/nmnist not present")
@pytest.mark.parametrize("case", sorted(BINNINGS))
def test_training_on_nmnist_runs_the_event_input(tmp_path, monkeypatch, case):
    """``train`` with ``dataset = "nmnist"``: a 2312-input network fed the packed frames (numpy
    runtime target, so nothing compiles), whose input spikes are the training files' frames, at
    the default binning, at the one the run's ``event_bins`` / ``event_bin_ms`` give, and with
    the lab's count frames (one spike per non-empty cell; its count is the graded x, which
    ``test_biograd_published`` checks against the lab port)."""
    from plausigrad.protocols.event_data import Binning
    options, fields = BINNINGS[case]
    binning = Binning(**fields)
    from plausigrad.protocols import training
    from plausigrad.protocols.datasets import load_dataset
    monkeypatch.setattr(training, "Device", lambda kind, build, threads: Device(
        kind, build, threads, runtime_target="numpy"))
    seen = {}
    from plausigrad.protocols import engine  # train() imports the Simulator from here

    class Spy(engine.Simulator):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, recorders=[Probes({})], **{k: v for k, v in kwargs.items()
                                                               if k != "recorders"})
            seen["simulator"] = self

        def run(self, *args, **kwargs):
            seen["record"] = super().run(*args, **kwargs)
            return seen["record"]
    monkeypatch.setattr(engine, "Simulator", Spy)
    config = training.RunConfig(rule="biograd", dataset="nmnist", data_dir=str(SHARED_NMNIST),
                                hidden=(8,), epochs=1, device="runtime", train_limit=3,
                                test_limit=2, forward_steps=binning.n_bins, feedback_steps=4,
                                **options,
                                rule_params={"profile": "published", "batch_size": 1,
                                             "sleep_steps": 8})
    lines = []
    history = training.train(config, str(tmp_path / "run"), log=lines.append)
    assert "2312-8-10" in lines[0] and "nmnist" in lines[0]
    assert len(history) == 1 and 0 <= history[0]["test_accuracy"] <= 1
    data = load_dataset("nmnist", data_dir=str(SHARED_NMNIST), train_limit=3, test_limit=2,
                        binning=binning)
    assert data.input_encoding.n_bins == binning.n_bins
    assert data.input_encoding.counts == (not binning.binary)
    if not binning.binary:
        assert data.input_encoding.bits > 1 and "count bins over each recording" in lines[0]
    record, sim = seen["record"], seen["simulator"]
    assert sim.layer_sizes[0] == N_UNITS and sim.input_encoding == data.input_encoding
    i, t = record.spikes["input"]
    slot = sim.windows.slot_steps
    first = record.rows[0]  # the first slot's sample: its input spikes are its frames
    frames = data.frames[0].dense(first) if first < 3 else data.frames[1].dense(first - 3)
    got = np.zeros((binning.n_bins, N_UNITS), dtype=int)
    keep = t < binning.n_bins
    got[t[keep], i[keep]] = 1
    np.testing.assert_array_equal(got, np.minimum(frames, 1))
    if not binning.binary:
        assert frames.max() > 1  # counts, not binary frames


def test_nmnist_folder_faults_are_one_line_on_the_command_line(tmp_path):
    (tmp_path / "Train" / "seven").mkdir(parents=True)
    done = subprocess.run([sys.executable, "-m", "plausigrad.protocols.cli", "train",
                           "--dataset", "nmnist", "--data-dir", str(tmp_path),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "label folder must be a digit 0-9, got 'seven'" in lines[0]


@pytest.mark.parametrize("rule_name, options, windows", [
    ("biograd", {"batch_size": 1}, Windows(N_BINS, 4)),
    ("emstdp", {"batch_size": 1}, Windows(N_BINS, N_BINS)),
    ("ssnnbp", {}, Windows(N_BINS, 3))])
def test_alignment_analysis_runs_on_event_input(rule_name, options, windows):
    """The alignment analysis on a probe set of event frames: the probe run presents the frames,
    its references re-simulate the recorded input spikes (deterministic rules: zero count mismatches against Brian2), and every
    weight layer gets an angle to backprop."""
    from plausigrad.analysis.alignment import measure_alignment
    frames = synthetic_frames(1, seed=5)  # one sample: batch 1, so the numpy target (no compile)
    rule = make_rule(rule_name, options)
    state = rule.initial_state(SIZES, np.random.default_rng(1))
    result = measure_alignment(rule, SIZES, windows, state, pack_frames(frames), frames.labels,
                               input_encoding=PackedEvents(N_UNITS, N_BINS),
                               runtime_target="numpy", details=True)
    # the probe presented the frames (bin t at step t of the forward window)
    np.testing.assert_array_equal(result["arrays"]["input_spikes"][:, 0, :],
                                  frames.dense(0)[:windows.forward_steps])
    if rule_name != "ssnnbp":
        assert result["count_mismatch"] == 0
    angles = [layer[key] for layer in result["layers"].values() for key in layer
              if "angle" in key and layer[key] is not None]
    assert angles and np.all(np.isfinite(angles))
