"""Loopback peers for the proxy's tests: an upstream that echoes and records, and a client that
records what it gets and how its connection ended (asyncio's StreamReader would drop data that
arrives together with a reset)."""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import time
from collections.abc import Callable
from typing import Any


class Upstream:
    """Echoes every byte back and keeps what it received, per connection."""

    def __init__(self, *, echo: bool = True) -> None:
        self.echo = echo
        self.received: list[bytearray] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self, ssl: ssl_module.SSLContext | None = None) -> tuple[str, int]:
        """``ssl``: serve TLS with it (a TLS-only server behind the proxy)."""
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl)
        host, port = next(iter(self.server.sockets)).getsockname()[:2]
        return host, port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got = bytearray()
        self.received.append(got)
        self.writers.append(writer)
        try:
            while data := await reader.read(65536):
                got += data
                if self.echo:
                    writer.write(data)
                    await writer.drain()
        except OSError:
            pass
        writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in self.writers:
            writer.transport.abort()


class Client(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self.changed = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    @classmethod
    async def open(cls, address: tuple[str, int]) -> Client:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(cls, *address)
        return client

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.changed.set()

    def eof_received(self) -> bool:
        self.eof = True
        self.changed.set()
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        self.error = exc
        self.changed.set()

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Event-driven: re-checks on every arrival, gives up at the deadline."""
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return condition()
        return True

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
