"""Several nodes in one process sharing a real Redis: to clients and to the HTTP API they
are one server (marker ``cluster``; the ``redis_server`` fixture starts the Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from reference_server.app import RunningServer
from reference_server.faults import ClusterFault

from .server_harness import (
    client,
    established,
    recv,
    serving,
    silent,
    trigger,
)
from .server_harness import subscribe_authorised as subscribe

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio]

#: Seconds within which cluster-wide answers (counts, rosters) must agree.
SETTLE = 2.0


@contextlib.asynccontextmanager
async def nodes(
    redis_url: str, count: int, *faulty: ClusterFault, **settings: Any
) -> AsyncIterator[list[RunningServer]]:
    """``count`` nodes on ``redis_url``; the last one gets the ``faulty`` cluster faults."""
    async with contextlib.AsyncExitStack() as stack:
        started = []
        for index in range(count):
            faults = frozenset(faulty) if index == count - 1 else frozenset()
            started.append(
                await stack.enter_async_context(
                    serving(
                        redis_url=redis_url,
                        node_id=f"node-{index}",
                        client_events=True,
                        cluster_faults=faults,
                        **settings,
                    )
                )
            )
        yield started


async def frames_until_quiet(ws: Any, quiet: float = 0.3) -> list[dict[str, Any]]:
    """Every frame until none comes for ``quiet`` seconds (bounded: 10,000 frames)."""
    received = []
    for _ in range(10_000):
        try:
            received.append(await recv(ws, timeout=quiet))
        except TimeoutError:
            break
    return received


async def eventually(check: Any, timeout: float = SETTLE) -> Any:
    """Poll the coroutine function ``check`` until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result or loop.time() > deadline:
            return result
        await asyncio.sleep(0.05)


async def test_an_event_published_on_one_node_reaches_every_node_once_in_order(
    redis_server: str,
) -> None:
    async with nodes(redis_server, 3) as (a, b, c), client(b) as on_b, client(c) as on_c:
        for ws in (on_b, on_c):
            await subscribe(ws, await established(ws), "orders")
        for number in range(200):
            status, _ = await trigger(a, {"name": "n", "channels": ["orders"], "data": str(number)})
            assert status == 200
        for ws in (on_b, on_c):
            got = [f["data"] for f in await frames_until_quiet(ws) if f["event"] == "n"]
            assert got == [str(n) for n in range(200)]


async def test_presence_is_one_roster_across_nodes(redis_server: str) -> None:
    async with nodes(redis_server, 2) as (a, b), client(a) as alice, client(b) as bob:
        alice_id, bob_id = await established(alice), await established(bob)
        await subscribe(alice, alice_id, "presence-room", '{"user_id":"alice"}')
        await asyncio.sleep(0.2)
        frame = await subscribe(bob, bob_id, "presence-room", '{"user_id":"bob"}')
        assert json.loads(frame["data"])["presence"]["ids"] == ["bob", "alice"]
        added = await recv(alice)
        assert added["event"] == "pusher_internal:member_added"
        assert json.loads(added["data"]) == {"user_id": "bob"}
        async with client(a) as alice_again:
            await subscribe(
                alice_again, await established(alice_again), "presence-room", '{"user_id":"alice"}'
            )
            await silent(bob, 0.5)  # alice's second connection: not a new member
        await silent(bob, 0.5)  # her first connection is still there
        await alice.close()
        removed = await recv(bob)
        assert removed["event"] == "pusher_internal:member_removed"
        assert json.loads(removed["data"]) == {"user_id": "alice"}
