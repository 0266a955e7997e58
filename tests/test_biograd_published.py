"""BioGrad's published profile on Brian2 against the numpy port of the lab code
(analysis/references/biograd_lab.py), on the same input spikes (read back from Brian2):

* one training window (numpy target, batch 1): every spike, potential, trace, dendrite and the
  update, and a sleep block;
* a whole run (Cython target; the same on C++ standalone, ``slow``): 2 mini-batches of 2
  samples with the lab's sleep block after each, then 2 evaluation samples — every spike,
  potential, trace and dendrite of every training slot, W/b after every batch, B after every
  sleep block, the evaluation spikes, counts and predictions, the final state;
* the published defaults: the lab's sleep schedule and the window checks."""

import numpy as np
import pytest

from plausigrad.analysis.references import biograd_lab as lab
from plausigrad.protocols.devices import Device
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.recorders import Probes
from plausigrad.protocols.schedule import SleepSchedule, Windows
from plausigrad.rules.biograd import TRACE_FORMS, BioGrad, BioGradParameters

SIZES = (6, 5, 4, 3)
T, SOFT, S = 12, 4, 10
WINDOWS = Windows(forward_steps=T, feedback_steps=len(SIZES) - 1 + 2)
SLOT = WINDOWS.slot_steps
ATOL = 1e-10


@pytest.fixture(scope="module", params=TRACE_FORMS)
def run(request):
    rng = np.random.default_rng(5)
    params = BioGradParameters(profile="published", batch_size=1, learning_rate=(0.2,),
                               bias_learning_rate=0.2, sleep_learning_rate=0.01,
                               soft_error_step=SOFT, sleep_steps=S, trace_form=request.param)
    rule = BioGrad(params)
    state = rule.initial_state(SIZES, rng)
    for l in (1, 2, 3):  # strong enough weights to make every layer fire
        state[f"W{l}"] = state[f"W{l}"] * 3.0 + 0.15
    images = rng.uniform(0.2, 0.9, (2, SIZES[0]))
    labels = np.array([1, 2])
    probes = _trace_probes(rule)
    sim = Simulator(rule, SIZES, WINDOWS, SleepSchedule(every_samples=1, slots=2), images,
                    labels, 1, 1, device=Device("runtime", runtime_target="numpy"),
                    recorders=[Probes(probes)])
    record = sim.run({k: v.copy() for k, v in state.items()}, np.array([0]), 1,
                     rule.learning_rate_values(3))
    return rule, state, labels, record


def _trace_probes(rule):
    """What to probe for the synapse traces p, e: the variables themselves (per-step form) or
    the synapse's c, ê and the post neuron's P, H (event form; :func:`_synapse_trace`)."""
    per_step = rule.params.trace_form == "per_step"
    probes = {}
    for l in (1, 2, 3):
        probes[f"layer{l}"] = (("v", "trace_bias", "trace_db", "dend", "noise_trace")
                               + (() if per_step else ("trace_product", "trace_sum")),
                               tuple(range(SIZES[l])))
        probes[f"W{l}"] = (("trace_in", "trace_dw") if per_step else
                           ("trace_scaled", "trace_offset"),
                           tuple(range(SIZES[l] * SIZES[l - 1])))
    return probes


def _synapse_trace(record, l, name):
    """p (``trace_in``) or e (``trace_dw``) of every synapse of W{l} at every probed step, shape
    (n_synapses, steps); in the event form p = c · P_post, e = ê + c · H_post (synapse index
    i · n_post + j, all-to-all)."""
    syn = record.probes[f"W{l}"]
    if name in syn:
        return syn[name]
    post = record.probes[f"layer{l}"]
    j = np.arange(SIZES[l] * SIZES[l - 1]) % SIZES[l]
    if name == "trace_in":
        return syn["trace_scaled"] * post["trace_product"][j]
    return syn["trace_offset"] + syn["trace_scaled"] * post["trace_sum"][j]


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
        n_pre, n_post = SIZES[l - 1], SIZES[l]
        for name, lab_name in (("trace_in", "trace_pre"), ("trace_dw", "trace_dw")):
            brian = _synapse_trace(record, l, name)[:, l + 1:l + 1 + T].T.reshape(
                T, n_pre, n_post).transpose(0, 2, 1)
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
    config = RunConfig(rule="biograd", hidden=(8, 8, 8), feedback_steps=6,
                       rule_params={**published, "batch_size": 4})
    assert (config.sleep_every, config.sleep_slots) == (4, 12)
    config = RunConfig(rule="biograd", hidden=(500, 100), rule_params=published, sleep_every=256,
                       sleep_slots=4)
    assert (config.sleep_every, config.sleep_slots) == (256, 4)
    config = RunConfig(rule="biograd", hidden=(500, 100))
    assert (config.sleep_every, config.sleep_slots) == (1000, 20)


# -- a whole run: mini-batches, sleep blocks between them, evaluation ------------------------
#
# Timeline (batch 2, sleep every 2 samples, (L − 1)·2 = 4 sleep slots, 2 evaluation samples):
#   slots 0, 1 TRAIN | 2..5 SLEEP | 6, 7 TRAIN | 8..11 SLEEP | 12, 13 EVAL
# Batch 1 is applied at the start of slot 2 (batch_start), batch 2 at slot 8; the B of a block
# at the start of the next non-SLEEP slot (6, 12). Sleep slot s drives layer 1 + s mod 2.

from plausigrad.models.schedule_signals import EVAL, SLEEP, TRAIN  # noqa: E402
from plausigrad.protocols.recorders import Snapshots  # noqa: E402

BATCH = 2
RUN_BLOCKS = (((0, 1), (2, 3, 4, 5)), ((6, 7), (8, 9, 10, 11)))
RUN_EVAL = (12, 13)


def _batched_run(device, trace_form="event"):
    rng = np.random.default_rng(11)
    params = BioGradParameters(profile="published", batch_size=BATCH, learning_rate=(0.3,),
                               bias_learning_rate=0.3, sleep_learning_rate=0.01,
                               soft_error_step=SOFT, sleep_steps=S, trace_form=trace_form)
    rule = BioGrad(params)
    assert rule.sleep_defaults(len(SIZES) - 2) == (BATCH, 4)
    state = rule.initial_state(SIZES, rng)
    for l in (1, 2, 3):
        state[f"W{l}"] = state[f"W{l}"] * 3.0 + 0.15
    images = rng.uniform(0.2, 0.9, (6, SIZES[0]))
    labels = np.array([1, 2, 0, 1, 2, 0])
    probes = _trace_probes(rule)
    every, slots = rule.sleep_defaults(len(SIZES) - 2)
    sim = Simulator(rule, SIZES, WINDOWS, SleepSchedule(every_samples=every, slots=slots),
                    images, labels, 4, 2, device=device, recorders=[Probes(probes), Snapshots(1)])
    record = sim.run({k: v.copy() for k, v in state.items()}, np.arange(4), 3,
                     rule.learning_rate_values(3))
    expected = [TRAIN] * 2 + [SLEEP] * 4 + [TRAIN] * 2 + [SLEEP] * 4 + [EVAL] * 2
    np.testing.assert_array_equal(record.kinds, expected)
    return rule, state, labels, record


@pytest.fixture(scope="module", params=TRACE_FORMS)
def batched(request):
    return _batched_run(Device("runtime", runtime_target="cython"), request.param)


def _snapshot(record, slot):
    found = [s for k, s in record.snapshots if k == slot]
    assert found, f"no snapshot of slot {slot}"
    return found[0]


def _replay(rule, state, labels, record):
    """The lab port over the run's timeline, on the run's own input and sleep-noise spikes.
    Yields (category, what, brian, lab) to compare: category ``window``, ``update`` (W, b, B,
    sleep) or ``evaluation``; ``what`` names the quantity."""
    config = _config(rule)
    weights = _weights(state)
    weights = {k: [a.copy() for a in v] for k, v in weights.items()}
    for block, (train, sleep) in enumerate(RUN_BLOCKS):
        # -- the mini-batch: one lab window over the batch axis, same weights ---------------
        x = np.stack([_spike_array(record, "input", SIZES[0], s * SLOT, T) for s in train], 1)
        y = np.eye(3)[labels[record.rows[list(train)]]]
        rec = []
        final = lab.window(_config(rule), weights, x, y,
                           observe=lambda t, st, o: rec.append((st, o)))
        for b, slot in enumerate(train):
            start = slot * SLOT
            yield "window", f"input spikes of slot {slot}", x[:, b].sum(), None
            for l in (1, 2, 3):
                lab_spikes = np.array([o["s"][l - 1][b] for _, o in rec])
                yield "window", f"activity of layer {l}, slot {slot}", lab_spikes.sum(), None
                yield ("window", f"spikes of layer {l}, slot {slot}",
                       _spike_array(record, f"layer{l}", SIZES[l], start + l, T), lab_spikes)
                probe = record.probes[f"layer{l}"]
                yield ("window", f"v of layer {l}, slot {slot}",
                       probe["v"][:, start + l:start + l + T].T,
                       np.array([o["v"][l - 1][b] for _, o in rec]))
                window = slice(start + l + 1, start + l + 1 + T)
                for name in ("trace_bias", "trace_db"):
                    yield ("window", f"{name} of layer {l}, slot {slot}", probe[name][:, window].T,
                           np.array([getattr(st, name)[l - 1][b] for st, _ in rec]))
                n_pre, n_post = SIZES[l - 1], SIZES[l]
                for name, lab_name in (("trace_in", "trace_pre"), ("trace_dw", "trace_dw")):
                    brian = _synapse_trace(record, l, name)[:, window].T.reshape(
                        T, n_pre, n_post).transpose(0, 2, 1)
                    yield ("window", f"{name} of W{l}, slot {slot}", brian,
                           np.array([getattr(st, lab_name)[l - 1][b] for st, _ in rec]))
                yield ("window", f"dendrite of layer {l}, slot {slot}",
                       probe["dend"][:, start + SLOT - 1], final.dendrite[l - 1][b])
        new = lab.update(config, weights, final)
        before = _snapshot(record, sleep[0])  # the batch is applied in this slot
        after = _snapshot(record, sleep[0] + 1)
        for l in (1, 2, 3):
            yield "update", f"W{l} before batch {block}", before[f"W{l}"], weights["W"][l - 1]
            yield "update", f"change of W{l} by batch {block}", np.abs(new["W"][l - 1]
                                                              - weights["W"][l - 1]).max(), None
            yield "update", f"W{l} after batch {block}", after[f"W{l}"], new["W"][l - 1]
            yield "update", f"b{l} after batch {block}", after[f"b{l}"], new["b"][l - 1]
        weights = {"W": new["W"], "b": new["b"], "B": weights["B"]}
        # -- the sleep block: per driven layer, one lab sleep batch of its slots ------------
        new_B = list(weights["B"])
        for m in (1, 2):
            slots = [s for s in sleep if 1 + s % 2 == m]
            assert len(slots) == BATCH
            trace = record.probes[f"layer{m}"]["noise_trace"]
            diff = np.stack([(trace[:, s * SLOT + 2:s * SLOT + 2 + S]
                              - trace[:, s * SLOT + 1:s * SLOT + 1 + S]).T for s in slots], 1)
            yield "update", f"sleep noise of layer {m}, block {block}", np.abs(diff).sum(), None
            rec = []
            slept = lab.sleep_layer(config, weights, m, np.maximum(diff, 0),
                                    np.maximum(-diff, 0), observe=lambda t, st, o: rec.append(o))
            for b, slot in enumerate(slots):
                for k, l in enumerate(range(m + 1, 4)):
                    yield ("update", f"sleep spikes of layer {l}, slot {slot}",
                           _spike_array(record, f"layer{l}", SIZES[l], slot * SLOT + 1 + l - m, S),
                           np.array([o["s"][k][b] for o in rec]))
            yield ("update", f"sleep output of layer {m}, block {block}",
                   slept.output_trace.sum(), None)
            new_B[m - 1] = lab.sleep_update(config, weights["B"][m - 1], slept.noise_trace,
                                            slept.output_trace)
            yield ("update", f"change of B{m} in block {block}",
                   np.abs(new_B[m - 1] - weights["B"][m - 1]).max(), None)
        applied = sleep[-1] + 1  # the next non-SLEEP slot applies the block's B
        later = (_snapshot(record, applied + 1) if applied + 1 < RUN_EVAL[0] else record.state)
        for m in (1, 2):
            yield ("update", f"B{m} during block {block}", _snapshot(record, applied - 1)[f"B{m}"],
                   weights["B"][m - 1])
            yield "update", f"B{m} after block {block}", later[f"B{m}"], new_B[m - 1]
        for l in (1, 2, 3):  # sleep leaves W and b alone
            yield "update", f"W{l} after sleep block {block}", later[f"W{l}"], weights["W"][l - 1]
            yield "update", f"b{l} after sleep block {block}", later[f"b{l}"], weights["b"][l - 1]
        weights["B"] = new_B
    # -- evaluation: the lab's test pass with the final weights ------------------------------
    x = np.stack([_spike_array(record, "input", SIZES[0], s * SLOT, T) for s in RUN_EVAL], 1)
    rec = []
    counts = lab.evaluate(config, weights, x, observe=lambda t, s: rec.append(s))
    for b, slot in enumerate(RUN_EVAL):
        for l in (1, 2, 3):
            yield ("evaluation", f"evaluation spikes of layer {l}, slot {slot}",
                   _spike_array(record, f"layer{l}", SIZES[l], slot * SLOT + l, T),
                   np.array([s[l - 1][b] for s in rec]))
    yield "evaluation", "evaluation output spikes", counts.sum(), None
    yield "evaluation", "evaluation counts", record.output_counts[list(RUN_EVAL)], counts
    yield ("evaluation", "evaluation predictions",
           np.argmax(record.output_counts[list(RUN_EVAL)], axis=1), np.argmax(counts, axis=1))
    for name in ("W1", "W2", "W3", "b1", "b2", "b3", "B1", "B2"):
        kind, l = name[0], int(name[1])
        yield "evaluation", f"final {name}", record.state[name], weights[kind][l - 1]


def _assert_replay(run, select=None):
    """Compare every pair of :func:`_replay` (``select``: only this category); a pair with lab
    None is an activity check: the quantity must be non-zero."""
    checked = 0
    for category, what, brian, expected in _replay(*run):
        if select is not None and category != select:
            continue
        if expected is None:
            assert brian > 0, f"{what} must be non-zero for the test to mean something"
        else:
            np.testing.assert_allclose(np.asarray(brian, dtype=float), expected, atol=ATOL,
                                       rtol=0, err_msg=what)
        checked += 1
    assert checked > 0
    return checked


def test_batched_run_training_windows_agree(batched):
    """Every spike, potential, trace and dendrite of the 4 training slots (2 mini-batches; the
    second sample of a batch starts from zero traces, so the per-slot reset is exercised)."""
    _assert_replay(batched, select="window")


def test_batched_run_updates_and_sleep_agree(batched):
    """W and b after every mini-batch (mean of the per-slot gradients, applied at the batch
    start), B after every sleep block (2 sleep samples per hidden layer), W/b unchanged by
    sleep."""
    _assert_replay(batched, select="update")


def test_batched_run_evaluation_agrees(batched):
    """Spikes, output counts and predictions of the evaluation slots, and the final state."""
    _assert_replay(batched, select="evaluation")


@pytest.mark.slow
def test_batched_run_agrees_on_cpp_standalone(tmp_path):
    """The same run and comparison on C++ standalone (a full build, ~40 s)."""
    _assert_replay(_batched_run(Device("cpp", build_directory=str(tmp_path))))


def test_published_windows_are_checked():
    """T_b ≥ L + 2 (the layer pipeline) and t_soft < T_f, checked by RunConfig and by the
    Simulator with the network's L; the default windows pass."""
    from plausigrad.models.errors import ConfigurationError
    from plausigrad.protocols.training import RunConfig
    published = {"profile": "published"}
    config = RunConfig(rule="biograd", hidden=(500, 100), rule_params=published)
    assert (config.forward_steps, config.feedback_steps) == (60, 5)
    with pytest.raises(ConfigurationError, match="feedback window must be >= L \\+ 2 = 5"):
        RunConfig(rule="biograd", hidden=(500, 100), rule_params=published, feedback_steps=4)
    with pytest.raises(ConfigurationError, match="soft error step"):
        RunConfig(rule="biograd", rule_params={**published, "soft_error_step": 60})
    RunConfig(rule="biograd", feedback_steps=2)  # the reconstruction has no such limit
    rule = BioGrad(BioGradParameters(profile="published", soft_error_step=SOFT, sleep_steps=S,
                                     batch_size=1))
    images, labels = np.zeros((2, SIZES[0])), np.array([0, 1])
    numpy = Device("runtime", runtime_target="numpy")
    sleep = SleepSchedule(every_samples=1, slots=2)
    with pytest.raises(ConfigurationError, match="L \\+ 2 = 5 steps for L = 3"):
        Simulator(rule, SIZES, Windows(T, 4), sleep, images, labels, 1, 1, device=numpy)
    Simulator(rule, SIZES, Windows(T, 5), sleep, images, labels, 1, 1, device=numpy).inspect()


def _pack_counts(dense, bits):
    """Rows of count frames (samples, bins, units) in the packed layout, written out from its
    definition (cell k = bin · units + unit is field k mod m of word k // m, m = 52 // bits), not
    through ``pack_frames``, which is tied to N-MNIST's 2312 units."""
    per_word = 52 // bits
    flat = dense.reshape(len(dense), -1).astype(np.int64)
    rows = np.zeros((len(dense), -(-flat.shape[1] // per_word)))
    for k in range(flat.shape[1]):
        rows[:, k // per_word] += flat[:, k] * 2.0 ** (bits * (k % per_word))
    return rows


@pytest.mark.parametrize("trace_form", TRACE_FORMS)
def test_graded_event_input_agrees_with_the_lab_port(trace_form):
    """Event counts as graded input (``--event-counts``, the lab's ToFrame frames): every input
    cell with c events carries x = c into W · x and the traces; spikes, v, p, e of every layer
    and the update equal the lab port's on the same count frames (numpy target, batch 1)."""
    from plausigrad.models.encoders import PackedEvents
    rng = np.random.default_rng(7)
    params = BioGradParameters(profile="published", batch_size=1, learning_rate=(0.2,),
                               bias_learning_rate=0.2, soft_error_step=SOFT, sleep_steps=S,
                               trace_form=trace_form)
    rule = BioGrad(params)
    state = rule.initial_state(SIZES, rng)
    for l in (1, 2, 3):
        state[f"W{l}"] = state[f"W{l}"] * 1.5 + 0.08
    counts = rng.choice(4, size=(2, T, SIZES[0]), p=(0.4, 0.3, 0.2, 0.1))
    assert (counts > 1).sum() > 10  # graded, not binary
    labels = np.array([1, 2])
    probes = _trace_probes(rule)
    sim = Simulator(rule, SIZES, WINDOWS, None, _pack_counts(counts, 2), labels, 1, 1,
                    device=Device("runtime", runtime_target="numpy"), recorders=[Probes(probes)],
                    input_encoding=PackedEvents(SIZES[0], T, bits=2, counts=True))
    record = sim.run({k: v.copy() for k, v in state.items()}, np.array([0]), 1,
                     rule.learning_rate_values(3))
    np.testing.assert_array_equal(_spike_array(record, "input", SIZES[0], 0, T),
                                  counts[0] > 0)  # one spike per non-empty cell
    rec = []
    final = lab.window(_config(rule), _weights(state), counts[0][:, None, :].astype(float),
                       np.eye(3)[[labels[0]]], observe=lambda t, s, o: rec.append((s, o)))
    for l in (1, 2, 3):
        lab_spikes = np.array([o["s"][l - 1][0] for _, o in rec])
        assert lab_spikes.sum() > 0, f"layer {l} must fire for the test to mean something"
        np.testing.assert_array_equal(_spike_array(record, f"layer{l}", SIZES[l], l, T),
                                      lab_spikes, err_msg=f"spikes of layer {l}")
        np.testing.assert_allclose(record.probes[f"layer{l}"]["v"][:, l:l + T].T,
                                   [o["v"][l - 1][0] for _, o in rec], atol=ATOL)
        n_pre, n_post = SIZES[l - 1], SIZES[l]
        for name, lab_name in (("trace_in", "trace_pre"), ("trace_dw", "trace_dw")):
            brian = _synapse_trace(record, l, name)[:, l + 1:l + 1 + T].T.reshape(
                T, n_pre, n_post).transpose(0, 2, 1)
            np.testing.assert_allclose(brian, [getattr(s, lab_name)[l - 1][0] for s, _ in rec],
                                       atol=ATOL, err_msg=f"{name} of W{l}")
    new = lab.update(_config(rule), _weights(state), final)
    for l in (1, 2, 3):
        np.testing.assert_allclose(record.state[f"W{l}"], new["W"][l - 1], atol=ATOL)
        assert np.abs(record.state[f"W{l}"] - state[f"W{l}"]).max() > 0
