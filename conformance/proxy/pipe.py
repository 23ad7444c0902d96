"""One direction of a proxied connection: the bytes one peer sent, on their way to the other.

A reader task only moves bytes from the socket into an ordered buffer (stopping when it holds
too much: back-pressure); the writer task alone decides when and how much of the buffer goes out:
after the latency, within the bandwidth, not while stalled, up to a cut, up to the next frame
boundary before a close frame. One task deciding per direction is what keeps the byte order.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Literal

from .faults import Latency
from .frames import OPCODE_CLOSE, StreamScanner

if TYPE_CHECKING:
    from .connection import ProxyConnection

__all__ = ["Pipe"]

#: How much one read takes, and how much a pipe buffers before it stops reading (back-pressure).
CHUNK = 65536
HIGH_WATER = 4 * CHUNK
#: Bandwidth: the largest slice written at once is this fraction of a second's worth.
BANDWIDTH_SLICE = 0.05


class Pipe:
    """``up``: reads the client, writes the server; ``down``: the other way round."""

    def __init__(self, conn: ProxyConnection, direction: Literal["up", "down"]) -> None:
        self.conn = conn
        self.direction = direction
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.scanner = StreamScanner("request" if direction == "up" else "response")
        self.rng = conn.rng_for(direction)
        self.buffer: deque[tuple[float, bytes]] = deque()
        self.buffered = 0
        self.eof = False
        self.eof_sent = False
        self.forwarded = 0
        self.changed = asyncio.Event()
        self.room = asyncio.Event()
        self.stalled = False
        self.latency: Latency | None = None
        self.last_due = 0.0
        self.bytes_per_second = 0
        self.next_free = 0.0
        self.cut_left: int | None = None
        #: The close frame to send at the next boundary; then the pipe only discards.
        self.close_out: bytes | None = None
        self.closed_out = asyncio.Event()
        self.close_seen = asyncio.Event()

    def wake(self) -> None:
        self.changed.set()
        self.room.set()

    async def read_loop(self) -> None:
        assert self.reader is not None
        while not self.conn.finished:
            while self.buffered > HIGH_WATER and not self.conn.finished:
                self.room.clear()
                await self.room.wait()
            data = await self.reader.read(CHUNK)
            if not data:
                self.eof = True
                self.changed.set()
                return
            self.buffer.append((time.monotonic(), data))
            self.buffered += len(data)
            self.changed.set()

    async def write_loop(self) -> None:
        while not self.conn.finished:
            self.changed.clear()
            if not await self._step():
                await self.changed.wait()

    def _take(self) -> tuple[float, bytes]:
        stamp, data = self.buffer.popleft()
        limit = self.bytes_per_second
        if limit and self.close_out is None and not self.closed_out.is_set():
            size = max(1, int(limit * BANDWIDTH_SLICE))
            if len(data) > size:
                self.buffer.appendleft((stamp, data[size:]))
                data = data[:size]
        self.buffered -= len(data)
        self.room.set()
        return stamp, data

    async def _step(self) -> bool:
        """Do the next thing this pipe can do; False when it must wait for a change."""
        if self.conn.half_open:
            return False
        if self.closed_out.is_set():
            return self._discard()
        if self.close_out is not None:
            upgrade = self.conn.down.scanner.mode
            if upgrade == "opaque" or (self.eof and not self.buffer):
                self.closed_out.set()  # no boundary will ever come: the sockets just close
                return True
            if self.scanner.at_boundary and upgrade == "frames":
                await self._send_close()
                return True
            if not self.buffer:
                return False
            await self._forward(*self._take())
            return True
        if self.stalled:
            return False
        if not self.buffer:
            if self.eof and not self.eof_sent:
                self.eof_sent = True
                self.conn.pipe_ended(self)
            return False
        stamp, data = self._take()
        await self._delay(stamp, len(data))
        await self._forward(stamp, data)
        return True

    def _discard(self) -> bool:
        """After a close frame went out: read the peer's bytes to see its answering close."""
        progressed = False
        while self.buffer:
            _, data = self._take()
            progressed = True
            if any(b.opcode == OPCODE_CLOSE for b in self.scanner.feed(data)):
                self.close_seen.set()
        if self.eof:
            self.close_seen.set()
        return progressed

    async def _delay(self, stamp: float, size: int) -> None:
        due = stamp
        if self.latency is not None:
            due = max(stamp + self.latency.draw(self.rng), self.last_due)
            self.last_due = due
        if self.bytes_per_second:
            start = max(time.monotonic(), self.next_free)
            self.next_free = start + size / self.bytes_per_second
            due = max(due, start)
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        while self.stalled and not self.conn.finished and self.close_out is None:
            self.changed.clear()
            await self.changed.wait()

    async def _forward(self, stamp: float, data: bytes) -> None:
        if self.conn.finished or self.conn.half_open:
            return
        start = self.scanner.offset
        boundaries = self.scanner.feed(data)
        # Where the bytes that go out end (the scanner has seen the whole chunk).
        ends_at_boundary = self.scanner.at_boundary
        if self.direction == "down":
            self.conn.up.changed.set()  # the upgrade may just have been answered
        closing = self.close_out is not None and self.conn.upgraded
        if closing and boundaries:
            # Nothing after the boundary is ever forwarded; a close frame in it is the peer's
            # own close, which the discarding pipe would otherwise never see.
            data = data[: boundaries[0].offset - start]
            ends_at_boundary = True
            if any(b.opcode == OPCODE_CLOSE for b in boundaries[1:]):
                self.close_seen.set()
        cut = self.cut_left
        if cut is not None and cut <= len(data):
            await self._write(data[:cut])
            self.cut_left = 0
            # A reset drops what the socket has not sent yet: the N bytes must be out first.
            await self.flush(1.0)
            self.conn.reset()
            return
        if cut is not None:
            self.cut_left = cut - len(data)
        await self._write(data)
        if closing and ends_at_boundary:
            await self._send_close()

    async def _send_close(self) -> None:
        assert self.close_out is not None
        frame, self.close_out = self.close_out, None
        self.buffer.clear()
        self.buffered = 0
        await self._write(frame, count=False)
        self.closed_out.set()

    async def _write(self, data: bytes, *, count: bool = True) -> None:
        if not data or self.writer is None or self.writer.is_closing():
            return
        self.writer.write(data)
        if count:
            self.forwarded += len(data)
        await self.writer.drain()

    async def flush(self, timeout: float) -> None:
        """Wait (bounded) until the pipe's output has handed everything to the kernel."""
        deadline = time.monotonic() + timeout
        while (
            self.writer is not None
            and not self.writer.is_closing()
            and self.writer.transport.get_write_buffer_size()
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.005)
