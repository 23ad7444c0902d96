"""A check's named WebSocket connections: opening them, proving the server has caught up with
them (barriers), and keeping a property's connections alive between hypothesis examples.

One check owns one ``Connections``; the names are the ones its exchange or property uses
(``alice``, ``bystander``), so a step can say which connection it means and the transcript can
say which connection a frame travelled on. Closing them all is the owner's job, once, at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from . import __version__
from .errors import CheckFailed, PreconditionFailed, UsageError
from .proxy.server import FaultProxy
from .target import Target
from .templates import nonce
from .transcript import Transcript
from .wsclient import RawConnection

__all__ = [
    "DEFAULT_QUERY",
    "KEEPALIVE_AFTER",
    "Connections",
    "MarkerPublisher",
    "own_loopback_address",
]

#: What pusher-js puts in the connection URL; servers must accept it.
DEFAULT_QUERY = {
    "protocol": "7",
    "client": "pusher-conformance",
    "version": __version__,
    "flash": "false",
}

#: A property's connection that has sent nothing for this long is pinged between examples: far
#: below any activity timeout a server announces (Pusher's is 120 s, the bundled run's 3 s).
KEEPALIVE_AFTER = 1.0

#: Publishes a marker event (``data``, ``channel``) through the HTTP API, or raises
#: ``PreconditionFailed``: what a marker barrier sends ahead of its ping.
MarkerPublisher = Callable[[str, str], Awaitable[None]]


def own_loopback_address(ws_url: str, owner: str) -> str | None:
    """A loopback source address of a check's own, when the target is on 127.0.0.1: a server
    that blocks the address malformed input came from then blocks that check only, not every
    check running beside it. ``None`` for any other target."""
    host = urlsplit(ws_url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_loopback or address.version != 4:
        return None
    return f"127.0.{zlib.crc32(owner.encode()) % 250 + 2}.{secrets.randbelow(250) + 2}"


class Connections(Mapping[str, RawConnection]):
    """The open (and closed) connections of one check, by name."""

    def __init__(
        self,
        target: Target,
        transcript: Transcript,
        *,
        timeout: float,
        owner: str,
        publish_marker: MarkerPublisher,
        answers_pusher_ping: bool = True,
    ) -> None:
        self.target = target
        self.transcript = transcript
        #: The response timeout every wait here uses (the run's multiplier already applied).
        self.timeout = timeout
        #: The check these belong to, named in usage errors.
        self.owner = owner
        #: The ``activity_timeout`` the latest greeting announced, for targets that declare none.
        self.advertised_activity_timeout: float | None = None
        #: False when the target ignores ``pusher:ping``: keep-alives are WebSocket pings then.
        self.answers_pusher_ping = answers_pusher_ping
        self._publish_marker = publish_marker
        self._by_name: dict[str, RawConnection] = {}
        self._keep_alive_task: asyncio.Task[None] | None = None
        self._keep_alive_lock = asyncio.Lock()
        self._keep_alive_paused = True
        #: The check's fault proxy, started by the first connection opened through it.
        self._proxy: FaultProxy | None = None
        #: Connections opened through the proxy: name -> the proxy's index for it (accept order).
        self.proxied: dict[str, int] = {}

    # -- the mapping -------------------------------------------------------------------------

    def __getitem__(self, name: str) -> RawConnection:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def named(self, name: str) -> RawConnection:
        """The connection a step names; naming one that was never opened is a spec error."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UsageError(
                f"{self.owner}: connection {name!r} is used before it is opened"
            ) from None

    def adopt(self, conn: RawConnection) -> None:
        """Keep a connection opened elsewhere under its own name (closed with the rest)."""
        self._by_name[conn.name] = conn

    def forget(self, name: str) -> None:
        """Stop keeping a connection the caller has closed itself, so its name can be reused
        without closing it twice and the keep-alive no longer looks at it."""
        self._by_name.pop(name, None)

    # -- opening -----------------------------------------------------------------------------

    def ws_url(
        self,
        *,
        key: str | None = None,
        path: str | None = None,
        query: Mapping[str, str] | str | None = None,
        base: str | None = None,
    ) -> str:
        """``base``: another ``ws://host:port`` to reach the target through (the fault proxy)."""
        path = path if path is not None else f"/app/{key if key is not None else self.target.key}"
        if query is None:
            query = DEFAULT_QUERY
        query_text = query if isinstance(query, str) else urlencode(dict(query))
        return f"{base or self.target.ws_url}{path}" + (f"?{query_text}" if query_text else "")

    # -- the fault proxy ---------------------------------------------------------------------

    async def proxy(self) -> FaultProxy:
        """The check's own fault proxy in front of the target (started on first use). A
        ``wss://`` target is reached from the proxy over TLS, trusting what the rest of the
        check trusts (the target's CA file); the check's side of the proxy is plain loopback."""
        if self._proxy is None:
            self._proxy = FaultProxy(
                self.target.ws_url,
                ca_file=self.target.ca_file,
                insecure=self.target.insecure,
                log=self._log_injection,
            )
            await self._proxy.start()
            self.transcript.record("proxy_started", address=list(self._proxy.address))
        return self._proxy

    def _log_injection(self, entry: Mapping[str, Any]) -> None:
        # The proxy's own clock keeps its name; the transcript stamps its own ``t``.
        self.transcript.record(
            "proxy", **{("proxy_t" if key == "t" else key): value for key, value in entry.items()}
        )

    def proxied_index(self, name: str) -> int:
        """The proxy's index for a connection a step names; it must have been opened through
        the proxy (``via: proxy``)."""
        self.named(name)
        try:
            return self.proxied[name]
        except KeyError:
            raise UsageError(
                f"{self.owner}: connection {name!r} was not opened with via: proxy"
            ) from None

    def _proxied_base(self, proxy: FaultProxy) -> str:
        host, port = proxy.address[0], proxy.address[1]
        target = urlsplit(self.target.ws_url)
        return urlunsplit(("ws", f"{host}:{port}", target.path.rstrip("/"), "", ""))

    async def connect(
        self,
        name: str,
        *,
        key: str | None = None,
        path: str | None = None,
        query: Mapping[str, str] | str | None = None,
        auto_pong: bool = True,
        local_address: str | None = None,
        via_proxy: bool = False,
        node_url: str | None = None,
    ) -> RawConnection:
        """Open a WebSocket and nothing more (the server may refuse or close it: a check may
        be about exactly that). A connection of the same name is closed first. ``via_proxy``:
        through the check's fault proxy, so that a step can stall, cut or reset its TCP;
        ``node_url``: the ``ws_url`` of the cluster node to reach instead of the target's."""
        if name in self._by_name:
            await self._by_name[name].close()
        base = node_url
        if via_proxy:
            proxy = await self.proxy()
            base = self._proxied_base(proxy)
            # Opened one at a time: the next connection the proxy accepts is this one.
            self.proxied[name] = len(proxy.connections)
        conn = await RawConnection.open(
            name,
            self.ws_url(key=key, path=path, query=query, base=base),
            self.transcript,
            auto_pong=auto_pong,
            timeout=self.timeout,
            local_address=local_address,
            ssl_context=self.target.client_tls(),
        )
        self._by_name[name] = conn
        return conn

    async def open(
        self,
        name: str,
        *,
        auto_pong: bool = True,
        via_proxy: bool = False,
        local_address: str | None = None,
        key: str | None = None,
        node_url: str | None = None,
    ) -> tuple[RawConnection, dict[str, Any]]:
        """Connect (with ``key``, default the target's) and wait for
        ``pusher:connection_established`` (a precondition); the connection and what the
        greeting told (``{"socket_id", "activity_timeout"}``)."""
        conn = await self.connect(
            name,
            key=key,
            auto_pong=auto_pong,
            via_proxy=via_proxy,
            local_address=local_address,
            node_url=node_url,
        )
        if conn.closed is not None:
            raise PreconditionFailed(f"could not open {name}: {conn.closed.describe()}")
        frame = await conn.wait_for(
            lambda f: f.event == "pusher:connection_established", self.timeout
        )
        if frame is None:
            raise PreconditionFailed(f"{name} received no pusher:connection_established")
        info = frame.data()
        socket_id = info.get("socket_id") if isinstance(info, Mapping) else None
        if not isinstance(socket_id, str):
            raise PreconditionFailed(f"{name}: connection_established carries no socket_id")
        activity = info.get("activity_timeout") if isinstance(info, Mapping) else None
        if isinstance(activity, int | float) and not isinstance(activity, bool) and activity > 0:
            self.advertised_activity_timeout = float(activity)
        return conn, {"socket_id": socket_id, "activity_timeout": activity}

    async def aclose(self) -> None:
        await self.stop_keep_alive()
        if self._proxy is not None:
            # First: a stalled connection would make its close wait for an answer that the
            # proxy holds back.
            await self._proxy.aclose()
        for conn in self._by_name.values():
            await conn.close()

    # -- barriers ----------------------------------------------------------------------------

    async def barrier(
        self,
        name: str,
        marker_channel: str | None = None,
        *,
        publish: MarkerPublisher | None = None,
    ) -> None:
        """Make sure the server has processed everything sent before: a marker event through the
        HTTP API (for asynchronous fan-out), then a ping round trip. A connection the server
        has closed needs no barrier: nothing more can reach it. ``publish``: how to publish the
        marker, when not the usual way (a cluster check publishes it through a chosen node, so
        that it queues behind that node's own events)."""
        conn = self.named(name)
        if conn.has_closed():
            return
        if marker_channel is not None:
            token = nonce()
            await (publish or self._publish_marker)(token, marker_channel)
            frame = await conn.wait_for(
                lambda f: (
                    f.event == "conformance-marker"
                    and f.parsed.get("channel") == marker_channel
                    and f.parsed.get("data") == token
                ),
                self.timeout,
            )
            if frame is None and not conn.has_closed():
                raise PreconditionFailed(
                    f"barrier: the marker event on {marker_channel!r} never reached {name}"
                )
        await self.ping_barrier(name)

    async def ping_barrier(self, name: str) -> None:
        """A ``pusher:ping`` round trip, or failing that a WebSocket ping round trip: either
        proves the server has read everything sent before it."""
        conn = self.named(name)
        if conn.has_closed():
            return
        try:
            await conn.send_json({"event": "pusher:ping", "data": {}})
        except CheckFailed as exc:
            if conn.has_closed():
                return
            raise PreconditionFailed(f"barrier: {exc}") from None
        pong_task = asyncio.ensure_future(
            conn.wait_for(lambda f: f.event == "pusher:pong", self.timeout)
        )
        ws_task = asyncio.ensure_future(conn.ws_ping(secrets.token_bytes(8), self.timeout))
        done, pending = await asyncio.wait(
            {pong_task, ws_task}, return_when=asyncio.FIRST_COMPLETED
        )
        ok = any(t.result() for t in done)
        if not ok and pending:
            await asyncio.wait(pending)
            ok = any(t.result() for t in pending)
        for task in pending:
            task.cancel()
        if not ok and not conn.has_closed():
            raise PreconditionFailed(f"barrier: {name} answered neither pusher:ping nor a WS ping")

    # -- keeping a property's connections alive between examples -----------------------------
    #
    # A property keeps its connections across examples, and its receivers may say nothing for
    # longer than the server's activity timeout; hypothesis itself may pause for seconds
    # between examples (building a strategy's character tables on a loaded machine, say).
    # Whether the connections then survive would hang on the server's idle pings, which are
    # PROTO-PING's business, not the property's: so, like a live client, they speak up. Only
    # while no example runs, so that a keep-alive pong never meets a check's own wait for one.

    async def resume_keep_alive(self) -> None:
        """Between examples: ping quiet connections from now on (see ``_keep_alive_loop``)."""
        self._keep_alive_paused = False
        if self._keep_alive_task is None or self._keep_alive_task.done():
            self._keep_alive_task = asyncio.ensure_future(self._keep_alive_loop())

    async def pause_keep_alive(self) -> None:
        """An example begins: wait out a round trip in flight, then catch up on any due now."""
        async with self._keep_alive_lock:
            self._keep_alive_paused = True
        await self._keep_alive_quiet()

    async def stop_keep_alive(self) -> None:
        self._keep_alive_paused = True
        task, self._keep_alive_task = self._keep_alive_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_alive_loop(self) -> None:
        # Not ``while True``: on Python 3.11 ``asyncio.wait_for`` swallows a cancellation that
        # arrives just as what it waits for completes (a pong, here), so ``stop_keep_alive``
        # could await this task forever; a loop no longer registered ends by itself.
        while self._keep_alive_task is asyncio.current_task():
            await asyncio.sleep(KEEPALIVE_AFTER / 4)
            async with self._keep_alive_lock:
                if not self._keep_alive_paused:
                    await self._keep_alive_quiet()

    async def _keep_alive_quiet(self) -> None:
        """Ping each open connection that has sent nothing for ``KEEPALIVE_AFTER``; connections
        opened without ``auto_pong`` (the heartbeat checks' own) are left silent."""
        now = time.monotonic()
        quiet = [
            conn
            for conn in self._by_name.values()
            if conn.auto_pong and conn.is_open and now - conn.last_sent > KEEPALIVE_AFTER
        ]
        for conn in quiet:
            if self.answers_pusher_ping:
                answered = await conn.keep_alive(self.timeout)
            else:
                answered = await conn.ws_ping(secrets.token_bytes(8), self.timeout)
            if not answered:
                self.transcript.record("keepalive_unanswered", conn.name)
