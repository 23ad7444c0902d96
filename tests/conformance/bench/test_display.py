"""The progress display: a live panel on a terminal that leaves one line per finished phase,
plain lines in a log, nothing with --no-progress."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from conformance.bench import display
from conformance.bench.display import BenchProgress
from conformance.bench.model import PhaseResult

RESULT = PhaseResult("connect", {"p50_ms": 3.2, "p99_ms": 9.1}, loss=0, seconds=1.25)


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=200), out


def test_a_terminal_gets_a_panel_and_keeps_each_finished_phase() -> None:
    console, out = _console(True)
    with BenchProgress(console, 2) as progress:
        progress.start("connect", "soketi 1.6.1")
        progress.update("opened 500 of 1000", 0.5)
        progress.done(RESULT)
        progress.start("idle", "soketi 1.6.1")
    text = out.getvalue()
    assert "[1/2] connect on soketi 1.6.1: connect p50 3.20 ms, connect p99 9.10 ms" in text
    assert "conformance bench" in text  # the panel was drawn


def test_a_log_gets_a_line_per_phase_and_a_status_every_few_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    console, out = _console(False)
    monkeypatch.setattr(display, "LINE_EVERY", 0.0)
    with BenchProgress(console, 1) as progress:
        progress.start("relay", "ref")
        progress.update("relayed 10", 0.25)
        progress.done(RESULT)
    assert out.getvalue().splitlines() == [
        "bench: [1/1] relay on ref",
        "bench: [1/1] relay on ref: 25% relayed 10",
        "bench: [1/1] relay on ref: connect p50 3.20 ms, connect p99 9.10 ms; loss 0,"
        " duplicates 0; CPU server —, load generator 0% (1.2 s)",
    ]


def test_no_progress_says_nothing() -> None:
    for terminal in (True, False):
        console, out = _console(terminal)
        with BenchProgress(console, 1, live=False) as progress:
            progress.start("relay", "ref")
            progress.update("relayed 10", 0.25)
            progress.done(RESULT)
        assert out.getvalue() == ""
