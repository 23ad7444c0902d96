"""What a reconnecting client relies on: a draining server says so (503, close 4200), a dead
link is found and released at once, and a dropped connection is cleaned up exactly once."""

from __future__ import annotations

import asyncio
import json

import pytest

from reference_server import peers

from .raw_client import RawClient, raw_client, upgrade
from .reconnect_harness import ROOM, next_event, no_event, raw_join, users, watcher_in_room
from .server_harness import api, client, closed_with, established, serving


@pytest.mark.asyncio
async def test_a_stalled_member_is_removed_within_the_heartbeat_timers() -> None:
    """The peer completes the handshake, joins, then neither reads nor answers: it is closed
    with 4201 and released at once, though its close handshake never completes."""
    async with (
        serving(activity_timeout=1, pong_timeout=1) as server,
        client(server) as watcher,
    ):
        await watcher_in_room(server, watcher)
        stalled = await raw_client(server)
        await raw_join(stalled, "ghost")
        silent_since = asyncio.get_running_loop().time()
        await next_event(watcher, "pusher_internal:member_added", 1.0)
        removed = await next_event(watcher, "pusher_internal:member_removed", 1 + 1 + 1)
        assert json.loads(removed["data"]) == {"user_id": "ghost"}
        assert asyncio.get_running_loop().time() - silent_since <= 1 + 1 + 1
        assert await users(server) == ["watcher"]
        await no_event(watcher, "pusher_internal:member_removed", 0.5)
        # What the stalled peer would have read: pusher:error 4201, then close 4201.
        stalled.writer.close()


@pytest.mark.asyncio
async def test_a_connection_that_vanishes_is_cleaned_up_once() -> None:
    async with serving() as server, client(server) as watcher:
        await watcher_in_room(server, watcher)
        dropped = await raw_client(server)
        await raw_join(dropped, "leaver")
        await next_event(watcher, "pusher_internal:member_added", 1.0)
        dropped.drop()
        removed = await next_event(watcher, "pusher_internal:member_removed", 1.0)
        assert json.loads(removed["data"]) == {"user_id": "leaver"}
        await no_event(watcher, "pusher_internal:member_removed", 0.5)
        assert await users(server) == ["watcher"]
        status, body = await api(server, "GET", f"/apps/app-id/channels/{ROOM}", info="user_count")
        assert (status, body) == (200, {"occupied": True, "user_count": 1})


@pytest.mark.asyncio
async def test_drain_refuses_handshakes_and_closes_with_4200() -> None:
    async with serving() as server, client(server) as ws:
        await established(ws)
        # Never answers the close frame, so the drain waits out its timeout.
        stalled = await raw_client(server)
        drain = asyncio.create_task(server.server.drain(timeout=1.0))
        assert await closed_with(ws) == 4200
        assert ws.close_reason
        code, reason = await stalled.read_close()
        assert code == 4200
        assert reason
        status, head, refused = await upgrade(server)
        assert status == 503, head
        assert b"text/plain" in head
        refused.drop()
        assert not drain.done()
        await asyncio.wait_for(drain, 2.0)
        # Given up on after the timeout: its TCP connection is gone.
        assert await asyncio.wait_for(stalled.reader.read(), 1.0) == b""


@pytest.mark.asyncio
async def test_drain_spreads_the_closes() -> None:
    async with serving() as server:
        loop = asyncio.get_running_loop()
        clients = []
        for _ in range(3):
            raw = await raw_client(server)
            clients.append(raw)
        drain = asyncio.create_task(server.server.drain(spread=0.6, timeout=0.5))

        async def arrival(raw: RawClient) -> float:
            code, _ = await raw.read_close()
            assert code == 4200
            return loop.time()

        arrivals = await asyncio.gather(*map(arrival, clients))
        for raw in clients:
            raw.drop()
        await asyncio.wait_for(drain, 2.0)
    # Oldest first, 0.2 s apart.
    assert arrivals == sorted(arrivals)
    assert arrivals[-1] - arrivals[0] >= 0.3


@pytest.mark.asyncio
async def test_closes_aiohttp_makes_itself_have_a_reason() -> None:
    async with serving() as server:
        raw = await raw_client(server)
        # RSV1 set without an extension that defines it: a protocol error (1002).
        await raw.send_text("{}", first_byte=0xC1)
        code, reason = await raw.read_close()
        assert code == 1002
        assert reason
        raw.drop()


@pytest.mark.asyncio
async def test_a_close_that_cannot_even_be_written_is_given_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A peer that reads nothing fills its TCP window, and then no frame, not even our close,
    can be written: the connection is dropped once the close is overdue."""
    monkeypatch.setattr(peers, "GIVE_UP_AFTER", 0.5)
    async with serving(activity_timeout=0.2, pong_timeout=0.2) as server:
        stalled = await raw_client(server)
        peer = server.server.fanout.established[stalled.socket_id]

        close = peer.ws.close
        calls = 0

        async def blocked_once(*args: object, **kwargs: object) -> bool:
            nonlocal calls
            calls += 1
            if calls == 1:
                await asyncio.Event().wait()  # As a write into a full window would.
            return await close()

        monkeypatch.setattr(peer.ws, "close", blocked_once)
        # The pong timer fires after pusher:ping, and its close, stuck, is given up: the
        # client reads the ping and then the end of the stream, never a close frame.
        received = await asyncio.wait_for(stalled.reader.read(), 3.0)
        assert b"pusher:ping" in received
        assert received[0] == 0x81
        assert b"\x88" not in received
        await asyncio.sleep(0.2)
        assert not server.server.fanout.open
