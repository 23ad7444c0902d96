"""What a bench shows while it runs: a live panel on a terminal (the phase, the server, how far
along), plain lines in a log (one when a phase starts, one every few seconds, one with its
figures when it ends), nothing with ``--no-progress``.

The load generator reports through ``update(message, fraction)``; the panel keeps only the
latest, so a generator may call it as often as it likes. Each finished phase leaves one line
with its first figures, on a terminal too, so the run reads as a log when it is over.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .figures import headline
from .model import PhaseResult

__all__ = ["BenchProgress"]

#: Seconds between status lines in a log.
LINE_EVERY = 5.0


class BenchProgress:
    def __init__(self, console: Console, steps: int, *, live: bool = True) -> None:
        self._console = console
        self._steps = steps
        self._enabled = live
        self._live: Live | None = None
        self._step = 0
        self._phase = ""
        self._target = ""
        self._message = ""
        self._fraction = 0.0
        self._phase_began = self._began = time.monotonic()
        self._last_line = 0.0

    def __enter__(self) -> BenchProgress:
        self._began = time.monotonic()
        if self._enabled and self._console.is_terminal:
            self._live = Live(
                self._panel(), console=self._console, refresh_per_second=4, transient=True
            )
            self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _where(self) -> str:
        return f"[{self._step}/{self._steps}] {self._phase} on {self._target}"

    def _say(self, line: str) -> None:
        if self._enabled and self._live is None:
            self._console.print(f"bench: {line}", highlight=False, markup=False, soft_wrap=True)

    def start(self, phase: str, target: str) -> None:
        self._step += 1
        self._phase, self._target = phase, target
        self._message, self._fraction = "starting", 0.0
        self._phase_began = self._last_line = time.monotonic()
        self._say(self._where())
        self._refresh()

    def update(self, message: str, fraction: float) -> None:
        message = message.removeprefix(f"{self._phase}: ")  # the panel names the phase already
        self._message = message
        self._fraction = min(1.0, max(0.0, fraction))
        if self._live is not None:
            self._refresh()
        elif time.monotonic() - self._last_line >= LINE_EVERY:
            self._last_line = time.monotonic()
            self._say(f"{self._where()}: {self._fraction:.0%} {message}")

    def done(self, result: PhaseResult) -> None:
        """The phase's line stays: above the panel on a terminal, in order in a log."""
        line = f"{self._where()}: {headline(result)} ({result.seconds:.1f} s)"
        if self._live is not None:
            self._live.console.print(
                f"bench: {line}", highlight=False, markup=False, soft_wrap=True
            )
        self._say(line)
        self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._panel())

    def _panel(self) -> Group:
        now = time.monotonic()
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold")
        table.add_column()
        table.add_row("phase", f"{self._step}/{self._steps} {self._phase or 'starting'}")
        table.add_row("server", self._target or "—")
        table.add_row(
            "progress",
            Group(
                ProgressBar(total=1.0, completed=self._fraction, width=40),
                Text(f"{self._fraction:.0%} {self._message}"),
            ),
        )
        table.add_row(
            "elapsed", f"{now - self._phase_began:.0f} s in this phase, {now - self._began:.0f} s"
        )
        return Group(Text("conformance bench", style="bold"), table)
