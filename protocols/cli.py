"""Command-line interface: ``plausigrad train | eval | align | plot-alignment | audit | figures | demo |
download``.

``plausigrad train RULE`` (or ``--rule RULE``) and ``audit`` take the options of the run
(:class:`~plausigrad.protocols.training.RunConfig`) and of the rule's parameter dataclass, both
generated from the dataclass fields (:func:`plausigrad.models.parameters.param`: one default, one
help text); ``--config FILE.toml`` starts from an experiment file (:mod:`plausigrad.protocols.config`).

Bad input (an unknown device or rule, an option the rule does not have, a non-positive window, learning rate or layer size, a
missing or corrupt dataset file, a checkpoint of another configuration) is reported as ONE line
``plausigrad: error: ...`` with exit status 2, never as a traceback.

Importing this module does not import Brian2 (a test checks it): a bad option or ``--help`` of
the top-level parser answers at once; a command's own modules import Brian2 when it runs.

The CLI is the composition root of the package: ``demo``, ``align`` and ``train
--track-alignment`` use :mod:`plausigrad.analysis`, imported when those commands run, so the
library layers keep their one-way dependencies (models <- rules <- protocols <- analysis).
"""

import argparse
import dataclasses
import sys

from plausigrad.models.errors import PlausigradError
from plausigrad.protocols import interrupts
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
    rule = None  #: the rule whose options a train / audit parser carries

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # --feedback must not mean --feedback-steps
        super().__init__(*args, **kwargs)

    def error(self, message):
        if self.rule and message.startswith("unrecognized arguments: "):
            option = message.split()[2].partition("=")[0]
            owners = _rules_with_option(option)
            if owners:
                message = (f"option {option} does not apply to rule {self.rule} (it is an "
                           f"option of {', '.join(owners)})")
            else:
                message = f"unknown option {option} (see {self.prog} --help)"
        self.exit(2, f"plausigrad: error: {message}\n")


def _rules_with_option(option):
    """Names of the registered rules that have the command-line ``option``."""
    from plausigrad.rules.registry import rule_class
    owners = []
    for name in rule_names():
        try:
            options = _fields_as_options(rule_class(name).parameters_class)
        except PlausigradError:
            continue
        if any(option in flags for _, flags, _ in options):
            owners.append(name)
    return owners


def _on_off(text):
    value = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}.get(
        text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")
    return value


def _option_type(f):
    """(argparse type, metavar) of a dataclass field, from its default or its annotation."""
    default = f.default if f.default is not dataclasses.MISSING else None
    kind = type(default) if default is not None else f.type
    if kind is bool:
        return _on_off, "on|off"
    if kind is tuple:
        ints = default is not None and all(isinstance(v, int) for v in default)
        return (_int_list, "N[,N...]") if ints else (_float_list, "X[,X...]")
    if kind is int:
        return int, "N"
    if kind is float:
        return float, "X"
    choices = f.metadata.get("choices")
    return str, "|".join(choices) if choices else f.name.upper()


def _fields_as_options(params_class, prefix=""):
    """[(path, flags, field)] for every documented field, nested dataclasses flattened
    (``neuron.threshold``); option names clash-free across the nesting."""
    options, top = [], {f.name for f in dataclasses.fields(params_class)}
    for f in dataclasses.fields(params_class):
        if dataclasses.is_dataclass(f.type):
            for path, flags, g in _fields_as_options(f.type, prefix=f"{f.name}."):
                if any(flag[2:].replace("-", "_") in top for flag in flags):
                    flags = tuple(f"--{f.name}-{flag[2:]}" for flag in flags)
                options.append((path, flags, g))
        elif "help" in f.metadata:
            flags = f.metadata["flags"] or (f"--{f.name.replace('_', '-')}",)
            options.append((prefix + f.name, flags, f))
    return options


def add_field_options(p, params_class, dest_prefix, title, exclude=(), only=None):
    """Add one option per documented field of ``params_class`` (those in ``only`` when given,
    less ``exclude``): one default (the field's), help text from the field's documentation
    (:func:`plausigrad.models.parameters.param`). :func:`collect_options` reads them back."""
    group = p.add_argument_group(f"{title} (defaults in brackets; {params_class.__name__})")
    for path, flags, f in _fields_as_options(params_class):
        if path in exclude or (only is not None and path not in only):
            continue
        kind, metavar = _option_type(f)
        default = f.default if f.default is not dataclasses.MISSING else None
        text = f.metadata["help"]
        if default is not None:
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            text += f" [{'on' if default is True else 'off' if default is False else shown}]"
        group.add_argument(*flags, dest=dest_prefix + path.replace(".", "__"), type=kind,
                           metavar=metavar, default=None, help=text.replace("%", "%%"))


def collect_options(args, dest_prefix):
    """The options given under ``dest_prefix`` as a nested dict (``neuron__x`` -> neuron.x)."""
    values = {}
    for dest, value in vars(args).items():
        if not dest.startswith(dest_prefix) or value is None:
            continue
        *owners, name = dest[len(dest_prefix):].split("__")
        target = values
        for owner in owners:
            target = target.setdefault(owner, {})
        target[name] = value
    return values


def _add_run_options(p, rule, rule_options=True):
    """The options of ``train`` / ``audit`` for ``rule``: the run's (RunConfig) and the rule's
    own, both generated from their dataclasses (the rule's only with ``rule_options``: reading
    them imports the rule's module, and with it Brian2)."""
    from plausigrad.protocols.training import RunConfig
    from plausigrad.rules.registry import rule_class
    p.add_argument("rule_name", nargs="?", metavar="RULE", default=None,
                   help=f"learning rule: {', '.join(rule_names())} (rules installed by other "
                        "packages register through the 'plausigrad.rules' entry points); "
                        "'plausigrad train RULE --help' lists the rule's options")
    p.add_argument("--rule", dest="rule_option", default=None, help="the same as RULE")
    p.add_argument("--config", default=None, metavar="FILE.toml",
                   help="start from this experiment file (experiments/, or a run's config.toml); "
                        "options given here override it")
    add_field_options(p, RunConfig, "run__", "run options", exclude=("rule", "track_alignment"))
    if rule_options:
        add_field_options(p, rule_class(rule).parameters_class, "rule__", f"{rule} parameters")


def _rule_from_argv(argv):
    """The rule a ``train`` / ``audit`` command line names (RULE or --rule), else None."""
    if len(argv) < 2 or argv[0] not in ("train", "audit"):
        return None
    if not argv[1].startswith("-"):
        return argv[1]
    for i, token in enumerate(argv):
        if token == "--rule" and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith("--rule="):
            return token.partition("=")[2]
    for i, token in enumerate(argv):  # no rule given: the experiment file's
        if token == "--config" and i + 1 < len(argv) or token.startswith("--config="):
            from plausigrad.protocols.config import read_config
            path = argv[i + 1] if token == "--config" else token.partition("=")[2]
            return read_config(path).get("rule")
    return None


def _config_from_args(args):
    """The RunConfig of a ``train`` / ``audit`` command line (+ its ``--config`` file)."""
    from plausigrad.models.errors import ConfigurationError
    from plausigrad.protocols.config import merge, read_config
    from plausigrad.protocols.training import RunConfig
    base = read_config(args.config) if args.config else {}
    if args.rule_name and args.rule_option and args.rule_name != args.rule_option:
        raise ConfigurationError(f"two rules given: {args.rule_name} and --rule "
                                 f"{args.rule_option}")
    rule = args.rule_name or args.rule_option or base.get("rule") or "biograd"
    if base.get("rule", rule) != rule:
        raise ConfigurationError(f"{args.config} is a {base['rule']} experiment, not {rule}")
    run = merge(base, {"rule": rule, **collect_options(args, "run__")})
    run["rule_params"] = merge(base.get("rule_params", {}), collect_options(args, "rule__"))
    if getattr(args, "track_alignment", None) is not None:
        run["track_alignment"] = args.track_alignment
    given_sleep = [key for key in ("sleep_every", "sleep_slots")
                   if getattr(args, f"run__{key}") is not None]
    config = RunConfig.from_dict(run, source=args.config or "the command line")
    if given_sleep and not config.make_rule().uses_sleep:
        raise ConfigurationError(f"option --{given_sleep[0].replace('_', '-')} applies only to "
                                 "rules that sleep (biograd with --feedback sleep)")
    config.make_rule()  # validate the rule's parameters before loading any data
    return config


def _cmd_train(args):
    from plausigrad.protocols.training import train
    config = _config_from_args(args)
    hook = None
    if config.track_alignment:
        from plausigrad.analysis.alignment import AlignmentTracker
        hook = AlignmentTracker(config, args.out, probe_size=args.probe_size)
    from plausigrad.protocols.progress import ProgressLine
    train(config, args.out, resume=args.resume, epoch_hook=hook,
          progress=None if args.quiet else ProgressLine())


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


def _add_no_verify(p):
    p.add_argument("--no-verify", action="store_true",
                   help="do not compare the MNIST files' MD5 with the published ones (for a "
                        "valid re-compressed copy); their structure is checked all the same")


def _set_md5_verification(args):
    """``--no-verify`` for this command only (calls of :func:`main` in one process are
    independent)."""
    from plausigrad.protocols import datasets
    datasets.VERIFY_MD5_DEFAULT = not getattr(args, "no_verify", False)


def build_parser(rule=None, *, rule_options=True):
    """The parser; ``train`` and ``audit`` carry the options of ``rule`` (default biograd),
    unless ``rule_options`` is false (a command line of another command: see
    :func:`parse_args`)."""
    rule = rule or "biograd"
    parser = _Parser(prog="plausigrad", description=__doc__.split("\n")[0])
    parser.rule = rule
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train a network; metrics + checkpoint every epoch")
    p.rule = rule
    _add_run_options(p, rule, rule_options)
    p.add_argument("--out", default="results/run", help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    _add_no_verify(p)
    p.add_argument("--quiet", action="store_true",
                   help="no progress line during an epoch (on a terminal it is redrawn in place; "
                        "elsewhere a plain line every 5 s)")
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
    _add_no_verify(p)
    p.set_defaults(func=_cmd_align)

    p = sub.add_parser("audit", help="locality audit of a rule's plasticity, read off its "
                                     "generated Brian2 model")
    p.rule = rule
    _add_run_options(p, rule, rule_options)
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
    _add_no_verify(p)
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


def parse_args(argv):
    """Parse a command line: the parser is built for the rule it names (see :func:`build_parser`);
    for a command other than ``train`` / ``audit`` without the rule options, so that e.g.
    ``plot-alignment`` or ``eval`` with a bad path answers without importing Brian2."""
    command = next((token for token in argv if not token.startswith("-")), None)
    rule_options = command in (None, "train", "audit")
    return build_parser(_rule_from_argv(argv), rule_options=rule_options).parse_args(argv)


def _not_the_cache_notice(record):
    """Logging filter: False for Brian2's Cython cache-size notice, True for every other record."""
    return "Cache size for target" not in record.getMessage()


def quiet_brian2_cache_notice():
    """Drop Brian2's import-time notice that its Cython cache is over 1 GB ("Cache size for
    target 'cython' ... You can call clear_cache"), an INFO record on the console that would turn
    every one-line error of a command that imports Brian2 into three lines. Installed before
    Brian2 is imported; every other Brian2 message is kept. One filter object, so calling
    :func:`main` many times in one process (the tests) installs it once."""
    import logging
    # Brian2 logs it from its package module, whose BrianLogger is named "brian2.brian2"
    logging.getLogger("brian2.brian2").addFilter(_not_the_cache_notice)


def _quiet_brian2_at_exit():
    """Silence Brian2's console for the rest of the process: an interrupted build leaves objects
    that Brian2 warns about as they are deleted at exit ("... was never included in a network"),
    which would turn the one line of an interrupted command into a dozen."""
    import logging
    logging.getLogger("brian2").setLevel(logging.CRITICAL + 1)


def _interrupted_line(exc, started):
    """The one line of a command ended by Ctrl-C (SIGINT) or SIGTERM: what was under way."""
    what = getattr(exc, "verb", "interrupted")  # a bare KeyboardInterrupt: a caller's own
    if not started:  # while the command's modules were imported / its options read
        return f"plausigrad: {what}"
    if getattr(exc, "during", None) == "compile":
        return (f"plausigrad: {what} during the compile (the next run compiles again; "
                "the last finished epoch, if any, is checkpointed)")
    return f"plausigrad: {what} (the last finished epoch is checkpointed; use --resume)"


def main(argv=None):
    # every import and option check is inside the try below: a Ctrl-C while Brian2 loads
    # (seconds) is one line too, never a KeyboardInterrupt traceback
    interactive = argv is None  # the command itself, not a caller (the tests) in its process
    argv = sys.argv[1:] if argv is None else list(argv)
    started = False
    try:
        restore_signals = interrupts.install()
    except ValueError:  # not the main thread: signals stay as they are
        restore_signals = None
    try:
        quiet_brian2_cache_notice()
        try:
            args = parse_args(argv)
        except SystemExit as exc:  # --help (0) or a usage error, already printed in one line
            return exc.code
        started = True
        _set_md5_verification(args)
        args.func(args)
        interrupts.check()  # a signal whose first raise was dropped in a callback
    except PlausigradError as exc:
        print(f"plausigrad: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        if interactive:
            _quiet_brian2_at_exit()
        print(_interrupted_line(exc, started), file=sys.stderr)
        return getattr(exc, "exit_status", 130)
    finally:
        if started:
            _set_md5_verification(None)  # verify again: --no-verify was this command's
        interrupts.handled()
        if interactive:  # the outcome is printed and the exit status set
            interrupts.ignore_from_now()
        elif restore_signals is not None:
            restore_signals()
    return 0


if __name__ == "__main__":
    sys.exit(main())
