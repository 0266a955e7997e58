"""Progress of a standalone run (protocols/progress.py): the binary's report parsed, the
watcher thread, and the line shown (redrawn on a terminal, throttled plain lines elsewhere)."""

import io
import time

from plausigrad.protocols.progress import ProgressLine, ReportWatcher, latest_report

REPORT = """Starting simulation at t=0 s for duration 4.55 s
0.655 s (14%) simulated in 5s, estimated 30s remaining.
1.5 s (32%) simulated in 10s, estimated 20s remaining.
"""


def test_latest_report_is_the_last_complete_line():
    assert latest_report(REPORT) == 1.5
    assert latest_report("Starting simulation at t=0 s for duration 4.55 s\n") is None
    assert latest_report(REPORT + "4.55 s (100%) simulated in 31s\n") == 4.55


def test_watcher_reports_new_values_and_the_last_one_on_exit(tmp_path):
    path = tmp_path / "stdout.txt"
    seen = []
    with ReportWatcher(str(path), seen.append, poll=0.05):
        time.sleep(0.2)  # no file yet: nothing, no error
        path.write_text(REPORT)
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        path.write_text(REPORT + "4.55 s (100%) simulated in 31s\n")
    assert seen[0] == 1.5 and seen[-1] == 4.55
    assert seen.count(1.5) == 1  # a report is passed on once


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_plain_lines_are_throttled_and_carry_rate_and_eta():
    stream, clock = io.StringIO(), Clock()
    line = ProgressLine(stream, plain_every=30, clock=clock)
    line.start()
    for now, done in ((10, 100), (20, 200), (41, 410), (50, 500)):
        clock.now = now
        line("epoch 1", done, 1000)
    shown = stream.getvalue().splitlines()
    assert shown == ["epoch 1: 100 / 1000 samples, ? samples/s, ETA ?",
                     "epoch 1: 410 / 1000 samples, 10.0 samples/s, ETA 59 s"]


def test_the_rate_counts_from_the_first_report_not_from_the_compile():
    """An epoch's first report comes after the compile and the binary's start-up (a minute
    here): the samples/s and the ETA are those of the running binary (a full-MNIST epoch
    showed 213 samples/s instead of 2747 when the start-up counted)."""
    stream, clock = io.StringIO(), Clock()
    line = ProgressLine(stream, plain_every=0, clock=clock)
    line.start()
    for now, done in ((60, 500), (65, 3000), (70, 5500)):
        clock.now = now
        line("epoch 1", done, 70000)
    shown = stream.getvalue().splitlines()
    assert shown[1:] == ["epoch 1: 3000 / 70000 samples, 500.0 samples/s, ETA 2 min 14 s",
                         "epoch 1: 5500 / 70000 samples, 500.0 samples/s, ETA 2 min 09 s"]
    line.start()  # the next epoch measures afresh
    clock.now = 100
    line("epoch 2", 10, 70000)
    assert stream.getvalue().splitlines()[-1] == "epoch 2: 10 / 70000 samples, ? samples/s, ETA ?"


def test_a_terminal_line_is_redrawn_in_place():
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    stream, clock = Terminal(), Clock()
    line = ProgressLine(stream, clock=clock)
    line.start()
    for now in (1, 2):
        clock.now = now
        line("epoch 3", 50 * now, 100)
    line.finish()
    text = stream.getvalue()
    assert text.count("\r") == 4 and "\n" not in text  # 2 draws, then cleared
    assert "epoch 3: 100 / 100 samples, 50.0 samples/s, ETA 0 s" in text
