"""What a smoke check found, as values: no sockets, no clock, no printing.

A deploy pipeline acts on the exit code and a person reads the lines; both come from these
frozen values, so the rules (which status fails the run, what ``--json`` holds) are tested
without a server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["STEP_NAMES", "SmokeResult", "Status", "StepResult", "not_run"]

#: The steps, in the order they run and are shown. A name is part of the ``--json`` output:
#: pipelines may pick a step by it, so a rename is a breaking change.
STEP_NAMES = (
    "wss only",
    "connect",
    "public subscribe",
    "private subscribe",
    "private auth enforced",
    "presence subscribe",
    "trigger to two users",
    "channel info",
    "health",
)


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    #: Not attempted: nothing asked for it (no ``--health-url``, ``--allow-plain``) or a step
    #: it needs failed first, which already fails the run.
    SKIPPED = "skipped"


@dataclass(frozen=True)
class StepResult:
    name: str
    status: Status
    #: The figure a person reads first: ``23 ms``, ``2 of 2 users in 8 ms``; a skip's reason.
    figure: str = ""
    #: Why it failed, in one line (failed steps only).
    reason: str = ""
    #: Milliseconds the step took (``None`` when it did not run).
    ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": str(self.status),
            "figure": self.figure,
            "reason": self.reason or None,
            "ms": None if self.ms is None else round(self.ms, 1),
        }


def not_run(name: str, why: str) -> StepResult:
    """A step that never started because one it needs failed (its failure is the finding)."""
    return StepResult(name, Status.SKIPPED, figure=f"not run: {why}")


@dataclass(frozen=True)
class SmokeResult:
    """One smoke run. ``unreachable`` (a reason) means nothing answered at the target's
    address, so no step ran: a different verdict from a step that failed (exit 3, not 1),
    since a pipeline may want to retry the one and roll back on the other."""

    target: str
    ws_url: str
    http_url: str
    deadline_s: float
    elapsed_s: float
    steps: tuple[StepResult, ...] = ()
    unreachable: str | None = None
    #: Connections the run opened and closed again before it returned (it leaves none open).
    connections_closed: int = 0
    channels: tuple[str, ...] = field(default=())

    def counted(self, status: Status) -> int:
        return sum(1 for step in self.steps if step.status is status)

    @property
    def failed(self) -> tuple[StepResult, ...]:
        return tuple(step for step in self.steps if step.status is Status.FAILED)

    @property
    def exit_code(self) -> int:
        """0 every step passed (or was skipped on purpose), 1 a step failed, 3 unreachable."""
        if self.unreachable is not None:
            return 3
        return 1 if self.failed else 0

    def to_json(self) -> dict[str, Any]:
        """What ``--json`` prints: stable keys a pipeline can read (no secret in it)."""
        return {
            "target": self.target,
            "ws_url": self.ws_url,
            "http_url": self.http_url,
            "ok": self.exit_code == 0,
            "exit_code": self.exit_code,
            "unreachable": self.unreachable,
            "deadline_s": self.deadline_s,
            "elapsed_s": round(self.elapsed_s, 3),
            "steps": [step.to_json() for step in self.steps],
            "passed": self.counted(Status.PASSED),
            "failed": self.counted(Status.FAILED),
            "skipped": self.counted(Status.SKIPPED),
            "channels": list(self.channels),
            "connections_closed": self.connections_closed,
        }


def ordered(steps: Iterable[StepResult]) -> tuple[StepResult, ...]:
    """Steps in the order of ``STEP_NAMES`` whatever order they finished in."""
    rank = {name: index for index, name in enumerate(STEP_NAMES)}
    return tuple(sorted(steps, key=lambda step: rank.get(step.name, len(rank))))
