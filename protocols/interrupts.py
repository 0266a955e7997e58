"""Ctrl-C (SIGINT) and SIGTERM in a command: recorded, raised, and raised again at safe points.

A command installs :func:`install` first. Its handler records the signal and raises
:class:`Interrupted` (SIGINT) or :class:`Terminated` (SIGTERM), both :class:`KeyboardInterrupt`
so that ``subprocess`` kills the child a command waits for and every ``except
KeyboardInterrupt`` cleans up as for Ctrl-C.

Python runs a signal handler in whatever bytecode the main thread executes next. When that is a
weakref callback or a ``__del__`` (Brian2 removes its objects from its instance trackers in
weakref callbacks, many of them while a network is rebuilt), Python prints "Exception ignored
in ..." and drops the exception: the signal is lost and the run goes on. So the signal is also
kept as *pending*, and :func:`check`, called at the safe points of a command (before and after
each simulation, before a checkpoint is written), raises it again. An epoch during which a
signal arrived is never checkpointed. The command's last :func:`check` makes a signal that no
safe point saw end the command as interrupted too.

Standard library only, so that it can be imported before anything else of a command.
"""

import signal


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) in a command; ``exit_status`` is the shell's 128 + 2."""
    exit_status = 130
    verb = "interrupted"


class Terminated(Interrupted):
    """SIGTERM in a command; exit status 128 + 15."""
    exit_status = 143
    verb = "terminated"


_EXCEPTIONS = {signal.SIGINT: Interrupted, signal.SIGTERM: Terminated}
_pending = None  #: the signal received and not yet handled by the command


def _on_signal(signum, frame):
    global _pending
    _pending = signum
    raise _EXCEPTIONS[signum]()


def _ignore(signum, frame):
    """SIGINT ignored as it was when the process started (a background job of a script)."""


def install():
    """Handle SIGINT and SIGTERM (see the module doc) from now on (a signal already pending
    stays pending: the console entry installs the handlers before the CLI's imports, and the
    CLI's ``main`` again).
    A SIGINT that is ignored (``SIG_IGN``, inherited from the parent) stays ignored: a Python
    no-op takes its place, because Brian2, imported later, replaces the handler and calls the
    one it found, which fails for ``SIG_IGN`` (a 112-line traceback at the first ``kill -INT``).
    Returns a callable that restores the previous handlers. Raises ``ValueError`` outside the
    main thread (handlers can be set there only)."""
    previous = {signum: signal.getsignal(signum) for signum in _EXCEPTIONS}
    signal.signal(signal.SIGTERM, _on_signal)
    ignored = previous[signal.SIGINT] in (signal.SIG_IGN, _ignore)
    signal.signal(signal.SIGINT, _ignore if ignored else _on_signal)

    def restore():
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    return restore


def ignore_from_now():
    """Ignore SIGINT and SIGTERM for the rest of the process (a command whose outcome is printed
    and whose exit status is set: a late Ctrl-C while the interpreter shuts down would otherwise
    end it with a traceback or by the signal, exit -2, whatever the outcome was)."""
    for signum in _EXCEPTIONS:
        signal.signal(signum, signal.SIG_IGN)


def pending():
    """The exception class of the signal received and not handled yet, or None."""
    return None if _pending is None else _EXCEPTIONS[_pending]


def check():
    """A safe point: raise the pending signal's exception again (its first raise may have been
    dropped in a weakref callback or ``__del__``). Nothing happens when no signal is pending."""
    if _pending is not None:
        raise _EXCEPTIONS[_pending]()


def handled():
    """The command has handled the pending signal (printed its line): nothing is pending."""
    global _pending
    _pending = None
