"""One proxied TCP connection: two pipes (pipe.py) and what each fault does to them.

Faults that change how bytes flow (latency, bandwidth, stalls, cuts) only set a pipe's state, so
the pipe's own writer applies them in order; faults that end the connection (reset, half-open,
ws_close) act on both sockets here, because they must reach both peers the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from .faults import Bandwidth, CutAfter, Fault, HalfOpen, Latency, Reset, Resume, Stall, WsClose
from .frames import close_frame
from .pipe import Pipe

__all__ = ["ConnectionState", "ProxyConnection"]

ConnectionState = Literal[
    "connecting", "open", "stalled", "half_open", "ws_closing", "reset", "closed"
]

#: After a ws_close: how long to wait for both pipes to reach a frame boundary, then for the
#: client's answering close frame, before closing the sockets anyway.
WS_CLOSE_BOUNDARY_WAIT = 2.0
WS_CLOSE_REPLY_WAIT = 1.0

Report = Callable[[dict[str, Any]], None]


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
        self.up = Pipe(self, "up")
        self.down = Pipe(self, "down")
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

    def _pipes(self, direction: str) -> tuple[Pipe, ...]:
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
        self._tasks += [
            asyncio.create_task(self._guard(self.up.read_loop(), "read client")),
            asyncio.create_task(self._guard(self.down.read_loop(), "read upstream")),
            asyncio.create_task(self._guard(self.up.write_loop(), "write upstream")),
            asyncio.create_task(self._guard(self.down.write_loop(), "write client")),
        ]
        await self.done.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _guard(self, work: Coroutine[Any, Any, None], where: str) -> None:
        try:
            await work
        except OSError:
            if not self.finished and not self.half_open:
                # One side went away abruptly: the other side learns it the same way.
                self.reset()
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

    def pipe_ended(self, pipe: Pipe) -> None:
        """A peer sent FIN and everything before it went out: pass the FIN on.

        A TLS upstream cannot be half-closed (asyncio has no write_eof over TLS): it is closed
        instead (close_notify, then FIN), so the server still learns at once that the client
        left; what it sends after that is lost, as after a client's full close.
        """
        writer = pipe.writer
        if writer is not None and not writer.is_closing():
            if writer.can_write_eof():
                with contextlib.suppress(OSError):
                    writer.write_eof()
            else:
                writer.close()
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
