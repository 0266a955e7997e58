"""The ``plausigrad`` console command (and ``python -m plausigrad.protocols``): the signal
handlers of :mod:`plausigrad.protocols.interrupts` first, then :func:`plausigrad.protocols.cli.main`.

Importing the CLI module takes about 0.1 s (argparse, the rule registry, the device module);
with the handlers installed before it, a Ctrl-C or SIGTERM in that time is the command's one
line (``plausigrad: interrupted``, exit 130 / 143) instead of a ``KeyboardInterrupt``
traceback or death by the signal. What remains uncovered is the interpreter's own start-up,
before this module runs (tens of milliseconds).
"""

import sys

from plausigrad.protocols import interrupts


def main():
    try:
        interrupts.install()
        from plausigrad.protocols.cli import main as cli_main
    except KeyboardInterrupt as exc:
        print(f"plausigrad: {getattr(exc, 'verb', 'interrupted')}", file=sys.stderr)
        interrupts.ignore_from_now()
        return getattr(exc, "exit_status", 130)
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
