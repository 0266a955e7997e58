"""Standalone devices: C++ agrees with runtime, CUDA code compiles, training learns and resumes.

These tests compile C++ (tens of seconds) or CUDA (minutes) and are marked slow.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from plausigrad.protocols.devices import Device, nvcc_available, remove_orphaned_results
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.schedule import SleepSchedule, Windows
from plausigrad.protocols.checkpoint import load_checkpoint
from plausigrad.rules.biograd import BioGrad, BioGradParameters

SIZES = (60, 20, 10)
WINDOWS = Windows(forward_steps=12, feedback_steps=10)


def _deterministic_problem():
    rng = np.random.default_rng(5)
    images = (rng.uniform(0, 1, (14, 60)) < 0.35).astype(float)  # 0/1 pixels: fixed spike trains
    labels = rng.integers(0, 10, 14)
    rule = BioGrad(BioGradParameters(feedback="fa", batch_size=2, learning_rate=(0.2, 0.2),
                                     bias_learning_rate=0.05, dithered_errors=False))
    state = rule.initial_state(SIZES, rng)
    state["W1"] = rng.normal(0, 0.12, state["W1"].shape)
    return rule, images, labels, state


def _run(device, tmp_path):
    rule, images, labels, state = _deterministic_problem()
    sim = Simulator(rule, SIZES, WINDOWS, None, images, labels, 10, 4, device=Device(device, str(tmp_path / device)))
    return state, sim.run(state, np.arange(10), 1, rule.learning_rate_values(2))


@pytest.mark.slow
@pytest.mark.standalone
def test_cpp_standalone_agrees_with_runtime(tmp_path):
    state, runtime = _run("runtime", tmp_path)
    _, cpp = _run("cpp", tmp_path)
    assert not np.allclose(runtime.state["W1"], state["W1"]), "the run must learn something"
    np.testing.assert_array_equal(cpp.output_counts, runtime.output_counts)
    for name in runtime.state:
        np.testing.assert_allclose(cpp.state[name], runtime.state[name], rtol=1e-9, atol=1e-12)


@pytest.mark.slow
@pytest.mark.cuda
@pytest.mark.cuda_extra
def test_biograd_network_compiles_for_cuda(tmp_path):
    if not nvcc_available():
        pytest.skip("nvcc not found on PATH: no CUDA toolkit to compile with")
    _, images, labels, _ = _deterministic_problem()
    rule = BioGrad(BioGradParameters(feedback="sleep"))  # the most features: sleep events too
    sim = Simulator(rule, SIZES, WINDOWS, SleepSchedule(every_samples=5, slots=2), images,
                    labels, 10, 4, device=Device("cuda", str(tmp_path / "cuda")))
    sim.compile()
    binary = tmp_path / "cuda" / "main"
    assert binary.is_file(), "nvcc produced no binary"
    assert os.access(binary, os.X_OK)
    assert "-std=c++17" in (tmp_path / "cuda" / "makefile").read_text()  # CUDA 13 needs C++17


TRAIN_ARGS = ["train", "--device", "cpp", "--hidden", "100", "--epochs", "2", "--seed", "3",
              "--train-limit", "2000", "--test-limit", "300", "--feedback", "symmetric"]


def _cli(args, env, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "plausigrad.protocols.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


@pytest.fixture(scope="module")
def build_env(tmp_path_factory):
    return {**os.environ, "PLAUSIGRAD_BUILD_DIR": str(tmp_path_factory.mktemp("builds"))}


@pytest.mark.slow
@pytest.mark.standalone
def test_training_on_bundled_subset_beats_chance_and_resumes_after_kill(tmp_path, build_env):
    straight = tmp_path / "straight"
    done = _cli(TRAIN_ARGS + ["--out", str(straight)], build_env)
    output = done.communicate(timeout=1200)[0]
    assert done.returncode == 0, output
    history = json.load(open(straight / "metrics.json"))["epochs"]
    assert [e["epoch"] for e in history] == [1, 2]
    assert history[-1]["test_accuracy"] > 0.5, history  # chance is 0.1
    evaluated = _cli(["eval", str(straight)], build_env)
    output = evaluated.communicate(timeout=1200)[0]
    assert evaluated.returncode == 0, output
    accuracy = float(output.split("test accuracy ")[1].split()[0])
    assert abs(accuracy - history[-1]["test_accuracy"]) < 0.05, (accuracy, history[-1])

    killed = tmp_path / "killed"
    proc = _cli(TRAIN_ARGS + ["--out", str(killed)], build_env, start_new_session=True)
    deadline = time.time() + 1200
    while not (killed / "checkpoint.json").exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.time() < deadline
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # kill the whole run, standalone binary included
    proc.wait()
    meta, _ = load_checkpoint(killed)
    assert meta["epoch"] == 1
    resumed = _cli(TRAIN_ARGS + ["--out", str(killed), "--resume"], build_env)
    output = resumed.communicate(timeout=1200)[0]
    assert resumed.returncode == 0, output
    assert "resuming" in output
    _, state_resumed = load_checkpoint(killed)
    _, state_straight = load_checkpoint(straight)
    for name in state_straight:  # same shuffles and seeds: the same weights as without the kill
        np.testing.assert_array_equal(state_resumed[name], state_straight[name])


def test_result_folders_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that existed and is gone (reuse within this test is vanishingly rare)
    for name in (f"results_{dead.pid}", f"results_{os.getpid()}", "results", "results_x"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "array.dat").write_bytes(b"0")
    remove_orphaned_results(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted([f"results_{os.getpid()}", "results", "results_x"])


@pytest.mark.slow
@pytest.mark.standalone
def test_runs_sharing_a_build_run_side_by_side_without_mixing_results(tmp_path):
    """Two processes with the same network share its build directory (compiles are serialised
    by a lock, results go to per-process folders): each must get what it gets alone. The build
    directory is this test's own, so no other test's (killed) runs leave folders in it."""
    build_env = {**os.environ, "PLAUSIGRAD_BUILD_DIR": str(tmp_path / "builds")}
    args = TRAIN_ARGS[:TRAIN_ARGS.index("--epochs")] + ["--epochs", "1"] + \
        TRAIN_ARGS[TRAIN_ARGS.index("--epochs") + 2:]
    alone = _cli(args + ["--out", str(tmp_path / "alone"), "--lr", "0.01,0.1"], build_env)
    output = alone.communicate(timeout=1200)[0]
    assert alone.returncode == 0, output
    pair = [_cli(args + ["--out", str(tmp_path / name), "--lr", lr], build_env)
            for name, lr in (("same", "0.01,0.1"), ("other", "0.03,0.3"))]
    for proc in pair:
        output = proc.communicate(timeout=1200)[0]
        assert proc.returncode == 0, output
    _, reference = load_checkpoint(tmp_path / "alone")
    _, same = load_checkpoint(tmp_path / "same")
    _, other = load_checkpoint(tmp_path / "other")
    for name in reference:
        np.testing.assert_array_equal(same[name], reference[name])
    assert not np.allclose(other["W1"], reference["W1"])  # it really ran its own learning rate
    assert not [p for p in os.listdir(build_env["PLAUSIGRAD_BUILD_DIR"])
                for q in [os.path.join(build_env["PLAUSIGRAD_BUILD_DIR"], p)]
                if any(n.startswith("results_") for n in os.listdir(q))], \
        "per-process result folders must be removed"
