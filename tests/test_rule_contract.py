"""The rule contract: the registry, the parameters base class, the state layout and the losses."""

import dataclasses

import numpy as np
import pytest
from brian2.utils.logger import BrianLogger

from plausigrad.models.errors import ConfigurationError
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.schedule import SleepSchedule, Windows
from plausigrad.rules.base import LearningRule, RuleParameters
from plausigrad.rules.losses import RateMSE, SoftmaxCrossEntropy
from plausigrad.rules.registry import BUILTIN_RULES, make_rule, rule_class, rule_names

#: every rule with each feedback mode it has (the state layout depends on it)
#: (one learning rate and init_std for all layers: the tests use two hidden layers)
DEEP = {"learning_rate": 0.1, "init_std": 0.1}
VARIANTS = [("biograd", {"feedback": f, **DEEP}) for f in ("sleep", "fa", "symmetric")] + [
    ("emstdp", {"feedback": f}) for f in ("symmetric", "fa", "dfa")] + [("ssnnbp", DEEP)]


def test_registry_lists_the_builtin_rules_first():
    assert rule_names()[:3] == tuple(BUILTIN_RULES) == ("biograd", "emstdp", "ssnnbp")


def test_unknown_rule_is_a_one_line_configuration_error():
    with pytest.raises(ConfigurationError, match="unknown rule 'nope'; choose one of: biograd"):
        rule_class("nope")


def test_bad_rule_parameters_are_a_configuration_error():
    with pytest.raises(ConfigurationError, match="bad parameters for rule emstdp"):
        make_rule("emstdp", {"sleep_learning_rate": 1.0})


@pytest.mark.parametrize("name", BUILTIN_RULES)
def test_every_builtin_rule_declares_the_contract(name):
    cls = rule_class(name)
    assert issubclass(cls, LearningRule) and issubclass(cls.parameters_class, RuleParameters)
    assert dataclasses.is_dataclass(cls.parameters_class)
    rule = make_rule(name)
    assert rule.batch_size == rule.params.batch_size
    assert isinstance(rule.uses_sleep, bool)
    assert isinstance(rule.loss, (RateMSE, SoftmaxCrossEntropy))
    assert rule.alignment_plugin and ":" in rule.alignment_plugin


@pytest.mark.parametrize("name", BUILTIN_RULES)
def test_parameters_base_validates_learning_rate_and_batch_size_once(name):
    cls = rule_class(name).parameters_class
    with pytest.raises(ConfigurationError, match="batch size must be a positive integer"):
        cls(batch_size=0)
    with pytest.raises(ConfigurationError, match="batch size must be a positive integer"):
        cls(batch_size=True)
    with pytest.raises(ConfigurationError, match="learning rate.* must be positive"):
        cls(learning_rate=(0.1, -1.0))
    assert cls(learning_rate=0.5).layer_learning_rates(3) == (0.5, 0.5, 0.5)


def test_learning_rate_values_name_every_shared_rate_variable():
    assert make_rule("emstdp", {"learning_rate": (1.0, 2.0)}).learning_rate_values(2, 0.5) == {
        "W1": 0.5, "W2": 1.0}
    assert make_rule("biograd", {"learning_rate": (1.0, 2.0), "bias_learning_rate": 0.1}
                     ).learning_rate_values(2) == {"W1": 1.0, "b1": 0.1, "W2": 2.0, "b2": 0.1}
    with pytest.raises(ConfigurationError, match="bias learning rate must be >= 0"):
        make_rule("ssnnbp", {"bias_learning_rate": -1.0})


@pytest.mark.parametrize("name, params", VARIANTS, ids=lambda v: str(v))
def test_state_layout_matches_initial_state_and_the_built_network(name, params):
    """The declared layout is what initial_state returns and what the Brian2 network holds."""
    sizes = (7, 6, 5, 4)  # two hidden layers: DFA's D1 and B2 both appear
    rule = make_rule(name, params)
    layout = rule.state_layout(sizes)
    state = rule.initial_state(sizes, np.random.default_rng(0))
    assert {k: v.shape for k, v in state.items()} == layout
    sleep = SleepSchedule(2, 1) if rule.uses_sleep else None
    # 5 + 5: SSNN-BP's pipeline of 3 weight layers needs 2L - 1 feedback steps to drain,
    # EMSTDP's published profile equal windows
    simulator = Simulator(rule, sizes, Windows(5, 5), sleep, np.zeros((3, 7)), np.zeros(3), 2, 1,
                          device="runtime")
    BrianLogger.suppress_name("unused_brian_object")  # built to be inspected, never run
    simulator.inspect()
    built = simulator._handles["built"]
    assert {k: v.shape for k, v in built.state.items()} == layout
    assert list(built.feedback_pairs) == rule.feedback_pairs(sizes)
    for feedback, forward in rule.feedback_pairs(sizes):
        assert layout[feedback] == layout[forward][::-1]


def test_feedback_pairs_follow_the_feedback_mode():
    sizes = (7, 6, 5, 4)
    assert make_rule("biograd").feedback_pairs(sizes) == [("B1", "W2"), ("B2", "W3")]
    assert make_rule("biograd", {"feedback": "symmetric"}).feedback_pairs(sizes) == []
    assert make_rule("emstdp", {"feedback": "dfa"}).feedback_pairs(sizes) == [("B2", "W3")]
    assert make_rule("ssnnbp").feedback_pairs(sizes) == []


def test_rate_mse_metric_is_half_the_squared_rate_error():
    counts = np.array([[2, 0, 1], [0, 4, 0]])
    labels = np.array([0, 2])
    rates = counts / 4
    target = 0.8 * np.eye(3)[labels]
    expected = np.mean(0.5 * np.sum((rates - target) ** 2, axis=1))
    assert RateMSE(0.8).metric(counts, labels, 4) == pytest.approx(expected, rel=1e-15)
    error, loss = RateMSE(0.8).output_error(rates, labels)
    np.testing.assert_allclose(error, rates - target)


def test_softmax_cross_entropy_error_and_finite_metric():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    error, loss = SoftmaxCrossEntropy().output_error(p, [0, 1])
    np.testing.assert_allclose(error, p - np.eye(3)[[0, 1]])
    np.testing.assert_allclose(loss, -np.log([0.7, 0.1]))
    # the label never wins in 8 steps: the KT estimate (0 + 1/2) / (8 + 3/2) keeps it finite
    value = SoftmaxCrossEntropy().metric(np.array([[8, 0, 0]]), [2], 8)
    assert value == pytest.approx(-np.log(0.5 / 9.5))


def test_resume_compares_rule_parameters_as_resolved():
    """A checkpoint whose configuration spelled out defaults (as the CLI once did) resumes."""
    from plausigrad.protocols.training import RunConfig, _same_run
    old = RunConfig(rule_params={"eligibility": "factorised", "feedback": "sleep"}).to_json()
    new = RunConfig().to_json()
    assert _same_run(old, new, 1)
    assert not _same_run(old, RunConfig(rule_params={"feedback": "fa"}).to_json(), 1)
    assert not _same_run(old, {**new, "epochs": 0}, 1)
