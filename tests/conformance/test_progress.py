"""What a run shows while it runs, when its output is not a terminal: plain lines."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

from conformance import progress as progress_module
from conformance.outcomes import CheckOutcome
from conformance.progress import PlainProgress
from conformance.runner import CheckRun, Job


def _job(name: str) -> Job:
    check: Any = SimpleNamespace(full_id=name, kind="exchange")
    return Job(check, SimpleNamespace(id=name), None, first=False)  # type: ignore[arg-type]


def test_failures_are_told_as_they_happen_and_passes_are_not() -> None:
    out = io.StringIO()
    shown = PlainProgress(2, out)
    shown.finished(_job("A/1"), CheckRun(CheckOutcome.PASSED, "", 0.0, 0.5))
    shown.finished(_job("B/1"), CheckRun(CheckOutcome.FAILED, "closed 4009\nmore", 0.0, 1.25))
    lines = out.getvalue().splitlines()
    assert lines == [
        "conformance: running 2 checks",
        "conformance: FAILED B/1 (1.2 s): closed 4009",
    ]


def test_a_status_line_names_the_longest_waits(monkeypatch: Any) -> None:
    out = io.StringIO()
    shown = PlainProgress(5, out)
    now = progress_module.time.monotonic()
    monkeypatch.setattr(progress_module, "PLAIN_EVERY", 0.0)
    shown.tick({_job("PROTO-PING-02/x"): now - 6.0, _job("WH-01/y"): now - 1.0})
    status = out.getvalue().splitlines()[-1]
    assert status.startswith("conformance: 0/5 checks done, 0 not passed, 2 running")
    assert status.index("PROTO-PING-02/x 6 s") < status.index("WH-01/y 1 s")
