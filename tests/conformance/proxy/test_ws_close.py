"""ws_close: the client gets the chosen close frame between two frames, never inside one."""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from conformance.proxy import FaultProxy, WsClose, schedule_from_mapping
from conformance.proxy.frames import OPCODE_CLOSE, StreamScanner, close_frame

from .helpers import Client

SIZES = (10, 300, 70_000, 5, 70_000, 66_000, 126, 65_535)


def _message(number: int) -> bytes:
    """Numbered, with a size from SIZES, so a torn or merged message shows."""
    size = SIZES[number % len(SIZES)]
    return struct.pack("!I", number) + bytes([number % 251]) * size


async def _receive_all(ws: ClientConnection, into: list[str | bytes]) -> None:
    for _ in range(2000):
        into.append(await ws.recv())


@pytest.mark.asyncio
async def test_a_websockets_client_gets_the_close_code_and_reason() -> None:
    server_saw: list[int | None] = []

    async def stream(ws: ServerConnection) -> None:
        await ws.recv()
        try:
            for number in range(2000):
                if number % 5 == 4:  # a fragmented message now and then
                    await ws.send([b"frag-a", b"b" * 70_000, b"frag-c"])
                else:
                    await ws.send(_message(number))
        except ConnectionClosed:
            pass
        await ws.wait_closed()
        server_saw.append(ws.close_code)

    log: list[dict[str, Any]] = []
    async with serve(stream, "127.0.0.1", 0, compression=None, max_size=None) as server:
        upstream = next(iter(server.sockets)).getsockname()[:2]
        async with FaultProxy(upstream, log=log.append) as proxy:
            began = time.monotonic()
            ws = await connect(proxy.url, compression=None, max_size=None, close_timeout=2)
            await ws.send("go")
            received: list[str | bytes] = [await ws.recv()]
            proxy.inject(WsClose(4200, "bye"))
            with pytest.raises(ConnectionClosed):
                await _receive_all(ws, received)
            assert ws.protocol.close_rcvd is not None, ws.protocol.close_sent
            assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (4200, "bye")
            # The close came while 70 kB frames were streaming, not after the stream ended.
            assert 2 <= len(received) < 1500
            for number, message in enumerate(received):
                if message != b"frag-a" + b"b" * 70_000 + b"frag-c":
                    assert message == _message(number)
            await ws.wait_closed()
            assert time.monotonic() - began < 2
        await asyncio.sleep(0.05)
    assert server_saw == [1001]
    assert [(e["fault"], e["code"], e["reason"]) for e in log] == [("ws_close", 4200, "bye")]


@pytest.mark.asyncio
async def test_the_close_frame_waits_for_the_end_of_a_frame_in_flight() -> None:
    """A frame whose first half already went through: the close frame follows its second half,
    and nothing the server sends after it reaches the client."""
    big = bytes([0x82, 127]) + struct.pack("!Q", 70_000) + b"p" * 70_000
    release = asyncio.Event()
    upstream_got = bytearray()

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_got.extend(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        writer.write(big[:30_000])
        await writer.drain()
        await release.wait()
        writer.write(big[30_000:] + b"\x81\x05after")
        await writer.drain()
        while data := await reader.read(65536):
            upstream_got.extend(data)
        writer.close()

    listener = await asyncio.start_server(server, "127.0.0.1", 0)
    async with FaultProxy(next(iter(listener.sockets)).getsockname()[:2]) as proxy:
        client = await Client.open(proxy.address)
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head_length = len(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        assert await client.wait_until(lambda: len(client.data) >= head_length + 30_000, 1)
        proxy.inject(WsClose(4000, "x"))
        await asyncio.sleep(0.05)
        assert len(client.data) == head_length + 30_000  # no close frame inside the frame
        release.set()
        expected = close_frame(4000, "x")
        assert await client.wait_until(lambda: client.data.endswith(expected), 1)
        assert bytes(client.data[head_length:]) == big + expected
        client.send(close_frame(4000, "x", mask_key=b"abcd"))  # the client's answer
        assert await client.wait_until(lambda: client.eof or client.lost, 1)
        client.close()
    scanner = StreamScanner("request")
    boundaries = scanner.feed(bytes(upstream_got))
    assert [b.opcode for b in boundaries] == [None, OPCODE_CLOSE]
    assert scanner.at_boundary
    mask, masked = upstream_got[-6:-2], upstream_got[-2:]
    assert bytes(b ^ mask[i] for i, b in enumerate(masked)) == struct.pack("!H", 1001)
    listener.close()


@pytest.mark.asyncio
async def test_no_upgrade_means_no_close_frame_and_an_error_in_the_log() -> None:
    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno")
        await writer.drain()
        await reader.read()
        writer.close()

    listener = await asyncio.start_server(server, "127.0.0.1", 0)
    log: list[dict[str, Any]] = []
    async with FaultProxy(next(iter(listener.sockets)).getsockname()[:2], log=log.append) as proxy:
        client = await Client.open(proxy.address)
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await client.wait_until(lambda: client.data.endswith(b"no"), 1)
        proxy.inject(WsClose(4000))
        assert await client.wait_until(lambda: client.eof or client.lost, 0.5)
        assert client.data.endswith(b"\r\n\r\nno")
        client.close()
    assert [e["fault"] for e in log] == ["ws_close", "error"]
    assert "not a WebSocket" in log[1]["error"]
    listener.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("at", [0, 0.1])
async def test_a_scheduled_close_even_before_the_upgrade_comes_after_it(at: float) -> None:
    """At 0 s the fault is due before the server has even answered the upgrade: the close
    frame then follows the 101 response, the first boundary there is."""

    async def idle(ws: ServerConnection) -> None:
        await ws.wait_closed()

    schedule = schedule_from_mapping(
        {"name": "c", "steps": [{"at": at, "fault": "ws_close", "code": 4200, "reason": "r"}]}
    )
    async with serve(idle, "127.0.0.1", 0) as server:
        upstream = next(iter(server.sockets)).getsockname()[:2]
        async with FaultProxy(upstream, schedule=schedule) as proxy:
            ws = await connect(proxy.url, close_timeout=1)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 1)
            assert ws.protocol.close_rcvd is not None
            assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (4200, "r")
