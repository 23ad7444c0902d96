"""What a run shows while it runs: checks done of the total, the waits in flight, failures as
they happen.

A run against a slow or broken target must never look hung. On a terminal a live display
(rich) redraws a few times a second; elsewhere (CI logs, pipes) each failure is one line and a
status line comes every ``PLAIN_EVERY`` seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from types import TracebackType
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .outcomes import CheckOutcome
from .runner import CheckRun, Job
from .runner import Progress as ProgressSink

__all__ = ["LiveProgress", "PlainProgress", "make_progress"]

#: Seconds between status lines when the output is not a terminal.
PLAIN_EVERY = 10.0
#: How many of the longest-running checks the display lists.
SHOWN_RUNNING = 6

_NOTEWORTHY = {
    CheckOutcome.FAILED: "FAILED",
    CheckOutcome.ERROR: "ERROR",
    CheckOutcome.VOID: "VOID",
}


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 160 else line[:157] + "..."


class _Display(ProgressSink):
    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.failures = 0
        self.started_at = time.monotonic()

    def __enter__(self) -> _Display:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def _count(self, run: CheckRun) -> str | None:
        self.done += 1
        label = _NOTEWORTHY.get(run.outcome)
        if label is not None:
            self.failures += 1
        return label


class PlainProgress(_Display):
    """Lines for logs: a failure when it happens, a status line now and then."""

    def __init__(self, total: int, stream: IO[str]) -> None:
        super().__init__(total)
        self.stream = stream
        self.last_status = time.monotonic()
        self._say(f"running {total} checks")

    def _say(self, line: str) -> None:
        self.stream.write(f"conformance: {line}\n")
        self.stream.flush()

    def finished(self, job: Job, run: CheckRun) -> None:
        label = self._count(run)
        if label is not None:
            self._say(
                f"{label} {job.check.full_id} ({run.duration:.1f} s): {_first_line(run.message)}"
            )

    def tick(self, running: Mapping[Job, float]) -> None:
        now = time.monotonic()
        if now - self.last_status < PLAIN_EVERY:
            return
        self.last_status = now
        longest = sorted(running.items(), key=lambda item: item[1])[:3]
        waits = ", ".join(f"{j.check.full_id} {now - t:.0f} s" for j, t in longest)
        self._say(
            f"{self.done}/{self.total} checks done, {self.failures} not passed, "
            f"{len(running)} running{f' (longest: {waits})' if waits else ''}"
        )


class LiveProgress(_Display):
    """A live panel for a terminal: a bar, the longest waits in flight, failures above it."""

    def __init__(self, total: int, console: Console) -> None:
        super().__init__(total)
        self.console = console
        self.bar = Progress(
            TextColumn("[bold]checks"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failures]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.bar.add_task("checks", total=total, failures="")
        self.running: Table = Table.grid()
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=True)

    def _render(self) -> Any:
        return Group(self.bar, self.running)

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.live.__exit__(exc_type, exc, tb)

    def finished(self, job: Job, run: CheckRun) -> None:
        label = self._count(run)
        if label is not None:
            self.console.print(
                f"[red]{label}[/red] {job.check.full_id} ({run.duration:.1f} s): "
                f"{_first_line(run.message)}",
                markup=True,
                highlight=False,
            )
        note = f"[red]{self.failures} not passed[/red]" if self.failures else ""
        self.bar.update(self.task, completed=self.done, failures=note)

    def tick(self, running: Mapping[Job, float]) -> None:
        now = time.monotonic()
        table = Table.grid(padding=(0, 2))
        for job, started in sorted(running.items(), key=lambda item: item[1])[:SHOWN_RUNNING]:
            table.add_row(f"  waiting {now - started:5.1f} s", job.check.full_id)
        if len(running) > SHOWN_RUNNING:
            table.add_row("", f"... and {len(running) - SHOWN_RUNNING} more")
        self.running = table
        self.live.update(self._render())


def make_progress(config: Any, *, total: int) -> _Display:
    """A live display on a terminal, plain lines otherwise (``config`` is pytest's, unused
    beyond telling whether output is wanted at all)."""
    stream = sys.stdout
    if stream.isatty():
        return LiveProgress(total, Console(file=stream))
    return PlainProgress(total, stream)
