"""One virtual browser tab: connects, subscribes, answers pings, notices a dead link the way
pusher-js does, and reconnects by the close-code classes, recording each connection as a
``Life`` for the ledger.

The tab keeps no verdicts: it records times and sequence numbers, and the ledger decides what
was owed. It runs on a worker's event loop next to hundreds of others, so the hot path (one
inbound event) is two ``json.loads`` and an append.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..signing import channel_auth
from .ledger import Life
from .policy import retry_delay
from .scenario import ClientBehaviour

__all__ = ["Tab", "TabCounters", "TabWatcher", "pause"]

#: Seconds a handshake (TCP, upgrade, connection_established) may take before the attempt
#: counts as failed: pusher-js's first attempt timeout is 15 s.
OPEN_TIMEOUT = 15.0


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile; True if the run goes on."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()
    return not stop.is_set()


@dataclass
class TabCounters:
    """Shared by a worker's tabs, read by its progress reports."""

    ready: int = 0
    received: int = 0
    lives_ended: int = 0
    latency_ms: list[float] = field(default_factory=list)


class TabWatcher(Protocol):
    """Told, on the tab's event loop, as each connection goes: what a load engine that keeps
    its own live statistics (Locust, ``locustfile.py``) reports while the run is on. The
    ledger does not need it: it reads the ``Life`` records afterwards."""

    def established(self, tab: Tab, opened: float, at: float) -> None: ...

    def ready(self, tab: Tab, at: float) -> None:
        """Subscribed to every channel (once per connection)."""

    def ended(self, tab: Tab, life: Life) -> None: ...


@dataclass
class _Recording:
    opened: float
    established: float | None = None
    subscribed: dict[str, float] = field(default_factory=dict)
    received: dict[str, list[int]] = field(default_factory=dict)
    faulted: float | None = None
    how: str = ""
    close_code: int | None = None
    gave_up: bool = False


class Tab:
    def __init__(
        self,
        tab_id: str,
        user: str,
        *,
        url: str,
        key: str,
        secret: str,
        channels: Mapping[str, str],
        behaviour: ClientBehaviour,
        counters: TabCounters,
        rng: random.Random,
        clock: Callable[[], float] = time.time,
        watcher: TabWatcher | None = None,
        tls: ssl.SSLContext | None = None,
        route: Sequence[tuple[int, str]] = (),
    ) -> None:
        self.tab_id = tab_id
        self.user = user
        self.url = url
        #: Against a cluster: (node, URL) in the order this tab tries them, each new
        #: connection through the next one, as behind a load balancer (``cluster.py``);
        #: empty for a single server at ``url``.
        self.route = tuple(route)
        #: The node the current (or next) connection goes through; None: a single server.
        self.node: int | None = self.route[0][0] if self.route else None
        self.key = key
        self.secret = secret
        self.channels = dict(channels)
        self._slot_of = {name: slot for slot, name in self.channels.items()}
        self.behaviour = behaviour
        self.counters = counters
        self.rng = rng
        self.clock = clock
        self.watcher = watcher
        #: Whom to trust for a wss:// ``url`` (a tab that connects straight to a TLS target,
        #: not through a worker's proxy): the target's context (``Target.client_tls``), else
        #: the system store.
        self.tls: dict[str, Any] = {"ssl": tls} if tls and url.startswith("wss:") else {}
        self.lives: list[Life] = []
        #: The source port of the current connection (how the worker finds it in the proxy).
        self.local_port: int | None = None
        self._current: _Recording | None = None
        self._ready = False
        self._sending: set[asyncio.Future[None]] = set()

    def mark_faulted(self) -> None:
        """The simulation injected a network fault into the current connection."""
        if self._current is not None and self._current.faulted is None:
            self._current.faulted = self.clock()

    async def run(self, stop: asyncio.Event) -> None:
        """Connect and reconnect until ``stop`` is set (or the server refuses the tab)."""
        attempt = 0
        while not stop.is_set():
            if self.route:
                self.node, self.url = self.route[attempt % len(self.route)]
            attempt += 1
            record = _Recording(opened=self.clock())
            self._current = record
            try:
                await self._connection(record, stop)
            except Exception as exc:  # anything unforeseen ends this life, not the tab
                record.how = record.how or f"error: {type(exc).__name__}: {exc}"
            self._finish(record, stop)
            if stop.is_set():
                break
            delay = retry_delay(
                record.close_code,
                gave_up=record.gave_up,
                jitter=self.behaviour.retry_jitter_seconds,
                rng=self.rng,
            )
            if delay is None:
                break
            await pause(stop, delay)

    def _finish(self, record: _Recording, stop: asyncio.Event) -> None:
        if self._ready:
            self.counters.ready -= 1
            self._ready = False
        if stop.is_set() and not record.how:
            record.how = "end of run"
        if record.close_code is not None and 4000 <= record.close_code <= 4099:
            record.how = f"refused: {record.how}"
        self.counters.lives_ended += 1
        self.lives.append(
            Life(
                tab=self.tab_id,
                user=self.user,
                number=len(self.lives),
                opened=record.opened,
                established=record.established,
                subscribed=record.subscribed,
                ended=self.clock(),
                how=record.how or "ended",
                close_code=record.close_code,
                faulted=record.faulted,
                received=record.received,
                node=self.node,
            )
        )
        if self.watcher is not None:
            self.watcher.ended(self, self.lives[-1])
        self._current = None
        self.local_port = None

    async def _connection(self, record: _Recording, stop: asyncio.Event) -> None:
        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                ws = await connect(
                    self.url, ping_interval=None, compression=None, close_timeout=1,
                    open_timeout=None, max_queue=None, **self.tls,
                )  # fmt: skip
                sockname = ws.transport.get_extra_info("sockname")
                self.local_port = sockname[1] if isinstance(sockname, tuple) else None
                established = json.loads(await ws.recv())
        except InvalidStatus as exc:
            record.how = f"handshake refused: HTTP {exc.response.status_code}"
            return
        except InvalidHandshake as exc:
            record.how = f"handshake failed: {exc}"
            return
        except TimeoutError:
            record.how = "connect timed out"
            return
        except ConnectionClosed as exc:
            record.how, record.close_code = _closed(exc)
            return
        except OSError as exc:
            record.how = f"connect failed: {exc.strerror or type(exc).__name__}"
            return
        try:
            await self._session(ws, established, record, stop)
        finally:
            if stop.is_set() and not record.how:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        await ws.close()
            else:
                ws.transport.abort()

    async def _session(
        self, ws: ClientConnection, established: Any, record: _Recording, stop: asyncio.Event
    ) -> None:
        if not isinstance(established, dict) or established.get("event") != (
            "pusher:connection_established"
        ):
            record.how = f"no connection_established: {str(established)[:80]}"
            return
        data = json.loads(established.get("data") or "{}")
        record.established = self.clock()
        if self.watcher is not None:
            self.watcher.established(self, record.opened, record.established)
        socket_id = str(data.get("socket_id", ""))
        server_timeout = data.get("activity_timeout")
        idle = self.behaviour.activity_timeout
        if isinstance(server_timeout, (int, float)) and server_timeout > 0:
            idle = min(idle, float(server_timeout))
        for name in self.channels.values():
            subscribe: dict[str, Any] = {"channel": name}
            if name.startswith("private-"):
                subscribe["auth"] = channel_auth(self.key, self.secret, socket_id, name)
            await ws.send(json.dumps({"event": "pusher:subscribe", "data": subscribe}))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await self._receive(ws, record, idle, stopped)
        finally:
            stopped.cancel()

    async def _receive(
        self, ws: ClientConnection, record: _Recording, idle: float, stopped: asyncio.Future[Any]
    ) -> None:
        pinged = False
        while True:
            receiving = asyncio.ensure_future(ws.recv())
            wait = self.behaviour.pong_timeout if pinged else idle
            done, _ = await asyncio.wait(
                {receiving, stopped}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            if receiving not in done:
                receiving.cancel()
                with contextlib.suppress(BaseException):
                    await receiving
                if stopped.done():
                    return
                if pinged:
                    record.how, record.gave_up = "no pong", True
                    return
                pinged = True
                try:
                    await ws.send('{"event":"pusher:ping","data":{}}')
                except ConnectionClosed as exc:
                    record.how, record.close_code = _closed(exc)
                    return
                continue
            try:
                text = receiving.result()
            except ConnectionClosed as exc:
                record.how, record.close_code = _closed(exc)
                return
            pinged = False
            self._handle(ws, text, record)

    def _handle(self, ws: ClientConnection, text: str | bytes, record: _Recording) -> None:
        message = json.loads(text)
        event = message.get("event") if isinstance(message, dict) else None
        if not isinstance(event, str):  # not a Pusher message: nothing a tab can act on
            return
        slot = self._slot_of.get(message.get("channel", ""))
        if slot is not None and not event.startswith("pusher"):
            payload = json.loads(message.get("data") or "{}")
            seq = payload.get("seq")
            if isinstance(seq, int):
                now = self.clock()
                record.received.setdefault(slot, []).append(seq)
                self.counters.received += 1
                sent = payload.get("t")
                if isinstance(sent, (int, float)):
                    self.counters.latency_ms.append(now * 1000 - sent)
        elif event == "pusher_internal:subscription_succeeded" and slot is not None:
            record.subscribed.setdefault(slot, self.clock())
            if not self._ready and len(record.subscribed) == len(self.channels):
                self._ready = True
                self.counters.ready += 1
                if self.watcher is not None:
                    self.watcher.ready(self, record.subscribed[slot])
        elif event == "pusher:ping":
            pong = asyncio.ensure_future(_send_quietly(ws, '{"event":"pusher:pong","data":{}}'))
            self._sending.add(pong)
            pong.add_done_callback(self._sending.discard)


async def _send_quietly(ws: ClientConnection, text: str) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(text)


def _closed(exc: ConnectionClosed) -> tuple[str, int | None]:
    frame = exc.rcvd
    if frame is None:
        return "dropped without a close frame", None
    reason = f" {frame.reason}" if frame.reason else ""
    return f"close {frame.code}{reason}", frame.code
