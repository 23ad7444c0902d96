"""The Redis adapter: ending its tasks (``end_tasks``, without Redis), and a node's stop under
load against a real redis-server (marker ``cluster``)."""

from __future__ import annotations

import asyncio

import pytest

from reference_server.peers import Fanout
from reference_server.protocol.channels import ChannelRegistry
from reference_server.redis_adapter import RedisCluster, end_tasks

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


#: Stops under a storm of outgoing messages, and the most each may take: its own bounds
#: (``SYNC_WAIT``, ``STOP_WAIT``, twice ``END_WAIT``) and some room for a loaded machine.
STORM_ROUNDS = 8
STOP_WITHIN = 6.0


async def _storm(cluster: RedisCluster, stopping: asyncio.Event) -> None:
    """Keep the node's writer busy, as live traffic does: a send completes in nearly every
    turn of the loop, which is when a cancel of the writer used to be lost."""
    sent = 0
    while not stopping.is_set() and sent < 200_000:
        for _ in range(100):
            cluster.link.terminate_elsewhere(f"user-{sent}")
            sent += 1
        await asyncio.sleep(0)


@pytest.mark.cluster
async def test_a_node_stopped_while_it_publishes_a_storm_stops_every_time(
    redis_server: str,
) -> None:
    for round_ in range(STORM_ROUNDS):
        cluster = RedisCluster(
            redis_server, f"n{round_}", "app", ChannelRegistry(), Fanout(None), node_timeout=1.0
        )
        await cluster.start()
        stopping = asyncio.Event()
        storm = asyncio.create_task(_storm(cluster, stopping))
        try:
            await asyncio.sleep(0.05 + round_ % 5 * 0.02)
            stop = asyncio.create_task(cluster.stop())
            done, _ = await asyncio.wait([stop], timeout=STOP_WITHIN)
            assert done, f"round {round_}: the stop did not end"
            stop.result()
        finally:
            stopping.set()
            await storm
        assert not [task for task in cluster._tasks if not task.done()]
