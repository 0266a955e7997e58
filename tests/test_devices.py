"""Device selection: runtime (Cython), C++ standalone and CUDA standalone (compile only)."""

import os

import numpy as np
import pytest
from brian2 import (EventMonitor, Network, NeuronGroup, SpikeMonitor, Synapses, TimedArray,
                    defaultclock, ms)

from plausigrad.models.errors import PlausigradError
from plausigrad.protocols.devices import (DEVICE_CHOICES, Device, DeviceError, activate_device,
                                          build_standalone, cxx_available, gpu_visible,
                                          is_standalone, nvcc_available)

N_SOURCE = 4
DURATION = 20 * ms
# drive[step, neuron]: each neuron's v for one millisecond, read through a 2-D TimedArray.
DRIVE = np.array([[1.0, -1.0, 0.0, 1.0],
                  [1.0, 0.0, -1.0, -1.0],
                  [0.0, 1.0, 1.0, -1.0],
                  [-1.0, 1.0, 0.0, 1.0]] * 5)
P_FIRE = np.array([1.0, 0.0, 1.0, 0.0])  # rand() < 1 always, rand() < 0 never: deterministic


@pytest.fixture(autouse=True)
def back_to_runtime():
    """Leave Brian2 on the runtime device whatever a test activated."""
    yield
    activate_device("runtime")


def small_network():
    """The Brian2 features the project relies on, with deterministic observable quantities.

    Sources read a 2-D TimedArray in run_regularly, emit custom events epos / eneg and spike
    through a rand() threshold; Synapses map two on_pre pathways to the custom events and an
    on_post pathway to the targets' spikes.
    """
    defaultclock.dt = 0.1 * ms
    drive = TimedArray(DRIVE, dt=1 * ms)
    source = NeuronGroup(
        N_SOURCE,
        """v : 1
           p_fire : 1 (constant)
           n_pos : integer""",
        threshold="rand() < p_fire", events={"epos": "v > 0.5", "eneg": "v < -0.5"},
        namespace={"drive": drive}, name="source")
    source.p_fire = P_FIRE
    source.run_regularly("v = drive(t, i)", dt=1 * ms)
    source.run_on_event("epos", "n_pos += 1")
    target = NeuronGroup(2, """a : 1
                               b : 1""", threshold="a > 20.5", reset="a = 0", name="target")
    syn = Synapses(source, target, model="""w : 1
                                            c : 1""",
                   on_pre={"pos": "a_post += w", "neg": "b_post += w"},
                   on_post="c += 1",
                   on_event={"pos": "epos", "neg": "eneg", "post": "spike"}, name="syn")
    syn.connect(j="i % 2")
    syn.w = 1.0
    monitors = {"source_spikes": SpikeMonitor(source, name="source_spikes"),
                "target_spikes": SpikeMonitor(target, name="target_spikes"),
                "eneg": EventMonitor(source, "eneg", name="eneg_events")}
    net = Network(source, target, syn, *monitors.values())
    return net, source, target, syn, monitors


def expected_quantities():
    """The same quantities computed with numpy (one time step = 0.1 ms, 10 per drive row)."""
    v = np.repeat(DRIVE, 10, axis=0)  # v during each step (run_regularly runs at 'start')
    pos, neg = v > 0.5, v < -0.5
    b = np.array([neg[:, 0::2].sum(), neg[:, 1::2].sum()], dtype=float)
    a, target_spikes = np.zeros(2), np.zeros(2, dtype=int)
    for step in range(v.shape[0]):
        fired = a > 20.5  # 'thresholds' slot
        target_spikes += fired
        a += [pos[step, 0::2].sum(), pos[step, 1::2].sum()]  # 'synapses' slot
        a[fired] = 0  # 'resets' slot
    return {"n_pos": pos.sum(axis=0), "source_count": (P_FIRE > 0) * v.shape[0],
            "b": b, "target_count": target_spikes, "eneg_count": neg.sum(axis=0)}


def observed_quantities(source, target, syn, monitors):
    return {"n_pos": np.asarray(source.n_pos[:]),
            "source_count": np.asarray(monitors["source_spikes"].count[:]),
            "b": np.asarray(target.b[:]),
            "target_count": np.asarray(monitors["target_spikes"].count[:]),
            "eneg_count": np.bincount(monitors["eneg"].i[:], minlength=N_SOURCE),
            "post_c": np.asarray(syn.c[:])}


def check_quantities(observed):
    expected = expected_quantities()
    for key, value in expected.items():
        np.testing.assert_array_equal(observed[key], value, err_msg=key)
    # on_post: every synapse onto target j counted every spike of j
    np.testing.assert_array_equal(observed["post_c"],
                                  expected["target_count"][np.arange(N_SOURCE) % 2])


def run_on(kind, directory=None):
    activate_device(kind, directory)
    net, source, target, syn, monitors = small_network()
    net.run(DURATION)
    if is_standalone(kind):
        build_standalone(directory, run=True)
    return observed_quantities(source, target, syn, monitors)


def test_unknown_device_raises_device_error():
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        activate_device("gpu")
    with pytest.raises(DeviceError):
        is_standalone("tpu")
    assert issubclass(DeviceError, PlausigradError)
    assert DEVICE_CHOICES == ("runtime", "cpp", "cuda")


def test_unknown_runtime_target_raises():
    with pytest.raises(DeviceError, match="runtime target"):
        activate_device("runtime", runtime_target="weave")


def test_missing_toolchains_raise_device_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no nvcc, no g++
    monkeypatch.setenv("CXX", "no-such-compiler")
    assert not nvcc_available() and not cxx_available()
    with pytest.raises(DeviceError, match="C\\+\\+ compiler"):
        activate_device("cpp")
    monkeypatch.delenv("CXX")
    monkeypatch.setattr("plausigrad.protocols.devices.cxx_available", lambda: True)
    with pytest.raises(DeviceError, match="nvcc not found on PATH"):
        activate_device("cuda")


def test_negative_threads_raise():
    with pytest.raises(DeviceError, match="threads"):
        activate_device("cpp", threads=-1)


@pytest.mark.cuda
def test_cuda_settings_for_cuda13(tmp_path):
    """Fast check of the preferences activate_device sets for CUDA (nothing is compiled)."""
    if not nvcc_available():
        pytest.skip("nvcc not found on PATH")
    from brian2 import prefs
    device = activate_device("cuda", str(tmp_path), compute_capability=8.0)
    backend = prefs.devices.cuda_standalone.cuda_backend
    assert backend.compute_capability == 8.0
    assert "-std=c++17" in backend.extra_compile_args_nvcc
    assert "-std=c++11" not in prefs.codegen.cpp.extra_compile_args_gcc
    if not gpu_visible():
        assert backend.detect_gpus is False and backend.gpu_id == 0
    for link_dir in device.library_dirs:  # the cuRAND link directory, when the wheel is used
        assert os.path.exists(os.path.join(link_dir, "libcurand.so"))


def test_runtime_network_matches_numpy():
    check_quantities(run_on("runtime"))


def test_switch_from_standalone_back_to_runtime(tmp_path):
    # A standalone network that is set up but never built must not leak into the runtime run.
    activate_device("cpp", str(tmp_path))
    net, *_ = small_network()
    net.run(DURATION)
    check_quantities(run_on("runtime"))


@pytest.mark.standalone
@pytest.mark.slow
def test_cpp_standalone_agrees_with_runtime(tmp_path):
    if not cxx_available():
        pytest.skip("no working C++ compiler (g++) on PATH")
    runtime = run_on("runtime")
    standalone = run_on("cpp", str(tmp_path / "cpp"))
    for key in runtime:
        np.testing.assert_array_equal(standalone[key], runtime[key], err_msg=key)
    check_quantities(standalone)
    assert os.path.isfile(tmp_path / "cpp" / "main")
    # and back: runtime still works after a standalone build in the same process
    check_quantities(run_on("runtime"))


@pytest.mark.parametrize("kind, main_file, seed_call", [
    ("cpp", "main.cpp", "brian::_random_generators[_i].seed((unsigned long)brian::"),
    pytest.param("cuda", "main.cu", "brian::random_number_buffer.set_seed((unsigned long long)"
                                    "brian::", marks=pytest.mark.cuda)])
def test_every_standalone_epoch_reads_its_seed_from_run_args(tmp_path, kind, main_file,
                                                             seed_call):
    """The generated main seeds the random generators from ``rng.rng_seed`` right after the
    run_args are applied, on C++ and on CUDA (where the per-epoch seed was once never read)."""
    from plausigrad.protocols.engine import Simulator
    from plausigrad.protocols.schedule import Windows
    from plausigrad.rules.registry import make_rule
    rule = make_rule("ssnnbp")  # stochastic neurons: every spike depends on the seed
    simulator = Simulator(rule, (6, 4, 3), Windows(3, 3), None, np.zeros((3, 6)), np.zeros(3),
                          2, 1, device=Device(kind, str(tmp_path / kind)))
    simulator.compile(generate_only=True)
    main = (tmp_path / kind / main_file).read_text()
    applied = main.index("set_from_command_line(args);")
    seeded = main.index(seed_call + "_array_rng_rng_seed[0]")
    assert applied < seeded < main.index("brian_end()")
