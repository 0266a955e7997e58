"""The one angle function (plausigrad.protocols.angles): degrees, and None where undefined."""

import json

import numpy as np
import pytest

from plausigrad.protocols.angles import angle_degrees, format_angle


def test_orthogonal_parallel_and_antiparallel():
    assert angle_degrees([1.0, 0.0], [0.0, 2.0]) == pytest.approx(90.0)
    assert angle_degrees([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == pytest.approx(0.0, abs=1e-6)
    assert angle_degrees([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(180.0)


def test_cosine_is_clipped():
    assert angle_degrees(np.full(3, 0.7), np.full(3, 0.7)) == 0.0  # cos = 1 + 2e-16


def test_zero_or_non_finite_vectors_give_none():
    assert angle_degrees(np.zeros(3), np.ones(3)) is None
    assert angle_degrees(np.ones(3), np.zeros(3)) is None
    assert angle_degrees([1e-300, 1e-300], [1e-300, 1e-300]) in (0.0, None)  # norms underflow
    assert angle_degrees([np.nan, 1.0], [1.0, 1.0]) is None
    assert angle_degrees([np.inf, 1.0], [1.0, 1.0]) is None


def test_matrices_are_flat_vectors():
    a = np.array([[1.0, 0.0], [0.0, 0.0]])
    b = np.array([[0.0, 1.0], [0.0, 0.0]])
    assert angle_degrees(a, b) == pytest.approx(90.0)
    assert angle_degrees(np.eye(3), np.eye(3)) == pytest.approx(0.0, abs=1e-5)
    assert angle_degrees(a, a.ravel()) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(0)
    w, v = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    assert angle_degrees(w, v) == pytest.approx(angle_degrees(w.ravel(), v.ravel()))
    assert angle_degrees(w.T, v.T) == pytest.approx(angle_degrees(w, v))


def test_undefined_angle_is_null_in_json():
    text = json.dumps({"feedback_angle": angle_degrees(np.zeros((2, 2)), np.ones((2, 2)))})
    assert text == '{"feedback_angle": null}'
    assert json.loads(text)["feedback_angle"] is None
    defined = json.loads(json.dumps(angle_degrees([1.0, 0.0], [0.0, 1.0])))
    assert defined == pytest.approx(90.0)


def test_format_angle():
    assert format_angle(None) == "—"
    assert format_angle(71.24) == "71.2°"
    assert format_angle(71.24, digits=0) == "71°"
