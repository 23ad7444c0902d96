"""Running checks: one check from start to verdict, and many of them side by side.

Almost all of a check's time is spent waiting on the target (a heartbeat timer, a webhook
hold, a frame that must not arrive), so the suite runs checks side by side in one process,
each on its own event-loop thread, and a run lasts about as long as its longest wait rather
than the sum of all of them. Checks never share a connection or a channel, so running them
together changes no verdict; the few that measure the target's timers keep their own
connections quiet and are started first, so they do not end up last in the queue.

Every check has a time budget (scaled by ``--timeout-multiplier``). A check that spends it is
ended with the handshake times it measured, so a slow target is reported as such instead of
crawling on. What happens when the target dies is the scheduler's (conformance/scheduling.py).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import statistics
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .context import CheckContext, RunSettings
from .errors import (
    CheckFailed,
    CheckOverBudget,
    PreconditionFailed,
    TargetError,
    UsageError,
)
from .loop import LoopThread
from .outcomes import CheckOutcome
from .profiles import profile
from .properties import run_property
from .results import normalize_figures
from .spec import Check, Requirement
from .steps import run_exchange
from .target import Target

__all__ = [
    "SUSPECT",
    "CheckRun",
    "Job",
    "Progress",
    "RunHealth",
    "abort_all",
    "budget_for",
    "classify",
    "execute_check",
    "handshake_times",
    "last_input",
    "parse_one_at_a_time",
]

#: Seconds any check may take beyond the target's heartbeat timers, at multiplier 1.
BASE_BUDGET = 30.0
#: Extra seconds per hypothesis example a property may run.
PER_EXAMPLE_BUDGET = 1.5
#: Seconds beyond the profile's shrinking bound a property may take to wind up.
SHRINK_MARGIN = 30.0


@dataclass
class CheckRun:
    """What one check came to: its outcome and the context holding its evidence."""

    outcome: CheckOutcome
    message: str
    started: float
    finished: float
    ctx: CheckContext | None = None

    @property
    def duration(self) -> float:
        return self.finished - self.started


@dataclass
class RunHealth:
    """What the run has learnt about the target as a whole, shared by every check thread."""

    #: Set when the target stopped answering: a line saying when and during which checks.
    died: str | None = None
    #: Check ids running when the death was noticed, with their last recorded input.
    died_during: dict[str, str] = field(default_factory=dict)
    #: Deaths the run came back from by restarting the target: (finding, last inputs).
    revived: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def come_back(self) -> None:
        """The target was restarted: the death is a finding of the past, and checks go on."""
        with self.lock:
            assert self.died is not None
            self.revived.append((self.died, dict(self.died_during)))
            self.died, self.died_during = None, {}


def budget_for(
    target: Target, settings: RunSettings, check: Check, examples: int, *, waits_on_timers: bool
) -> float:
    """A check's time budget: a fixed allowance; for a property, more per example and for
    shrinking; for a check that waits on the target's heartbeat timers, room for them twice
    over (an activity timeout, then a pong timeout). All scaled by the timeout multiplier."""
    timings = target.timings
    timers = 2 * (timings.activity_timeout or 120.0) + 2 * (timings.pong_timeout or 30.0)
    shrinking = profile(settings.profile).shrink_seconds + SHRINK_MARGIN
    exploring = check.kind == "property"
    per_example = PER_EXAMPLE_BUDGET * examples + shrinking if exploring else 0.0
    waits = timers if waits_on_timers else 0.0
    return settings.timeout_multiplier * (BASE_BUDGET + waits + per_example)


def handshake_times(ctx: CheckContext) -> list[int]:
    """The WebSocket handshake times (ms) this check measured, from its wire log."""
    return [
        int(e["handshake_ms"])
        for e in ctx.transcript.entries
        if e.get("kind") == "ws_open" and isinstance(e.get("handshake_ms"), int)
    ]


def _message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    notes = getattr(exc, "__notes__", None)
    if notes:
        text += "\n" + "\n".join(str(n) for n in notes)
    return text


def classify(exc: BaseException) -> tuple[CheckOutcome, str]:
    """The outcome an exception stands for (see errors.py for why each maps so)."""
    if isinstance(exc, BaseExceptionGroup):
        inner = [classify(e) for e in exc.exceptions]
        for wanted in (CheckOutcome.FAILED, CheckOutcome.ERROR, CheckOutcome.INCONCLUSIVE):
            for outcome, text in inner:
                if outcome is wanted:
                    return outcome, f"{text}\n(hypothesis: {type(exc).__name__})"
        return CheckOutcome.ERROR, _message(exc)
    if isinstance(exc, CheckFailed):
        return CheckOutcome.FAILED, _message(exc)
    if isinstance(exc, PreconditionFailed):
        return CheckOutcome.INCONCLUSIVE, _message(exc)
    if isinstance(exc, TargetError):
        return CheckOutcome.ERROR, f"target error: {_message(exc)}"
    if isinstance(exc, UsageError):
        return CheckOutcome.ERROR, f"spec error: {_message(exc)}"
    tb = "".join(traceback.format_exception(exc)[-4:])
    return CheckOutcome.ERROR, f"harness error: {exc!r}\n{tb}"


def _too_slow(exc: CheckOverBudget, ctx: CheckContext, settings: RunSettings) -> str:
    times = handshake_times(ctx)
    measured = (
        f"{len(times)} WebSocket handshakes took median {statistics.median(times):.0f} ms, "
        f"max {max(times)} ms"
        if times
        else "no WebSocket handshake completed"
    )
    return (
        f"target too slow: {exc} at --timeout-multiplier {settings.timeout_multiplier:g} "
        f"({measured}); the check was stopped there. A distant or loaded target needs a "
        "larger --timeout-multiplier."
    )


def execute_check(
    target: Target,
    settings: RunSettings,
    check: Check,
    models: Mapping[str, Any],
    *,
    budget: float | None,
) -> CheckRun:
    """Run one check to its outcome. Never raises: every ending is classified."""
    started = time.monotonic()
    outcome, message = CheckOutcome.PASSED, ""
    with LoopThread(budget=budget) as runner, _registered(runner):
        ctx = CheckContext(target, settings, check, runner, models=models)
        try:
            if check.kind == "exchange":
                runner.run(run_exchange(ctx, check.exchange))
            else:
                assert check.property_name is not None
                run_property(ctx, check.property_name, check.params or {})
        except CheckOverBudget as exc:
            outcome, message = CheckOutcome.ERROR, _too_slow(exc, ctx, settings)
        except Exception as exc:  # every outcome is classified, none escapes unexplained
            outcome, message = classify(exc)
        finally:
            runner.deadline = None  # closing is not the check's time to spend
            runner.aborted = False  # and even an interrupted check closes its connections
            try:
                # A restart in progress may take its own bounded time (restart_within).
                closing = 10 + (ctx.target.restart_within if ctx.restarting else 0)
                runner.run(asyncio.wait_for(ctx.aclose(), closing))
            except Exception as exc:  # closing must never hide the verdict
                ctx.transcript.note(f"cleanup failed: {exc!r}")
    try:
        ctx.figures = normalize_figures(ctx.figures)
    except ValueError as exc:  # a property's bug: say so, but keep the verdict it reached
        ctx.figures = {}
        if outcome is CheckOutcome.PASSED:
            outcome, message = CheckOutcome.ERROR, f"harness error: {exc}"
        else:
            message += f"\n(harness error, figures dropped: {exc})"
    return CheckRun(outcome, message, started, time.monotonic(), ctx)


@dataclass(frozen=True, eq=False)
class Job:
    """One check to run, with what the scheduler needs to know of it."""

    check: Check
    requirement: Requirement
    budget: float | None
    #: Started before others: checks that wait out the target's timers.
    first: bool
    #: Run by itself, after every other check: it restarts the target.
    alone: bool = False
    #: Waits out the target's heartbeat timers (long, quiet, sends nothing malformed).
    waits_on_timers: bool = False


#: Outcomes a dying target produces: after one, the runner asks whether it is still there.
SUSPECT = (CheckOutcome.FAILED, CheckOutcome.ERROR, CheckOutcome.INCONCLUSIVE)


class Progress:
    """What the scheduler tells a display: override what you show."""

    def started(self, job: Job) -> None: ...

    def finished(self, job: Job, run: CheckRun) -> None: ...

    def tick(self, running: Mapping[Job, float]) -> None: ...


def last_input(ctx: CheckContext | None) -> str:
    """The last thing the check sent or tried: the input the target may have died on."""
    if ctx is None:
        return "(not started)"
    for entry in reversed(ctx.transcript.entries):
        kind = entry.get("kind")
        if kind == "example":
            return f"hypothesis example {str(entry.get('value'))[:160]}"
        if kind == "ws_send":
            return f"frame sent {str(entry.get('text') or entry.get('data') or '')[:160]}"
        if kind == "http_request":
            return f"{entry.get('method')} {entry.get('url')} {str(entry.get('body'))[:100]}"
        if kind == "ws_connect":
            return f"WebSocket handshake to {entry.get('url')}"
    return "(no input recorded)"


_RUNNING_LOCK = threading.Lock()
_RUNNING: set[LoopThread] = set()


@contextlib.contextmanager
def _registered(runner: LoopThread) -> Iterator[None]:
    """Keep track of the checks' loops, so that an interrupted run can stop them all."""
    with _RUNNING_LOCK:
        _RUNNING.add(runner)
    try:
        yield
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(runner)


def abort_all() -> None:
    with _RUNNING_LOCK:
        loops = list(_RUNNING)
    for runner in loops:
        runner.abort()


_AST_LOCK = threading.Lock()


def parse_one_at_a_time() -> None:
    """Make ``ast.parse`` take turns across threads.

    CPython 3.11 keeps the AST constructor's recursion depth in state the threads share, so
    two threads parsing at once can fail with "AST constructor recursion depth mismatch".
    Hypothesis parses the source of a strategy's lambdas the first time it draws from it, so
    property checks started side by side hit exactly that."""
    if getattr(ast.parse, "_one_at_a_time", False):
        return
    unlocked = ast.parse

    @functools.wraps(unlocked)
    def parse(*args: Any, **kwargs: Any) -> Any:
        with _AST_LOCK:
            return unlocked(*args, **kwargs)

    parse._one_at_a_time = True  # type: ignore[attr-defined]
    ast.parse = parse
