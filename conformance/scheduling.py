"""Scheduling checks side by side: ``concurrency`` at a time, the long timer checks first, the
checks that must run alone at the end; and what happens when the target dies.

A death shows as a check that did not pass while the target no longer greets a handshake.
The check that noticed keeps what it saw, with the death named beside it, and nothing more is
started. When the target can be restarted (``revive``), the run waits for the running checks,
restarts it, and runs again every check the death disturbed: the long timer checks together,
the others one at a time, so a check that kills the target again is known for sure and the
rest get a verdict undisturbed. Otherwise, every check still running or still to run is void.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from .outcomes import CheckOutcome
from .runner import (
    SUSPECT,
    CheckRun,
    Job,
    Progress,
    RunHealth,
    abort_all,
    last_input,
    parse_one_at_a_time,
)

__all__ = ["MAX_REVIVALS", "run_side_by_side"]

#: Restarts after a death, per run: a target that keeps dying is not chased for ever.
MAX_REVIVALS = 10


def run_side_by_side(
    jobs: Sequence[Job],
    run_one: Callable[[Job], CheckRun],
    *,
    concurrency: int,
    alive: Callable[[], bool],
    health: RunHealth,
    progress: Progress,
    revive: Callable[[], str | None] | None = None,
) -> dict[Job, CheckRun]:
    """Run every job, ``concurrency`` at a time, the ``first`` ones first.

    ``alive`` probes the target; it is asked after a check does not pass, the way a dead
    target first shows. Once it says no, nothing more is started: the check that noticed
    keeps its outcome, with the death named in its message (a crash may well be what it
    tests). With ``revive`` (restart the target; None when it is back, else why not), the
    run waits for the running checks, restarts the target and runs again every check the
    death disturbed, up to ``MAX_REVIVALS`` times; without it, or when it fails, every other
    check still running or still to run is void."""
    parse_one_at_a_time()
    ordered = sorted(jobs, key=lambda j: (j.alone, not j.first))
    pending = list(reversed(ordered))
    done: dict[Job, CheckRun] = {}
    running: dict[Future[CheckRun], Job] = {}
    started_at: dict[Job, float] = {}
    #: Checks that did not pass while the target was dead: run again once it is back.
    disturbed: list[tuple[Job, CheckRun]] | None = [] if revive is not None else None
    #: Checks run again after a restart, each in a group of its own (one at a time) or, for
    #: the long timer checks the first time, in a group of those only: a check that kills
    #: the target again is then known for sure, and the others get a verdict undisturbed.
    groups: dict[Job, str] = {}

    def may_start(job: Job) -> bool:
        if not running:
            return True
        if job.alone:
            return False
        return {groups.get(j) for j in running.values()} == {groups.get(job)}

    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="check")
    try:
        while pending or running or (disturbed and health.died is not None):
            if health.died is not None and not running and disturbed is not None:
                disturbed = _revive(revive, health, disturbed, pending, done, groups)
            while pending and len(running) < concurrency and health.died is None:
                if not may_start(pending[-1]):
                    break  # it waits for the running checks to end
                job = pending.pop()
                started_at[job] = time.monotonic()
                progress.started(job)
                running[pool.submit(run_one, job)] = job
                if job.alone:
                    break
            if not running:
                break
            finished, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            progress.tick({j: started_at[j] for j in running.values()})
            for future in finished:
                job = running.pop(future)
                run = future.result()
                if run.outcome in SUSPECT and health.died is None and not alive():
                    _note_death(health, job, run, running)
                    ran_alone = (
                        job.alone or concurrency == 1 or groups.get(job) == job.check.full_id
                    )
                    if not ran_alone and _may_revive(disturbed, health):
                        assert disturbed is not None  # which check killed it is not sure
                        disturbed.append((job, run))
                        continue
                    run.message += f"\nthe target died during this check; {health.died}"
                elif health.died is not None and run.outcome in SUSPECT:
                    if _may_revive(disturbed, health):
                        assert disturbed is not None
                        disturbed.append((job, run))
                        continue
                    run = CheckRun(CheckOutcome.VOID, f"void: {health.died}", run.started,
                                       run.finished, run.ctx)  # fmt: skip
                done[job] = run
                progress.finished(job, run)
    except BaseException:
        # Interrupted (Ctrl-C): stop every check's waits now rather than at its budget.
        pending.clear()
        abort_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for job in reversed(pending):
        now = time.monotonic()
        done[job] = CheckRun(CheckOutcome.VOID, f"not run: {health.died}", now, now)
    return done


def _may_revive(disturbed: list[tuple[Job, CheckRun]] | None, health: RunHealth) -> bool:
    return disturbed is not None and len(health.revived) < MAX_REVIVALS


def _revive(
    revive: Callable[[], str | None] | None,
    health: RunHealth,
    disturbed: list[tuple[Job, CheckRun]],
    pending: list[Job],
    done: dict[Job, CheckRun],
    groups: dict[Job, str],
) -> list[tuple[Job, CheckRun]] | None:
    """Every check is over and the target is dead: restart it and queue the disturbed checks
    to run next, in their groups (returns a fresh list for the next death), or, when it
    cannot be restarted, void them (returns None: no more revivals)."""
    why = "nothing can restart this target"
    if len(health.revived) >= MAX_REVIVALS:
        why = f"restarted {MAX_REVIVALS} times already"
    elif revive is not None:
        failed = revive()
        if failed is None:
            health.come_back()
            disturbed.sort(key=lambda pair: not pair[0].waits_on_timers)  # those together
            for job, _ in disturbed:
                shared = job.waits_on_timers and job not in groups
                groups[job] = "timer checks" if shared else job.check.full_id
            pending.extend(job for job, _ in reversed(disturbed))
            return []
        why = f"the restart failed: {failed}"
    for job, run in disturbed:
        done[job] = CheckRun(CheckOutcome.VOID, f"void: {health.died} ({why})", run.started,
                             run.finished, run.ctx)  # fmt: skip
    health.died = f"{health.died}; {why}"
    return None


def _note_death(
    health: RunHealth, job: Job, run: CheckRun, running: Mapping[Future[CheckRun], Job]
) -> None:
    with health.lock:
        if health.died is not None:
            return
        health.died_during[job.check.full_id] = last_input(run.ctx)
        for other in running.values():
            health.died_during[other.check.full_id] = "(still running)"
        names = ", ".join(sorted(health.died_during))
        health.died = f"the target stopped answering during {names}"
