"""Faults a user can cause (issue 17): each is ONE line on stderr, exit status 2, before any
work, and nothing that was there before is lost.

Most cases run the CLI in this process on a tiny SSNN-BP network on the runtime device and the
bundled subset; they fail before anything is built. The checkpoint cases start from two module
fixtures (one epoch, and two epochs straight) and check that a refused resume leaves the run
directory byte for byte as it was, and that a resume that may go on is bit-identical to the
uninterrupted run.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from plausigrad.protocols.checkpoint import (LATEST, CheckpointError, json_text, load_checkpoint,
                                             read_checkpoint, save_checkpoint, write_json)
from plausigrad.protocols.cli import main

TINY = ["ssnnbp", "--device", "runtime", "--hidden", "6", "--train-limit", "4",
        "--test-limit", "2", "--forward-steps", "3"]


def run_main(capsys, *argv):
    """(exit status, stderr lines) of ``plausigrad argv`` run in this process."""
    code = main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


def assert_one_line(capsys, argv, fragment):
    code, lines = run_main(capsys, *argv)
    assert code == 2, (code, lines)
    assert len(lines) == 1, lines
    assert fragment in lines[0], lines[0]
    return lines[0]


def snapshot(directory):
    """{relative path: bytes or link target} of everything in ``directory``."""
    files = {}
    for root, dirs, names in os.walk(directory):
        for name in dirs + names:
            path = os.path.join(root, name)
            key = os.path.relpath(path, directory)
            if os.path.islink(path):
                files[key] = ("link", os.readlink(path))
            elif os.path.isfile(path) and name != ".plausigrad.lock":
                files[key] = open(path, "rb").read()
    return files


def same_state(a, b):
    _, first = load_checkpoint(a)
    _, second = load_checkpoint(b)
    assert sorted(first) == sorted(second)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


# -- values checked before anything is built ---------------------------------------------------

@pytest.fixture
def no_build(monkeypatch):
    """Fail at once (instead of simulating for hours) if a case gets as far as building."""
    from plausigrad.protocols import engine

    def built(*args, **kwargs):
        raise AssertionError("the run got as far as building its network")

    monkeypatch.setattr(engine.Simulator, "__init__", built)


@pytest.mark.parametrize("args, fragment", [
    (["--lr", "inf"], "learning rate must be a finite number, got inf"),
    (["--lr", "nan"], "learning rate must be a finite number, got nan"),
    (["--bias-lr", "inf"], "bias learning rate must be a finite number"),
    (["--lr-decay", "inf"], "lr decay must be a finite number"),
    (["--lr-decay", "1e300", "--epochs", "3"], "overflows the learning rates"),
    (["--seed", "-1"], "seed must be >= 0, got -1"),
    (["--hidden", ""], "needs at least one hidden layer size"),
])
def test_bad_values_of_the_run(tmp_path, capsys, args, fragment):
    assert_one_line(capsys, ["train", *TINY, *args, "--out", str(tmp_path / "run")], fragment)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, fragment", [
    (["biograd", "--sleep-lr", "inf"], "sleep learning rate must be a finite number"),
    (["biograd", "--feedback-init-scale", "inf"], "feedback init scale must be a finite"),
    (["emstdp", "--hidden-threshold", "inf"], "hidden threshold must be a finite number"),
    (["emstdp", "--error-scale", "inf"], "error scale must be a finite number"),
])
def test_non_finite_rule_parameters(tmp_path, capsys, args, fragment):
    assert_one_line(capsys, ["train", *args, "--out", str(tmp_path / "run")], fragment)


def test_non_finite_value_in_an_experiment_file(tmp_path, capsys):
    path = tmp_path / "exp.toml"
    path.write_text('rule = "ssnnbp"\nlr_decay = inf\n[rule_params]\ngradient_scale = nan\n')
    assert_one_line(capsys, ["train", "--config", str(path), "--out", str(tmp_path / "run")],
                    "must be")


@pytest.mark.parametrize("args, fragment", [
    (["--hidden", "10000000"], "GiB of memory, this machine has"),
    (["--forward-steps", "1000000000"], "a slot of 1000000003 steps"),
    (["--hidden", "5000", "--forward-steps", "99000", "--train-limit", "2000",
      "--test-limit", "300"],
     "neuron-steps"),
    (["--threads", "1000000"], "exceeds the"),
    (["--batch-size", "8"], "batch size 8 exceeds the 4 training samples"),
])
def test_runs_that_cannot_fit_are_refused_before_building(tmp_path, capsys, no_build, args,
                                                          fragment):
    assert_one_line(capsys, ["train", *TINY, *args, "--out", str(tmp_path / "run")], fragment)
    assert not (tmp_path / "run" / "config.toml").exists()


def test_huge_sleep_blocks_are_refused(tmp_path, capsys, no_build):
    assert_one_line(capsys, ["train", "biograd", "--feedback", "sleep", "--hidden", "6",
                             "--batch-size", "1", "--train-limit", "4", "--test-limit", "2",
                             "--sleep-slots", "1000000000", "--out", str(tmp_path / "run")],
                    "GiB of memory")


def test_probe_set_larger_than_the_test_set_is_refused_before_training(tmp_path, capsys,
                                                                       no_build):
    assert_one_line(capsys, ["train", *TINY, "--track-alignment", "2", "--probe-size",
                             "1000000", "--out", str(tmp_path / "run")],
                    "probe size 1000000 exceeds the")
    assert not (tmp_path / "run").exists()


# -- the output directory ----------------------------------------------------------------------

def test_an_existing_file_as_out(tmp_path, capsys):
    (tmp_path / "file").write_text("keep me")
    assert_one_line(capsys, ["train", *TINY, "--out", str(tmp_path / "file")],
                    "exists and is not a directory")
    assert (tmp_path / "file").read_text() == "keep me"


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody can write into, root included (chmod, else chattr +i)."""
    path = tmp_path / "ro"
    path.mkdir()
    path.chmod(0o555)
    immutable = False
    try:
        (path / "probe").touch()
    except OSError:
        pass
    else:  # root ignores the mode bits
        (path / "probe").unlink()
        immutable = subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
        if not immutable:
            pytest.skip("cannot make a read-only directory here")
    yield path
    if immutable:
        subprocess.run(["chattr", "-i", str(path)])
    path.chmod(0o755)


def test_resume_into_a_missing_out_creates_nothing(tmp_path, capsys):
    assert_one_line(capsys, ["train", *TINY, "--resume", "--out", str(tmp_path / "none")],
                    "no checkpoint in")
    assert not (tmp_path / "none").exists()


def test_a_read_only_out(read_only_dir, capsys):
    assert_one_line(capsys, ["train", *TINY, "--out", str(read_only_dir / "run")],
                    "cannot write into --out")


def test_two_runs_never_share_an_out(tmp_path, capsys):
    from plausigrad.protocols.rundir import open_run_directory
    with open_run_directory(str(tmp_path / "run")):
        line = assert_one_line(capsys, ["train", *TINY, "--out", str(tmp_path / "run")],
                               "is in use by another plausigrad run")
    assert f"pid {os.getpid()}" in line
    assert not (tmp_path / "run" / "config.toml").exists()


def test_a_failed_write_leaves_the_previous_file(tmp_path, monkeypatch):
    from plausigrad.protocols import rundir
    path = tmp_path / "metrics.json"
    write_json(str(path), {"epochs": [1]})

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rundir.os, "fsync", disk_full)
    with pytest.raises(rundir.RunDirectoryError, match="No space left on device"):
        write_json(str(path), {"epochs": [1, 2]})
    assert json.loads(path.read_text()) == {"epochs": [1]}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_non_finite_values_never_reach_json(tmp_path):
    from plausigrad.protocols.checkpoint import json_safe
    with pytest.raises(CheckpointError, match=r"epochs.0.loss = inf"):
        json_text({"epochs": [{"loss": float("inf")}]})
    assert json.loads(json_text(json_safe({"a": [float("nan"), 1.0]}))) == {"a": [None, 1.0]}


# -- checkpoints -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"one": a run after 1 epoch, "straight": the same run trained 2 epochs straight}."""
    root = tmp_path_factory.mktemp("runs")
    for name, epochs in (("one", "1"), ("straight", "2")):
        assert main(["train", *TINY, "--epochs", epochs, "--out", str(root / name)]) == 0
    return root


def copy_run(runs, name, dest):
    return shutil.copytree(runs / name, dest, symlinks=True)


def to_format_1(run):
    """Turn a run directory into the layout before manifests (plain files, no checkpoint-*/)."""
    for name in ("checkpoint.npz", "checkpoint.json", "metrics.json"):
        real = os.path.realpath(run / name)
        os.remove(run / name)
        shutil.copy(real, run / name)
    for name in os.listdir(run):
        if name.startswith("checkpoint-"):
            path = run / name
            os.remove(path) if os.path.islink(path) else shutil.rmtree(path)
    meta = json.loads((run / "checkpoint.json").read_text())
    del meta["format"]
    (run / "checkpoint.json").write_text(json.dumps(meta))
    return run


def resume(capsys, run, epochs="2"):
    return run_main(capsys, "train", *TINY, "--epochs", epochs, "--out", str(run), "--resume")


def test_the_checkpoint_is_one_unit(runs):
    run = runs / "straight"
    assert os.readlink(run / LATEST) == "checkpoint-0002"
    assert sorted(n for n in os.listdir(run) if n.startswith("checkpoint-")) == [
        "checkpoint-0002", LATEST]  # the epoch-1 checkpoint went once epoch 2 was complete
    manifest = json.loads((run / LATEST / "manifest.json").read_text())
    assert manifest["format"] == 2 and manifest["rule"] == "ssnnbp"
    assert manifest["arrays"]["W1"] == [6, 784] and manifest["layer_sizes"] == [784, 6, 10]
    meta, _, metrics = read_checkpoint(run)
    assert meta["epoch"] == 2 and [e["epoch"] for e in metrics["epochs"]] == [1, 2]


def test_resume_is_bit_identical_to_the_uninterrupted_run(runs, tmp_path, capsys):
    run = copy_run(runs, "one", tmp_path / "run")
    code, _ = resume(capsys, run)
    assert code == 0
    same_state(run, runs / "straight")
    timing = ("run_seconds", "epoch_seconds", "samples_per_second", "compile_seconds")
    resumed, straight = (
        [{k: v for k, v in e.items() if k not in timing}
         for e in json.loads((path / "metrics.json").read_text())["epochs"]]
        for path in (run, runs / "straight"))
    assert resumed == straight


def test_a_write_killed_before_the_swap_leaves_the_previous_checkpoint(runs, tmp_path, capsys):
    """A kill after the new checkpoint's directory was renamed (or while it was written) but
    before checkpoint-latest moved: the previous checkpoint is in force and resumes exactly."""
    run = copy_run(runs, "one", tmp_path / "run")
    shutil.copytree(runs / "straight" / "checkpoint-0002", run / "checkpoint-0002")
    shutil.copytree(runs / "straight" / "checkpoint-0002", run / ".checkpoint-x1y2.tmp")
    (run / ".checkpoint-x1y2.tmp" / "manifest.json").unlink()
    assert load_checkpoint(run)[0]["epoch"] == 1
    assert resume(capsys, run)[0] == 0
    same_state(run, runs / "straight")
    assert not (run / ".checkpoint-x1y2.tmp").exists()


KILL_SCRIPT = """
import os, sys
import numpy as np
from plausigrad.protocols import checkpoint
run, source, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
meta, state, metrics = checkpoint.read_checkpoint(source)
calls = [0]

def killing(function):
    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os._exit(9)  # as abrupt as kill -9: no cleanup, no flush
        return function(*args, **kwargs)
    return wrapped

for name in ("write_synced", "fsync_directory", "_replace_with_link"):
    setattr(checkpoint, name, killing(getattr(checkpoint, name)))
checkpoint.shutil.rmtree = killing(checkpoint.shutil.rmtree)
rng = np.random.default_rng()
rng.bit_generator.state = meta["rng"]
checkpoint.save_checkpoint(run, meta["epoch"], state, meta["config"], meta["optimizer"], rng,
                           metrics=metrics, layer_sizes=(784, 6, 10))
"""


def test_a_kill_at_any_point_of_the_checkpoint_write_leaves_one_whole_checkpoint(runs,
                                                                                 tmp_path):
    """Kill (os._exit) the writer of epoch 2's checkpoint before each file write, sync, rename,
    link swap and removal in turn: the run directory then holds epoch 1's checkpoint or epoch
    2's, whole, never a mix."""
    finished, point = False, 0
    while not finished:
        point += 1
        run = copy_run(runs, "one", tmp_path / f"kill{point}")
        done = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(run),
                               str(runs / "straight"), str(point)], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode in (0, 9), done.stderr
        finished = done.returncode == 0
        epoch = load_checkpoint(run)[0]["epoch"]
        same_state(run, runs / ("one" if epoch == 1 else "straight"))
        metrics = json.loads((run / "metrics.json").read_text())["epochs"]
        assert len(metrics) == epoch
    assert point >= 10, point  # kill points tried (the last one let the write finish)
    assert epoch == 2


def test_a_full_disk_during_the_checkpoint_write_loses_nothing(runs, tmp_path, monkeypatch):
    from plausigrad.protocols import checkpoint
    run = copy_run(runs, "one", tmp_path / "run")
    before = snapshot(run)
    meta, state = load_checkpoint(run)

    def disk_full(handle, **arrays):
        handle.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.np, "savez", disk_full)
    with pytest.raises(CheckpointError, match="No space left on device.*previous checkpoint"):
        save_checkpoint(str(run), 2, state, meta["config"], {}, np.random.default_rng(0),
                        metrics={"epochs": []})
    assert snapshot(run) == before


def test_a_diverged_epoch_is_not_checkpointed(runs, tmp_path):
    run = copy_run(runs, "one", tmp_path / "run")
    before = snapshot(run)
    meta, state = load_checkpoint(run)
    state["W1"][0, 0] = np.nan
    with pytest.raises(CheckpointError, match="non-finite values in W1"):
        save_checkpoint(str(run), 2, state, meta["config"], {}, np.random.default_rng(0))
    assert snapshot(run) == before


def test_an_old_format_checkpoint_loads_and_resumes(runs, tmp_path, capsys):
    run = to_format_1(copy_run(runs, "one", tmp_path / "run"))
    assert resume(capsys, run)[0] == 0
    same_state(run, runs / "straight")
    assert os.path.islink(run / "checkpoint.npz")  # written in the current format from now on


def _arrays(path):
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def _mixed_epochs(run, runs):
    """The issue's reproduction: epoch 2's arrays beside epoch 1's json and metrics."""
    shutil.copy(runs / "straight" / "checkpoint.npz", os.path.realpath(run / "checkpoint.npz"))


def _flip_a_bit(path):
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x10
    open(path, "wb").write(bytes(data))


def _edit_meta(run, change):
    path = run / "checkpoint.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def _drop_w2(run):
    arrays = _arrays(run / "checkpoint.npz")
    del arrays["W2"]
    np.savez(run / "checkpoint.npz", **arrays)


def _reshape_w1(run):
    arrays = _arrays(run / "checkpoint.npz")
    arrays["W1"] = arrays["W1"][:, :100]
    np.savez(run / "checkpoint.npz", **arrays)


def _add_b1_feedback(run):
    arrays = _arrays(run / "checkpoint.npz")
    arrays["B1"] = np.zeros((6, 10))
    np.savez(run / "checkpoint.npz", **arrays)


CORRUPT_CURRENT = {  # format 2: every change is caught by the manifest
    "mixed epochs": (_mixed_epochs, "checkpoint.npz does not match its manifest"),
    "bit flip": (lambda run, runs: _flip_a_bit(os.path.realpath(run / "checkpoint.npz")),
                 "checkpoint.npz does not match its manifest"),
    "metrics edited": (lambda run, runs: open(os.path.realpath(run / "metrics.json"), "w")
                       .write("{"), "metrics.json does not match its manifest"),
    "manifest corrupt": (lambda run, runs: (run / LATEST / "manifest.json").write_text("[]"),
                         "is not a checkpoint manifest"),
    "dangling latest": (lambda run, runs: shutil.rmtree(run / "checkpoint-0001"),
                        "points to the missing checkpoint-0001"),
}

CORRUPT_OLD = {  # format 1 (no manifest): the structure of each file is checked
    "truncated npz": (lambda run: open(run / "checkpoint.npz", "r+b").truncate(500),
                      "is not a readable array archive"),
    "bit-flipped npz": (lambda run: _flip_a_bit(run / "checkpoint.npz"),
                        "is not a readable array archive"),
    "empty npz": (lambda run: open(run / "checkpoint.npz", "w").close(),
                  "is not a readable array archive"),
    "random bytes npz": (lambda run: (run / "checkpoint.npz").write_bytes(os.urandom(300)),
                         "is not a readable array archive"),
    "json {}": (lambda run: (run / "checkpoint.json").write_text("{}"), "has no valid 'epoch'"),
    "json []": (lambda run: (run / "checkpoint.json").write_text("[]"), "holds list"),
    "json truncated": (lambda run: (run / "checkpoint.json").write_text('{"epoch": 1, "con'),
                       "is not readable JSON"),
    "corrupt metrics": (lambda run: (run / "metrics.json").write_text("\x00\x01"),
                        "metrics.json is not readable JSON"),
    "metrics of fewer epochs": (lambda run: (run / "metrics.json").write_text('{"epochs": []}'),
                                "metrics.json holds 0 epochs"),
    "missing W2": (_drop_w2, "has no array W2"),
    "wrong-shaped W1": (_reshape_w1, "W1 has shape (6, 100), ssnnbp 784-6-10 needs (6, 784)"),
    "another rule's arrays": (_add_b1_feedback, "has array B1, which ssnnbp 784-6-10 does not"),
    "unknown config key": (lambda run: _edit_meta(run, lambda m: m["config"].update(x=1)),
                           "different configuration"),
    "bad generator state": (lambda run: _edit_meta(run, lambda m: m.update(rng={"a": 1})),
                            "generator state is not usable"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_CURRENT))
def test_a_corrupt_checkpoint_is_refused_and_left_as_it_is(runs, tmp_path, capsys, case):
    corrupt, fragment = CORRUPT_CURRENT[case]
    run = copy_run(runs, "one", tmp_path / "run")
    corrupt(run, runs)
    before = snapshot(run)
    code, lines = resume(capsys, run)
    assert code == 2 and len(lines) == 1 and fragment in lines[0], (code, lines)
    assert snapshot(run) == before


@pytest.mark.parametrize("case", sorted(CORRUPT_OLD))
def test_a_corrupt_old_format_checkpoint_is_refused_and_left_as_it_is(runs, tmp_path, capsys,
                                                                       case):
    corrupt, fragment = CORRUPT_OLD[case]
    run = to_format_1(copy_run(runs, "one", tmp_path / "run"))
    corrupt(run)
    before = snapshot(run)
    code, lines = resume(capsys, run)
    assert code == 2 and len(lines) == 1 and fragment in lines[0], (code, lines)
    assert snapshot(run) == before


def test_an_unreadable_checkpoint_file_is_one_line(runs, tmp_path, capsys):
    run = copy_run(runs, "one", tmp_path / "run")
    os.remove(os.path.realpath(run / "checkpoint.npz"))
    os.mkdir(os.path.realpath(run / "checkpoint.npz"))  # exists, cannot be read as a file
    assert_one_line(capsys, ["eval", str(run)], "checkpoint.npz is missing")


def test_eval_of_another_rules_configuration_is_refused(runs, tmp_path, capsys):
    """An SSNN-BP npz beside a BioGrad checkpoint.json: refused before anything is built."""
    run = to_format_1(copy_run(runs, "one", tmp_path / "run"))
    _edit_meta(run, lambda m: m.update(config={**m["config"], "rule": "biograd",
                                                "rule_params": {"feedback": "fa"}}))
    assert_one_line(capsys, ["eval", str(run)], "has no array B1")


def test_eval_of_an_unknown_config_key_is_refused(runs, tmp_path, capsys):
    run = to_format_1(copy_run(runs, "one", tmp_path / "run"))
    _edit_meta(run, lambda m: m["config"].update(colour="blue"))
    assert_one_line(capsys, ["eval", str(run)], "unknown key 'colour'")


@pytest.mark.parametrize("argv, fragment", [
    (["--probe-size", "1000000"], "probe size 1000000 exceeds the"),
    (["--out", "{run}/align.json"], "unknown key 'colour'"),
])
def test_align_of_a_bad_request_is_refused(runs, tmp_path, capsys, argv, fragment):
    run = to_format_1(copy_run(runs, "one", tmp_path / "run"))
    if "--out" in argv:
        _edit_meta(run, lambda m: m["config"].update(colour="blue"))
    assert_one_line(capsys, ["align", str(run), *[a.format(run=run) for a in argv]], fragment)


def test_a_fresh_run_into_a_directory_with_a_checkpoint_is_refused(runs, tmp_path, capsys):
    run = copy_run(runs, "one", tmp_path / "run")
    before = snapshot(run)
    assert_one_line(capsys, ["train", *TINY, "--out", str(run)], "already holds a checkpoint")
    assert snapshot(run) == before


def sigint_default():
    """``preexec_fn`` of a command a test sends SIGINT to: the default disposition, whatever
    pytest inherited (started as a background job of a script, it ignores SIGINT, and so would
    every command it starts: the command keeps an ignored SIGINT ignored, by design)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_epoch_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, signum,
                                                                        code):
    """SIGINT (to the Python process only: Brian2's "graceful stop" used to swallow it, or end
    the epoch early and checkpoint it as a whole one) and SIGTERM stop the run in one line; the
    checkpoint of the last finished epoch is whole."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "plausigrad.protocols.cli", "train", *TINY,
                             "--train-limit", "2000", "--epochs", "50", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_default)
    for line in proc.stdout:  # wait for the first finished epoch
        if line.startswith("epoch 1:"):
            break
    time.sleep(1.5)  # into the simulation of epoch 2 (a few seconds)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, (proc.returncode, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "use --resume" in lines[0], stderr
    meta, _, metrics = read_checkpoint(out)
    assert 1 <= meta["epoch"] < 50 and len(metrics["epochs"]) == meta["epoch"]


# -- arrays and values given to a compiled binary ----------------------------------------------

def test_arrays_are_checked_against_the_network_before_a_run():
    from plausigrad.models.errors import ConfigurationError
    from plausigrad.protocols.engine import Simulator
    from plausigrad.protocols.schedule import Windows
    from plausigrad.rules.registry import make_rule
    rule = make_rule("ssnnbp")
    sizes = (8, 4, 10)
    state = rule.initial_state(sizes, np.random.default_rng(0))
    sim = Simulator(rule, sizes, Windows(3, 3), None, np.zeros((3, 8)), np.zeros(3), 2, 1,
                    device="cpp")  # nothing is generated before the checks
    rates = rule.learning_rate_values(2)
    with pytest.raises(ConfigurationError, match=r"W1 has shape \(4, 7\)"):
        sim.run({**state, "W1": np.zeros((4, 7))}, np.arange(2), 1, rates)
    with pytest.raises(ConfigurationError, match="has no array b2"):
        sim.run({k: v for k, v in state.items() if k != "b2"}, np.arange(2), 1, rates)
    with pytest.raises(ConfigurationError, match="learning rate of W1 must be a finite number"):
        sim.run(state, np.arange(2), 1, {**rates, "W1": float("inf")})
    assert not sim.compiled


def test_a_complaint_of_the_binary_names_the_variable():
    from plausigrad.protocols.devices import binary_complaint
    names = {"inf": "the learning rate of W1", "init_synapses_w_": "W1"}
    line = binary_complaint("Error reading 'inf': file size -1 does not match expected size 8\n",
                            names)
    assert line.startswith("the compiled binary could not read the value given for the "
                           "learning rate of W1: Error reading 'inf'")
    line = binary_complaint("Error reading 'static_arrays/init_synapses_w_ab12.dat': file size "
                            "80 does not match expected size 96\nmore\n", names)
    assert "given for W1" in line and "(and 1 more lines)" in line and "\n" not in line
    assert binary_complaint("", names) is None


@pytest.mark.slow
@pytest.mark.standalone
def test_a_standalone_read_error_fails_the_run(tmp_path, monkeypatch):
    """A value the compiled binary cannot read (here: a weight vector of the wrong length, past
    every check) fails the run with one line naming the variable, not a silent run on the
    compile-time weights. The build directory is relative (the binary runs inside it)."""
    monkeypatch.chdir(tmp_path)
    from plausigrad.protocols.devices import Device, DeviceError
    from plausigrad.protocols.engine import Simulator
    from plausigrad.protocols.schedule import Windows
    from plausigrad.rules.registry import make_rule
    rule = make_rule("ssnnbp")
    sizes = (8, 4, 10)
    rng = np.random.default_rng(0)
    sim = Simulator(rule, sizes, Windows(3, 3), None, rng.uniform(0, 1, (3, 8)), np.zeros(3), 2,
                    1, device=Device("cpp", "build"))
    sim.compile()
    view = sim._state_views()["W1"]
    with pytest.raises(DeviceError, match="could not read the value given for W1: Error reading"):
        sim.device.run_standalone({view: np.zeros(5)}, labels={view: "W1"})
    record = sim.run(rule.initial_state(sizes, rng), np.arange(2), 1, rule.learning_rate_values(2))
    assert record.output_counts.shape[0] == 3  # the build still runs cleanly


def test_the_cli_prints_one_line_end_to_end(tmp_path):
    done = subprocess.run([sys.executable, "-m", "plausigrad.protocols.cli", "train", *TINY,
                           "--lr", "inf", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- processes that outlive their command: the binary, make ------------------------------------

def _processes():
    """{pid: (exe, cwd)} of the running (not zombie) processes that may be inspected."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                if handle.read().rpartition(")")[2].split()[0] == "Z":
                    continue
            found[int(name)] = (os.readlink(f"/proc/{name}/exe"), os.readlink(f"/proc/{name}/cwd"))
        except OSError:
            continue
    return found


def binaries(root):
    """Pids of compiled ``main`` binaries of the build directories under ``root``."""
    root = os.path.realpath(root)
    return [pid for pid, (exe, _) in _processes().items()
            if exe.startswith(root + os.sep) and os.path.basename(exe) == "main"]


def compilers(root, python_pid):
    """Pids of make and the compilers it runs in a build directory under ``root`` (not the
    command's own Python process, which enters the directory while it builds)."""
    root = os.path.realpath(root)
    return [pid for pid, (exe, cwd) in _processes().items()
            if pid != python_pid and (cwd + os.sep).startswith(root + os.sep)
            and os.path.basename(exe) != "main"]


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")


SHIM_PARENT = """
import subprocess, sys, time
from plausigrad.protocols.devices import guarded_command
child = subprocess.Popen(guarded_command(["sleep", "60"]))
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_guarded_child_dies_with_its_parent():
    """guarded_command: the parent-death signal reaches the command it becomes (exec: same pid),
    also when the parent is SIGKILLed (no handler runs); an unguarded child outlives it."""
    parent = subprocess.Popen([sys.executable, "-c", SHIM_PARENT], stdout=subprocess.PIPE,
                              text=True)
    child = int(parent.stdout.readline())
    wait_for(lambda: _processes().get(child, ("",))[0].endswith("/sleep"), 10,
             "the shim became sleep")
    parent.kill()
    parent.wait()
    wait_for(lambda: child not in _processes(), 5, "the guarded child is gone")


def test_ctrl_c_while_the_command_loads_is_one_line(tmp_path):
    """SIGINT while Brian2 and the rule are imported or the data loaded (the first seconds of a
    command; each delay lands somewhere else): one line, exit 130, never a traceback."""
    for delay in (0.6, 1.2, 2.0):  # after the ~0.1 s the interpreter and the cli module take
        # a fresh --out each time (os.devnull + "-never" was created where /dev is writable,
        # and the next delay was refused for its checkpoint)
        # the console command's entry (protocols/__main__.py): handlers before the CLI's imports
        proc = subprocess.Popen([sys.executable, "-m", "plausigrad.protocols", "train", *TINY,
                                 "--out", str(tmp_path / f"run-{delay}")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=sigint_default)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        lines = stderr.strip().splitlines()
        assert proc.returncode == 130 and len(lines) == 1, (delay, proc.returncode, stderr)
        assert lines[0].startswith("plausigrad: interrupted"), lines


class _DropsASignal:
    """Sends ``signum`` to this process from its ``__del__``: the handler's exception is raised
    there and dropped by Python ("Exception ignored in ..."), as in Brian2's weakref callbacks."""

    def __init__(self, signum):
        self.signum = signum

    def __del__(self):
        os.kill(os.getpid(), self.signum)  # the handler runs before os.kill returns


@pytest.fixture
def sigint_handled():
    """SIGINT handled in this process for the test (Python's default handler), even where
    pytest was started with it ignored; the disposition it had is restored afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_handled")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("signum, code, line", [
    (signal.SIGINT, 130, "plausigrad: interrupted (the last finished epoch is checkpointed"),
    (signal.SIGTERM, 143, "plausigrad: terminated (the last finished epoch is checkpointed")])
def test_a_signal_dropped_in_a_callback_still_ends_the_command(monkeypatch, capsys, signum,
                                                              code, line):
    """The exception of a signal that lands in a ``__del__`` is lost; the signal is not: the
    next safe point raises it again, and the command ends in its one line."""
    import argparse
    from plausigrad.protocols import cli, interrupts
    went_on = []

    def command(args):
        _DropsASignal(signum)  # deleted at once: the exception is dropped
        went_on.append(interrupts.pending())
        interrupts.check()  # a safe point
        went_on.append("past the safe point")

    monkeypatch.setattr(cli, "parse_args", lambda argv: argparse.Namespace(func=command))
    previous = signal.getsignal(signum)
    assert cli.main(["train"]) == code
    assert went_on == [interrupts.Terminated if code == 143 else interrupts.Interrupted]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line), err
    assert interrupts.pending() is None and signal.getsignal(signum) is previous


@pytest.mark.usefixtures("sigint_handled")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_no_safe_point_saw_still_ends_the_command_as_interrupted(monkeypatch, capsys):
    import argparse
    from plausigrad.protocols import cli
    monkeypatch.setattr(cli, "parse_args", lambda argv: argparse.Namespace(
        func=lambda args: _DropsASignal(signal.SIGINT)))
    assert cli.main(["train"]) == 130
    assert capsys.readouterr().err.startswith("plausigrad: interrupted")


def test_an_ignored_sigint_stays_ignored(tmp_path):
    """A command started with SIGINT ignored (a background job of a shell script) ignores it:
    no traceback (Brian2 used to call SIG_IGN as a function), the run goes on; SIGTERM still
    ends it in one line, exit 143."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "plausigrad.protocols.cli", "train", *TINY,
                             "--train-limit", "2000", "--epochs", "50", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    for line in proc.stdout:  # Brian2 is imported and the first epoch done
        if line.startswith("epoch 1:"):
            break
    for _ in range(3):
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None  # still training
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    lines = stderr.strip().splitlines()
    assert proc.returncode == 143 and len(lines) == 1, (proc.returncode, stderr)
    assert lines[0].startswith("plausigrad: terminated"), lines


CPP = ["ssnnbp", "--device", "cpp", "--hidden", "6", "--train-limit", "1000", "--test-limit", "2",
       "--forward-steps", "300"]  # one build for every case below; an epoch's binary runs ~3 s


def command(*argv):
    return [sys.executable, "-m", "plausigrad.protocols.cli", "train", *CPP, *argv]


@pytest.fixture(scope="module")
def cpp_runs(tmp_path_factory):
    """A C++ build shared by the cases below, reached through two interrupted compiles:
    Ctrl-C on the terminal (SIGINT to the process group) and a SIGKILL of plausigrad alone
    while make runs. Each must end make and the compilers, leave the build marked incomplete
    and the next run rebuild from clean. Then {"one": 1 epoch, "straight": 2 epochs} as
    module fixture ``runs``, and the environment that reuses the build."""
    from plausigrad.protocols.devices import INCOMPLETE
    root = tmp_path_factory.mktemp("cpp")
    builds = root / "builds"
    env = {**os.environ, "PLAUSIGRAD_BUILD_DIR": str(builds), "PYTHONHASHSEED": "0"}
    for how in ("ctrl-c", "sigkill"):
        proc = subprocess.Popen(command("--epochs", "1", "--out", str(root / "one")), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, cwd=root, preexec_fn=sigint_default)
        wait_for(lambda: compilers(builds, proc.pid), 120, "make started")
        time.sleep(2)  # into the compile
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
            lines = stderr.strip().splitlines()
            assert proc.returncode == 130 and len(lines) == 1, (proc.returncode, stderr)
            assert "interrupted during the compile" in lines[0], lines
        else:
            proc.kill()
            proc.wait()
        wait_for(lambda: not compilers(builds, proc.pid), 30, f"make and g++ gone ({how})")
        (build,) = builds.iterdir()
        assert (build / INCOMPLETE).exists(), how
    done = subprocess.run(command("--epochs", "1", "--out", str(root / "one")), env=env,
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr
    assert not (build / INCOMPLETE).exists()
    assert "rm " in (build / "make.log").read_text()  # make clean ran first
    done = subprocess.run(command("--epochs", "2", "--out", str(root / "straight")), env=env,
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr
    return {"root": root, "builds": builds, "env": env, "one": root / "one",
            "straight": root / "straight"}


@pytest.mark.slow
@pytest.mark.standalone
def test_the_binary_dies_with_its_command(cpp_runs, tmp_path):
    """SIGKILL of plausigrad (no handler can run: the parent-death signal does it), SIGINT and
    SIGTERM while the compiled binary runs: the binary is gone within seconds, never left
    running with PPID 1; SIGINT and SIGTERM are one line, exit 130 / 143."""
    for signum, code in ((signal.SIGKILL, -9), (signal.SIGINT, 130), (signal.SIGTERM, 143)):
        proc = subprocess.Popen(command("--epochs", "50", "--out", str(tmp_path / signum.name)),
                                env=cpp_runs["env"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                                preexec_fn=sigint_default)
        (binary,) = wait_for(lambda: binaries(cpp_runs["builds"]), 120, "the binary runs")
        time.sleep(0.5)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == code, (signum, stderr)
        if signum != signal.SIGKILL:
            assert len(stderr.strip().splitlines()) == 1, stderr
        wait_for(lambda: binary not in binaries(cpp_runs["builds"]), 5,
                 f"the binary gone after {signum.name}")


def same_metrics(a, b):
    timing = ("run_seconds", "epoch_seconds", "samples_per_second", "compile_seconds")
    first, second = ([{k: v for k, v in e.items() if k not in timing}
                      for e in json.loads((path / "metrics.json").read_text())["epochs"]]
                     for path in (a, b))
    assert first == second


@pytest.mark.slow
@pytest.mark.standalone
def test_a_kill_mid_epoch_then_resume_is_bit_identical(cpp_runs, tmp_path):
    """SIGKILL of plausigrad at 10 points spread over epoch 2's binary run (a resume of the
    1-epoch run), then --resume: weights, optimiser and RNG state and metrics equal the 2-epoch
    run's bit for bit (the kills during the compile are the fixture's; during the checkpoint
    write: test_a_kill_at_any_point_of_the_checkpoint_write_leaves_one_whole_checkpoint)."""
    env, builds = cpp_runs["env"], cpp_runs["builds"]
    seconds = json.loads((cpp_runs["straight"] / "metrics.json").read_text())["epochs"][1][
        "run_seconds"]  # of epoch 2's binary
    mid_run = []
    for point in range(10):
        run = shutil.copytree(cpp_runs["one"], tmp_path / f"kill{point}", symlinks=True)
        proc = subprocess.Popen(command("--epochs", "2", "--out", str(run), "--resume"), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
        (binary,) = wait_for(lambda: binaries(builds), 120, "the binary runs")
        time.sleep(point / 10 * seconds)
        mid_run.append(binary in binaries(builds))
        proc.kill()
        proc.wait()
        wait_for(lambda: binary not in binaries(builds), 5, "the binary gone")
        assert load_checkpoint(run)[0]["epoch"] in (1, 2)  # 2: killed after its checkpoint
        done = subprocess.run(command("--epochs", "2", "--out", str(run), "--resume"), env=env,
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        same_state(run, cpp_runs["straight"])
        same_metrics(run, cpp_runs["straight"])
    assert sum(mid_run) >= 8, mid_run  # kills while the binary ran (the rest: just after it)
