"""SSNN-BP: the WTA race samples softmax(z), the coincidence update has the backprop expectation,
its angle to the rate-network gradient falls with the spike-train length T, and the rule runs
from the command line (also on Fashion-MNIST files) and on C++ standalone / CUDA.

Statistical tests use fixed seeds and state their tolerance; each was checked to fail for a
wrong distribution, a wrong sign or a wrong scale.
"""

import functools
import hashlib
import itertools
import json

import numpy as np
import pytest
from scipy import stats

from plausigrad.analysis.alignment import measure_alignment
from plausigrad.analysis.ann_baseline import effective_learning_rates, train_ann
from plausigrad.analysis.ssnnbp_alignment import r1_gradients, sample_updates
from plausigrad.models.errors import ConfigurationError
from plausigrad.protocols.angles import angle_degrees
from plausigrad.protocols.datasets import load_dataset
from plausigrad.protocols.devices import Device, nvcc_available
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.schedule import Windows
from plausigrad.rules.ssnnbp import SSNNBP, SSNNBPParameters


def softmax(z):
    e = np.exp(z - np.max(z))
    return e / e.sum()


@pytest.mark.parametrize("kwargs, fragment", [
    ({"learning_rate": (-1.0,)}, "learning rate (Δw_min) must be positive"),
    ({"gradient_scale": 0.0}, "gradient scale must be positive"),
    ({"input_rate": 1.5}, "input rate must be <= 1"),
    ({"batch_size": 0}, "batch size must be a positive integer"),
    ({"bias_learning_rate": -0.1}, "bias learning rate must be >= 0"),
])
def test_impossible_parameters_are_one_line_errors(kwargs, fragment):
    with pytest.raises(ConfigurationError) as info:
        SSNNBPParameters(**kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_learning_rates_per_layer_must_match_the_architecture():
    rule = SSNNBP(SSNNBPParameters(learning_rate=(0.1, 0.2, 0.3)))
    with pytest.raises(ConfigurationError, match="3 learning rates given for 2 weight layers"):
        rule.learning_rate_values(2)


# -- the winner-take-all race -------------------------------------------------------------------

LOGITS = np.array([0.0, 1.0, 2.0, -1.0, 0.5, 1.5])


def _race_counts(logits, n_slots=150, steps=20, seed=11):
    """Wins of a WTA output whose logits are its biases (W2 = 0), over EVAL slots (no learning)."""
    sizes = (3, 2, len(logits))
    rule = SSNNBP()
    state = {"W1": np.zeros((2, 3)), "b1": np.zeros(2), "W2": np.zeros((len(logits), 2)),
             "b2": np.asarray(logits, dtype=float)}
    images, labels = np.full((n_slots, 3), 0.5), np.zeros(n_slots)
    sim = Simulator(rule, sizes, Windows(steps, 3), None, images, labels, 0, n_slots,
                    device=Device("runtime", runtime_target="numpy"))
    record = sim.run(state, np.arange(0), seed, rule.learning_rate_values(2))
    return record.output_counts


def test_wta_race_has_exactly_one_winner_per_step_distributed_as_softmax():
    counts = _race_counts(LOGITS)
    assert counts.shape == (150, len(LOGITS))
    assert np.all(counts.sum(axis=1) == 20), "exactly one output spike per step of the window"
    observed = counts.sum(axis=0)
    n = observed.sum()
    # Pearson chi-square against softmax(z), 5 degrees of freedom; pass at p > 0.001
    _, p_softmax = stats.chisquare(observed, n * softmax(LOGITS))
    assert p_softmax > 1e-3, (observed, n * softmax(LOGITS))
    # the test has power: a slightly wrong temperature or a uniform race is rejected
    _, p_tempered = stats.chisquare(observed, n * softmax(0.8 * LOGITS))
    _, p_uniform = stats.chisquare(observed, np.full(len(LOGITS), n / len(LOGITS)))
    assert p_tempered < 1e-6 and p_uniform < 1e-6


# -- the coincidence update ---------------------------------------------------------------------

Z1 = np.array([0.3, 0.6, 0.8])                      # hidden drive: deterministic input, f' = 1
W2 = np.array([[0.4, -0.3, 0.2], [-0.2, 0.3, 0.1], [0.1, 0.2, -0.4]])
B2 = np.array([0.3, -0.2, 0.1])
ALPHA = 1.25                                        # |α ν| ≤ 1: no probability clipping


def _exact_expectations(label):
    """E[x1_j (o_k − y_k)] and E[o] per step, by enumerating the 8 hidden spike patterns."""
    y = np.eye(3)[label]
    correlated, mean_output = np.zeros((3, 3)), np.zeros(3)
    for pattern in itertools.product((0.0, 1.0), repeat=3):
        x1 = np.array(pattern)
        weight = np.prod(np.where(x1 > 0, Z1, 1 - Z1))
        p = softmax(W2 @ x1 + B2)
        mean_output += weight * p
        correlated += weight * np.outer(p - y, x1)
    return correlated, mean_output - y


def _run_on_constant_input(state, n_slots, steps, dw, label, alpha):
    """``n_slots`` TRAIN slots of ``steps`` steps on an all-ones input (x0 = 1 every step), all
    of label ``label``, with Δw_min = ``dw`` in every layer and gradient scale ``alpha``, on the
    numpy runtime target; the drain window is the 2L − 1 steps the depth needs. Returns the
    record."""
    n_layers = sum(1 for name in state if name.startswith("W"))
    sizes = (state["W1"].shape[1], *(state[f"W{l}"].shape[0] for l in range(1, n_layers + 1)))
    rule = SSNNBP(SSNNBPParameters(learning_rate=(dw,) * n_layers, gradient_scale=alpha))
    images, labels = np.ones((n_slots, sizes[0])), np.full(n_slots, label)
    sim = Simulator(rule, sizes, Windows(steps, 2 * n_layers - 1), None, images, labels,
                    n_slots, 0, device=Device("runtime", runtime_target="numpy"))
    return sim.run(state, np.arange(n_slots), 5, rule.learning_rate_values(n_layers))


def test_expected_coincidence_update_is_minus_dw_T_x_delta():
    """Hand-set network: input spikes every step (x0 = 1), hidden drive constant in (0, 1).

    Expected over N slots of T steps: ΔW1_ji = −Δw_min · N T · x0_i · δ1_j with
    δ1_j = α f'_j Σ_k W2_kj (E[o_k] − y_k), and ΔW2_kj = −Δw_min · N T · E[x1_j (o_k − y_k)]
    (x1 is the hidden spike that produced the logits, so the output layer's term keeps its
    correlation with o). Δw_min is tiny so the weights stay put; tolerance: 5 standard deviations
    of a sum of N·T terms in {−1, 0, 1}.
    """
    n_slots, steps, dw, label = 200, 40, 1e-7, 0
    state = {"W1": np.tile(Z1[:, None] / 4, (1, 4)), "b1": np.zeros(3), "W2": W2.copy(),
             "b2": B2.copy()}
    record = _run_on_constant_input(state, n_slots, steps, dw, label, ALPHA)
    events = n_slots * steps
    tolerance = 5 * np.sqrt(events)
    correlated, output_delta = _exact_expectations(label)

    measured_w2 = (record.state["W2"] - state["W2"]) / dw
    np.testing.assert_allclose(measured_w2, -events * correlated, atol=tolerance)
    delta1 = ALPHA * (W2.T @ output_delta)          # f' = 1 for every hidden neuron
    measured_w1 = (record.state["W1"] - state["W1"]) / dw
    np.testing.assert_allclose(measured_w1, -events * np.tile(delta1[:, None], (1, 4)),
                               atol=tolerance)
    assert np.all(np.abs(events * delta1) > 2 * tolerance), "the case must not be trivially 0"
    # the output's wins estimate E[o]: prediction counts are the forward stream
    assert record.output_counts.sum() == events


# two hidden layers: drives of layer 2 depend on layer 1's spikes, so the coincidences of W2
# and W3 must pair each gradient spike with the spikes that caused it, and layer 1's gradient
# travels through two stochastic gradient layers
DEEP_Z1 = np.array([0.5, 0.5, 0.5])                 # layer-1 drive (input: 1 every step)
DEEP_W2 = np.full((3, 3), 0.05) + 0.75 * np.eye(3)  # layer 2 follows layer 1
DEEP_B2 = np.full(3, 0.05)                          # z2 in (0, 1) for every x1: f'2 = 1
DEEP_W3 = np.array([[0.5, -0.5, 0.5], [-0.5, 0.5, -0.5], [-0.5, -0.5, 0.5]])
DEEP_B3 = np.zeros(3)
DEEP_ALPHA = 1.0                                    # |α ν| ≤ 1 in both hidden layers


def _exact_deep_expectations(label):
    """Per step: E[(o − y) x2ᵀ], E[g2 x1ᵀ] and E[g1], enumerating the 64 patterns of the two
    hidden layers (E[g2 | x] = α W3ᵀ (softmax(z3) − y), E[g1] = α W2ᵀ E[g2]: f' = 1 and no
    probability is clipped)."""
    y = np.eye(3)[label]
    out_x2, g2_x1, g2 = np.zeros((3, 3)), np.zeros((3, 3)), np.zeros(3)
    for p1 in itertools.product((0.0, 1.0), repeat=3):
        x1 = np.array(p1)
        z2 = DEEP_W2 @ x1 + DEEP_B2
        assert np.all((z2 > 0) & (z2 < 1))
        for p2 in itertools.product((0.0, 1.0), repeat=3):
            x2 = np.array(p2)
            weight = (np.prod(np.where(x1 > 0, DEEP_Z1, 1 - DEEP_Z1))
                      * np.prod(np.where(x2 > 0, z2, 1 - z2)))
            delta = softmax(DEEP_W3 @ x2 + DEEP_B3) - y
            out_x2 += weight * np.outer(delta, x2)
            expected_g2 = DEEP_ALPHA * DEEP_W3.T @ delta
            g2_x1 += weight * np.outer(expected_g2, x1)
            g2 += weight * expected_g2
    return out_x2, g2_x1, DEEP_ALPHA * DEEP_W2.T @ g2


def test_expected_coincidence_update_of_two_hidden_layers():
    """As above, one more hidden layer (4-3-3-3, drain 2L − 1 = 5 steps). Against the
    enumerated expectations: ΔW3 = −Δw_min N T E[(o − y) x2ᵀ], ΔW2 = −Δw_min N T E[g2 x1ᵀ],
    ΔW1 = −Δw_min N T E[g1] x0ᵀ; tolerance 5 standard deviations of a sum of N·T terms in
    {−1, 0, 1}. (Unpaired spikes, E[o − y] E[x2]ᵀ, differ from the first by only 1.7 of these
    tolerances here: the one-hidden-layer test above is the one that checks the pairing.)"""
    n_slots, steps, dw, label = 400, 50, 1e-7, 0
    state = {"W1": np.tile(DEEP_Z1[:, None] / 4, (1, 4)), "b1": np.zeros(3),
             "W2": DEEP_W2.copy(), "b2": DEEP_B2.copy(), "W3": DEEP_W3.copy(),
             "b3": DEEP_B3.copy()}
    record = _run_on_constant_input(state, n_slots, steps, dw, label, DEEP_ALPHA)
    events = n_slots * steps
    tolerance = 5 * np.sqrt(events)
    out_x2, g2_x1, g1 = _exact_deep_expectations(label)
    measured = {name: (record.state[name] - state[name]) / dw for name in ("W1", "W2", "W3")}
    np.testing.assert_allclose(measured["W3"], -events * out_x2, atol=tolerance)
    np.testing.assert_allclose(measured["W2"], -events * g2_x1, atol=tolerance)
    np.testing.assert_allclose(measured["W1"], -events * np.tile(g1[:, None], (1, 4)),
                               atol=tolerance)
    # the two-layer gradient is not trivially 0 (nor would a wrong sign pass)
    assert np.all(np.abs(events * g1) > 2 * tolerance)


# -- angle to the R1 gradient against T ---------------------------------------------------------

def test_update_angle_to_r1_gradient_falls_with_spike_train_length():
    data = load_dataset("mnist", train_limit=1, test_limit=32)
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.05, (40, 784)), rng.normal(0, 0.1, (10, 40))]
    biases = [np.zeros(40), np.zeros(10)]
    angles = {}
    for steps in (4, 32, 256):
        out = sample_updates(weights, biases, data.test_images, data.test_labels, steps,
                             rng=np.random.default_rng(steps))
        r1, _, _ = r1_gradients(weights, out, data.test_labels)
        # local update ΔW = −Δw_min · coincidences / P; the angle ignores the positive factor
        angles[steps] = [angle_degrees(-out["coincidences"][l], -r1[l]) for l in range(2)]
    for layer in range(2):
        series = [angles[t][layer] for t in (4, 32, 256)]
        assert series[0] > series[1] > series[2], angles
        assert series[2] < 0.5 * series[0], angles


def test_effective_learning_rate_of_the_ann_baseline():
    params = SSNNBPParameters(learning_rate=(0.001, 0.002), gradient_scale=0.5)
    assert effective_learning_rates(params, 2, 32) == pytest.approx([0.016, 0.064])


def test_ann_baseline_learns_the_bundled_subset():
    data = load_dataset("mnist", train_limit=600, test_limit=200)
    history, _, _ = train_ann(data.train_images, data.train_labels, data.test_images,
                              data.test_labels, hidden=(50,), epochs=2, log=lambda *_: None)
    assert history[-1]["test_accuracy"] > 0.7


# -- command line, datasets, devices ------------------------------------------------------------

def _write_idx(path, array):
    import gzip
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_trains_from_a_directory_of_idx_files(tmp_path, monkeypatch):
    """``--dataset fashion-mnist --data-dir D`` reads D's four IDX files (MD5s checked; here the
    checksums of the small files this test writes stand in for the published ones)."""
    from plausigrad.protocols import datasets
    from plausigrad.protocols.cli import main
    from plausigrad.protocols import training

    rng = np.random.default_rng(0)
    directory = tmp_path / "fashion"
    directory.mkdir()
    arrays = {"train_images": rng.integers(0, 256, (12, 28, 28)),
              "train_labels": rng.integers(0, 10, 12),
              "test_images": rng.integers(0, 256, (6, 28, 28)),
              "test_labels": rng.integers(0, 10, 6)}
    md5s = {}
    for role, filename in datasets.FILENAMES.items():
        _write_idx(directory / filename, arrays[role])
        md5s[filename] = hashlib.md5((directory / filename).read_bytes()).hexdigest()
    monkeypatch.setitem(datasets.PUBLISHED_MD5, "fashion-mnist", md5s)
    # the runtime device on numpy code generation: no compiler in this test
    monkeypatch.setattr(training, "Device", functools.partial(Device, runtime_target="numpy"))
    out = tmp_path / "run"
    assert main(["train", "--rule", "ssnnbp", "--dataset", "fashion-mnist", "--data-dir",
                 str(directory), "--device", "runtime", "--hidden", "8", "--epochs", "1",
                 "--forward-steps", "6", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["dataset"] == "fashion-mnist"
    assert metrics["epochs"][0]["train_samples"] == 12
    assert metrics["epochs"][0]["test_samples"] == 6
    assert "fashion-mnist" in metrics["config"]["dataset"]


@pytest.mark.parametrize("args, fragment", [
    (["--rule", "ssnnbp", "--gradient-scale", "-1"], "gradient scale must be positive"),
    (["--rule", "biograd", "--gradient-scale", "2"], "does not apply to rule biograd"),
    (["--rule", "ssnnbp", "--feedback", "fa"], "--feedback does not apply to rule ssnnbp"),
])
def test_cli_rejects_impossible_ssnnbp_options_in_one_line(tmp_path, capsys, args, fragment):
    from plausigrad.protocols.cli import main
    assert main(["train", "--out", str(tmp_path / "run"), *args]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and fragment in error[0], error


@pytest.mark.slow
def test_alignment_measurement_on_brian2_falls_with_T():
    """The full analysis (Brian2 probe run, runtime Cython, one mini-batch) at T = 8 and 64."""
    data = load_dataset("mnist", train_limit=1, test_limit=24)
    sizes = (784, 30, 10)
    rule = SSNNBP()
    state = rule.initial_state(sizes, np.random.default_rng(2))
    angles = {}
    for steps in (8, 64):
        result = measure_alignment(rule, sizes, Windows(steps, 3), state, data.test_images,
                                   data.test_labels, seed=3)
        assert result["count_mismatch"] is None
        # forward and backward share W2: the feedback into the hidden layer is W2ᵀ itself
        assert result["layers"]["W1"]["feedback_angle"] == pytest.approx(0.0, abs=1e-6)
        assert result["layers"]["W1"]["error_angle"] < 60
        angles[steps] = [result["layers"][w]["update_angle_r1"] for w in ("W1", "W2")]
    assert angles[64][0] < angles[8][0] and angles[64][1] < angles[8][1], angles


@pytest.mark.slow
@pytest.mark.standalone
def test_cpp_standalone_trains_and_reuses_its_binary(tmp_path):
    data = load_dataset("mnist", train_limit=300, test_limit=100)
    images = np.concatenate([data.train_images, data.test_images])
    labels = np.concatenate([data.train_labels, data.test_labels])
    sizes = (784, 50, 10)
    rule = SSNNBP(SSNNBPParameters(learning_rate=(0.001, 0.001)))
    state = rule.initial_state(sizes, np.random.default_rng(0))
    sim = Simulator(rule, sizes, Windows(16, 3), None, images, labels, 300, 100, device=Device("cpp", str(tmp_path / "cpp")))
    first = sim.run(state, np.arange(300), 1, rule.learning_rate_values(2))
    compile_seconds = sim.compile_seconds
    second = sim.run(first.state, np.random.default_rng(1).permutation(300), 2,
                     rule.learning_rate_values(2, 0.7))
    assert sim.compile_seconds == compile_seconds  # compiled once, run_args per epoch
    assert np.all(second.output_counts.sum(axis=1) == 16)
    assert not np.allclose(second.state["W1"], first.state["W1"])
    test = second.kinds == 2
    accuracy = np.mean(np.argmax(second.output_counts[test], axis=1) ==
                       labels[second.rows[test]])
    assert accuracy > 0.5


@pytest.mark.slow
@pytest.mark.cuda
@pytest.mark.cuda_extra
def test_ssnnbp_network_compiles_for_cuda(tmp_path):
    if not nvcc_available():
        pytest.skip("nvcc not found on PATH: no CUDA toolkit to compile with")
    rng = np.random.default_rng(0)
    images, labels = rng.uniform(0, 1, (14, 60)), rng.integers(0, 10, 14)
    sim = Simulator(SSNNBP(), (60, 20, 10), Windows(8, 3), None, images, labels, 10, 4,
                    device=Device("cuda", str(tmp_path / "cuda")))
    sim.compile()
    assert (tmp_path / "cuda" / "main").is_file(), "nvcc produced no binary"


def test_ann_online_step_is_the_batch_one_gradient_step():
    from plausigrad.analysis import ann_baseline
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.3, (7, 12)), rng.normal(0, 0.3, (10, 7))]
    biases = [rng.normal(0, 0.1, 7), rng.normal(0, 0.1, 10)]
    x = (rng.random(12) < 0.5) * rng.random(12)
    _, gw, gb = ann_baseline.gradients(weights, biases, x[None], np.array([3]))
    stepped_w, stepped_b = [w.copy() for w in weights], [b.copy() for b in biases]
    ann_baseline._online_step(stepped_w, stepped_b, x, 3, [0.1, 0.2], 0.05)
    for l, rate in enumerate((0.1, 0.2)):
        np.testing.assert_allclose(stepped_w[l], weights[l] - rate * gw[l])
        np.testing.assert_allclose(stepped_b[l], biases[l] - 0.05 * gb[l])


def test_drain_window_follows_the_depth_and_a_short_one_is_refused():
    """The pipeline of L weight layers needs 2L − 1 drain steps: that is the default at every
    depth, and a shorter window is one line (it used to lose the last gradient samples of the
    lowest layers without a word)."""
    from plausigrad.protocols.training import RunConfig
    assert RunConfig(rule="ssnnbp").feedback_steps == 3
    assert RunConfig(rule="ssnnbp", hidden=(20, 10)).feedback_steps == 5
    assert RunConfig(rule="ssnnbp", hidden=(20, 10, 10)).feedback_steps == 7
    with pytest.raises(ConfigurationError, match="at least 2L - 1 = 5 steps, got 3"):
        RunConfig(rule="ssnnbp", hidden=(20, 10), feedback_steps=3)
    rule = SSNNBP(SSNNBPParameters())
    with pytest.raises(ConfigurationError, match="at least 2L - 1 = 5 steps, got 4"):
        Simulator(rule, (4, 3, 3, 3), Windows(8, 4), None, np.ones((1, 4)), np.zeros(1), 1, 0,
                  device=Device("runtime", runtime_target="numpy"))
