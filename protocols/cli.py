"""Command-line interface: ``plausigrad train | eval | align | plot-alignment | demo | download``.

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
    p.add_argument("--rule", default="biograd", help="learning rule (biograd)")
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
    p.add_argument("--forward-steps", type=int, default=20, help="forward window T_f (steps)")
    p.add_argument("--feedback-steps", type=int, default=10, help="feedback window T_b (steps)")
    p.add_argument("--feedback", default="sleep", help="sleep, fa (fixed random B) or symmetric")
    p.add_argument("--eligibility", default="factorised", help="factorised or exact")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=_float_list, default=None,
                   help="learning rate, one value or one per weight layer (e.g. 0.02,0.2)")
    p.add_argument("--bias-lr", type=float, default=None)
    p.add_argument("--lr-decay", type=float, default=0.7, help="learning-rate factor per epoch")
    p.add_argument("--sleep-every", type=int, default=1000, help="samples between sleep blocks")
    p.add_argument("--sleep-slots", type=int, default=20, help="slots per sleep block")
    p.add_argument("--sleep-lr", type=float, default=None, help="Hebbian step η_s of B in sleep")
    p.add_argument("--sleep-decay", type=float, default=None, help="decay λ_s of B per sleep slot")
    p.add_argument("--sleep-noise", type=float, default=None,
                   help="noise spike probability per step of hidden neurons in sleep")
    p.add_argument("--feedback-init-scale", type=float, default=None,
                   help="initial B ~ U(-s/sqrt(n), s/sqrt(n)), n = size of the layer above")
    p.add_argument("--seed", type=int, default=0)


def _config_from_args(args):
    from plausigrad.protocols.training import RunConfig
    rule_params = {"feedback": args.feedback, "eligibility": args.eligibility}
    for key, value in (("batch_size", args.batch_size), ("learning_rate", args.lr),
                       ("bias_learning_rate", args.bias_lr), ("sleep_learning_rate", args.sleep_lr),
                       ("sleep_decay", args.sleep_decay), ("sleep_noise_rate", args.sleep_noise),
                       ("feedback_init_scale", args.feedback_init_scale)):
        if value is not None:
            rule_params[key] = value
    config = RunConfig(rule=args.rule, hidden=args.hidden, epochs=args.epochs, device=args.device,
                       threads=args.threads, dataset=args.dataset, data_dir=args.data_dir,
                       train_limit=args.train_limit, test_limit=args.test_limit,
                       forward_steps=args.forward_steps, feedback_steps=args.feedback_steps,
                       sleep_every=args.sleep_every, sleep_slots=args.sleep_slots,
                       lr_decay=args.lr_decay, seed=args.seed, rule_params=rule_params,
                       track_alignment=args.track_alignment)
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
