"""A raw Pusher protocol client: no Pusher library in between, so the suite sees every frame.

A background task reads frames into an ordered log; checks then wait (event-driven, with a
deadline) for an unconsumed frame that matches, and consume it. Nothing is ever dropped: frames a
check did not ask for stay in the log and in the transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .errors import CheckFailed, TargetError
from .transcript import Transcript

__all__ = ["NOT_JSON", "CloseInfo", "Frame", "RawConnection"]


class _NotJson:
    def __repr__(self) -> str:
        return "<not a JSON text frame>"


#: The parsed value of a frame that is binary or not valid JSON: it matches no pattern.
NOT_JSON: Any = _NotJson()


@dataclass(frozen=True)
class Frame:
    index: int
    at: float
    binary: bool
    raw: str | bytes
    parsed: Any

    @property
    def event(self) -> str | None:
        if isinstance(self.parsed, dict) and isinstance(self.parsed.get("event"), str):
            event: str = self.parsed["event"]
            return event
        return None

    def data(self) -> Any:
        """The frame's ``data``, decoded when it is a JSON string (double encoding); None when
        it is a string that is not JSON."""
        value = self.parsed.get("data") if isinstance(self.parsed, dict) else None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return None
        return value

    def data_field(self, name: str) -> Any:
        """One member of the (decoded) ``data`` object; None when it is absent or ``data`` is
        not an object."""
        data = self.data()
        return data.get(name) if isinstance(data, dict) else None

    def describe(self) -> str:
        if self.binary:
            return f"binary frame ({len(self.raw)} bytes)"
        text = self.raw if isinstance(self.raw, str) else repr(self.raw)
        return text if len(text) <= 160 else text[:157] + "..."


@dataclass(frozen=True)
class CloseInfo:
    code: int
    reason: str
    #: False when the TCP connection ended without a WebSocket close frame (code 1006).
    clean: bool
    #: Set when the server refused the WebSocket upgrade itself (HTTP status).
    rejected_status: int | None = None

    def describe(self) -> str:
        if self.rejected_status is not None:
            return f"upgrade refused with HTTP {self.rejected_status}"
        if not self.clean:
            return "connection dropped without a close frame (1006)"
        return f"closed with code {self.code}" + (f" ({self.reason})" if self.reason else "")


class RawConnection:
    def __init__(self, name: str, transcript: Transcript, *, auto_pong: bool) -> None:
        self.name = name
        self.transcript = transcript
        self.auto_pong = auto_pong
        self.frames: list[Frame] = []
        self.consumed: set[int] = set()
        self.closed: CloseInfo | None = None
        self._ws: ClientConnection | None = None
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.last_sent = time.monotonic()

    @classmethod
    async def open(
        cls,
        name: str,
        url: str,
        transcript: Transcript,
        *,
        auto_pong: bool,
        timeout: float,
        local_address: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> RawConnection:
        """``local_address``: the source IP to connect from (e.g. another loopback address);
        ignored when it cannot be bound. ``ssl_context``: whom to trust for a wss:// URL
        (``tls.client_context``); ``None``: the system store."""
        conn = cls(name, transcript, auto_pong=auto_pong)
        source = {"from": local_address} if local_address else {}
        transcript.record("ws_connect", name, url=url, **source)
        options: dict[str, Any] = {}
        began = time.monotonic()
        if local_address is not None:
            options["local_addr"] = (local_address, 0)
        tls = {"ssl": ssl_context} if ssl_context is not None and url.startswith("wss:") else {}
        try:
            try:
                ws = await conn._connect(url, timeout, {**options, **tls})
            except OSError as exc:
                if not options or isinstance(exc, TimeoutError):
                    raise
                transcript.record("ws_bind_failed", name, error=repr(exc))
                ws = await conn._connect(url, timeout, tls)
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
            conn.closed = CloseInfo(1006, "", clean=False, rejected_status=status)
            transcript.record("ws_rejected", name, status=status, body=body)
            return conn
        except InvalidHandshake as exc:
            conn.closed = CloseInfo(1006, str(exc), clean=False)
            transcript.record("ws_handshake_failed", name, error=str(exc))
            return conn
        except (OSError, TimeoutError) as exc:
            transcript.record("ws_connect_failed", name, error=repr(exc))
            raise TargetError(f"could not open a WebSocket to {url}: {exc!r}") from None
        # The handshake time is evidence when a target turns out too slow for the budgets.
        transcript.record("ws_open", name, handshake_ms=round((time.monotonic() - began) * 1000))
        conn._ws = ws
        conn._reader = asyncio.create_task(conn._read(ws))
        return conn

    @staticmethod
    async def _connect(url: str, timeout: float, options: dict[str, Any]) -> ClientConnection:
        return await asyncio.wait_for(
            connect(
                url,
                ping_interval=None,
                close_timeout=timeout,
                max_size=None,
                compression=None,
                open_timeout=timeout,
                user_agent_header="pusher-conformance",
                **options,
            ),
            timeout,
        )

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                self._append(message)
                frame = self.frames[-1]
                if self.auto_pong and frame.event == "pusher:ping":
                    await self._send_auto(ws, json.dumps({"event": "pusher:pong", "data": {}}))
        except ConnectionClosed:
            pass
        finally:
            rcvd = ws.protocol.close_rcvd
            if rcvd is not None:
                self.closed = CloseInfo(int(rcvd.code), rcvd.reason, clean=True)
            else:
                self.closed = CloseInfo(1006, "", clean=False)
            self.transcript.record(
                "ws_closed",
                self.name,
                code=self.closed.code,
                reason=self.closed.reason,
                clean=self.closed.clean,
            )
            self._changed.set()

    def _append(self, message: str | bytes) -> None:
        parsed: Any = NOT_JSON
        if isinstance(message, str):
            try:
                parsed = json.loads(message)
            except ValueError:
                parsed = NOT_JSON
            self.transcript.record("ws_recv", self.name, text=message)
        else:
            self.transcript.record("ws_recv_binary", self.name, hex=message.hex()[:512])
        self.frames.append(
            Frame(len(self.frames), time.monotonic(), isinstance(message, bytes), message, parsed)
        )
        self._changed.set()

    @property
    def is_open(self) -> bool:
        return self._ws is not None and self.closed is None

    def has_closed(self) -> bool:
        """Whether the connection has ended (a method, so that it is re-read after awaits)."""
        return self.closed is not None

    def unconsumed(self) -> list[Frame]:
        return [f for f in self.frames if f.index not in self.consumed]

    async def send_text(self, text: str) -> None:
        await self._send(text)

    async def send_json(self, value: Any) -> None:
        await self._send(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    async def send_binary(self, data: bytes) -> None:
        await self._send(data)

    async def _send(self, message: str | bytes) -> None:
        if self._ws is None or self.closed is not None:
            state = self.closed.describe() if self.closed else "never opened"
            raise CheckFailed(f"cannot send on {self.name}: the connection is {state}")
        if isinstance(message, str):
            self.transcript.record("ws_send", self.name, text=message)
        else:
            self.transcript.record("ws_send_binary", self.name, hex=message.hex()[:512])
        self.last_sent = time.monotonic()
        try:
            await self._ws.send(message)
        except ConnectionClosed:
            await self._settle()
            state = self.closed.describe() if self.closed else "closed"
            raise CheckFailed(f"cannot send on {self.name}: the connection is {state}") from None

    async def _send_auto(self, ws: ClientConnection, text: str) -> bool:
        """A frame the client sends of its own accord (a pong, a keep-alive ping), logged as
        such; False when the connection is already gone."""
        self.transcript.record("ws_send", self.name, text=text, auto=True)
        self.last_sent = time.monotonic()
        try:
            await ws.send(text)
        except ConnectionClosed:
            return False
        return True

    async def keep_alive(self, timeout: float) -> bool:
        """A ``pusher:ping`` round trip that leaves no pong behind.

        Every pong still unconsumed is consumed with it: the server answers pings in order, so
        once this ping's pong is in, any earlier one is stale, and a later wait for a pong must
        not be satisfied by either. False when the connection is closed or no pong came.
        """
        if not self.is_open or self._ws is None:
            return False

        def pongs() -> list[Frame]:
            return [f for f in self.unconsumed() if f.event == "pusher:pong"]

        owed = len(pongs()) + 1
        if not await self._send_auto(self._ws, json.dumps({"event": "pusher:ping", "data": {}})):
            return False
        answered = await self.wait_until(lambda: len(pongs()) >= owed, timeout)
        self.consumed.update(f.index for f in pongs())
        return answered

    async def _settle(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), 1.0)

    async def wait_for(
        self,
        predicate: Callable[[Frame], bool],
        timeout: float,
        *,
        next_only: bool = False,
        skip: Callable[[Frame], bool] = lambda frame: False,
    ) -> Frame | None:
        """Wait for an unconsumed frame satisfying ``predicate``, consume and return it.

        ``next_only``: only the first unconsumed frame not excluded by ``skip`` may match.
        Returns ``None`` on timeout, or when the connection closed with no such frame.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            for frame in self.unconsumed():
                if skip(frame):
                    continue
                if predicate(frame):
                    self.consumed.add(frame.index)
                    return frame
                if next_only:
                    return None
            if self.closed is not None:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition`` (over ``frames``) holds, without consuming anything; False
        on timeout or when the connection closed first."""
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            if condition():
                return True
            remaining = deadline - time.monotonic()
            if self.closed is not None or remaining <= 0:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_closed(self, timeout: float) -> CloseInfo | None:
        deadline = time.monotonic() + timeout
        while self.closed is None:
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.closed

    async def ws_ping(self, payload: bytes, timeout: float) -> bool:
        """Send a WebSocket ping control frame; True when the matching pong arrives in time."""
        if self._ws is None or self.closed is not None:
            return False
        self.transcript.record("ws_ping", self.name, hex=payload.hex())
        try:
            waiter = await self._ws.ping(payload)
            await asyncio.wait_for(waiter, timeout)
        except (TimeoutError, ConnectionClosed):
            self.transcript.record("ws_pong_missing", self.name, hex=payload.hex())
            return False
        except websockets.exceptions.ConcurrencyError:
            return False
        self.transcript.record("ws_pong", self.name, hex=payload.hex())
        return True

    async def close(self) -> None:
        if self._ws is not None and self.closed is None:
            self.transcript.record("ws_close", self.name)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 2.0)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
