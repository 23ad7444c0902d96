"""The benchmark connection against a scripted server on loopback: what it answers, what it
records, how it ends."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from conformance.bench.client import MARKER, BenchConnection, Endpoint, open_connection, resolve
from conformance.bench.frames import accept_for
from conformance.bench.model import BenchTarget
from conformance.signing import channel_auth

pytestmark = pytest.mark.asyncio

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    assert len(payload) < 126
    return bytes((0x80 | opcode, len(payload))) + payload


def text(message: dict[str, object]) -> bytes:
    return frame(json.dumps(message).encode())


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One masked client frame (the client sends only small ones)."""
    head = await reader.readexactly(2)
    assert head[1] & 0x80, "client frames must be masked"
    n = head[1] & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    key = await reader.readexactly(4)
    body = await reader.readexactly(n)
    return head[0] & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(body))


async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    request = (await reader.readuntil(b"\r\n\r\n")).decode()
    key = re.search(r"Sec-WebSocket-Key: (\S+)", request)
    assert key is not None
    assert request.startswith("GET /app/K?protocol=7&client=bench&version=1 HTTP/1.1")
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + f"Sec-WebSocket-Accept: {accept_for(key[1])}\r\n\r\n".encode()
    )
    established = json.dumps({"socket_id": "1.2", "activity_timeout": 120})
    writer.write(text({"event": "pusher:connection_established", "data": established}))
    return key[1]


ServerFactory = Callable[[Script], Awaitable[Endpoint]]


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[ServerFactory]:
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> Endpoint:
        server = await asyncio.start_server(script, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        target = BenchTarget(
            "t", f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", "A", "K", "S"
        )
        return await resolve(target)

    yield start
    for server in servers:
        server.close()


async def connected(endpoint: Endpoint, **options: object) -> BenchConnection:
    conn = await open_connection(endpoint, **options)  # type: ignore[arg-type]
    assert await asyncio.wait_for(conn.established, 2) == "1.2"
    return conn


async def test_subscribes_with_the_signature_and_answers_both_pings(
    scripted: ServerFactory,
) -> None:
    seen: list[tuple[int, bytes]] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        seen.append(await read_frame(reader))  # the subscribe
        writer.write(
            text({"event": "pusher_internal:subscription_succeeded", "channel": "private-x"})
        )
        writer.write(frame(b"wsping", opcode=0x9))
        seen.append(await read_frame(reader))
        writer.write(text({"event": "pusher:ping", "data": {}}))
        seen.append(await read_frame(reader))
        await reader.read()

    conn = await connected(await scripted(script))
    await asyncio.wait_for(conn.subscribe("private-x", private=True), 2)
    while len(seen) < 3:
        await asyncio.sleep(0.01)
    subscribe = json.loads(seen[0][1])
    assert subscribe == {
        "event": "pusher:subscribe",
        "data": {"channel": "private-x", "auth": channel_auth("K", "S", "1.2", "private-x")},
    }
    assert seen[1] == (0xA, b"wsping")
    assert json.loads(seen[2][1]) == {"event": "pusher:pong", "data": {}}
    conn.abort()


async def test_events_go_to_the_callback_and_errors_are_counted(scripted: ServerFactory) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        writer.write(text({"event": "bench", "channel": "c", "data": "bnch:3:1.5:"}))
        error = {"code": 4301, "message": "Client event rejected due to rate limit"}
        writer.write(text({"event": "pusher:error", "data": error}))
        writer.write(text({"event": "pusher:error", "data": json.dumps(error)}))
        writer.write(text({"event": "other", "channel": "c", "data": "no marker"}))
        writer.write(text({"event": "bench", "channel": "c", "data": "bnch:4:1.5:"}))
        await reader.read()

    got: list[tuple[bytes, int]] = []
    endpoint = await scripted(script)
    conn = await open_connection(endpoint, on_event=lambda blob, n, now: got.append((blob, n)))
    await asyncio.wait_for(conn.established, 2)
    while sum(n for _, n in got) < 2:
        await asyncio.sleep(0.01)
    assert [n for _, n in got] == [1, 1]
    assert MARKER + b"3:" in got[0][0]
    assert MARKER + b"4:" in got[1][0]
    assert conn.pusher_errors == {"4301 Client event rejected due to rate limit": 2}
    conn.abort()


async def test_a_close_frame_is_recorded_and_answered(scripted: ServerFactory) -> None:
    answered: list[tuple[int, bytes]] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        writer.write(frame(b"\x10\x04too slow", opcode=0x8))
        answered.append(await read_frame(reader))
        writer.close()

    conn = await connected(await scripted(script))
    await asyncio.wait_for(conn.closed, 2)
    assert (conn.ended_by, conn.close_code, conn.close_reason) == ("close-frame", 4100, "too slow")
    assert answered == [(0x8, b"\x10\x04")]


async def test_our_close_completes_when_the_server_answers(scripted: ServerFactory) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        opcode, payload = await read_frame(reader)
        assert opcode == 0x8
        writer.write(frame(payload, opcode=0x8))
        writer.close()

    conn = await connected(await scripted(script))
    conn.close()
    await asyncio.wait_for(conn.closed, 2)
    assert (conn.ended_by, conn.close_code) == ("close-frame", 1000)


async def test_an_end_without_close_frame_fails_the_waiters(scripted: ServerFactory) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        await read_frame(reader)
        writer.close()

    conn = await connected(await scripted(script))
    waiter = conn.subscribe("c")
    with pytest.raises(ConnectionError, match="closed by the server"):
        await asyncio.wait_for(waiter, 2)
    assert conn.ended_by == "eof"
    assert conn.close_code is None


async def test_a_refused_upgrade_fails_the_connection(scripted: ServerFactory) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        await reader.read()

    conn = await open_connection(await scripted(script))
    with pytest.raises(ConnectionError, match="upgrade refused: HTTP 404"):
        await asyncio.wait_for(conn.established, 2)


async def test_a_protocol_error_closes_with_1002(scripted: ServerFactory) -> None:
    sent: list[tuple[int, bytes]] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        await read_frame(reader)  # "go"
        writer.write(b"\x83\x00")  # a reserved opcode
        sent.append(await read_frame(reader))
        await reader.read()

    conn = await connected(await scripted(script))
    conn.send_json({"event": "go"})
    await asyncio.wait_for(conn.closed, 2)
    assert conn.failure is not None
    assert "reserved opcode" in conn.failure
    assert sent == [(0x8, b"\x03\xea")]


async def test_paused_reading_and_a_small_buffer_leave_data_in_the_kernel(
    scripted: ServerFactory,
) -> None:
    drained = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        await read_frame(reader)  # "go"
        # A small send buffer too, or the kernel would take megabytes before pushing back.
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        block = text({"event": "bench", "channel": "c", "data": "bnch:0:1.0:" + "x" * 60})
        for _ in range(20_000):
            writer.write(block)
        await writer.drain()
        drained.set()
        await reader.read()

    got: list[int] = []
    endpoint = await scripted(script)
    conn = await open_connection(
        endpoint, on_event=lambda blob, n, now: got.append(n), receive_buffer=4096
    )
    await asyncio.wait_for(conn.established, 2)
    conn.pause_reading()
    conn.send_json({"event": "go"})
    await asyncio.sleep(0.3)
    assert not got
    assert not drained.is_set()
    assert conn.tcp_established()
    conn.resume_reading()
    await asyncio.wait_for(drained.wait(), 5)
    while sum(got) < 20_000:
        await asyncio.sleep(0.01)
    assert sum(got) == 20_000
    assert len(got) < 20_000  # many events a call
    conn.abort()
    await conn.closed
    assert not conn.tcp_established()


async def test_a_url_that_is_not_websocket_is_refused() -> None:
    with pytest.raises(ValueError, match="ws:// or wss://"):
        await resolve(BenchTarget("t", "http://127.0.0.1:1", "http://127.0.0.1:1", "A", "K", "S"))
