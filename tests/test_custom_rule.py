"""A rule written outside the package: ``examples/custom_rule`` works through plausigrad's CLI.

The example (``plausigrad-dfa-example``, rule ``dfa_if``) is installed with pip into a temporary
folder, never into the project's environment, and found through its ``plausigrad.rules`` entry
point by putting that folder on ``PYTHONPATH`` of the CLI subprocesses. Then ``train``,
``audit``, ``align`` and ``figures`` run on it, on the bundled MNIST subset with a tiny network
(784-10-10) and short windows, on the runtime (Cython) device. Most of the time is Cython
compiling the rule's code objects the first time (about 5 minutes on 2 cores; cached by Brian2
afterwards, then about 40 s). The tests not marked slow take about 10 s.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from plausigrad.rules.registry import rule_names

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                       "custom_rule")
RULE = "dfa_if"
TINY = ("--device", "runtime", "--hidden", "10", "--epochs", "1", "--train-limit", "40")


def run(env, *args, timeout=900):
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def cli(env, *args):
    done = run(env, "-m", "plausigrad.protocols.cli", *args)
    assert done.returncode == 0, f"plausigrad {' '.join(args)} failed:\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(environment with the example on PYTHONPATH, scratch folder). The example is copied first,
    so that pip's build leaves nothing in the source tree."""
    root = tmp_path_factory.mktemp("custom_rule")
    source, site = root / "source", root / "site"
    shutil.copytree(EXAMPLE, source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    done = run(dict(os.environ), "-m", "pip", "install", "--no-deps", "--no-build-isolation",
               "--no-index", "--quiet", "--target", str(site), str(source))
    assert done.returncode == 0, done.stderr
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "PLAUSIGRAD_BUILD_DIR": str(root / "builds"),
           "MPLBACKEND": "Agg"}
    return env, root


@pytest.fixture(scope="module")
def trained(installed):
    env, root = installed
    out = root / "run"
    cli(env, "train", "--rule", RULE, *TINY, "--test-limit", "20", "--forward-steps", "8",
        "--feedback-steps", "9", "--out", str(out))
    return env, out


def test_example_does_not_leak_into_the_project_environment():
    import importlib.util
    assert RULE not in rule_names()
    assert importlib.util.find_spec("plausigrad_dfa_example") is None


def test_entry_point_registers_the_rule_and_its_contract(installed):
    env, _ = installed
    done = run(env, "-c", "import json; from plausigrad.rules.registry import rule_names, "
                          "rule_class, make_rule; from plausigrad.analysis.alignment import "
                          "alignment_model_for; r = make_rule('dfa_if'); print(json.dumps("
                          "[rule_names(), rule_class('dfa_if').__module__, r.loss.name, "
                          "r.state_layout((7, 6, 5, 4)), r.feedback_pairs((7, 6, 5, 4)), "
                          "type(alignment_model_for(r)).__name__]))")
    assert done.returncode == 0, done.stderr
    names, module, loss, layout, pairs, plugin = json.loads(done.stdout)
    assert names[:3] == ["biograd", "emstdp", "ssnnbp"] and names[-1] == RULE
    assert module == "plausigrad_dfa_example.rule" and loss == "mse_on_rates"
    assert layout == {"W1": [6, 7], "W2": [5, 6], "W3": [4, 5], "D1": [6, 4], "B2": [5, 4]}
    assert pairs == [["B2", "W3"]] and plugin == "DirectFeedbackIFAlignment"


#: Run in the example's environment: the contract checks of tests/test_rule_contract.py (the
#: declared layout is what initial_state returns and what the built network holds) and the
#: update against numpy on Brian2's own spike counts (numpy target: no compilation).
CHECKS = """
import json
import numpy as np
from brian2.utils.logger import BrianLogger
from plausigrad.protocols.devices import Device
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.recorders import Probes
from plausigrad.protocols.schedule import Windows
from plausigrad.rules.registry import make_rule

sizes, windows, n = (30, 12, 10), Windows(12, 13), 4
rng = np.random.default_rng(3)
images = (rng.random((n + 1, sizes[0])) < 0.5).astype(float)
labels = rng.integers(0, 10, n + 1).astype(float)

deep = (7, 6, 5, 4)
rule = make_rule("dfa_if")
simulator = Simulator(rule, deep, Windows(4, 4), None, np.zeros((3, 7)), np.zeros(3), 2, 1,
                      device="runtime")
BrianLogger.suppress_name("unused_brian_object")
simulator.inspect()
built = simulator._handles["built"]
layout = rule.state_layout(deep)
contract = ({k: v.shape for k, v in rule.initial_state(deep, rng).items()} == layout
            and {k: v.shape for k, v in built.state.items()} == layout
            and list(built.feedback_pairs) == rule.feedback_pairs(deep))

rates = (0.05, 0.02)
rule = make_rule("dfa_if", {"learning_rate": rates, "batch_size": 1})
state = rule.initial_state(sizes, rng)
state["W1"] *= 3.0  # a lively hidden layer
simulator = Simulator(rule, sizes, windows, None, images, labels, n, 1, device=Device("runtime", runtime_target="numpy"),
                      recorders=[Probes({"input": (("count",), (0,))})])
record = simulator.run(state, np.arange(n), 1, rule.learning_rate_values(2))
counts = []
for group, size in zip(("input", "layer1", "layer2"), sizes):
    i, t = record.spikes[group]
    slot, offset = np.divmod(t, windows.slot_steps)
    n1, n2 = np.zeros((n, size)), np.zeros((n, size))
    phase1 = (slot < n) & (offset < windows.forward_steps)
    phase2 = (slot < n) & (offset >= windows.forward_steps) & (offset < windows.slot_steps - 1)
    np.add.at(n1, (slot[phase1], i[phase1]), 1.0)
    np.add.at(n2, (slot[phase2], i[phase2]), 1.0)
    counts.append((n1, n2))
expected = {k: v.copy() for k, v in state.items()}
for b in range(n):  # batch size 1: one update per sample, in order
    for l in (1, 2):
        g = np.outer(counts[l][1][b] - counts[l][0][b], counts[l - 1][0][b]) / windows.forward_steps
        expected[f"W{l}"] = np.clip(expected[f"W{l}"] + rates[l - 1] * g, -1.0, 1.0)
print(json.dumps({
    "contract": bool(contract),
    "errors_reached_hidden": bool(np.any(counts[1][1] != counts[1][0])),
    "deviation": {k: float(np.abs(record.state[k] - expected[k]).max()) for k in expected},
    "change": {k: float(np.abs(record.state[k] - state[k]).max()) for k in state}}))
"""


def test_contract_and_update_against_numpy(installed):
    env, _ = installed
    done = run(env, "-c", CHECKS)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["contract"]
    assert result["errors_reached_hidden"]  # DFA error spikes changed the hidden counts
    assert result["change"]["W1"] > 0 and result["change"]["W2"] > 0
    assert result["change"]["B1"] == 0
    for name, deviation in result["deviation"].items():
        assert deviation < 1e-12, (name, result)


@pytest.mark.slow
def test_train_learns_and_keeps_the_feedback_fixed(trained):
    env, out = trained
    with open(out / "metrics.json") as handle:
        metrics = json.load(handle)
    assert metrics["rule"]["rule"] == RULE and metrics["loss"] == "mse_on_rates"
    (epoch,) = metrics["epochs"]
    assert 0.0 <= epoch["test_accuracy"] <= 1.0 and epoch["test_samples"] == 20
    assert "B1" in epoch["feedback_angle_degrees"]
    # the checkpoint against the initial state the run started from (seed 0)
    done = run(env, "-c", "import json, sys, numpy as np; "
                          "from plausigrad.protocols.checkpoint import load_checkpoint; "
                          "from plausigrad.rules.registry import make_rule; "
                          "_, s = load_checkpoint(sys.argv[1]); "
                          "i = make_rule('dfa_if').initial_state((784, 10, 10), "
                          "np.random.default_rng(0)); "
                          "print(json.dumps({k: float(np.abs(s[k] - i[k]).max()) for k in i}))",
               str(out))
    assert done.returncode == 0, done.stderr
    change = json.loads(done.stdout)
    assert sorted(change) == ["B1", "W1", "W2"]
    assert change["W1"] > 0 and change["W2"] > 0  # learned
    assert change["B1"] == 0  # fixed random feedback


@pytest.mark.slow
def test_audit_reads_the_rules_synapses(installed):
    env, _ = installed
    report = json.loads(cli(env, "audit", "--rule", RULE, "--format", "json").stdout)
    assert report["rule"] == RULE
    assert report["local"] and report["event_based"] and report["online"]
    learned = {(s["synapses"], s["target"]) for s in report["statements"]}
    assert {("W1", "w"), ("W1", "grad"), ("W2", "w"), ("W2", "grad")} <= learned
    assert not any(s["synapses"].startswith("B") for s in report["statements"])  # B is fixed


@pytest.mark.slow
def test_align_prints_the_table(trained, tmp_path):
    env, out = trained
    done = cli(env, "align", str(out), "--probe-size", "8", "--out", str(tmp_path / "a.json"))
    assert "θ(ΔW,R1)" in done.stdout and "reference count mismatches 0" in done.stdout
    assert sum(line.split()[1:2] in (["W1"], ["W2"]) for line in done.stdout.splitlines()) == 2
    with open(tmp_path / "a.json") as handle:
        result = json.load(handle)
    assert result["count_mismatch"] == 0 and result["probe_samples"] == 8
    assert result["layers"]["W1"]["feedback_angle"] is not None  # B1 against W2ᵀ
    assert result["layers"]["W2"]["update_angle_r1"] is not None
    assert result["layers"]["W2"]["update_angle_r2"] is None  # no surrogate network


def _figures_written(folder, names=("dynamics", "raster", "learning_curves")):
    for name in names:
        for suffix in (".png", ".pdf"):
            assert (folder / f"{name}{suffix}").stat().st_size > 5_000, name


@pytest.mark.slow
def test_figures_from_the_trained_run(trained, tmp_path):
    env, out = trained
    cli(env, "figures", "--rule", RULE, "--checkpoint", str(out), "--out", str(tmp_path))
    _figures_written(tmp_path)


@pytest.mark.slow
def test_figures_trains_then_draws(installed, tmp_path):
    """``figures`` without a checkpoint trains with alignment tracking first: the tracker
    measures in a child process (``python -m plausigrad.analysis.alignment``), which must accept
    an external plug-in (it once compared against ``__main__.AlignmentModel`` and refused all)."""
    env, _ = installed
    done = run(env, "-m", "plausigrad.protocols.cli", "figures", "--rule", RULE, *TINY,
               "--probe-size", "8", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    _figures_written(tmp_path, ("dynamics", "raster", "learning_curves", "alignment"))
