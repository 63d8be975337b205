"""A run's progress on stderr.

On a terminal: one live status line under the scrolling output, showing
the step, N of M, the seconds it has run and the last line its command
printed (a bootstrap is minutes of silence otherwise). Not on a terminal
(CI, a log file): plain lines, no spinner and no control characters; a long
step's latest output line at most every HEARTBEAT seconds. At the end:
each step's time.
"""
from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from ..pipeline import Progress
from ..steps.base import Step

if TYPE_CHECKING:
    from rich.live import Live

HEARTBEAT = 15.0   # seconds between plain progress lines of one step
LINE_MAX = 160     # characters of a command's output line shown


ANSI_ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")


def _clean(line: str) -> str:
    # Commands draw their own progress with \r and colours (ECMA-48 escapes);
    # keep the last redraw and printable characters only.
    line = ANSI_ESCAPE.sub("", line.rstrip("\r\n").rsplit("\r", 1)[-1])
    line = "".join(c if c.isprintable() else " " for c in line).strip()
    return line[:LINE_MAX]


class _StatusText:
    """Re-rendered by rich on every refresh, so the seconds tick without output."""

    def __init__(self, progress: ConsoleProgress):
        self.progress = progress

    def __rich__(self) -> Text:
        p = self.progress
        text = Text.assemble((p.step_name, "bold"), f" ({p.number}/{p.total}) ",
                             f"{time.monotonic() - p.started:.0f}s")
        if p.last_line:
            text.append("  " + p.last_line, style="dim")
        text.truncate(max(20, p.console.width - 2), overflow="ellipsis")
        return text


class ConsoleProgress(Progress):
    def __init__(self, console: Console, live: bool | None = None):
        self.console = console
        self.live_enabled = console.is_terminal if live is None else live
        self.times: list[tuple[str, str, float]] = []   # (step, outcome, seconds)
        self.step_name, self.number, self.total = "", 0, 0
        self.started = time.monotonic()
        self.last_line = ""
        self._last_plain = 0.0
        self._lock = threading.Lock()
        self._live: Live | None = None

    # -- the pipeline's events --------------------------------------------------
    def step_started(self, step: Step, number: int, total: int) -> None:
        self.step_name, self.number, self.total = step.name, number, total
        self.started = self._last_plain = time.monotonic()
        self.last_line = ""
        # The first words are the step's name: bench/run.py reads which steps ran from them.
        self.console.print(Text.assemble((step.name, "bold"), f": {step.summary()} [{number}/{total}]"))
        if self.live_enabled:
            # Here, not at the top: rich.live (and its table) is ~5 ms of every command's start-up.
            from rich.live import Live
            from rich.spinner import Spinner
            self._live = Live(Spinner("dots", _StatusText(self)), console=self.console, transient=True,
                              refresh_per_second=4, redirect_stdout=False, redirect_stderr=True)
            self._live.start()

    def output_line(self, line: str) -> None:
        # Called from the Runner's reader threads.
        line = _clean(line)
        if not line:
            return
        with self._lock:
            self.last_line = line
            if self._live is None and time.monotonic() - self._last_plain >= HEARTBEAT:
                self._last_plain = time.monotonic()
                self.console.print(f"  {self.step_name}: {time.monotonic() - self.started:.0f}s: {line}",
                                   markup=False, highlight=False)

    def step_finished(self, step: Step, outcome: str, seconds: float) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.times.append((step.name, outcome, seconds))

    # -- the end of the run ------------------------------------------------------
    def summary(self) -> None:
        """Each step that ran, its outcome and time."""
        if not self.times:
            return
        width = max(len(name) for name, _, _ in self.times)
        total = sum(s for _, _, s in self.times)
        self.console.print("step times:", highlight=False)
        for name, outcome, seconds in self.times:
            self.console.print(f"  {name:<{width}}  {seconds:7.1f}s  {outcome}", markup=False, highlight=False)
        self.console.print(f"  {'total':<{width}}  {total:7.1f}s", markup=False, highlight=False)
