"""The delivery faults end to end: a real server, real WebSockets, events published over HTTP
and relayed between clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from reference_server.app import RunningServer
from reference_server.faults import Fault
from reference_server.faults.delivery import REORDER_WINDOW

from ..server_harness import (
    api,
    client,
    established,
    recv,
    serving,
    silent,
    subscribe,
    subscribe_authorised,
    trigger,
)

#: A client that got nothing for this long has everything the server was going to send.
QUIET = 0.5
#: Upper bound on any collection, whatever the server does.
DEADLINE = 5.0


@contextlib.asynccontextmanager
async def connected(
    count: int, *faults: Fault, **settings: Any
) -> AsyncIterator[tuple[RunningServer, list[ClientConnection], list[str]]]:
    """A server with ``faults`` and ``count`` clients it has greeted, and their socket ids."""
    async with serving(*faults, **settings) as server, contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(client(server)) for _ in range(count)]
        yield server, clients, [await established(ws) for ws in clients]


async def collect(ws: ClientConnection) -> list[Any]:
    """Every frame's ``data`` until the connection has been quiet for ``QUIET`` seconds."""
    got: list[Any] = []
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        try:
            frame = await recv(ws, timeout=QUIET)
        except TimeoutError:
            return got
        got.append(frame.get("data"))
    raise AssertionError(f"still receiving after {DEADLINE} s: {got}")


async def batch(server: RunningServer, channel: str, numbers: range) -> None:
    """Publish one event per number in a single request: a burst, as the server sees it."""
    items = [{"name": "e", "channel": channel, "data": str(n)} for n in numbers]
    body = json.dumps({"batch": items}).encode()
    assert await api(server, "POST", "/apps/app-id/batch_events", body) == (200, {})


async def synced(ws: ClientConnection) -> None:
    """Wait until the server has handled everything this client sent (unsubscribe has no
    reply of its own)."""
    await ws.send('{"event":"pusher:ping","data":{}}')
    assert (await recv(ws))["event"] == "pusher:pong"


async def unsubscribe(ws: ClientConnection, channel: str) -> None:
    await ws.send(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": channel}}))
    await synced(ws)


def strings(numbers: list[int]) -> list[str]:
    return [str(n) for n in numbers]


@pytest.mark.asyncio
async def test_without_faults_every_event_arrives_once_in_order() -> None:
    async with connected(2) as (server, (a, b), _):
        await subscribe(a, "c")
        await subscribe(b, "c")
        await batch(server, "c", range(1, 11))
        await batch(server, "c", range(11, 21))
        for n in (21, 22):
            assert await trigger(server, {"name": "e", "channel": "c", "data": str(n)}) == (200, {})
        assert await collect(a) == strings(list(range(1, 23)))
        assert await collect(b) == strings(list(range(1, 23)))
        await unsubscribe(a, "c")
        await batch(server, "c", range(23, 24))
        await silent(a, QUIET)
        assert await recv(b) == {"event": "e", "channel": "c", "data": "23"}


async def collect_all(*clients: ClientConnection) -> list[list[Any]]:
    """``collect`` on every client at once."""
    return list(await asyncio.gather(*(collect(ws) for ws in clients)))


@pytest.mark.asyncio
async def test_drop_one_in_n_counts_per_connection() -> None:
    async with connected(4, Fault.DROP_ONE_IN_N) as (server, (a, b, c, d), _):
        for ws in (a, b, c):
            await subscribe(ws, "c")
        await batch(server, "c", range(1, 4))  # Fanned out to 3: wide.
        assert await collect_all(a, b, c) == [strings([1, 2, 3])] * 3
        await subscribe(d, "c")  # d's count starts at 0, the others' are at 3.
        await batch(server, "c", range(4, 14))
        # a, b and c lose their 5th and 10th, d its own 5th and 10th.
        assert await collect_all(a, b, c) == [strings([4, 6, 7, 8, 9, 11, 12, 13])] * 3
        assert await collect(d) == strings([4, 5, 6, 7, 9, 10, 11, 12])


@pytest.mark.asyncio
async def test_drop_one_in_n_needs_a_fanout_of_three() -> None:
    async with connected(3, Fault.DROP_ONE_IN_N) as (server, (a, b, c), _):
        await subscribe(a, "c")
        await batch(server, "c", range(1, 7))  # Fanned out to 1.
        assert await collect(a) == strings(list(range(1, 7)))
        await subscribe(b, "c")
        await batch(server, "c", range(7, 13))  # Fanned out to 2.
        assert await collect_all(a, b) == [strings(list(range(7, 13)))] * 2
        # 12 channel events for a, 6 for b, but none wide yet: the 5th wide one is 17.
        await subscribe(c, "c")
        await batch(server, "c", range(13, 19))
        assert await collect_all(a, b, c) == [strings([13, 14, 15, 16, 18])] * 3
        # Narrow again: nothing lost, however many channel events go by.
        await unsubscribe(c, "c")
        await batch(server, "c", range(19, 25))
        await batch(server, "c", range(25, 31))
        assert await collect_all(a, b) == [strings(list(range(19, 31)))] * 2
        await silent(c, QUIET)


@pytest.mark.asyncio
async def test_duplicate_delivery_counts_published_and_client_events() -> None:
    async with connected(4, Fault.DUPLICATE_DELIVERY, client_events=True) as (
        server,
        clients,
        ids,
    ):
        a, b, c, d = clients
        # Narrow: a client event fanned out to 1, published events to 2; none doubled.
        for ws, socket_id in zip((a, b), ids[:2], strict=True):
            await subscribe_authorised(ws, socket_id, "private-c")
        for n in (1, 2, 3, 4):
            await b.send(json.dumps({"event": "client-e", "channel": "private-c", "data": str(n)}))
        await synced(b)
        await batch(server, "private-c", range(5, 9))
        assert await collect_all(a, b) == [strings(list(range(1, 9))), strings([5, 6, 7, 8])]
        # Wide: published events fanned out to 4, then client events from d to the other 3.
        for ws, socket_id in zip((c, d), ids[2:], strict=True):
            await subscribe_authorised(ws, socket_id, "private-c")
        await batch(server, "private-c", range(9, 12))
        for n in (12, 13):
            await d.send(json.dumps({"event": "client-e", "channel": "private-c", "data": str(n)}))
        # The 4th wide frame was a client event.
        assert await collect_all(*clients) == [
            strings([9, 10, 11, 12, 12, 13]),
            strings([9, 10, 11, 12, 12, 13]),
            strings([9, 10, 11, 12, 12, 13]),
            strings([9, 10, 11]),
        ]


@pytest.mark.asyncio
async def test_duplicate_delivery_spares_a_fanout_of_two() -> None:
    async with connected(2, Fault.DUPLICATE_DELIVERY) as (server, (a, b), _):
        await subscribe(a, "c")
        await subscribe(b, "c")
        await batch(server, "c", range(1, 7))
        await batch(server, "c", range(7, 13))
        assert await collect_all(a, b) == [strings(list(range(1, 13)))] * 2


@pytest.mark.asyncio
async def test_reorder_under_load_swaps_pairs_in_a_burst() -> None:
    async with connected(1, Fault.REORDER_UNDER_LOAD) as (server, (ws,), _):
        await subscribe(ws, "c")
        await batch(server, "c", range(1, 11))
        assert await collect(ws) == strings([1, 2, 4, 3, 5, 7, 6, 8, 10, 9])


@pytest.mark.asyncio
async def test_reorder_under_load_releases_a_lone_held_event() -> None:
    async with connected(1, Fault.REORDER_UNDER_LOAD) as (server, (ws,), _):
        await subscribe(ws, "c")
        await batch(server, "c", range(1, 3))
        assert await collect(ws) == strings([1, 2])
        start = time.monotonic()
        await batch(server, "c", range(3, 4))  # The 3rd: held, and nothing follows it.
        assert (await recv(ws))["data"] == "3"
        assert time.monotonic() - start >= REORDER_WINDOW - 0.05


@pytest.mark.asyncio
async def test_reorder_under_load_flushes_a_held_event_before_closing() -> None:
    async with connected(1, Fault.REORDER_UNDER_LOAD) as (server, (ws,), _):
        await subscribe(ws, "c")
        await batch(server, "c", range(1, 4))
        # The 3rd is held for 250 ms, but a binary frame closes the connection (1003) at once.
        await ws.send(b"binary")
        frames: list[Any] = []
        with contextlib.suppress(ConnectionClosed):
            while True:
                frames.append(await recv(ws))
        assert ws.close_code == 1003
        # Without the drain on close, the 3rd would be lost: the release timer finds the
        # connection closing.
        assert [frame["data"] for frame in frames] == strings([1, 2, 3])


async def channel_state(server: RunningServer, channel: str) -> Any:
    return await api(server, "GET", f"/apps/app-id/channels/{channel}", info="subscription_count")


@pytest.mark.asyncio
async def test_leak_to_unsubscribed() -> None:
    async with connected(2, Fault.LEAK_TO_UNSUBSCRIBED) as (server, (a, b), _):
        await subscribe(a, "c")
        await subscribe(b, "c")
        await unsubscribe(a, "c")
        assert await channel_state(server, "c") == (
            200,
            {"occupied": True, "subscription_count": 1},
        )
        assert await trigger(server, {"name": "e", "channel": "c", "data": "1"}) == (200, {})
        await batch(server, "c", range(2, 3))
        assert await collect(a) == strings([1, 2])
        assert await collect(b) == strings([1, 2])
        # Vacated normally, and still leaking, now to both.
        await unsubscribe(b, "c")
        assert await channel_state(server, "c") == (
            200,
            {"occupied": False, "subscription_count": 0},
        )
        await batch(server, "c", range(3, 4))
        assert await collect(a) == strings([3])
        assert await collect(b) == strings([3])
        # Subscribed again: once, not twice.
        await subscribe(a, "c")
        await batch(server, "c", range(4, 5))
        assert await collect(a) == strings([4])
        assert await collect(b) == strings([4])
        # Gone for good once disconnected.
        await unsubscribe(a, "c")
        registry = server.server.registry
        assert len(registry.former_subscribers("c")) == 2
        await a.close()
        for _ in range(100):
            if len(registry.former_subscribers("c")) == 1:
                break
            await asyncio.sleep(0.02)
        assert len(registry.former_subscribers("c")) == 1
        await batch(server, "c", range(5, 6))
        assert await collect(b) == strings([5])
