"""Scheduling checks side by side: order, concurrency, the checks that run alone, and a
target that dies (voided checks, or a restart and the disturbed checks run again)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

from conformance.outcomes import CheckOutcome
from conformance.runner import CheckRun, Job, Progress, RunHealth
from conformance.scheduling import MAX_REVIVALS, run_side_by_side


def _job(
    name: str,
    *,
    first: bool = False,
    kind: str = "exchange",
    alone: bool = False,
    timers: bool = False,
) -> Job:
    check: Any = SimpleNamespace(full_id=name, kind=kind)
    requirement: Any = SimpleNamespace(id=name.split("/")[0])
    return Job(check, requirement, None, first=first or timers, alone=alone, waits_on_timers=timers)  # type: ignore[arg-type]


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


def test_a_dead_target_that_can_be_restarted_runs_the_disturbed_checks_again() -> None:
    # A/1 kills the target (every time it runs) while B/1 runs beside it; C/1 is still to run.
    jobs = [_job("A/1"), _job("B/1"), _job("C/1")]
    state = {"alive": True, "runs": 0}
    lock = threading.Lock()
    b_started = threading.Event()

    def run(job: Job) -> CheckRun:
        name = job.check.full_id
        if name == "A/1":
            b_started.wait(5)
            state["alive"] = False
            return CheckRun(CheckOutcome.FAILED, "closed without a code", 0.0, 0.1)
        if name == "B/1":
            with lock:
                state["runs"] += 1
            if state["runs"] == 1:
                b_started.set()
                time.sleep(0.2)  # still running when A/1 kills the target
        ok = state["alive"]
        return CheckRun(CheckOutcome.PASSED if ok else CheckOutcome.ERROR, "", 0.0, 0.1)

    def revive() -> str | None:
        state["alive"] = True
        return None

    health = RunHealth()
    done = run_side_by_side(
        jobs, run, concurrency=2, alive=lambda: bool(state["alive"]), health=health,
        progress=Progress(), revive=revive,
    )  # fmt: skip
    outcomes = {j.check.full_id: r for j, r in done.items()}
    assert outcomes["A/1"].outcome is CheckOutcome.FAILED  # the crash is its finding
    assert "the target died during this check" in outcomes["A/1"].message
    assert outcomes["B/1"].outcome is CheckOutcome.PASSED  # run again after the restart
    assert outcomes["C/1"].outcome is CheckOutcome.PASSED
    assert state["runs"] == 2
    assert health.died is None
    # Two checks were running at the first death, so both ran again, alone: A/1 killed the
    # target again, and that second death is the one it keeps as its finding.
    assert [finding for finding, _ in health.revived] == [
        "the target stopped answering during A/1, B/1",
        "the target stopped answering during A/1",
    ]


def test_a_restart_that_fails_voids_the_rest_and_says_why() -> None:
    jobs = [_job("A/1"), _job("B/1")]

    def run(job: Job) -> CheckRun:
        outcome = CheckOutcome.ERROR if job.check.full_id == "A/1" else CheckOutcome.PASSED
        return CheckRun(outcome, "refused", 0.0, 0.1)

    health = RunHealth()
    done = run_side_by_side(
        jobs, run, concurrency=1, alive=lambda: False, health=health, progress=Progress(),
        revive=lambda: "the restart command exited with 1",
    )  # fmt: skip
    outcomes = {j.check.full_id: r for j, r in done.items()}
    assert outcomes["B/1"].outcome is CheckOutcome.VOID
    assert health.died is not None
    assert health.died.endswith("; the restart failed: the restart command exited with 1")
    assert health.revived == []


def test_a_target_that_keeps_dying_is_restarted_a_bounded_number_of_times() -> None:
    jobs = [_job(f"J{n}/1") for n in range(MAX_REVIVALS + 4)]
    restarts: list[int] = []

    def run(job: Job) -> CheckRun:
        return CheckRun(CheckOutcome.ERROR, "refused", 0.0, 0.1)

    health = RunHealth()
    done = run_side_by_side(
        jobs, run, concurrency=1, alive=lambda: False, health=health, progress=Progress(),
        revive=lambda: restarts.append(1) or None,
    )  # fmt: skip
    assert len(restarts) == MAX_REVIVALS
    assert len(health.revived) == MAX_REVIVALS
    assert health.died is not None
    assert f"restarted {MAX_REVIVALS} times already" in health.died
    voided = [r for r in done.values() if r.outcome is CheckOutcome.VOID]
    assert len(voided) == len(jobs) - MAX_REVIVALS - 1


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


def test_after_a_restart_timer_checks_run_again_together_and_the_others_alone() -> None:
    jobs = [_job("T/1", timers=True), _job("T/2", timers=True), _job("S/1"), _job("K/1")]
    lock = threading.Lock()
    state: dict[str, Any] = {"alive": True, "running": set(), "seen": [], "k_runs": 0}
    everyone_started = threading.Barrier(4, timeout=5)

    def run(job: Job) -> CheckRun:
        name = job.check.full_id
        with lock:
            state["running"].add(name)
            state["seen"].append(frozenset(state["running"]))
            first_round = len(state["seen"]) <= 4
        if first_round:
            everyone_started.wait()  # all four run side by side the first time
        if name == "K/1":
            with lock:
                state["k_runs"] += 1
            state["alive"] = False  # K/1 kills the target every time it runs
        time.sleep(0.05)
        with lock:
            state["running"].discard(name)
        ok = state["alive"] and name != "K/1"
        return CheckRun(CheckOutcome.PASSED if ok else CheckOutcome.FAILED, "", 0.0, 0.1)

    def revive() -> str | None:
        state["alive"] = True
        return None

    health = RunHealth()
    done = run_side_by_side(
        jobs, run, concurrency=4, alive=lambda: bool(state["alive"]), health=health,
        progress=Progress(), revive=revive,
    )  # fmt: skip
    outcomes = {j.check.full_id: r.outcome for j, r in done.items()}
    assert outcomes == {
        "T/1": CheckOutcome.PASSED,
        "T/2": CheckOutcome.PASSED,
        "S/1": CheckOutcome.PASSED,
        "K/1": CheckOutcome.FAILED,
    }
    again = state["seen"][4:]
    assert frozenset({"T/1", "T/2"}) in again  # the timer checks together
    for running in again:  # nothing else beside anyone
        assert running <= {"T/1", "T/2"} or len(running) == 1
    assert state["k_runs"] == 2
    # Two deaths: the first among everyone, the second with K/1 alone (restarted after it too
    # if a check was still to run, else that death is the run's last word).
    deaths = [finding for finding, _ in health.revived] + [health.died or ""]
    assert [d for d in deaths if d][-1] == "the target stopped answering during K/1"
    assert len([d for d in deaths if d]) == 2
