"""The http_keep_alive property passes only when the server answers every request on one TCP
connection: it is run against small raw servers that keep, drop or announce closing the
connection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from conformance.context import CheckContext, RunSettings
from conformance.errors import CheckFailed
from conformance.loop import LoopThread
from conformance.properties import PROPERTIES
from conformance.spec import Check
from conformance.target import target_from_mapping

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n"
CLOSING = (
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2\r\n\r\n{}"
)


async def _serve(mode: str) -> tuple[asyncio.Server, list[int]]:
    """A server answering each request per ``mode``; the list counts requests per connection."""
    counts: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counts.append(0)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                counts[-1] += 1
                writer.write({"chunked": CHUNKED, "announce": CLOSING}.get(mode, OK))
                await writer.drain()
                if mode == "close":
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, counts


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def _context(loop: LoopThread, mode: str) -> tuple[CheckContext, list[int]]:
    server, counts = loop.run(_serve(mode))
    port = server.sockets[0].getsockname()[1]
    target = target_from_mapping(
        {"ws_url": f"ws://127.0.0.1:{port}", "http_url": f"http://127.0.0.1:{port}",
         "app_id": "42", "key": "k", "secret": "s"}
    )  # fmt: skip
    check = Check("HTTP-GEN-03", "c", "t", "property", {})
    return CheckContext(target, RunSettings(), check, loop), counts


@pytest.mark.parametrize("mode", ["keep", "chunked"])
def test_passes_when_the_connection_is_kept(loop: LoopThread, mode: str) -> None:
    ctx, counts = _context(loop, mode)
    PROPERTIES["http_keep_alive"].run(ctx, {"requests": 3})
    assert counts == [3]


def test_fails_when_the_server_closes_after_a_response(loop: LoopThread) -> None:
    ctx, counts = _context(loop, "close")
    with pytest.raises(CheckFailed, match=r"closed the TCP connection|could not be sent"):
        PROPERTIES["http_keep_alive"].run(ctx, {"requests": 3})
    assert counts == [1]


def test_fails_on_connection_close_header(loop: LoopThread) -> None:
    ctx, _ = _context(loop, "announce")
    with pytest.raises(CheckFailed, match="Connection: close"):
        PROPERTIES["http_keep_alive"].run(ctx, {"requests": 2})
