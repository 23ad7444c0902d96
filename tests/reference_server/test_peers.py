"""The outbound side: frames corked per pass of the loop, and a bounded send buffer."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from reference_server.peers import Cork, Peer
from reference_server.protocol.connection import Close, SendText
from reference_server.websocket_frames import text_frame

from .raw_client import raw_client
from .server_harness import client, established, recv, serving, subscribe, trigger


class FakeTransport:
    """What a peer needs of a transport, recording the writes."""

    def __init__(self, buffered: int = 0) -> None:
        self.writes: list[bytes] = []
        self.buffered = buffered
        self.closing = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.aborted = True


def fake_peer(transport: FakeTransport, limit: int = 1000) -> Peer:
    connection = SimpleNamespace(socket_id="1.2")
    return Peer(None, connection, transport, Cork(), limit)  # type: ignore[arg-type]


async def next_pass() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_frames_of_one_pass_go_out_in_one_write() -> None:
    transport = FakeTransport()
    peer = fake_peer(transport)
    peer.send(SendText("a"))
    peer.send(SendText("b"))
    assert transport.writes == []  # Corked until the pass ends.
    await next_pass()
    assert transport.writes == [text_frame("a") + text_frame("b")]
    peer.send(SendText("c"))
    await next_pass()
    assert transport.writes[1:] == [text_frame("c")]


@pytest.mark.asyncio
async def test_a_full_send_buffer_stops_the_frames_and_tells_the_fanout_once() -> None:
    transport = FakeTransport(buffered=1001)
    peer = fake_peer(transport, limit=1000)
    told: list[Peer] = []
    peer.on_overflow = told.append
    for text in ("a", "b"):
        peer.send(SendText(text))
        await next_pass()
    transport.buffered = 0  # Drained since: still nothing more, the connection is closing.
    peer.send(SendText("c"))
    await next_pass()
    assert transport.writes == []
    assert told == [peer]


@pytest.mark.asyncio
async def test_a_closing_transport_gets_nothing() -> None:
    transport = FakeTransport()
    transport.closing = True
    peer = fake_peer(transport)
    peer.send(SendText("a"))
    await next_pass()
    assert transport.writes == []
    assert not peer.accepting
    peer.send(Close(1000, "bye"))  # Nobody to close with: ignored, no task started.
    await next_pass()


@pytest.mark.asyncio
async def test_a_subscriber_that_stops_reading_is_closed_and_the_others_get_everything() -> None:
    # Enough to fill the kernel's buffers on both sides (up to 4 MB on the server's) first.
    events, size = 800, 9000
    async with (
        serving(send_buffer_limit=64 * 1024, max_event_bytes=10240) as server,
        client(server) as reader,
    ):
        await established(reader)
        await subscribe(reader, "room")
        stalled = await raw_client(server, receive_buffer=4096)
        await stalled.send_json({"event": "pusher:subscribe", "data": {"channel": "room"}})
        assert (await stalled.read_json())["event"] == "pusher_internal:subscription_succeeded"
        fanout = server.server.fanout
        # From here on the stalled client reads nothing; the other reads as it comes.

        async def read_all() -> list[Any]:
            return [json.loads((await recv(reader, timeout=5.0))["data"])[0] for _ in range(events)]

        reading = asyncio.create_task(read_all())
        payload = "x" * size
        for start in range(0, events, 10):
            batch = [
                {"name": "e", "channel": "room", "data": json.dumps([n, payload])}
                for n in range(start, start + 10)
            ]
            status, body = await trigger(server, {"batch": batch}, endpoint="batch_events")
            assert status == 200, body
        assert await reading == list(range(events))
        for _ in range(50):
            if stalled.socket_id not in fanout.established:
                break
            await asyncio.sleep(0.1)
        assert stalled.socket_id not in fanout.established
        assert server.server.registry.subscription_count("room") == 1
        # Reading again, it finds what was buffered for it, then the 4100 close.
        code, reason = await stalled.read_close(timeout=3.0)
        assert code == 4100, reason
        stalled.drop()


@pytest.mark.asyncio
async def test_a_few_waiting_peers_go_out_at_once_and_many_wait_for_the_pass() -> None:
    cork = Cork()
    transports = [FakeTransport() for _ in range(Cork.FEW + 1)]
    peers = [Peer(None, SimpleNamespace(socket_id="1.2"), t, cork) for t in transports]  # type: ignore[arg-type]
    peers[0].send(SendText("a"))
    cork.flush_if_few()
    assert transports[0].writes == [text_frame("a")]  # One waiting: written now.
    for peer in peers:
        peer.send(SendText("b"))
    cork.flush_if_few()
    assert transports[0].writes == [text_frame("a")]
    assert transports[1].writes == []
    await next_pass()  # Many waiting: the end of the pass writes them, each in one send.
    assert all(t.writes[-1] == text_frame("b") for t in transports)
