"""EMSTDP's published profile against our numpy port of the authors' code, spike for spike.

The port (:mod:`plausigrad.analysis.references.emstdp_code`) follows zmeidd/EMSTDP's
``EMSTDP_python/EMSTDP_algo.py`` ``Network.Train`` step by step. Brian2 runs the published
profile on a tiny network; the input spikes Brian2 drew (one shared random number per step) are
fed to the port as its ``input_spikes``, batch by batch, from the same initial weights. Every
forward spike and every signed error spike (after the derivative gate) of every step must be
equal, and so must the weights and RMS normalisers after the last of two mini-batches (to 1e-12:
the same operations, summed in another order); the second batch's spikes depend on the first
batch's update, so that update is compared too.
"""

import functools

import numpy as np
import pytest
from brian2 import EventMonitor
from plausigrad.analysis.references import emstdp_code
from plausigrad.models.errors import ConfigurationError
from plausigrad.models.integrate_and_fire import IntegrateAndFireParameters, error_thresholds
from plausigrad.protocols.devices import Device
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.recorders import Probes, Recorder
from plausigrad.protocols.schedule import Windows
from plausigrad.rules.emstdp import EMSTDP, EMSTDPParameters

WINDOWS = Windows(10, 10)   # the code's T = 20, twin = 9
N_TRAIN, BATCH = 6, 3


class ErrorSpikes(Recorder):
    """Monitors of the signed error events of every IF layer; kept on the recorder."""

    def attach(self, sim, built):
        self.monitors = {(layer.name, sign): EventMonitor(layer.group, event=f"error_{sign}",
                                                          name=f"{layer.name}_{sign}_events")
                         for layer in built.layers[1:] for sign in ("positive", "negative")}
        return list(self.monitors.values())

    def collect(self, sim, timeline):
        self.events = {key: (np.asarray(mon.i), np.round(np.asarray(mon.t) / 1e-3).astype(int))
                       for key, mon in self.monitors.items()}
        return {}


def per_slot(indices, steps, n_neurons, n_slots, value=1.0):
    """(n_slots, T, n) arrays of events from (neuron, absolute step) pairs."""
    out = np.zeros((n_slots, WINDOWS.slot_steps, n_neurons))
    slot, offset = np.divmod(steps, WINDOWS.slot_steps)
    keep = slot < n_slots
    out[slot[keep], offset[keep], indices[keep]] = value
    return out


@functools.lru_cache(maxsize=None)
def run_both(sizes, feedback, seed=3, device="runtime", build_directory=None):
    """Brian2 (Cython runtime, or C++ standalone) and the port on the same input; a dict of
    both sides."""
    rng = np.random.default_rng(seed)
    rule = EMSTDP(EMSTDPParameters(profile="published", feedback=feedback, batch_size=BATCH,
                                   learning_rate=(0.05,)))
    state = rule.initial_state(sizes, rng)
    images = rng.uniform(0.0, 1.0, size=(N_TRAIN, sizes[0]))
    labels = rng.integers(0, sizes[-1], size=N_TRAIN)
    errors = ErrorSpikes()
    sim = Simulator(rule, sizes, WINDOWS, None, images, labels, N_TRAIN, 0,
                    device=Device(device, build_directory, runtime_target="cython"),
                    recorders=[Probes({}), errors])
    record = sim.run(state, np.arange(N_TRAIN), 1, rule.learning_rate_values(len(sizes) - 1))

    n_layers = len(sizes) - 1
    names = ["input"] + [f"layer{l}" for l in range(1, n_layers + 1)]
    brian = [per_slot(*record.spikes[name], n, N_TRAIN) for name, n in zip(names, sizes)]
    brian_sigma = [per_slot(*errors.events[(name, "positive")], n, N_TRAIN)
                   - per_slot(*errors.events[(name, "negative")], n, N_TRAIN)
                   for name, n in zip(names[1:], sizes[1:])]

    net = emstdp_code.CodeNetwork.from_rule(rule, sizes, WINDOWS)
    weights = dict(state)
    port, port_sigma = [[] for _ in sizes], [[] for _ in sizes[1:]]
    for start in range(0, N_TRAIN, BATCH):
        batch = slice(start, start + BATCH)
        x = brian[0][batch].transpose(1, 0, 2)          # (T, bs, n_0)
        weights, spikes, sigma = emstdp_code.train_batch(net, weights, x, labels[batch])
        for store, s in zip(port, spikes):
            store.append(s.transpose(1, 0, 2))
        for store, s in zip(port_sigma, sigma):
            store.append(s.transpose(1, 0, 2))
    port = [np.concatenate(p) for p in port]
    port_sigma = [np.concatenate(p) for p in port_sigma]
    return dict(record=record, brian=brian, brian_sigma=brian_sigma, port=port,
                port_sigma=port_sigma, weights=weights, initial=state, images=images)


CASES = [((12, 8, 5), "symmetric"), ((12, 8, 5), "fa"), ((12, 8, 6, 5), "symmetric"),
         ((12, 8, 6, 5), "fa"), ((12, 8, 6, 5), "dfa")]


@pytest.mark.parametrize("sizes, feedback", CASES)
def test_published_profile_equals_the_code_spike_for_spike(sizes, feedback):
    check_agreement(run_both(sizes, feedback), sizes)


@pytest.mark.slow
@pytest.mark.standalone
def test_published_profile_on_cpp_equals_the_code(tmp_path):
    """The same on C++ standalone (the shared input draw and the learn pathway after the
    resets are generated code there too): two hidden layers, dfa."""
    sizes = (12, 8, 6, 5)
    check_agreement(run_both(sizes, "dfa", device="cpp", build_directory=str(tmp_path)), sizes)


def check_agreement(run, sizes):
    brian, brian_sigma, port, port_sigma = (run["brian"], run["brian_sigma"], run["port"],
                                            run["port_sigma"])
    for l in range(1, len(sizes)):
        assert brian[l].sum() > 0, f"layer {l} is silent: the test would prove nothing"
        np.testing.assert_array_equal(brian[l], port[l], err_msg=f"spikes of layer {l}")
        np.testing.assert_array_equal(brian_sigma[l - 1], port_sigma[l - 1],
                                      err_msg=f"error spikes of layer {l}")
    assert np.abs(np.concatenate([s.ravel() for s in brian_sigma])).sum() > 0
    assert np.abs(brian_sigma[0]).sum() > 0, "no hidden error spikes: nothing compared"
    final = run["record"].state
    for name, value in final.items():
        np.testing.assert_allclose(value, run["weights"][name], rtol=0, atol=1e-12,
                                   err_msg=name)
    moved = [np.abs(final[f"W{l}"] - run["initial"][f"W{l}"]).max()
             for l in range(1, len(sizes))]
    assert min(moved) > 1e-3, "some weights did not move: the update was not compared"


def test_shared_draw_nests_the_input_spikes():
    """One random number per step for all pixels (the code's ``randy``): in every step the
    spiking pixels are exactly those brighter than a threshold, so a pixel never spikes while a
    brighter one is silent."""
    run = run_both((12, 8, 5), "symmetric")
    pixels, spikes = run["images"], run["brian"][0]
    for slot in range(N_TRAIN):
        order = np.argsort(pixels[slot])
        ordered = spikes[slot][:, order]              # dim to bright
        assert np.all(np.diff(ordered, axis=1) >= 0), f"slot {slot}: not nested"
    assert 0 < spikes.mean() < 1


def test_error_thresholds_follow_the_feedback_mode():
    """[CODE] Init_Threshold: fa and dfa use √(3/n_O) where symmetric uses √(3/h)."""
    params = IntegrateAndFireParameters()
    np.testing.assert_allclose(error_thresholds((784, 100, 10), params, "symmetric"), [0.2165],
                               atol=1e-4)
    for mode in ("fa", "dfa"):
        np.testing.assert_allclose(error_thresholds((784, 100, 10), params, mode), [0.6847],
                                   atol=1e-4)
    deep = (784, 200, 100, 10)
    np.testing.assert_allclose(error_thresholds(deep, params, "fa"),
                               [100 * np.sqrt(3 / 100) / 8, 10 * np.sqrt(3 / 10) / 12])
    np.testing.assert_allclose(error_thresholds(deep, params, "dfa"),
                               [10 * np.sqrt(3 / 10) / 8, 10 * np.sqrt(3 / 10) / 12])


def test_profiles_set_their_defaults_and_user_values_win():
    published, revised = EMSTDPParameters(), EMSTDPParameters(profile="revised")
    assert (published.neuron.error_reset, published.restart_phase2, published.input_draw) == (
        "zero", False, "shared")
    assert (revised.neuron.error_reset, revised.restart_phase2, revised.input_draw) == (
        "subtract", True, "independent")
    assert EMSTDP(published).default_windows == (50, 50)
    assert EMSTDP(revised).default_windows == (49, 50)
    # the steps the output counts cover (the logged losses are rates over them)
    assert EMSTDP(published).count_steps(Windows(50, 50)) == (49, 100)
    assert EMSTDP(revised).count_steps(Windows(49, 50)) == (49, 49)
    assert EMSTDPParameters(feedback="dfa").gated is False          # the code: no dr for dfa
    assert EMSTDPParameters(feedback="fa").gated is True
    mixed = EMSTDPParameters(neuron={"error_reset": "subtract"}, restart_phase2=True)
    assert (mixed.profile, mixed.neuron.error_reset, mixed.restart_phase2) == (
        "published", "subtract", True)


def test_published_profile_needs_equal_windows():
    rule = EMSTDP(EMSTDPParameters(profile="published"))
    with pytest.raises(ConfigurationError, match="equal windows"):
        rule.check_windows(Windows(49, 50), 2)
    EMSTDP(EMSTDPParameters(profile="revised")).check_windows(Windows(49, 50), 2)
    with pytest.raises(ConfigurationError, match="profile"):
        EMSTDPParameters(profile="paper")
