"""One proxied TCP connection: two pipes (client to server, server to client) and the faults on
them.

Each pipe has a reader task that only moves bytes from a socket into an ordered buffer (with
back-pressure), and a writer task that decides when and how much of the buffer goes out: after
the latency, within the bandwidth, not while stalled, up to a cut, up to the next frame boundary
before a close frame. Keeping the decisions in one task per direction is what keeps the byte
order: nothing else ever writes to a pipe's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from .faults import Bandwidth, CutAfter, Fault, HalfOpen, Latency, Reset, Resume, Stall, WsClose
from .frames import OPCODE_CLOSE, StreamScanner, close_frame

__all__ = ["ConnectionState", "ProxyConnection"]

ConnectionState = Literal[
    "connecting", "open", "stalled", "half_open", "ws_closing", "reset", "closed"
]

#: How much one read takes, and how much a pipe buffers before it stops reading (back-pressure).
CHUNK = 65536
HIGH_WATER = 4 * CHUNK
#: After a ws_close: how long to wait for both pipes to reach a frame boundary, then for the
#: client's answering close frame, before closing the sockets anyway.
WS_CLOSE_BOUNDARY_WAIT = 2.0
WS_CLOSE_REPLY_WAIT = 1.0
#: Bandwidth: the largest slice written at once is this fraction of a second's worth.
BANDWIDTH_SLICE = 0.05

Report = Callable[[dict[str, Any]], None]


class _Pipe:
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


class ProxyConnection:
    """A client connection and its upstream, with the faults applied to them so far."""

    def __init__(
        self,
        index: int,
        opened_at: float,
        *,
        rng_for: Callable[[int, str], random.Random],
        report: Report,
    ) -> None:
        self.index = index
        self.opened_at = opened_at
        self._rng_for = rng_for
        self.report = report
        self.up = _Pipe(self, "up")
        self.down = _Pipe(self, "down")
        self.finished = False
        self.half_open = False
        self.was_reset = False
        self.done = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def upgraded(self) -> bool:
        """Whether the server answered the upgrade: only then are there frames to close."""
        return self.down.scanner.mode == "frames"

    def rng_for(self, direction: str) -> random.Random:
        return self._rng_for(self.index, direction)

    @property
    def state(self) -> ConnectionState:
        if self.finished:
            return "reset" if self.was_reset else "closed"
        if self.half_open:
            return "half_open"
        if self.up.close_out is not None or self.up.closed_out.is_set():
            return "ws_closing"
        if self.up.writer is None:
            return "connecting"
        return "stalled" if self.up.stalled or self.down.stalled else "open"

    def _pipes(self, direction: str) -> tuple[_Pipe, ...]:
        return {"up": (self.up,), "down": (self.down,), "both": (self.up, self.down)}[direction]

    def _writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.down.writer, self.up.writer) if w is not None]

    async def run(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        """Move bytes until the connection ends. Every exception is reported, never lost."""
        self.up.reader, self.down.writer = client
        self.down.reader, self.up.writer = upstream
        if self.finished:  # reset while the upstream was being opened
            self._abort(rst=self.was_reset)
            return
        self._tasks = [
            asyncio.create_task(self._guard(self.up.read_loop(), "read client")),
            asyncio.create_task(self._guard(self.down.read_loop(), "read upstream")),
            asyncio.create_task(self._guard(self.up.write_loop(), "write upstream")),
            asyncio.create_task(self._guard(self.down.write_loop(), "write client")),
        ]
        await self.done.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _guard(self, loop: Any, where: str) -> None:
        try:
            await loop
        except OSError:
            if not self.finished and not self.half_open:
                # One side went away abruptly: the other side learns it the same way.
                self.reset()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: say so, and do not leave the peers hanging
            self.report({"fault": "error", "where": where, "error": repr(exc)})
            self.reset()

    def apply(self, fault: Fault) -> None:
        """Apply a fault now (the caller logs it)."""
        if self.finished:
            return
        if isinstance(fault, Latency):
            for pipe in self._pipes(fault.direction):
                pipe.latency = fault if fault.ms or fault.jitter_ms else None
        elif isinstance(fault, Bandwidth):
            for pipe in self._pipes(fault.direction):
                pipe.bytes_per_second = fault.bytes_per_second
                pipe.next_free = 0.0
        elif isinstance(fault, Stall):
            for pipe in self._pipes(fault.direction):
                pipe.stalled = True
        elif isinstance(fault, Resume):
            for pipe in (self.up, self.down):
                pipe.stalled = False
        elif isinstance(fault, Reset):
            self.reset()
        elif isinstance(fault, HalfOpen):
            self.half_open = True
        elif isinstance(fault, CutAfter):
            (pipe,) = self._pipes(fault.direction)
            pipe.cut_left = fault.bytes
            if fault.bytes == 0:
                self.reset()
        elif isinstance(fault, WsClose):
            self._ws_close(fault)
        for pipe in (self.up, self.down):
            pipe.wake()

    def _ws_close(self, fault: WsClose) -> None:
        if self.up.close_out is not None or self.up.closed_out.is_set():
            return  # one close handshake per connection
        mask = bytes(self.up.rng.getrandbits(8) for _ in range(4))
        self.up.close_out = close_frame(1001, "", mask_key=mask)
        self.down.close_out = close_frame(fault.code, fault.reason)
        self._tasks.append(asyncio.create_task(self._guard(self._finish_ws_close(), "ws_close")))

    async def _finish_ws_close(self) -> None:
        try:
            async with asyncio.timeout(WS_CLOSE_BOUNDARY_WAIT):
                await self.up.closed_out.wait()
                await self.down.closed_out.wait()
            if self.upgraded:
                async with asyncio.timeout(WS_CLOSE_REPLY_WAIT):
                    await self.up.close_seen.wait()
        except TimeoutError:
            pass
        if not self.upgraded:
            self.report(
                {"fault": "error", "where": "ws_close", "error": "not a WebSocket connection "
                 "(no 101 upgrade): closed the TCP connection without a close frame"}
            )  # fmt: skip
        await self.close()

    def pipe_ended(self, pipe: _Pipe) -> None:
        """A peer sent FIN and everything before it went out: pass the FIN on."""
        writer = pipe.writer
        if writer is not None and not writer.is_closing() and writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()
        if self.up.eof_sent and self.down.eof_sent:
            self._finish()
            for writer in self._writers():
                writer.close()

    def reset(self) -> None:
        """Close both sockets with RST: injected, or mirroring a peer that went away abruptly."""
        if self.finished:
            return
        self.was_reset = True
        self._finish()
        self._abort(rst=True)

    def _abort(self, *, rst: bool) -> None:
        for writer in self._writers():
            sock = writer.get_extra_info("socket")
            if rst and sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

    async def close(self, timeout: float = 1.0) -> None:
        """Close both sockets normally (FIN after the buffered bytes), within ``timeout``."""
        if self.finished:
            return
        self._finish()
        writers = self._writers()
        for writer in writers:
            writer.close()
        try:
            async with asyncio.timeout(timeout):
                for writer in writers:
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except TimeoutError:
            self._abort(rst=False)

    def _finish(self) -> None:
        self.finished = True
        self.done.set()
        for pipe in (self.up, self.down):
            pipe.wake()

    async def aclose(self, timeout: float) -> None:
        """End the connection whatever its state (the proxy is closing)."""
        if not self.finished:
            self._finish()
            self._abort(rst=False)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*self._tasks, return_exceptions=True)
        except TimeoutError:
            for task in self._tasks:
                task.cancel()
