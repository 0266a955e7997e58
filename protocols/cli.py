"""Command-line interface: ``plausigrad train | eval | align | plot-alignment | audit | figures | demo |
download``.

Bad input (an unknown device or rule, a non-positive window, learning rate or layer size, a
missing or corrupt dataset file, a checkpoint of another configuration) is reported as ONE line
``plausigrad: error: ...`` with exit status 2, never as a traceback.

The CLI is the composition root of the package: ``demo``, ``align`` and ``train
--track-alignment`` use :mod:`plausigrad.analysis`, imported when those commands run, so the
library layers keep their one-way dependencies (models <- rules <- protocols <- analysis).
"""

import argparse
import sys

from plausigrad.models.errors import PlausigradError
from plausigrad.protocols.devices import DEVICE_CHOICES
from plausigrad.rules.registry import rule_names


def _int_list(text):
    try:
        return tuple(int(x) for x in text.split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _float_list(text):
    try:
        return tuple(float(x) for x in text.split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_run_options(p):
    p.add_argument("--rule", default="biograd",
                   help=f"learning rule: {', '.join(rule_names())} (rules installed by other "
                        "packages register through the 'plausigrad.rules' entry points)")
    p.add_argument("--device", default="cpp", help=f"one of {', '.join(DEVICE_CHOICES)}")
    p.add_argument("--threads", type=int, default=0, help="OpenMP threads for --device cpp")
    p.add_argument("--hidden", type=_int_list, default=(500,), help="hidden sizes, e.g. 500 or 500,500")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist")
    p.add_argument("--data-dir", default=None,
                   help="directory with the IDX .gz files (default: $PLAUSIGRAD_DATA_DIR, "
                        "else the bundled MNIST subset)")
    p.add_argument("--train-limit", type=int, default=None, help="use the first N training samples")
    p.add_argument("--test-limit", type=int, default=None, help="use the first N test samples")
    p.add_argument("--forward-steps", type=int, default=None,
                   help="forward window T_f (steps; default biograd 20, emstdp 49 = phase 1, "
                        "ssnnbp 32 = the spike-train length T)")
    p.add_argument("--feedback-steps", type=int, default=None,
                   help="feedback window T_b (steps; default biograd 10, emstdp 50 = phase 2 "
                        "+ the update step, ssnnbp 3 = pipeline drain, >= 2L-1)")
    p.add_argument("--gradient-scale", type=float, default=None,
                   help="ssnnbp only: α, hidden gradient spike probability per unit of ν·f' "
                        "(default 1)")
    p.add_argument("--feedback", default=None,
                   help="biograd: sleep (default), fa (fixed random B) or symmetric; "
                        "emstdp: symmetric (default), fa or dfa (direct feedback alignment)")
    p.add_argument("--eligibility", default=None, help="biograd only: factorised (default) or exact")
    p.add_argument("--epsilon", type=float, default=None,
                   help="emstdp only: output error threshold ε (default 3)")
    p.add_argument("--target-rate", type=float, default=None,
                   help="emstdp only: the labelled output unit's target rate ρ in spikes/step "
                        "(default 1, the code's; 0.7-0.8 train better, README)")
    p.add_argument("--hidden-threshold", type=float, default=None,
                   help="emstdp only: scale h_thr of the hidden forward thresholds (default 0.5; "
                        "θ¹ = √(3 n_in)/2 · h_thr/(L+1))")
    p.add_argument("--output-threshold", type=float, default=None,
                   help="emstdp only: scale o_thr of the output forward threshold (default 0.1)")
    p.add_argument("--error-threshold", type=float, default=None,
                   help="emstdp only: scale e_thr of the hidden error thresholds (default 0.5)")
    p.add_argument("--error-reset", default=None,
                   help="emstdp only: 'subtract' (default, the code's rel=1): error units "
                        "subtract their threshold after a spike, keeping the residual; 'zero' "
                        "(rel=0, the public scripts): reset to 0")
    p.add_argument("--forward-reset", default=None,
                   help="emstdp only: 'zero' (default, the code): forward somata reset to 0 "
                        "after a spike; 'subtract': remove the threshold, keeping the residual")
    p.add_argument("--derivative-gate", default=None, choices=("on", "off"),
                   help="emstdp only: gate hidden error spikes by phase-1 activity "
                        "(default: on, except dfa with --error-reset zero, the public scripts)")
    p.add_argument("--phase2-restart", default=None, choices=("on", "off"),
                   help="emstdp only: somata restart from rest at the start of phase 2 "
                        "(default on; off = the public code's continuous membrane)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=_float_list, default=None,
                   help="learning rate, one value or one per weight layer (e.g. 0.02,0.2)")
    p.add_argument("--bias-lr", type=float, default=None)
    p.add_argument("--lr-decay", type=float, default=0.7, help="learning-rate factor per epoch")
    p.add_argument("--sleep-every", type=int, default=None,
                   help="samples between sleep blocks (rules that sleep; default 1000)")
    p.add_argument("--sleep-slots", type=int, default=None,
                   help="slots per sleep block (rules that sleep; default 20)")
    p.add_argument("--sleep-lr", type=float, default=None, help="Hebbian step η_s of B in sleep")
    p.add_argument("--sleep-decay", type=float, default=None, help="decay λ_s of B per sleep slot")
    p.add_argument("--sleep-noise", type=float, default=None,
                   help="noise spike probability per step of hidden neurons in sleep")
    p.add_argument("--feedback-init-scale", type=float, default=None,
                   help="initial B ~ U(-s/sqrt(n), s/sqrt(n)), n = size of the layer above")
    p.add_argument("--seed", type=int, default=0)


#: Options that set a rule parameter: option -> the parameter paths it may set, tried in order
#: (``neuron.x``: field x of the rule's neuron parameters). The first path the chosen rule's
#: parameter dataclass has is set; if it has none, giving the option is a one-line error.
_PARAMETER_OPTIONS = {
    "lr": ("learning_rate",), "batch_size": ("batch_size",), "bias_lr": ("bias_learning_rate",),
    "feedback": ("feedback",), "feedback_init_scale": ("feedback_init_scale",),
    "eligibility": ("eligibility",), "sleep_lr": ("sleep_learning_rate",),
    "sleep_decay": ("sleep_decay",), "sleep_noise": ("sleep_noise_rate",),
    "derivative_gate": ("derivative_gate",), "phase2_restart": ("restart_phase2",),
    "gradient_scale": ("gradient_scale",),
    "target_rate": ("target_rate", "neuron.output_target_rate"),
    "epsilon": ("neuron.output_epsilon",), "error_reset": ("neuron.error_reset",),
    "forward_reset": ("neuron.forward_reset",), "hidden_threshold": ("neuron.hidden_threshold",),
    "output_threshold": ("neuron.output_threshold",),
    "error_threshold": ("neuron.error_threshold",)}

#: on/off options, stored as booleans
_SWITCHES = ("derivative_gate", "phase2_restart")


def _parameter_fields(params_class):
    """{path: True} of the fields of a rule's parameter dataclass, with ``neuron.x`` for the
    fields of a nested neuron dataclass."""
    import dataclasses
    paths = {}
    for f in dataclasses.fields(params_class):
        paths[f.name] = True
        if dataclasses.is_dataclass(f.type):
            paths.update({f"{f.name}.{g.name}": True for g in dataclasses.fields(f.type)})
    return paths


def _rule_params(args, params_class):
    """The rule's parameters from the options; an option the rule does not have is a one-line
    error. Values are validated by the parameter dataclasses themselves."""
    from plausigrad.models.errors import ConfigurationError
    available = _parameter_fields(params_class)
    rule_params = {}
    for option, paths in _PARAMETER_OPTIONS.items():
        value = getattr(args, option)
        if value is None:
            continue
        path = next((p for p in paths if p in available), None)
        if path is None:
            raise ConfigurationError(f"option --{option.replace('_', '-')} does not apply to "
                                     f"rule {args.rule}")
        if option in _SWITCHES:
            value = value == "on"
        owner, _, name = path.rpartition(".")
        (rule_params.setdefault(owner, {}) if owner else rule_params)[name] = value
    return rule_params


def _config_from_args(args):
    from plausigrad.protocols.training import RunConfig
    from plausigrad.rules.registry import make_rule, rule_class
    cls = rule_class(args.rule)  # an unknown rule is a one-line error
    rule_params = _rule_params(args, cls.parameters_class)
    default_windows = cls.default_windows
    sleep = {key: value for key, value in (("sleep_every", args.sleep_every),
                                           ("sleep_slots", args.sleep_slots)) if value is not None}
    if sleep and not make_rule(args.rule, rule_params).uses_sleep:
        from plausigrad.models.errors import ConfigurationError
        raise ConfigurationError(f"option --{next(iter(sleep)).replace('_', '-')} applies only "
                                 "to rules that sleep (biograd with --feedback sleep)")
    forward = args.forward_steps if args.forward_steps is not None else default_windows[0]
    feedback = args.feedback_steps if args.feedback_steps is not None else default_windows[1]
    config = RunConfig(rule=args.rule, hidden=args.hidden, epochs=args.epochs, device=args.device,
                       threads=args.threads, dataset=args.dataset, data_dir=args.data_dir,
                       train_limit=args.train_limit, test_limit=args.test_limit,
                       forward_steps=forward, feedback_steps=feedback,
                       **sleep, lr_decay=args.lr_decay, seed=args.seed, rule_params=rule_params,
                       track_alignment=getattr(args, "track_alignment", None))
    config.make_rule()  # validate the rule's parameters before loading any data
    return config


def _cmd_train(args):
    from plausigrad.protocols.training import train
    config = _config_from_args(args)
    hook = None
    if config.track_alignment:
        from plausigrad.analysis.alignment import AlignmentTracker
        hook = AlignmentTracker(config, args.out, probe_size=args.probe_size)
    train(config, args.out, resume=args.resume, epoch_hook=hook)


def _cmd_align(args):
    from plausigrad.analysis.alignment import align_checkpoint
    align_checkpoint(args.checkpoint, probe_size=args.probe_size, out=args.out,
                     data_dir=args.data_dir)


def _cmd_audit(args):
    from plausigrad.analysis.audit import run_audit
    from plausigrad.models.errors import require_choice
    require_choice("format", args.format, ("text", "markdown", "json"))
    run_audit(_config_from_args(args).make_rule(), output_format=args.format, out=args.out)


def _cmd_figures(args):
    from plausigrad.analysis.gallery import make_figures
    make_figures(args.rule, args.out, device=args.device, checkpoint=args.checkpoint,
                 hidden=args.hidden, epochs=args.epochs, train_limit=args.train_limit,
                 track_every=args.track_alignment, probe_size=args.probe_size)


def _cmd_plot_alignment(args):
    from plausigrad.analysis.figures import plot_alignment_runs
    for path in plot_alignment_runs(args.runs, args.out, labels=args.labels):
        print(path)


def _cmd_eval(args):
    from plausigrad.protocols.training import evaluate
    evaluate(args.checkpoint, device=args.device, data_dir=args.data_dir,
             test_limit=args.test_limit)


def _cmd_demo(args):
    from plausigrad.analysis.demo import run_demo
    run_demo(args.out, device=args.device, epochs=args.epochs)


def _cmd_download(args):
    from plausigrad.protocols.datasets import download
    for path in download(args.dataset, args.dest):
        print(path)


def build_parser():
    parser = _Parser(prog="plausigrad", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train a network; metrics + checkpoint every epoch")
    _add_run_options(p)
    p.add_argument("--out", default="results/run", help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.set_defaults(func=_cmd_train)

    p.add_argument("--track-alignment", type=int, default=None, metavar="N",
                   help="measure gradient alignment to backprop every N slots (training "
                        "samples plus sleep slots) on a fixed probe set")
    p.add_argument("--probe-size", type=int, default=64,
                   help="probe samples for --track-alignment (the first N test samples)")

    p = sub.add_parser("align", help="gradient alignment to backprop of a checkpoint")
    p.add_argument("checkpoint", help="a run directory holding checkpoint.json/.npz")
    p.add_argument("--probe-size", type=int, default=64, help="the first N test samples")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="write the measurement as JSON here")
    p.set_defaults(func=_cmd_align)

    p = sub.add_parser("audit", help="locality audit of a rule's plasticity, read off its "
                                     "generated Brian2 model")
    _add_run_options(p)
    p.add_argument("--format", default="text", help="text, markdown or json")
    p.add_argument("--out", default=None, help="also write the report to this file")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("figures", help="dynamics, raster, learning-curve and alignment figures "
                                       "of a rule (trains on the bundled subset first)")
    p.add_argument("--rule", default="biograd")
    p.add_argument("--out", default="results/figures")
    p.add_argument("--checkpoint", default=None, help="draw from this run instead of training")
    p.add_argument("--device", default="cpp")
    p.add_argument("--hidden", type=_int_list, default=(100,))
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--track-alignment", type=int, default=500, metavar="N")
    p.add_argument("--probe-size", type=int, default=32)
    p.set_defaults(func=_cmd_figures)

    p = sub.add_parser("plot-alignment", help="figure of the alignment angles of tracked runs")
    p.add_argument("runs", nargs="+", help="run directories trained with --track-alignment")
    p.add_argument("--labels", default=None, type=lambda t: t.split(","),
                   help="comma-separated legend labels (default: each run's feedback mode)")
    p.add_argument("--out", default="results/alignment.png")
    p.set_defaults(func=_cmd_plot_alignment)

    p = sub.add_parser("eval", help="forward-only test accuracy of a checkpoint")
    p.add_argument("checkpoint", help="a run directory holding checkpoint.json/.npz")
    p.add_argument("--device", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--test-limit", type=int, default=None)
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("demo", help="train on the bundled MNIST subset, write results + figures")
    p.add_argument("--out", default="results/demo")
    p.add_argument("--device", default="cpp")
    p.add_argument("--epochs", type=int, default=3)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("download", help="download a dataset with checksum verification")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--dest", required=True)
    p.set_defaults(func=_cmd_download)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except PlausigradError as exc:
        print(f"plausigrad: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("plausigrad: interrupted (the last finished epoch is checkpointed; use --resume)",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
