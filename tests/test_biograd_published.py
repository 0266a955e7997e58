"""BioGrad's published profile on Brian2 against the numpy port of the lab code
(analysis/references/biograd_lab.py): every spike, potential, trace, dendrite and weight update
of a training window, and a sleep block, on the same input spikes (read back from Brian2)."""

import numpy as np
import pytest

from plausigrad.analysis.references import biograd_lab as lab
from plausigrad.protocols.devices import Device
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.recorders import Probes
from plausigrad.protocols.schedule import SleepSchedule, Windows
from plausigrad.rules.biograd import BioGrad, BioGradParameters

SIZES = (6, 5, 4, 3)
T, SOFT, S = 12, 4, 10
WINDOWS = Windows(forward_steps=T, feedback_steps=len(SIZES) - 1 + 2)
SLOT = WINDOWS.slot_steps
ATOL = 1e-10


@pytest.fixture(scope="module")
def run():
    rng = np.random.default_rng(5)
    params = BioGradParameters(profile="published", batch_size=1, learning_rate=(0.2,),
                               bias_learning_rate=0.2, sleep_learning_rate=0.01,
                               soft_error_step=SOFT, sleep_steps=S)
    rule = BioGrad(params)
    state = rule.initial_state(SIZES, rng)
    for l in (1, 2, 3):  # strong enough weights to make every layer fire
        state[f"W{l}"] = state[f"W{l}"] * 3.0 + 0.15
    images = rng.uniform(0.2, 0.9, (2, SIZES[0]))
    labels = np.array([1, 2])
    probes = {f"layer{l}": (("v", "trace_bias", "trace_db", "dend", "noise_trace"),
                            tuple(range(SIZES[l]))) for l in (1, 2, 3)}
    probes.update({f"W{l}": (("trace_in", "trace_dw"), tuple(range(SIZES[l] * SIZES[l - 1])))
                   for l in (1, 2, 3)})
    sim = Simulator(rule, SIZES, WINDOWS, SleepSchedule(every_samples=1, slots=2), images,
                    labels, 1, 1, device=Device("runtime", runtime_target="numpy"),
                    recorders=[Probes(probes)])
    record = sim.run({k: v.copy() for k, v in state.items()}, np.array([0]), 1,
                     rule.learning_rate_values(3))
    return rule, state, labels, record


def _spike_array(record, group, n, start, steps):
    out = np.zeros((steps, n))
    i, t = record.spikes[group]
    keep = (t >= start) & (t < start + steps)
    out[t[keep] - start, i[keep]] = 1
    return out


def _weights(state, B=None):
    return {"W": [state[f"W{l}"] for l in (1, 2, 3)], "b": [state[f"b{l}"] for l in (1, 2, 3)],
            "B": B if B is not None else [state["B1"], state["B2"]]}


def _config(rule):
    p = rule.params
    return lab.Config(neuron=p.lif, soft_error_step=SOFT, learning_rate=p.learning_rate[0],
                      sleep_learning_rate=p.sleep_learning_rate, oja_power=p.oja_power)


def _lab_window(rule, state, labels, record):
    x = _spike_array(record, "input", SIZES[0], 0, T)[:, None, :]
    rec = []
    final = lab.window(_config(rule), _weights(state), x, np.eye(3)[[labels[0]]],
                       observe=lambda t, s, o: rec.append((s, o)))
    return x, rec, final


def test_training_window_agrees_on_every_spike_potential_and_trace(run):
    rule, state, labels, record = run
    x, rec, final = _lab_window(rule, state, labels, record)
    assert x.sum() > 10
    for l in (1, 2, 3):
        lab_spikes = np.array([o["s"][l - 1][0] for _, o in rec])
        assert lab_spikes.sum() > 0, f"layer {l} must fire for the test to mean something"
        np.testing.assert_array_equal(_spike_array(record, f"layer{l}", SIZES[l], l, T),
                                      lab_spikes, err_msg=f"spikes of layer {l}")
        probe = record.probes[f"layer{l}"]
        np.testing.assert_allclose(probe["v"][:, l:l + T].T, [o["v"][l - 1][0] for _, o in rec],
                                   atol=ATOL, err_msg=f"v of layer {l}")
        # traces are updated in the ``end`` slot and probed before the next step's threshold
        for name in ("trace_bias", "trace_db"):
            np.testing.assert_allclose(probe[name][:, l + 1:l + 1 + T].T,
                                       [getattr(s, name)[l - 1][0] for s, _ in rec], atol=ATOL)
        syn = record.probes[f"W{l}"]
        n_pre, n_post = SIZES[l - 1], SIZES[l]
        for name, lab_name in (("trace_in", "trace_pre"), ("trace_dw", "trace_dw")):
            brian = syn[name][:, l + 1:l + 1 + T].T.reshape(T, n_pre, n_post).transpose(0, 2, 1)
            np.testing.assert_allclose(brian, [getattr(s, lab_name)[l - 1][0] for s, _ in rec],
                                       atol=ATOL, err_msg=f"{name} of W{l}")
        assert np.abs(final.trace_dw[l - 1]).max() > 0
        # error dendrites just before the update (last step of the slot)
        np.testing.assert_allclose(probe["dend"][:, SLOT - 1], final.dendrite[l - 1][0],
                                   atol=ATOL, err_msg=f"dendrite of layer {l}")
    assert final.feedback_steps == T - SOFT
    assert np.abs(final.dendrite[2]).sum() > 0 and np.abs(final.dendrite[0]).max() > 0


def test_update_and_sleep_block_agree(run):
    rule, state, labels, record = run
    config = _config(rule)
    _, _, final = _lab_window(rule, state, labels, record)
    new = lab.update(config, _weights(state), final)
    for l in (1, 2, 3):
        assert np.abs(new["W"][l - 1] - state[f"W{l}"]).max() > 1e-4
        np.testing.assert_allclose(record.state[f"W{l}"], new["W"][l - 1], atol=ATOL)
        np.testing.assert_allclose(record.state[f"b{l}"], new["b"][l - 1], atol=ATOL)
    # sleep: slot 1 drives layer 2 (1 + 1 mod 2), slot 2 drives layer 1; noise in steps [1, 1+S)
    weights = {"W": new["W"], "b": new["b"], "B": [state["B1"], state["B2"]]}
    for slot, m in ((1, 2), (2, 1)):
        trace = record.probes[f"layer{m}"]["noise_trace"]  # probed before this step's events
        start = slot * SLOT
        diff = (trace[:, start + 2:start + 2 + S] - trace[:, start + 1:start + 1 + S]).T
        assert np.abs(diff).sum() > 0
        z_pos, z_neg = np.maximum(diff, 0)[:, None, :], np.maximum(-diff, 0)[:, None, :]
        rec = []
        sleep = lab.sleep_layer(config, weights, m, z_pos, z_neg,
                                observe=lambda t, s, o: rec.append(o))
        for k, l in enumerate(range(m + 1, 4)):
            np.testing.assert_array_equal(
                _spike_array(record, f"layer{l}", SIZES[l], start + 1 + l - m, S),
                np.array([o["s"][k][0] for o in rec]), err_msg=f"sleep spikes of layer {l}")
        assert sleep.output_trace.sum() > 0
        B = lab.sleep_update(config, state[f"B{m}"], sleep.noise_trace, sleep.output_trace)
        assert np.abs(B - state[f"B{m}"]).max() > 1e-4
        # applied at the start of the evaluation slot that follows the block
        np.testing.assert_allclose(record.state[f"B{m}"], B, atol=ATOL, err_msg=f"B{m}")
    for l in (1, 2, 3):  # sleep leaves W alone
        np.testing.assert_allclose(record.state[f"W{l}"], new["W"][l - 1], atol=ATOL)


# -- defaults of the published profile -------------------------------------------------------

def test_published_sleep_defaults_follow_the_lab_schedule():
    """A block of (L − 1)·B sleep slots after every B samples (the lab sleeps one sleep batch
    per hidden layer after every training batch); the reconstruction keeps (1000, 20); the
    user's values win."""
    from plausigrad.protocols.training import RunConfig
    published = {"profile": "published"}
    config = RunConfig(rule="biograd", hidden=(500, 100), rule_params=published)
    assert (config.sleep_every, config.sleep_slots) == (128, 256)
    config = RunConfig(rule="biograd", hidden=(20,), rule_params={**published, "batch_size": 16})
    assert (config.sleep_every, config.sleep_slots) == (16, 16)
    config = RunConfig(rule="biograd", hidden=(8, 8, 8), rule_params={**published, "batch_size": 4})
    assert (config.sleep_every, config.sleep_slots) == (4, 12)
    config = RunConfig(rule="biograd", hidden=(500, 100), rule_params=published, sleep_every=256,
                       sleep_slots=4)
    assert (config.sleep_every, config.sleep_slots) == (256, 4)
    config = RunConfig(rule="biograd", hidden=(500, 100))
    assert (config.sleep_every, config.sleep_slots) == (1000, 20)
