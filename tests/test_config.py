"""Experiment files (TOML), the generated command line, and the run's resolved config.toml."""

import json
import os

import pytest

from plausigrad.protocols.cli import _config_from_args, main, parse_args
from plausigrad.protocols.config import read_config, to_toml
from plausigrad.protocols.training import RunConfig

EXPERIMENTS = os.path.join(os.path.dirname(__file__), "..", "experiments")

#: each experiment file and the command line (its docs/results/ page) it stands for
README_COMMANDS = {
    "biograd_sleep": "--data-dir ../shared/data/mnist --epochs 5 --feedback sleep",
    "biograd_symmetric": "--data-dir ../shared/data/mnist --epochs 5 --feedback symmetric",
    "biograd_fa": "--data-dir ../shared/data/mnist --epochs 5 --feedback fa",
    "emstdp_default": "--rule emstdp --profile revised --hidden 100 "
                      "--data-dir ../shared/data/mnist --epochs 5",
    "emstdp_rho07": "--rule emstdp --profile revised --hidden 100 "
                    "--data-dir ../shared/data/mnist --epochs 6 --target-rate 0.7",
    "emstdp_rho07_T199": "--rule emstdp --profile revised --hidden 100 "
                         "--data-dir ../shared/data/mnist --epochs 5 --target-rate 0.7 "
                         "--lr-decay 0.5 --forward-steps 199 --feedback-steps 200",
    "emstdp_rho08_T199": "--rule emstdp --profile revised --hidden 100 "
                         "--data-dir ../shared/data/mnist --epochs 5 --target-rate 0.8 "
                         "--lr-decay 0.5 --forward-steps 199 --feedback-steps 200",
    "ssnnbp_T32": "--rule ssnnbp --hidden 500 --data-dir ../shared/data/mnist --epochs 5",
}


def _config(argv):
    return _config_from_args(parse_args(["train", *argv]))


def test_every_experiment_file_is_listed():
    names = {n[:-5] for n in os.listdir(EXPERIMENTS) if n.endswith(".toml")}
    assert names == set(README_COMMANDS)


@pytest.mark.parametrize("name", sorted(README_COMMANDS))
def test_experiment_file_resolves_to_its_readme_command(name):
    from_file = _config(["--config", os.path.join(EXPERIMENTS, f"{name}.toml")])
    from_command = _config(README_COMMANDS[name].split())
    assert from_file.resolved() == from_command.resolved()


def test_command_line_overrides_the_file_key_by_key(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('rule = "emstdp"\nepochs = 4\n[rule_params]\nbatch_size = 5\n'
                    '[rule_params.neuron]\noutput_target_rate = 0.7\nerror_reset = "zero"\n')
    config = _config(["--config", str(path), "--epochs", "2", "--target-rate", "0.8"])
    assert config.rule == "emstdp" and config.epochs == 2
    neuron = config.make_rule().params.neuron
    assert (neuron.output_target_rate, neuron.error_reset) == (0.8, "zero")
    assert config.make_rule().params.batch_size == 5
    # the windows of the rule's default profile (published)
    assert (config.forward_steps, config.feedback_steps) == (50, 50)


@pytest.mark.parametrize("text, fragment", [
    ('rule = "emstdp"\nepoch = 3\n', "unknown key 'epoch'"),
    ('rule = "emstdp"\n[rule_params]\nsleep_decay = 0.1\n', "bad parameters for rule emstdp"),
    ('rule = "emstdp"\nhidden = [100\n', "is not valid TOML"),
    ('rule = "emstdp"\n[rule_params.neuron]\nthreshhold = 1.0\n', "bad neuron parameters"),
])
def test_bad_experiment_files_are_one_line_errors(tmp_path, capsys, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and fragment in error[0], error


def test_a_file_of_another_rule_is_refused(tmp_path, capsys):
    path = tmp_path / "e.toml"
    path.write_text('rule = "emstdp"\n')
    assert main(["train", "biograd", "--config", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "is a emstdp experiment, not biograd" in capsys.readouterr().err


def test_resolved_config_round_trips_through_toml(tmp_path):
    config = _config(["ssnnbp", "--lr", "0.001,0.002", "--bias-lr", "0.01", "--seed", "3"])
    path = tmp_path / "config.toml"
    path.write_text(to_toml(config.resolved()))
    again = RunConfig.from_dict(read_config(path))
    assert again.resolved() == config.resolved()
    assert again.make_rule().params.learning_rate == (0.001, 0.002)


def test_rule_options_come_from_the_parameter_dataclass(capsys):
    assert main(["train", "emstdp", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--target-rate X" in text and "--rms-decay X" in text and "[0.9]" in text
    assert "--sleep-lr" not in text and "--eligibility" not in text
    assert main(["train", "biograd", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--sleep-lr, --sleep-learning-rate X" in text and "--threshold X" in text


def test_positional_rule_and_rule_option_agree():
    assert _config(["emstdp"]).rule == _config(["--rule", "emstdp"]).rule == "emstdp"
    assert _config([]).rule == "biograd"


def test_training_writes_its_resolved_config_and_it_repeats_the_run(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "ssnnbp", "--device", "runtime", "--hidden", "6", "--epochs", "1",
            "--train-limit", "4", "--test-limit", "2", "--forward-steps", "3", "--out", str(out)]
    assert main(argv) == 0
    stored = read_config(out / "config.toml")
    assert stored["rule_params"]["gradient_scale"] == 1.0  # defaults spelled out
    again = _config(["--config", str(out / "config.toml")])
    assert again.resolved() == _config(argv[1:-2]).resolved()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["loss"] == "softmax_cross_entropy"


def test_a_validation_split_is_held_out_of_training_and_reported(tmp_path, monkeypatch):
    """``--validation N``: the last N training samples are never trained on, and are evaluated
    every epoch beside the test set (``validation_*`` and ``test_*`` metrics, each over its
    own rows; numpy target, nothing compiles)."""
    from plausigrad.models.schedule_signals import TRAIN
    from plausigrad.protocols import training
    from plausigrad.protocols.devices import Device
    monkeypatch.setattr(training, "Device", lambda kind, build, threads: Device(
        kind, build, threads, runtime_target="numpy"))
    config = RunConfig(rule="ssnnbp", hidden=(6,), epochs=2, device="runtime", train_limit=10,
                       test_limit=3, validation=4, forward_steps=3)
    rows, lines = [], []
    history = training.train(config, str(tmp_path / "run"), log=lines.append,
                             epoch_hook=lambda e, record, s, n: rows.append(record))
    assert "6 train / 4 validation / 3 test samples" in lines[0]
    assert "validation acc" in lines[1]
    for entry, record in zip(history, rows):
        counts = (entry["train_samples"], entry["validation_samples"], entry["test_samples"])
        assert counts == (6, 4, 3)
        trained = record.rows[record.kinds == TRAIN]
        assert sorted(trained) == list(range(6))  # rows 6..9 (the validation split) never trained
    with pytest.raises(training.ConfigurationError, match="--validation 10 leaves no training"):
        training.train(RunConfig(rule="ssnnbp", hidden=(6,), device="runtime", train_limit=10,
                                 validation=10), str(tmp_path / "none"))
