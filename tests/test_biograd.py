"""BioGrad on Brian2 against analytic solutions and the numpy reference (runtime, numpy target).

Every test here builds a small network with the same engine the CLI uses. Input spike trains are
made deterministic where a test needs identical trains (pixels of 0 or 1 with input_rate 1), or
are read back from Brian2's SpikeMonitor and fed to the numpy reference.
"""

import numpy as np
import pytest

from plausigrad.analysis.references import biograd as ref
from plausigrad.models.schedule_signals import EVAL, TRAIN
from plausigrad.protocols.angles import angle_degrees
from plausigrad.protocols.devices import Device
from plausigrad.protocols.engine import Simulator, slot_metrics
from plausigrad.protocols.recorders import Probes
from plausigrad.protocols.schedule import SleepSchedule, Windows
from plausigrad.rules.biograd import BioGrad, BioGradParameters

D_C, D_V = 0.5, 0.75
WINDOWS = Windows(forward_steps=12, feedback_steps=10)


def simulate(rule, sizes, state, images, labels, train_order, n_eval=0, sleep=None, probes=None,
             seed=1, windows=WINDOWS):
    n_train = len(images) - n_eval
    sim = Simulator(rule, sizes, windows, sleep, images, labels, n_train, n_eval,
                    device=Device("runtime", runtime_target="numpy"),
                    recorders=[Probes(probes)] if probes else [])
    return sim.run(state, np.asarray(train_order), seed,
                   rule.learning_rate_values(len(sizes) - 1))


def test_membrane_and_trace_follow_closed_form():
    """One input spiking every step into one neuron below threshold: c, v, x̂ in closed form."""
    w = 0.05
    sizes = (1, 1, 10)
    rule = BioGrad(BioGradParameters(feedback="symmetric", batch_size=1))
    state = {"W1": np.array([[w]]), "b1": np.zeros(1), "W2": np.zeros((10, 1)), "b2": np.zeros(10)}
    record = simulate(rule, sizes, state, np.ones((1, 1)), np.zeros(1), [], n_eval=1,
                      probes={"layer1": (("c", "v", "psi"), (0,)), "input": (("xhat",), (0,))})
    probe = record.probes["layer1"]
    t = probe["t"][:WINDOWS.forward_steps]
    c_expected = w * (1 - D_C ** t) / (1 - D_C)
    v_expected = w / (1 - D_C) * ((1 - D_V ** t) / (1 - D_V)
                                  - D_C * (D_V ** t - D_C ** t) / (D_V - D_C))
    np.testing.assert_allclose(probe["c"][0][:len(t)], c_expected, atol=1e-12)
    np.testing.assert_allclose(probe["v"][0][:len(t)], v_expected, atol=1e-12)
    assert np.all(probe["psi"][0][1:len(t)] == 1.0)  # 0 < v < 1: inside the surrogate window
    # recorded before the threshold, so x̂ = d_c · x̂[t-1] with x̂[t-1] = Σ_{k<t} d_c^k
    xhat = record.probes["input"]["xhat"][0][:len(t)]
    np.testing.assert_allclose(xhat, D_C * (1 - D_C ** t) / (1 - D_C), atol=1e-12)
    assert len(record.spikes["layer1"][0]) == 0  # v_∞ = 0.4 < V_th: never fires


class HalfDither:
    """Stands in for the reference's generator: the dither U is 1/2 (Brian2's error_dither = 0)."""

    def random(self, shape, dtype=np.float32):
        return np.full(shape, 0.5, dtype=dtype)


def _input_spike_array(record, n_inputs, forward_steps):
    spikes = np.zeros((forward_steps, 1, n_inputs))
    i, t = record.spikes["input"]
    keep = t < forward_steps
    spikes[t[keep], 0, i[keep]] = 1
    return spikes


@pytest.mark.parametrize("eligibility", ["factorised", "exact"])
def test_one_update_matches_numpy_reference_on_identical_spike_trains(eligibility):
    rng = np.random.default_rng(3)
    sizes = (40, 16, 10)
    eta = (0.5, 0.5)
    rule = BioGrad(BioGradParameters(feedback="symmetric", batch_size=1, eligibility=eligibility,
                                     learning_rate=eta, dithered_errors=False))
    state = {"W1": rng.normal(0, 0.25, (16, 40)), "b1": np.zeros(16),
             "W2": rng.normal(0, 0.4, (10, 16)), "b2": np.zeros(10)}
    image = rng.uniform(0, 1, (1, 40))
    record = simulate(rule, sizes, state, image, np.array([4]), [0],
                      probes={"layer1": (("v", "psi"), tuple(range(16)))})
    spikes = _input_spike_array(record, 40, WINDOWS.forward_steps)
    params = {"W": [state["W1"].copy(), state["W2"].copy()], "b": [np.zeros(16), np.zeros(10)]}
    fwd = ref.forward(rule.params.neuron, params, spikes,
                      exact_layers=(1, 2) if eligibility == "exact" else (),
                      record={1: np.arange(16)})
    # forward window: hidden membrane at every step and the output counts agree exactly
    v_ref = fwd["rec"][1]["v"][:, 0, :].T
    np.testing.assert_allclose(record.probes["layer1"]["v"][:, :WINDOWS.forward_steps], v_ref,
                               atol=1e-10)
    np.testing.assert_array_equal(record.output_counts[0], fwd["count"][2][0])
    cfg = ref.Config(sizes=sizes, eta=eta, eta_b=(0.0, 0.0), batch_size=1, q=0.125, n_err=8,
                     y_on=rule.params.target_rate,
                     eligibility=eligibility, dtype="float64")
    update = ref.errors_and_updates(cfg, params, fwd, np.array([4]), rng=HalfDither())
    assert np.abs(update["dW"][0]).max() > 0, "test needs a non-zero hidden update"
    for l in (1, 2):
        np.testing.assert_allclose(record.state[f"W{l}"] - state[f"W{l}"], update["dW"][l - 1],
                                   atol=1e-10)


def test_two_hidden_layers_update_matches_numpy_reference_on_identical_spike_trains():
    """40-16-12-10 with B = Wᵀ: every layer's membrane (first hidden layer), the output counts
    and all three weight changes equal the numpy reference fed Brian2's input spikes (the error
    passes two hidden layers down)."""
    rng = np.random.default_rng(7)
    sizes = (40, 16, 12, 10)
    eta = (0.5, 0.5, 0.5)
    rule = BioGrad(BioGradParameters(feedback="symmetric", batch_size=1, learning_rate=eta,
                                     init_std=(0.25, 0.4, 0.4), dithered_errors=False))
    state = {"W1": rng.normal(0, 0.3, (16, 40)), "b1": np.zeros(16),
             "W2": rng.normal(0, 0.45, (12, 16)), "b2": np.zeros(12),
             "W3": rng.normal(0, 0.5, (10, 12)), "b3": np.zeros(10)}
    image = rng.uniform(0, 1, (1, 40))
    record = simulate(rule, sizes, state, image, np.array([4]), [0],
                      probes={"layer1": (("v",), tuple(range(16)))})
    spikes = _input_spike_array(record, 40, WINDOWS.forward_steps)
    params = {"W": [state[f"W{l}"].copy() for l in (1, 2, 3)],
              "b": [np.zeros(n) for n in sizes[1:]]}
    fwd = ref.forward(rule.params.neuron, params, spikes, record={1: np.arange(16)})
    np.testing.assert_allclose(record.probes["layer1"]["v"][:, :WINDOWS.forward_steps],
                               fwd["rec"][1]["v"][:, 0, :].T, atol=1e-10)
    np.testing.assert_array_equal(record.output_counts[0], fwd["count"][3][0])
    assert fwd["count"][2].sum() > 0 and fwd["count"][3].sum() > 0
    cfg = ref.Config(sizes=sizes, eta=eta, eta_b=(0.0,) * 3, batch_size=1, q=0.125, n_err=8,
                     y_on=rule.params.target_rate, dtype="float64")
    update = ref.errors_and_updates(cfg, params, fwd, np.array([4]), rng=HalfDither())
    assert np.abs(update["dW"][0]).max() > 0, "the error must reach the first layer"
    for l in (1, 2, 3):
        np.testing.assert_allclose(record.state[f"W{l}"] - state[f"W{l}"], update["dW"][l - 1],
                                   atol=1e-10, err_msg=f"W{l}")


def test_sleep_aligns_every_feedback_matrix_of_a_deeper_network():
    """20-40-30-10, 80 sleep slots: sleep lowers the angle of both B1 (to W2ᵀ) and B2 (to W3ᵀ)."""
    rng = np.random.default_rng(1)
    sizes = (20, 40, 30, 10)
    rule = BioGrad(BioGradParameters(feedback="sleep", batch_size=1, sleep_decay=0.05,
                                     sleep_learning_rate=0.02, sleep_noise_rate=0.2,
                                     init_std=(0.1, 0.3, 0.3), learning_rate=(0.02, 0.2, 0.2)))
    state = rule.initial_state(sizes, rng)
    state["W2"] = rng.normal(0, 0.3, (30, 40))
    state["W3"] = rng.normal(0, 0.3, (10, 30))
    before = [angle_degrees(state[f"B{l}"], state[f"W{l + 1}"].T) for l in (1, 2)]
    record = simulate(rule, sizes, state, np.zeros((1, 20)), np.zeros(1), [0],
                      sleep=SleepSchedule(every_samples=1, slots=80), windows=Windows(5, 5))
    after = [angle_degrees(record.state[f"B{l}"], record.state[f"W{l + 1}"].T) for l in (1, 2)]
    assert min(before) > 80
    # measured 87.6° -> 24.6° (B1) and 91.8° -> 43.4° (B2; the wider layer converges slower)
    assert after[0] < 35 and after[1] < 55, (before, after)


def _binary_digit(rng, n=64):
    return (rng.uniform(0, 1, (1, n)) < 0.3).astype(float)


def test_single_update_lowers_the_loss_on_its_sample():
    """Deterministic input (pixels 0/1): loss of the same sample before and after one update."""
    rng = np.random.default_rng(0)
    sizes = (64, 32, 10)
    rule = BioGrad(BioGradParameters(feedback="symmetric", batch_size=1, learning_rate=(0.3, 0.3),
                                     dithered_errors=False))
    state = rule.initial_state(sizes, rng)
    state["W1"] = rng.normal(0, 0.15, (32, 64))
    image = _binary_digit(rng)
    images = np.concatenate([image, image])
    record = simulate(rule, sizes, state, images, np.array([7, 7]), [0], n_eval=1)
    metrics = slot_metrics(record, np.array([7, 7]), rule.count_steps(WINDOWS), rule.loss)
    assert metrics["test_loss"] < metrics["train_loss"] - 0.01, metrics


def test_sleep_lowers_feedback_angle_on_a_random_network():
    rng = np.random.default_rng(1)
    sizes = (20, 60, 10)
    rule = BioGrad(BioGradParameters(feedback="sleep", batch_size=1, sleep_decay=0.05,
                                     sleep_learning_rate=0.02, sleep_noise_rate=0.2))
    state = rule.initial_state(sizes, rng)
    state["W2"] = rng.normal(0, 0.3, (10, 60))
    before = angle_degrees(state["B1"], state["W2"].T)
    record = simulate(rule, sizes, state, np.zeros((1, 20)), np.zeros(1), [0],
                      sleep=SleepSchedule(every_samples=1, slots=40), windows=Windows(5, 5))
    after = angle_degrees(record.state["B1"], record.state["W2"].T)
    assert before > 80
    assert after < 45, (before, after)  # measured: 91.6° -> 34.1°
    np.testing.assert_array_equal(record.state["W2"], state["W2"])  # sleep leaves W alone


def test_sleep_aligns_feedback_to_weights_with_a_common_offset():
    """Trained output rows share a negative mean (every unit is 'off' for 9 of 10 labels). The
    Hebbian rule must centre each unit's input by its mean over the steps that carry input; an
    earlier version also averaged the empty first step of a slot, which added a share of the
    row mean to all of B's column and held a trained network's angle near 47°."""
    rng = np.random.default_rng(3)
    sizes = (20, 60, 10)
    rule = BioGrad(BioGradParameters(feedback="sleep", batch_size=1, sleep_decay=0.05,
                                     sleep_learning_rate=0.02, sleep_noise_rate=0.2))
    state = rule.initial_state(sizes, rng)
    state["W2"] = rng.normal(-0.05, 0.1, (10, 60))
    record = simulate(rule, sizes, state, np.zeros((1, 20)), np.zeros(1), [0],
                      sleep=SleepSchedule(every_samples=1, slots=40), windows=Windows(20, 10))
    after = angle_degrees(record.state["B1"], record.state["W2"].T)
    assert after < 23, after  # measured 16.3°; averaging over steps 0..t gave 29.9°


def test_evaluation_slots_do_not_learn():
    rng = np.random.default_rng(2)
    sizes = (30, 12, 10)
    rule = BioGrad(BioGradParameters(feedback="fa", batch_size=1))
    state = rule.initial_state(sizes, rng)
    record = simulate(rule, sizes, state, rng.uniform(0, 1, (3, 30)), np.arange(3), [], n_eval=3)
    assert set(record.kinds) == {EVAL}
    for name in state:
        np.testing.assert_array_equal(record.state[name], state[name])
    assert TRAIN not in record.kinds
