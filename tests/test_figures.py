"""``plausigrad figures`` on the bundled subset: the images exist and show the recorded data."""

import subprocess
import sys

import numpy as np
import pytest

from plausigrad.analysis.gallery import make_figures
from plausigrad.models.schedule_signals import EVAL, TRAIN

pytestmark = pytest.mark.slow  # trains on the bundled subset (about a minute on a free core)


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    record, plotted = make_figures("biograd", str(out), device="runtime", hidden=(30,), epochs=1,
                                   train_limit=60, track_every=30, probe_size=8,
                                   log=lambda *a: None)
    return out, record, plotted["dynamics"]


def test_every_figure_is_written(figures):
    out, _, _ = figures
    for name in ("dynamics", "raster", "learning_curves", "alignment"):
        for suffix in (".png", ".pdf"):
            assert (out / f"{name}{suffix}").stat().st_size > 5_000, name


def test_membrane_crosses_threshold_exactly_at_the_spikes(figures):
    _, record, dyn = figures
    windows_forward = 20
    slot_steps = 30
    spikes = set(int(s) for s in dyn["spike_steps"])
    checked = 0
    for step, v in zip(dyn["t"], dyn["soma"]):
        slot, offset = divmod(int(step), slot_steps)
        if slot >= len(record.kinds) or record.kinds[slot] not in (TRAIN, EVAL):
            continue
        if offset >= windows_forward:
            continue  # the soma is silent in the feedback window
        assert (v > dyn["threshold"]) == (step in spikes), (step, v)
        checked += 1
    assert checked >= 60 and spikes


def test_weight_change_is_the_plotted_eligibility_times_the_apical_error(figures):
    """At each learn step the plotted w jumps by −η · u · ē of the plotted traces."""
    _, record, dyn = figures
    weight, eligibility, u = dyn["weight"], dyn["eligibility"], _plotted_u(record, dyn)
    learning_rate = 0.02  # BioGrad's default η of W1
    jumps = 0
    for slot, kind in enumerate(record.kinds):
        if kind != TRAIN:
            continue
        learn = slot * 30 + 29
        expected = -learning_rate * u[learn] * eligibility[learn]
        np.testing.assert_allclose(weight[learn + 1] - weight[learn], expected, atol=1e-12)
        jumps += expected != 0
    assert jumps >= 1


def _plotted_u(record, dyn):
    """The apical u of the neuron whose soma the figure shows."""
    probe = record.probes["layer1"]
    row = next(r for r in range(len(probe["indices"])) if np.array_equal(probe["v"][r], dyn["soma"]))
    return np.asarray(probe["u"][row])


def test_figures_command_line_errors_are_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "plausigrad.protocols.cli", "plot-alignment",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no metrics.json" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
