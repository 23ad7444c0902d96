"""The bounds on the stop after the drain (``reference_server/teardown.py``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest

from reference_server.teardown import bounded, end_leftover_tasks

pytestmark = pytest.mark.asyncio


async def _swallows_cancels(forever: asyncio.Event) -> None:
    """A step like one that turns its cancellation into a retry: it never ends by itself."""
    while not forever.is_set():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            continue


async def test_a_step_that_finishes_in_time_is_awaited_whole() -> None:
    finished = []

    async def step() -> None:
        await asyncio.sleep(0.01)
        finished.append(True)

    assert await bounded(step(), 1.0, "quick") is True
    assert finished == [True]


async def test_a_step_that_will_not_end_is_cut_short_logged_and_left_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="reference_server")
    forever = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await bounded(_swallows_cancels(forever), 0.1, "stuck step") is False
    # Its bound, and the moment it is given to unwind: never as long as the step would take.
    assert loop.time() - started < 1.0
    [record] = [r for r in caplog.records if r.getMessage() == "shutdown_step_cut_short"]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["step"] == "stuck step"
    assert fields["unwound"] is False
    assert "_swallows_cancels" in fields["stack"]
    forever.set()  # Let the left-behind task end with the test.
    await asyncio.sleep(0)


async def test_a_step_that_fails_counts_as_finished_and_its_error_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="reference_server")

    async def step() -> None:
        raise OSError("connection reset")

    assert await bounded(step(), 1.0, "failing step") is True
    assert [r.getMessage() for r in caplog.records] == ["shutdown_step_failed"]


async def test_leftover_tasks_are_cancelled_and_the_stuck_ones_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="reference_server")
    forever = asyncio.Event()
    polite = asyncio.create_task(asyncio.sleep(10), name="polite")
    stuck = asyncio.create_task(_swallows_cancels(forever), name="stuck")
    await asyncio.sleep(0)
    left = await end_leftover_tasks(0.1)
    assert polite.cancelled()
    assert left == [stuck]
    named = [r.fields["task"] for r in caplog.records]  # type: ignore[attr-defined]
    assert named == ["stuck"]
    forever.set()
    await asyncio.wait([stuck], timeout=1)


async def test_the_exit_deadline_ends_a_process_its_teardown_would_keep_alive() -> None:
    # A non-daemon thread that never ends keeps an interpreter from exiting, as an executor
    # thread stuck in a call does at exit: the deadline ends the process anyway, with 0.
    program = textwrap.dedent(
        """
        import logging, sys, threading
        from reference_server.cli import JsonFormatter
        from reference_server.teardown import arm_exit_deadline
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel("INFO")
        threading.Thread(target=threading.Event().wait).start()
        arm_exit_deadline(0.2, before_exit=lambda: print("before exit", flush=True))
        """
    )
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", program], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0
    assert done.stdout == "before exit\n"
    first = json.loads(done.stderr.splitlines()[0])
    assert (first["event"], first["seconds"]) == ("shutdown_overran", 0.2)
    assert "Thread" in done.stderr  # every thread's stack follows
