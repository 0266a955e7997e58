"""Gradient alignment to backprop (plausigrad.analysis.alignment) and BioGrad's plug-in.

The probe runs use the Cython runtime target (the analysis' own choice) on small networks with
fixed seeds; the angles asserted below were measured with exactly these seeds, and the bounds leave
room for the error quantisation's randomness, not for a wrong sign or a wrong layer.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from plausigrad.analysis.references import biograd as reference
from plausigrad.analysis.alignment import (format_table, measure_alignment, norm_ratio_or_none,
                                           rate_backprop)
from plausigrad.analysis.biograd_alignment import BioGradAlignment, bptt_gradients
from plausigrad.analysis.readout import slot_counts, slot_spike_array
from plausigrad.models.compartment_neuron import CompartmentNeuronParameters
from plausigrad.protocols.datasets import load_dataset
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.recorders import Probes
from plausigrad.protocols.schedule import Windows
from plausigrad.rules.biograd import BioGrad, BioGradParameters

WINDOWS = Windows(20, 10)
SIZES = (784, 60, 10)


@pytest.fixture(scope="module")
def probe():
    data = load_dataset("mnist", train_limit=1, test_limit=32)
    return data.test_images, data.test_labels


def _measure(feedback, probe, **params):
    rule = BioGrad(BioGradParameters(feedback=feedback, **params))
    state = rule.initial_state(SIZES, np.random.default_rng(0))
    return measure_alignment(rule, SIZES, WINDOWS, state, *probe, seed=3, details=True), state


def test_norm_ratio_is_undefined_for_a_zero_gradient():
    # the angles themselves: tests/test_angles.py
    assert norm_ratio_or_none(np.ones(4), np.zeros(4), 0.1) is None
    assert norm_ratio_or_none(np.ones(4), np.ones(4), 0.5) == pytest.approx(2.0)


def test_bptt_equals_finite_differences_of_a_smooth_network():
    """With a sigmoid spike function and the reset kept, BPTT is the exact gradient."""
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.6, (5, 6)), rng.normal(0, 0.6, (3, 5))]
    biases = [rng.normal(0, 0.1, 5), rng.normal(0, 0.1, 3)]
    spikes = (rng.random((8, 4, 6)) < 0.5).astype(float)
    targets = 0.8 * np.eye(3)[[0, 1, 2, 1]]
    neuron = CompartmentNeuronParameters()
    kwargs = dict(spike_function="sigmoid", steepness=4.0, detach_reset=False)
    _, gradients = bptt_gradients(weights, biases, spikes, targets, neuron, **kwargs)
    h = 1e-6
    for layer in range(2):
        numeric = np.zeros_like(weights[layer])
        for index in np.ndindex(weights[layer].shape):
            shifted = [w.copy() for w in weights]
            shifted[layer][index] += h
            up, _ = bptt_gradients(shifted, biases, spikes, targets, neuron, **kwargs)
            shifted[layer][index] -= 2 * h
            down, _ = bptt_gradients(shifted, biases, spikes, targets, neuron, **kwargs)
            numeric[index] = (up - down) / (2 * h)
        np.testing.assert_allclose(gradients[layer], numeric, rtol=1e-5, atol=1e-9)
        assert np.abs(numeric).max() > 1e-3  # the check is not vacuous


def test_bptt_forward_is_the_reference_network():
    """The heaviside BPTT network spikes exactly like the reference forward (same equations)."""
    rng = np.random.default_rng(1)
    weights = [rng.normal(0, 0.3, (12, 20)), rng.normal(0, 0.5, (4, 12))]
    biases = [np.zeros(12), np.zeros(4)]
    spikes = (rng.random((15, 3, 20)) < 0.4).astype(float)
    out = reference.forward(CompartmentNeuronParameters(), {"W": weights, "b": biases}, spikes)
    targets = np.zeros((3, 4))
    loss, _ = bptt_gradients(weights, biases, spikes, targets, CompartmentNeuronParameters())
    assert out["count"][2].sum() > 0
    assert loss == pytest.approx(np.mean(0.5 * np.sum(out["rate"][2] ** 2, axis=1)))


def test_rate_backprop_matches_hand_computation():
    weights = [np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([[2.0, -1.0]])]
    forward = {"rate": [np.array([[0.5, 0.25]]), np.array([[0.2, 0.4]]), np.array([[0.6]])],
               "derivative": [None, np.array([[1.0, 0.5]]), np.array([[0.5]])]}
    gradients, errors = rate_backprop(weights, forward, np.array([[0.2]]))
    delta2 = 0.2 * 0.5
    np.testing.assert_allclose(gradients[1], [[delta2 * 0.2, delta2 * 0.4]])
    np.testing.assert_allclose(errors[1], [[2.0 * delta2, -1.0 * delta2]])
    delta1 = errors[1] * [[1.0, 0.5]]
    np.testing.assert_allclose(gradients[0], delta1.T @ [[0.5, 0.25]])


def test_reference_reproduces_brian2_membrane_and_counts_on_recorded_input(probe):
    """The numpy reference, fed Brian2's recorded input spikes, gives Brian2's v and counts."""
    rule = BioGrad(BioGradParameters(feedback="fa", batch_size=4))
    state = rule.initial_state(SIZES, np.random.default_rng(2))
    state["W1"] *= 4  # livelier hidden layer: more spikes to compare
    images, labels = probe[0][:4], probe[1][:4]
    watched = tuple(range(0, 60, 6))
    sim = Simulator(rule, SIZES, WINDOWS, None, images, labels, 4, 0, device="runtime",
                    recorders=[Probes({"layer1": (("v",), watched),
                                       "layer2": (("v",), tuple(range(10)))})])
    record = sim.run(state, np.arange(4), 5, rule.learning_rate_values(2))
    spikes = slot_spike_array(*record.spikes["input"], 784, 4, WINDOWS.slot_steps,
                              WINDOWS.forward_steps)
    out = reference.forward(rule.params.neuron,
                            {"W": [state["W1"], state["W2"]], "b": [state["b1"], state["b2"]]},
                            spikes, record={1: np.array(watched), 2: np.arange(10)})
    model = BioGradAlignment()
    for layer, group in ((1, "layer1"), (2, "layer2")):
        brian_v = record.probes[group]["v"]  # (neurons, steps), seen before the threshold
        for slot in range(4):
            start = slot * WINDOWS.slot_steps
            np.testing.assert_allclose(brian_v[:, start:start + WINDOWS.forward_steps].T,
                                       out["rec"][layer]["v"][:, slot, :], atol=1e-9)
        counts = model.reference_forward(rule, state, spikes)["count"][layer]
        brian_counts = slot_counts(*record.spikes[group], counts.shape[1], counts.shape[0],
                                   WINDOWS.slot_steps, window=(0, WINDOWS.forward_steps))
        np.testing.assert_array_equal(counts, brian_counts)
    assert out["count"][1].sum() > 20


def test_symmetric_feedback_is_aligned_with_backprop(probe):
    """B = Wᵀ, all samples at the same weights: the update follows R1 and R2, the error is BP's."""
    result, _ = _measure("symmetric", probe)
    w1, w2 = result["layers"]["W1"], result["layers"]["W2"]
    assert result["count_mismatch"] == 0
    assert w1["feedback_angle"] == 0.0
    assert w1["error_angle"] < 20      # measured 11.6°: error-spike quantisation (q = 0.125)
    assert w1["update_angle_r1"] < 15  # measured 8.2°
    assert w1["update_angle_r2"] < 40  # measured 30.8°: R2 also credits spike timing
    assert w2["update_angle_r1"] < 8   # measured 3.6°
    assert w2["update_angle_r2"] < 35  # measured 25.2°: ψ̄ · x̄ is the mean-field of Σ_t ψ ε
    assert w2["error_angle"] is None and w2["feedback_angle"] is None
    assert 1.0 < w1["norm_ratio_r1"] < 3.0  # x̄ ≈ a / (1 - d_c): the trace doubles the rate


def test_exact_eligibility_of_the_output_layer_is_bptt(probe):
    """The e-prop check: with the exact per-synapse trace, the output layer's Brian2 update IS the
    BPTT gradient (R2) — its error a - y is exact, and Σ_t ψ[t] ε[t] is forward-mode BPTT."""
    result, _ = _measure("symmetric", probe, eligibility="exact")
    w2 = result["layers"]["W2"]
    assert w2["update_angle_r2"] < 1e-3          # measured 0.0°
    assert w2["norm_ratio_r2"] == pytest.approx(1.0, rel=1e-6)
    assert w2["update_angle_r1"] > 10            # ... and not the rate gradient (25.6°)


def test_random_feedback_starts_near_90_degrees_in_the_hidden_layer(probe):
    result, state = _measure("fa", probe)
    w1, w2 = result["layers"]["W1"], result["layers"]["W2"]
    assert 75 < w1["feedback_angle"] < 105
    assert 70 < w1["error_angle"] < 110       # measured 90.3°
    assert 70 < w1["update_angle_r1"] < 110   # measured 90.8°
    assert w2["update_angle_r1"] < 8          # the output layer learns from its own error
    np.testing.assert_array_equal(result["arrays"]["record"].state["B1"], state["B1"])
    assert "θ(B,Wᵀ)" in format_table([("fa", result)], markdown=True)


@pytest.mark.slow
def test_tracking_measures_without_disturbing_training(tmp_path):
    """--track-alignment: the same weights as an untracked run, a series of measurements."""
    common = ["train", "--device", "runtime", "--hidden", "20", "--epochs", "1",
              "--train-limit", "60", "--test-limit", "40", "--sleep-every", "30",
              "--sleep-slots", "4", "--seed", "4"]
    cli = [sys.executable, "-m", "plausigrad.protocols.cli"]
    plain = subprocess.run(cli + common + ["--out", str(tmp_path / "plain")],
                           capture_output=True, text=True, timeout=900)
    tracked = subprocess.run(cli + common + ["--out", str(tmp_path / "tracked"),
                                             "--track-alignment", "32", "--probe-size", "16"],
                             capture_output=True, text=True, timeout=900)
    assert plain.returncode == 0 and tracked.returncode == 0, tracked.stderr[-2000:]
    a = np.load(tmp_path / "plain" / "checkpoint.npz")
    b = np.load(tmp_path / "tracked" / "checkpoint.npz")
    for name in a.files:
        np.testing.assert_array_equal(a[name], b[name])
    metrics = json.loads((tmp_path / "tracked" / "metrics.json").read_text())
    points = metrics["epochs"][0]["alignment"]
    # snapshots at slots 0 and 32 (30 samples + 2 of 4 sleep slots), then the end of the epoch
    assert [p["samples_seen"] for p in points] == [0, 30, 60]
    for point in points:
        assert point["count_mismatch"] == 0
        assert 0 <= point["layers"]["W1"]["update_angle_r1"] <= 180
    align = subprocess.run(cli + ["align", str(tmp_path / "tracked"), "--probe-size", "16",
                                  "--out", str(tmp_path / "align.json")],
                           capture_output=True, text=True, timeout=900)
    assert align.returncode == 0, align.stderr[-2000:]
    measured = json.loads((tmp_path / "align.json").read_text())
    assert measured["layers"]["W1"] == points[-1]["layers"]["W1"]  # same probe, seed, weights
    figure = subprocess.run(cli + ["plot-alignment", str(tmp_path / "tracked"),
                                   "--out", str(tmp_path / "fig.png")],
                            capture_output=True, text=True, timeout=300)
    assert figure.returncode == 0, figure.stderr[-2000:]
    assert (tmp_path / "fig.png").stat().st_size > 10_000
