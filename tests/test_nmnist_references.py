"""The N-MNIST yardsticks' command (analysis/nmnist_references.py): it bins as the --event-*
options say (the same options and the same Binning as plausigrad train), the models get event
counts when the frames hold counts, and a bad option is one line with exit status 2."""

import json
from pathlib import Path

import numpy as np
import pytest

from plausigrad.analysis import nmnist_references
from plausigrad.protocols.event_data import Binning, load_nmnist_split
from plausigrad.protocols.training import RunConfig, event_binning

SHARED_NMNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "nmnist"
needs_subset = pytest.mark.skipif(not SHARED_NMNIST.is_dir(),
                                  reason="../shared/data/nmnist not present")


def test_event_binning_is_the_binning_of_the_train_command():
    options = {"event_bins": 30, "event_window": "recording", "event_counts": True,
               "event_denoise_ms": 10, "event_first_saccade": True}
    assert event_binning(**options) == Binning(n_bins=30, window="recording", binary=False,
                                               denoise_us=10_000, first_saccade=True)
    assert event_binning() == Binning()
    run = RunConfig(rule="biograd", dataset="nmnist", rule_params={"profile": "published"},
                    **options)
    assert run.binning() == event_binning(**options)


@needs_subset
def test_count_frames_reach_the_models_as_counts():
    frames = load_nmnist_split(SHARED_NMNIST, "Test", Binning(binary=False, window="recording"),
                               limit=3)
    dense = nmnist_references.dense_spikes(frames)
    assert dense.shape == (60, 3, 2312)
    for s in range(3):
        np.testing.assert_array_equal(dense[:, s], frames.dense(s))
    assert dense.max() > 1  # counts, not spikes


@needs_subset
def test_the_command_bins_as_its_options_say(tmp_path):
    out = tmp_path / "references.json"
    nmnist_references.main([
        "--data-dir", str(SHARED_NMNIST), "--hidden", "8", "--train-limit", "12",
        "--test-limit", "4", "--validation", "4", "--snn-epochs", "1", "--ann-epochs", "1",
        "--event-window", "recording", "--event-counts", "on", "--event-bins", "20",
        "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["binning"] == {"window": "recording", "bin_us": 5000, "n_bins": 20,
                                 "binary": False, "denoise_us": None, "first_saccade": False}
    assert (result["train"], result["validation"], result["test"]) == (8, 4, 4)
    assert len(result["bptt_snn"]["epochs"]) == 1 and len(result["rate_ann"]["epochs"]) == 1


@pytest.mark.parametrize("options, message", [
    (["--event-window", "recording", "--event-bin-ms", "3"], "--event-bin-ms applies to"),
    (["--event-bins", "0"], "n_bins must be a positive integer"),
    (["--event-counts", "maybe"], "--event-counts"),
])
def test_a_bad_binning_option_is_one_line_and_exit_2(tmp_path, capsys, options, message):
    with pytest.raises(SystemExit) as stop:
        nmnist_references.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "r.json"),
                                *options])
    assert stop.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert message in lines[-1]
    assert not (tmp_path / "r.json").exists()
