"""Ending the Redis adapter's tasks (``redis_adapter.end_tasks``), without Redis."""

from __future__ import annotations

import asyncio

import pytest

from reference_server.redis_adapter import end_tasks

pytestmark = pytest.mark.asyncio


async def _loses_cancels(lost: int, forever: asyncio.Event) -> None:
    """Like a writer whose cancel arrived as its send completed (Python 3.11's wait_for
    drops it): goes on waiting ``lost`` times before a cancel takes."""
    while not forever.is_set():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            if lost == 0:
                raise
            lost -= 1


async def test_a_task_that_loses_a_cancel_is_cancelled_again_until_it_ends() -> None:
    forever = asyncio.Event()
    task = asyncio.create_task(_loses_cancels(2, forever))
    await asyncio.sleep(0)
    assert await end_tasks([task], 2.0) == set()
    assert task.cancelled()


async def test_a_task_that_never_ends_is_given_back_after_the_bound() -> None:
    forever = asyncio.Event()
    stuck = asyncio.create_task(_loses_cancels(10**6, forever))
    polite = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await end_tasks([stuck, polite], 0.2) == {stuck}
    assert loop.time() - started < 1.0
    assert polite.cancelled()
    forever.set()
    await asyncio.wait([stuck], timeout=1)


async def test_ended_tasks_cost_nothing() -> None:
    task = asyncio.create_task(asyncio.sleep(0))
    await task
    assert await end_tasks([task], 1.0) == set()
