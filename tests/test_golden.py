"""Golden runs: each rule's tiny two-epoch training reproduces its recorded state bit for bit.

The recordings in tests/golden/ were made with ``tools/record_golden.py`` before the structural
refactor of issue 14 (rule contract, registry, builder); any change of behaviour must show up
here. Re-record only for an intended change, in its own commit with a CHANGELOG line.
"""

import json
import os

import numpy as np
import pytest

from golden_configs import GOLDEN, TIMING_KEYS, golden_run

GOLDEN_DIR = os.path.join(os.path.dirname(__file__), "golden")


def _check(rule, device, tmp_path):
    state, history = golden_run(rule, device, str(tmp_path))
    stem = os.path.join(GOLDEN_DIR, f"{rule}-{device}")
    with np.load(stem + ".npz") as recorded:
        assert sorted(state) == sorted(recorded.files)
        for name in recorded.files:
            np.testing.assert_array_equal(state[name], recorded[name], err_msg=name)
    with open(stem + ".json") as handle:
        recorded_metrics = json.load(handle)
    metrics = json.loads(json.dumps(
        [{k: v for k, v in entry.items() if k not in TIMING_KEYS} for entry in history]))
    assert metrics == recorded_metrics


@pytest.mark.parametrize("rule", sorted(GOLDEN))
def test_golden_runtime(rule, tmp_path):
    _check(rule, "runtime", tmp_path)


@pytest.mark.slow
@pytest.mark.standalone
@pytest.mark.parametrize("rule", sorted(GOLDEN))
def test_golden_cpp(rule, tmp_path):
    _check(rule, "cpp", tmp_path)


@pytest.mark.parametrize("rule", sorted(GOLDEN))
def test_golden_recordings_of_runtime_and_cpp_agree(rule):
    """Runtime (Cython) and C++ standalone recorded the same weights and metrics bit for bit;
    with the two tests above, the live runtime and C++ runs of every rule agree exactly."""
    with np.load(os.path.join(GOLDEN_DIR, f"{rule}-runtime.npz")) as runtime, \
            np.load(os.path.join(GOLDEN_DIR, f"{rule}-cpp.npz")) as cpp:
        assert runtime.files == cpp.files
        for name in runtime.files:
            np.testing.assert_array_equal(runtime[name], cpp[name], err_msg=name)
    metrics = []
    for device in ("runtime", "cpp"):
        with open(os.path.join(GOLDEN_DIR, f"{rule}-{device}.json")) as handle:
            metrics.append(json.load(handle))
    assert metrics[0] == metrics[1]
