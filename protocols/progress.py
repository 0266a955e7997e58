"""Progress of a running standalone binary: read from its report, shown as one line on stderr.

A compiled run reports how much biological time it has simulated (Brian2's ``report="text"``,
every :data:`REPORT_SECONDS` of wall time) into ``stdout.txt`` of its results folder, which is
deleted once the epoch has been read. While the binary runs, :class:`ReportWatcher` reads the
newest report every :data:`POLL_SECONDS` and hands the simulated fraction to a callback;
:class:`ProgressLine` turns it into ``epoch 2: 12 345 / 70 000 samples, 21.4 samples/s, ETA
43 min`` — redrawn in place on a terminal, or printed as a plain line every
:data:`PLAIN_SECONDS` when stderr is not one (CI logs).
"""

import re
import sys
import threading
import time

#: Wall seconds between two reports of the binary (compiled into it).
REPORT_SECONDS = 5
#: How often the watcher reads the report file.
POLL_SECONDS = 2.0
#: Seconds between two plain progress lines when stderr is not a terminal.
PLAIN_SECONDS = 5.0

#: Brian2's text report: "12.5 s (34%) simulated in 1m 0s, estimated ..."
_REPORT = re.compile(r"([0-9.eE+-]+) s \(\s*(\d+)%\) simulated in")


def latest_report(text):
    """Simulated seconds of the last complete report line in ``text``, or None."""
    found = None
    for line in text.splitlines():
        match = _REPORT.search(line)
        if match:
            found = float(match.group(1))
    return found


class ReportWatcher:
    """A daemon thread calling ``callback(simulated_seconds)`` whenever the report file at
    ``path`` shows a newer report; ``with`` starts and stops it (the file may not exist yet), and
    the file is read once more on the way out, so the binary's last report (100 %) is seen."""

    def __init__(self, path, callback, poll=POLL_SECONDS):
        self.path, self.callback, self.poll = path, callback, poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._last = None

    def _read(self):
        """Call back if the report file shows a newer report; False once the callback failed."""
        try:
            with open(self.path, errors="replace") as handle:
                seconds = latest_report(handle.read())
        except OSError:
            return True
        if seconds is not None and seconds != self._last:
            self._last = seconds
            try:
                self.callback(seconds)
            except Exception:  # a display problem must never stop a run
                return False
        return True

    def _watch(self):
        while not self._stop.wait(self.poll):
            if not self._read():
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        if exc[0] is None:
            self._read()
        return False


def _duration(seconds):
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


class ProgressLine:
    """Shows ``(label, done, total)`` progress of samples on ``stream`` (stderr): redrawn with
    ``\\r`` on a terminal, else a plain line at most every ``plain_every`` seconds. ``clock`` is
    injectable for tests."""

    def __init__(self, stream=None, plain_every=PLAIN_SECONDS, clock=time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.plain_every, self.clock = plain_every, clock
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._started = None
        self._shown = None
        self._first = None
        self._drawn = False

    def start(self):
        self._started, self._shown, self._first = self.clock(), None, None

    def __call__(self, label, done, total):
        now = self.clock()
        if self._started is None:
            self.start()
        # the rate counts from the first report of the epoch on, so the compile and the
        # binary's start-up (loading its data) do not count as simulating samples
        if self._first is None:
            self._first = (now, done)
        first_time, first_done = self._first
        rate = ((done - first_done) / (now - first_time)
                if now > first_time and done > first_done else None)
        eta = (total - done) / rate if rate else None
        text = (f"{label}: {done} / {total} samples, "
                f"{f'{rate:.1f}' if rate else '?'} samples/s, ETA "
                f"{_duration(eta) if eta is not None else '?'}")
        if self.tty:
            self.stream.write("\r" + text.ljust(72))
            self._drawn = True
        elif self._shown is None or now - self._shown >= self.plain_every:
            self.stream.write(text + "\n")
            self._shown = now
        else:
            return
        self.stream.flush()

    def finish(self):
        """End a redrawn line (so the next output starts on a fresh line)."""
        if self._drawn:
            self.stream.write("\r" + " " * 72 + "\r")
            self.stream.flush()
            self._drawn = False
