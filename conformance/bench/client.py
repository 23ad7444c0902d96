"""One benchmark connection: a thin asyncio protocol over the sans-I/O codec in ``frames``.

Unlike the suite's own client (``conformance.wsclient``), it keeps no log and parses no JSON on
the hot path: a frame that carries the benchmark's marker goes straight to the owner's callback,
and only the rare protocol messages (connection established, subscription succeeded, pings,
errors) are decoded. Thousands of these share one event loop in a load-generator worker.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

from ..signing import channel_auth
from ..tls import client_context
from .frames import (
    OP_CLOSE,
    OP_PING,
    FrameError,
    FrameParser,
    Handshake,
    HandshakeError,
    encode_close,
    encode_pong,
    encode_text,
    parse_close,
)
from .model import BenchTarget

__all__ = [
    "MARKER",
    "BenchConnection",
    "Endpoint",
    "EventCallback",
    "open_connection",
    "resolve",
]

#: What every benchmark event's data starts with: ``bnch:<seq>:<monotonic send time>:<padding>``.
#: Only ``[a-z0-9.:]`` characters, so that it reads the same in any JSON encoding of the frame.
MARKER = b"bnch:"

#: ``(events, how many, monotonic time they arrived)``: the benchmark events that came in one
#: read, joined into one bytes (each holds the marker once), so that counting them is a few
#: calls into C rather than a Python call per event.
EventCallback = Callable[[bytes, int, float], None]

#: In every Pusher protocol message (``"event":"pusher:..."`` or ``"pusher_internal:..."``)
#: and in no benchmark event (their names, channels and data start otherwise).
_PROTOCOL = b'"pusher'
_PONG = encode_text('{"event":"pusher:pong","data":{}}')
#: Linux's TCP_INFO starts with the connection's state; 1 is ESTABLISHED.
_TCP_ESTABLISHED = 1


class Endpoint:
    """Where a target's WebSocket lives, resolved once per worker (10,000 look-ups of the same
    name would cost more than the connections)."""

    def __init__(self, target: BenchTarget, family: int, address: tuple[Any, ...]) -> None:
        parts = urlsplit(target.ws_url)
        self.secure = parts.scheme == "wss"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.secure else 80)
        self.family = family
        self.address = address
        self.path = f"{parts.path.rstrip('/')}/app/{target.key}?protocol=7&client=bench&version=1"
        self.key = target.key
        self.secret = target.secret
        context = client_context(target.ca_file, insecure=target.insecure)
        self.ssl: ssl.SSLContext | None = (
            (context or ssl.create_default_context()) if self.secure else None
        )


async def resolve(target: BenchTarget) -> Endpoint:
    """Raises OSError (``socket.gaierror``) when the host has no address, ValueError for a URL
    that is not ws:// or wss://."""
    parts = urlsplit(target.ws_url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"ws_url must start with ws:// or wss://: {target.ws_url!r}")
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(parts.hostname or "127.0.0.1", port, type=socket.SOCK_STREAM)
    family, _, _, _, address = infos[0]
    return Endpoint(target, family, address)


class BenchConnection(asyncio.Protocol):
    """Opening handshake, then frames; ``on_event`` sees every benchmark event."""

    def __init__(self, endpoint: Endpoint, on_event: EventCallback | None = None) -> None:
        self.endpoint = endpoint
        self.on_event = on_event
        self.transport: asyncio.Transport | None = None
        self._handshake: Handshake | None = Handshake(
            f"{endpoint.host}:{endpoint.port}", endpoint.path
        )
        self._parser = FrameParser()
        loop = asyncio.get_running_loop()
        self.established: asyncio.Future[str] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._subscriptions: dict[str, asyncio.Future[None]] = {}
        self.socket_id: str | None = None
        #: The channel it last asked to subscribe to.
        self.channel: str | None = None
        #: How it ended: ``close-frame`` (with ``close_code``), ``eof`` or ``reset``.
        self.close_code: int | None = None
        self.close_reason = ""
        self.ended_by: str | None = None
        self.closed_at: float | None = None
        self.closing = False
        #: ``pusher:error``s the server sent, as ``"code message"``, with how many times.
        self.pusher_errors: dict[str, int] = {}
        self.failure: str | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's; they have the same methods.
        self.transport = cast(asyncio.Transport, transport)
        assert self._handshake is not None
        self.transport.write(self._handshake.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if self._handshake is not None:
            try:
                rest = self._handshake.feed(data)
            except HandshakeError as exc:
                self._fail(f"WebSocket upgrade refused: {exc}")
                return
            if rest is None:
                return
            self._handshake = None
            data = rest
        try:
            texts, others = self._parser.feed(data)
        except FrameError as exc:
            self._fail(f"protocol error from the server: {exc}", close_code=1002)
            return
        if texts:
            self._texts(texts, now)
        for opcode, payload in others:
            if opcode == OP_PING:
                self._write(encode_pong(payload))
            elif opcode == OP_CLOSE:
                self._server_closed(payload, now)
            # Binary frames and unsolicited pongs carry nothing the benchmark counts.

    def _texts(self, texts: list[bytes], now: float) -> None:
        blob = texts[0] if len(texts) == 1 else b"\n".join(texts)
        events = blob.count(MARKER)
        # Every message an event (one marker each, and no Pusher protocol message among them,
        # whose names all start with "pusher"): the whole read goes to the callback at once.
        if events == len(texts) and _PROTOCOL not in blob:
            if self.on_event is not None:
                self.on_event(blob, events, now)
            return
        for payload in texts:
            if MARKER in payload and _PROTOCOL not in payload:
                if self.on_event is not None:
                    self.on_event(payload, payload.count(MARKER), now)
            else:
                self._protocol_message(payload)

    def connection_lost(self, exc: Exception | None) -> None:
        now = time.monotonic()
        if self.ended_by is None:
            self.ended_by = "reset" if isinstance(exc, ConnectionResetError) else "eof"
            self.closed_at = now
        reason = self.failure or self._describe_end()
        self._fail_waiters(ConnectionError(reason))
        if not self.closed.done():
            self.closed.set_result(None)

    # what the owner calls

    def subscribe(self, channel: str, *, private: bool = False) -> asyncio.Future[None]:
        """Send the subscribe; the future completes on ``subscription_succeeded``."""
        loop = asyncio.get_running_loop()
        waiter = self._subscriptions.setdefault(channel, loop.create_future())
        self.channel = channel
        data: dict[str, str] = {"channel": channel}
        if private:
            assert self.socket_id is not None, "subscribe to a private channel once established"
            endpoint = self.endpoint
            data["auth"] = channel_auth(endpoint.key, endpoint.secret, self.socket_id, channel)
        self.send_json({"event": "pusher:subscribe", "data": data})
        return waiter

    def send_client_event(self, channel: str, event: str, data: str) -> None:
        self.send_json({"event": event, "channel": channel, "data": data})

    def send_json(self, message: dict[str, Any]) -> None:
        self._write(encode_text(json.dumps(message, separators=(",", ":"))))

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake; ``closed`` completes once the server closed TCP."""
        if self.closing or self.transport is None or self.transport.is_closing():
            return
        self.closing = True
        if self._handshake is not None:  # not a WebSocket yet: nothing to hand-shake with
            self.transport.close()
            return
        self._write(encode_close(code))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def tcp_established(self) -> bool:
        """Whether the kernel still sees the TCP connection as established: a peer's FIN or
        reset shows here even while reading is paused."""
        if self.transport is None or self.closed.done():
            return False
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        try:
            state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
        except OSError:
            return False
        return bool(state) and state[0] == _TCP_ESTABLISHED

    # inside

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _protocol_message(self, payload: bytes) -> None:
        try:
            message = json.loads(payload)
            event = message.get("event")
        except (ValueError, AttributeError):
            return
        if event == "pusher:ping":
            self._write(_PONG)
        elif event == "pusher:connection_established":
            data = _decoded(message.get("data"))
            socket_id = data.get("socket_id") if isinstance(data, dict) else None
            if not isinstance(socket_id, str):
                self._fail("connection_established without a socket_id")
                return
            self.socket_id = socket_id
            if not self.established.done():
                self.established.set_result(socket_id)
        elif event == "pusher_internal:subscription_succeeded":
            waiter = self._subscriptions.get(str(message.get("channel")))
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif event == "pusher:subscription_error":
            waiter = self._subscriptions.get(str(message.get("channel")))
            if waiter is not None and not waiter.done():
                detail = json.dumps(message.get("data"))[:120]
                waiter.set_exception(ConnectionError(f"subscription refused: {detail}"))
        elif event == "pusher:error":
            data = _decoded(message.get("data"))
            if isinstance(data, dict):
                label = f"{data.get('code')} {str(data.get('message', ''))[:80]}".strip()
            else:
                label = f"unreadable: {str(data)[:80]}"
            self.pusher_errors[label] = self.pusher_errors.get(label, 0) + 1

    def _server_closed(self, payload: bytes, now: float) -> None:
        try:
            close = parse_close(payload)
        except FrameError as exc:
            self._fail(f"protocol error from the server: {exc}", close_code=1002)
            return
        if self.ended_by is None:
            self.close_code, self.close_reason = close.code, close.reason
            self.ended_by = "close-frame"
            self.closed_at = now
        self._fail_waiters(ConnectionError(self._describe_end()))
        if not self.closing:
            self.closing = True
            self._write(encode_close(close.code if close.code != 1005 else 1000))
        # The server closes TCP after the handshake; a server that does not is not waited for
        # here: ``close_all`` in the worker aborts whatever is left at its deadline.

    def _describe_end(self) -> str:
        if self.ended_by == "close-frame":
            return f"closed by the server: {self.close_code} {self.close_reason}".rstrip()
        if self.ended_by == "reset":
            return "connection reset by the server"
        return "connection closed by the server (no close frame)"

    def _fail(self, reason: str, *, close_code: int | None = None) -> None:
        self.failure = reason
        self._fail_waiters(ConnectionError(reason))
        if self.transport is not None:
            if close_code is not None and not self.closing:
                self.closing = True
                self._write(encode_close(close_code))
            self.transport.close()

    def _fail_waiters(self, exc: Exception) -> None:
        waiters: list[asyncio.Future[Any]] = [self.established, *self._subscriptions.values()]
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(exc)
                # Read here so that asyncio never logs "exception was never retrieved" for a
                # waiter nobody is awaiting any more.
                waiter.exception()


def _decoded(data: object) -> object:
    """Pusher double-encodes ``data`` as a JSON string; some servers send an object."""
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError:
            return None
    return data


async def open_connection(
    endpoint: Endpoint,
    *,
    on_event: EventCallback | None = None,
    receive_buffer: int | None = None,
) -> BenchConnection:
    """TCP (and TLS) connect and send the upgrade; the caller awaits ``established``.

    ``receive_buffer`` sets SO_RCVBUF before connecting (so the window is small from the start),
    for a subscriber meant to fall behind.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        await loop.sock_connect(sock, endpoint.address)
        _, protocol = await loop.create_connection(
            lambda: BenchConnection(endpoint, on_event),
            sock=sock,
            ssl=endpoint.ssl,
            server_hostname=endpoint.host if endpoint.ssl is not None else None,
        )
    except BaseException:
        sock.close()
        raise
    return protocol
