"""Running checks side by side: order, concurrency, budgets, and a target that dies."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conformance.context import RunSettings
from conformance.errors import CheckFailed, CheckOverBudget, PreconditionFailed, TargetError
from conformance.loop import LoopThread
from conformance.outcomes import CheckOutcome
from conformance.runner import (
    CheckRun,
    Job,
    Progress,
    RunHealth,
    budget_for,
    classify,
    run_side_by_side,
)
from conformance.target import Target, Timings


def _job(name: str, *, first: bool = False, kind: str = "exchange", alone: bool = False) -> Job:
    check: Any = SimpleNamespace(full_id=name, kind=kind)
    requirement: Any = SimpleNamespace(id=name.split("/")[0])
    return Job(check, requirement, None, first=first, alone=alone)  # type: ignore[arg-type]


class _Recorder(Progress):
    def __init__(self) -> None:
        self.started_ids: list[str] = []
        self.finished_ids: list[str] = []

    def started(self, job: Job) -> None:
        self.started_ids.append(job.check.full_id)

    def finished(self, job: Job, run: CheckRun) -> None:
        self.finished_ids.append(job.check.full_id)


def _passing(seconds: float = 0.0) -> Any:
    def run(job: Job) -> CheckRun:
        began = time.monotonic()
        time.sleep(seconds)
        return CheckRun(CheckOutcome.PASSED, "", began, time.monotonic())

    return run


def test_first_jobs_start_first_and_all_finish() -> None:
    jobs = [_job("A/1"), _job("B/1", first=True), _job("C/1"), _job("D/1", first=True)]
    progress = _Recorder()
    done = run_side_by_side(
        jobs, _passing(), concurrency=1, alive=lambda: True, health=RunHealth(), progress=progress
    )
    assert progress.started_ids == ["B/1", "D/1", "A/1", "C/1"]
    assert {j.check.full_id for j in done} == {"A/1", "B/1", "C/1", "D/1"}
    assert all(r.outcome is CheckOutcome.PASSED for r in done.values())


def test_waits_overlap_up_to_the_concurrency() -> None:
    jobs = [_job(f"R/{n}") for n in range(8)]
    running = 0
    peak = 0
    lock = threading.Lock()

    def run(job: Job) -> CheckRun:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        return CheckRun(CheckOutcome.PASSED, "", 0.0, 0.2)

    began = time.monotonic()
    run_side_by_side(
        jobs, run, concurrency=4, alive=lambda: True, health=RunHealth(), progress=Progress()
    )
    assert peak == 4
    assert time.monotonic() - began < 8 * 0.2  # not one after another


def test_a_job_that_restarts_the_target_runs_alone_after_every_other() -> None:
    jobs = [_job("R/restart", alone=True), *[_job(f"A/{n}", first=n == 0) for n in range(5)]]
    running: set[str] = set()
    overlapped: list[set[str]] = []
    lock = threading.Lock()

    def run(job: Job) -> CheckRun:
        with lock:
            running.add(job.check.full_id)
            overlapped.append(set(running))
        time.sleep(0.05)
        with lock:
            running.discard(job.check.full_id)
        return CheckRun(CheckOutcome.PASSED, "", 0.0, 0.05)

    progress = _Recorder()
    run_side_by_side(
        jobs, run, concurrency=4, alive=lambda: True, health=RunHealth(), progress=progress
    )
    assert progress.started_ids[-1] == "R/restart"
    assert {"R/restart"} in overlapped
    assert not any("R/restart" in seen and len(seen) > 1 for seen in overlapped)


def test_a_dead_target_voids_what_was_still_to_run() -> None:
    jobs = [_job("A/1"), _job("B/1"), _job("C/1")]

    def run(job: Job) -> CheckRun:
        if job.check.full_id == "A/1":
            return CheckRun(CheckOutcome.ERROR, "target error: refused", 0.0, 0.1)
        return CheckRun(CheckOutcome.PASSED, "", 0.0, 0.1)

    health = RunHealth()
    done = run_side_by_side(
        jobs, run, concurrency=1, alive=lambda: False, health=health, progress=Progress()
    )
    outcomes = {j.check.full_id: r for j, r in done.items()}
    assert outcomes["A/1"].outcome is CheckOutcome.ERROR
    assert "the target died during this check" in outcomes["A/1"].message
    assert outcomes["B/1"].outcome is CheckOutcome.VOID
    assert outcomes["C/1"].outcome is CheckOutcome.VOID
    assert health.died is not None
    assert "A/1" in health.died
    assert "A/1" in health.died_during


def test_an_error_on_a_live_target_voids_nothing() -> None:
    jobs = [_job("A/1"), _job("B/1")]

    def run(job: Job) -> CheckRun:
        outcome = CheckOutcome.ERROR if job.check.full_id == "A/1" else CheckOutcome.PASSED
        return CheckRun(outcome, "x", 0.0, 0.1)

    health = RunHealth()
    done = run_side_by_side(
        jobs, run, concurrency=2, alive=lambda: True, health=health, progress=Progress()
    )
    assert sorted(r.outcome.value for r in done.values()) == ["error", "passed"]
    assert health.died is None


def _target(activity: float | None, pong: float | None) -> Target:
    return Target(
        name="t", ws_url="ws://127.0.0.1:1", http_url="http://127.0.0.1:1", app_id="1",
        key="k", secret="s", capabilities=frozenset(), timings=Timings(activity, pong),
    )  # fmt: skip


def _settings(multiplier: float = 1.0) -> RunSettings:
    return RunSettings(
        profile="ci", seed=0, timeout_multiplier=multiplier, report_dir=Path("."),
        replay_prefix="conformance run", webhook_control=None, max_examples=None,
        regressions_dir=None,
    )  # fmt: skip


def test_budgets_leave_room_for_the_timers_and_scale_with_the_multiplier() -> None:
    exchange: Any = SimpleNamespace(kind="exchange")
    prop: Any = SimpleNamespace(kind="property")
    quick = budget_for(_target(3, 2), _settings(), exchange, 12, waits_on_timers=False)
    assert quick == pytest.approx(30)
    timed = budget_for(_target(3, 2), _settings(), exchange, 12, waits_on_timers=True)
    assert timed == pytest.approx(30 + 2 * 3 + 2 * 2)
    explored = budget_for(_target(3, 2), _settings(), prop, 12, waits_on_timers=False)
    assert explored == pytest.approx(30 + 12 * 1.5 + 30 + 30)
    doubled = budget_for(_target(3, 2), _settings(2.0), exchange, 12, waits_on_timers=True)
    assert doubled == pytest.approx(2 * timed)
    # Undeclared timers: the protocol's defaults (120 s activity, 30 s pong).
    default = budget_for(_target(None, None), _settings(), exchange, 0, waits_on_timers=True)
    assert default == pytest.approx(330)


def test_a_spent_budget_ends_the_wait_at_once() -> None:
    import asyncio

    with LoopThread(budget=0.2) as runner:
        began = time.monotonic()
        with pytest.raises(CheckOverBudget):
            runner.run(asyncio.sleep(30))
        assert time.monotonic() - began < 2
        runner.deadline = None
        assert runner.run(asyncio.sleep(0, result=7)) == 7


def test_over_budget_is_not_an_exception_hypothesis_would_shrink() -> None:
    assert not issubclass(CheckOverBudget, Exception)


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (CheckFailed("no"), CheckOutcome.FAILED),
        (PreconditionFailed("setup"), CheckOutcome.INCONCLUSIVE),
        (TargetError("refused"), CheckOutcome.ERROR),
        (RuntimeError("bug"), CheckOutcome.ERROR),
        (ExceptionGroup("two", [PreconditionFailed("a"), CheckFailed("b")]), CheckOutcome.FAILED),
    ],
)
def test_every_exception_has_an_outcome(exc: BaseException, outcome: CheckOutcome) -> None:
    assert classify(exc)[0] is outcome


def test_an_aborted_loop_ends_the_wait_at_once_and_every_later_one() -> None:
    import asyncio

    with LoopThread(budget=60) as runner:
        threading.Timer(0.2, runner.abort).start()
        began = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            runner.run(asyncio.sleep(30))
        assert time.monotonic() - began < 5
        with pytest.raises(KeyboardInterrupt):
            runner.run(asyncio.sleep(0))
