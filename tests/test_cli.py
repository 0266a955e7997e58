"""The command line: impossible arguments and bad data fail with ONE line and exit status 2."""

import gzip
import os
import shutil
import subprocess
import sys

import pytest

from pathlib import Path

CLI = [sys.executable, "-m", "plausigrad.protocols.cli"]
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture
def mnist_copy(tmp_path):
    """A writable copy of the full MNIST files (their published MD5s hold until a test breaks one)."""
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"full MNIST not found at {SHARED_MNIST}")
    return Path(shutil.copytree(SHARED_MNIST, tmp_path / "data"))


def run_cli(*args, env=None):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def assert_one_line_error(done, fragment):
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("args, fragment", [
    (["--device", "gpu9"], "unknown device 'gpu9'"),
    (["--rule", "hebbian"], "unknown rule 'hebbian'"),
    (["--forward-steps", "0"], "forward_steps must be a positive integer"),
    (["--feedback-steps", "-3"], "feedback_steps must be a positive integer"),
    (["--lr", "-0.1"], "learning rate must be positive"),
    (["--hidden", "0"], "hidden layer size must be positive"),
    (["--epochs", "0"], "epochs must be positive"),
    (["--feedback", "telepathy"], "unknown feedback mode"),
    (["--eligibility", "magic"], "unknown eligibility form"),
    (["--batch-size", "0"], "batch size must be a positive integer"),
    (["--hidden", "abc"], "expected comma-separated integers"),
    (["--sleep-decay", "1.5"], "must be <= 1"),
    (["--sleep-lr", "0"], "sleep learning rate must be positive"),
])
def test_impossible_arguments_fail_cleanly(tmp_path, args, fragment):
    assert_one_line_error(run_cli("train", "--out", str(tmp_path / "run"), *args), fragment)


def test_missing_data_directory_fails_cleanly(tmp_path):
    done = run_cli("train", "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "none"))
    assert_one_line_error(done, "none")


def test_corrupt_dataset_file_fails_cleanly(tmp_path, mnist_copy):
    data = mnist_copy
    (data / "train-labels-idx1-ubyte.gz").write_bytes(b"this is not gzip")
    done = run_cli("train", "--out", str(tmp_path / "run"), "--data-dir", str(data))
    assert_one_line_error(done, "train-labels-idx1-ubyte.gz")


def test_truncated_dataset_file_fails_cleanly(tmp_path, mnist_copy):
    data = mnist_copy
    path = data / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    done = run_cli("train", "--out", str(tmp_path / "run"), "--data-dir", str(data))
    assert_one_line_error(done, "t10k-images-idx3-ubyte.gz")


def test_wrong_magic_number_fails_cleanly(tmp_path, mnist_copy):
    data = mnist_copy
    path = data / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[2:4] = b"\x09\x09"
    path.write_bytes(gzip.compress(bytes(raw)))
    done = run_cli("train", "--out", str(tmp_path / "run"), "--data-dir", str(data))
    assert_one_line_error(done, "t10k-labels-idx1-ubyte.gz")


def test_resume_without_checkpoint_fails_cleanly(tmp_path):
    done = run_cli("train", "--out", str(tmp_path / "run"), "--resume")
    assert_one_line_error(done, "no checkpoint")


def _checkpoint_of(out, argv, finished_epochs):
    """A checkpoint as ``plausigrad train argv`` would leave it after ``finished_epochs``."""
    import numpy as np
    from plausigrad.protocols.checkpoint import save_checkpoint
    from plausigrad.protocols.cli import _config_from_args, parse_args
    config = _config_from_args(parse_args(["train", "--out", str(out), *argv]))
    save_checkpoint(str(out), finished_epochs, {"W1": np.zeros((2, 2))}, config.to_json(),
                    {"kind": "sgd"}, np.random.default_rng(0))
    return config.to_json()


@pytest.mark.parametrize("argv", [["--epochs", "3", "--lr", "0.5"],   # another learning rate
                                  ["--epochs", "1"]])                  # fewer epochs than done
def test_resume_of_another_configuration_fails_cleanly(tmp_path, argv):
    _checkpoint_of(tmp_path / "run", ["--epochs", "3"], finished_epochs=2)
    done = run_cli("train", "--out", str(tmp_path / "run"), "--resume", *argv)
    assert_one_line_error(done, "written by a different configuration")


def test_resume_may_only_grow_the_epochs():
    from plausigrad.protocols.training import _same_run
    saved = {"rule": "emstdp", "epochs": 3, "lr_decay": 0.7}
    assert _same_run(saved, dict(saved), 3)
    assert _same_run(saved, {**saved, "epochs": 6}, 3)      # train a finished run further
    assert not _same_run(saved, {**saved, "epochs": 2}, 3)  # below the epochs already done
    assert not _same_run(saved, {**saved, "lr_decay": 0.5}, 3)
    assert not _same_run(saved, {"rule": "emstdp", "epochs": 3}, 3)


def test_eval_of_missing_checkpoint_fails_cleanly(tmp_path):
    assert_one_line_error(run_cli("eval", str(tmp_path)), "no checkpoint")


def test_figures_for_a_rule_without_a_dynamics_figure_fails_before_training(tmp_path,
                                                                           monkeypatch):
    from plausigrad.analysis import emstdp_alignment
    from plausigrad.analysis.gallery import make_figures
    from plausigrad.models.errors import ConfigurationError
    monkeypatch.setattr(emstdp_alignment.EMSTDPAlignment, "dynamics_spec", lambda *a: None)
    with pytest.raises(ConfigurationError, match="does not define its dynamics figure"):
        make_figures("emstdp", str(tmp_path / "figures"), device="runtime")
    assert not (tmp_path / "figures").exists()


@pytest.mark.parametrize("module", ["plausigrad.protocols.cli", "plausigrad.analysis.figures"])
def test_importing_the_cli_does_not_import_brian2(module):
    """The top-level parser (and ``plot-alignment``, which needs no simulator) answers without
    the seconds Brian2 takes to import, and without the INFO lines Brian2 may print then (a
    Cython cache over 1 GB: "Cache size for target 'cython'"), which would break the one-line
    error."""
    code = f"import sys, {module}; sys.exit(1 if 'brian2' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_brian2_cache_notice_does_not_reach_the_console(capsys):
    """With a Cython cache over 1 GB, Brian2 logs an INFO notice at import ("Cache size for
    target 'cython'"); the CLI drops that one record, so errors stay one line, and keeps others."""
    import logging
    from plausigrad.protocols.cli import quiet_brian2_cache_notice
    quiet_brian2_cache_notice()
    seen = []
    handler = logging.Handler()
    handler.emit = seen.append
    brian_logger = logging.getLogger("brian2.brian2")
    brian_logger.addHandler(handler)
    try:
        brian_logger.warning("Cache size for target 'cython': 1061 MB.")
        brian_logger.warning("another notice")
    finally:
        brian_logger.removeHandler(handler)
    assert [record.getMessage() for record in seen] == ["another notice"]
