"""The fault-injecting TCP proxy: the asyncio adapter around the connections and the schedule.

It listens on loopback only: it is a test instrument that sits between a client and the server
under test, never a service. Checks drive it from their event loop (``inject``), or hand it a
schedule that runs per connection from the moment it is accepted. Every injection is reported to
the ``log`` callback, with monotonic and wall-clock times, so a check's transcript shows what the
network did next to what the server did.

A ``wss://`` (or ``https://``) upstream is reached over TLS, verified like every other
connection of the suite (``tls.client_context``: the system store plus a ``--ca-file``), while
the client side stays plain on loopback. The proxy then works on the decrypted stream, so it
still finds frame boundaries for ``ws_close``; a server that is TLS-only (the production
guide's "SSL/WSS connections only") can be put behind a bad network too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from ..errors import UsageError
from ..tls import client_context
from .connection import ConnectionState, ProxyConnection
from .faults import FAULT_TYPES, Fault
from .schedule import Schedule, seeded_rng

__all__ = ["ConnectionInfo", "FaultProxy", "Upstream", "parse_upstream", "require_loopback"]

LogCallback = Callable[[dict[str, Any]], None]

#: How long opening the upstream connection (the TLS handshake included) may take before the
#: client is dropped.
UPSTREAM_CONNECT_TIMEOUT = 5.0

#: How long closing a TLS upstream may wait for the server's close_notify: the standard
#: library's 30 s would keep a connection the client has left open that long.
UPSTREAM_TLS_SHUTDOWN_TIMEOUT = 2.0


@dataclass(frozen=True)
class ConnectionInfo:
    """A snapshot of one proxied connection."""

    index: int
    #: Seconds after the proxy started (the log's ``t`` clock).
    opened_at: float
    bytes_up: int
    bytes_down: int
    state: ConnectionState


def require_loopback(host: str) -> str:
    """The proxy must not be reachable from the network: refuse anything but a loopback
    address (``localhost`` means 127.0.0.1)."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(f"the proxy listens on loopback only (127.0.0.1 or ::1), not {host!r}")
    return host.strip("[]")


class Upstream(NamedTuple):
    """Where the proxy forwards to; ``tls``: over TLS (a ``wss://`` or ``https://`` URL)."""

    host: str
    port: int
    tls: bool = False


def parse_upstream(url: str) -> Upstream:
    """Host, port and TLS of a ``ws://``, ``wss://``, ``http://`` or ``https://`` URL (the
    port defaults to 80, or 443 over TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss", "http", "https") or not parts.hostname:
        raise UsageError(
            f"upstream must be a ws://, wss://, http:// or https:// URL with a host, got {url!r}"
        )
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"upstream has an invalid port: {url!r}") from None
    tls = parts.scheme in ("wss", "https")
    return Upstream(parts.hostname, port or (443 if tls else 80), tls)


class FaultProxy:
    """A TCP proxy from a loopback port to ``upstream`` that injects faults on command.

    ``upstream``: a URL (``parse_upstream``), an ``Upstream`` or a plain ``(host, port)`` pair.
    ``ca_file``: a PEM CA to trust for a TLS upstream, on top of the system store;
    ``insecure``: trust any certificate there instead (``--insecure``).
    ``schedule``: run for every connection from its accept time. ``seed``: for the random
    draws (overrides the schedule's; default the schedule's, else 0). ``log``: receives one
    dict per injection and per error.
    """

    def __init__(
        self,
        upstream: str | Upstream | tuple[str, int],
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        ca_file: str | None = None,
        insecure: bool = False,
        schedule: Schedule | None = None,
        seed: int | None = None,
        log: LogCallback | None = None,
    ) -> None:
        if isinstance(upstream, str):
            upstream = parse_upstream(upstream)
        elif not isinstance(upstream, Upstream):
            upstream = Upstream(*upstream)
        self.upstream = upstream
        #: The client side of TLS to the upstream, or ``None`` for plain TCP.
        self.upstream_ssl: ssl.SSLContext | None = (
            (client_context(ca_file, insecure=insecure) or ssl.create_default_context())
            if upstream.tls
            else None
        )
        self.listen_host = require_loopback(listen_host)
        self.listen_port = listen_port
        self.schedule = schedule
        self.seed = seed if seed is not None else schedule.seed if schedule else 0
        self._log = log
        self._server: asyncio.Server | None = None
        self._started = time.monotonic()
        self._connections: list[ProxyConnection] = []
        #: Client source port -> accept index of its newest connection.
        self._by_client_port: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._started = time.monotonic()
        try:
            self._server = await asyncio.start_server(
                self._accept, self.listen_host, self.listen_port
            )
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {self.listen_host}:{self.listen_port}: {exc.strerror or exc}"
            ) from None

    async def aclose(self, timeout: float = 2.0) -> None:
        """Stop listening and end every connection (half-open ones included) within about
        ``timeout`` seconds: what has not ended by then is cancelled."""
        deadline = time.monotonic() + timeout
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(c.aclose(timeout / 2) for c in self._connections))
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(0.01, deadline - time.monotonic()))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
                    await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- what checks read --------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        sockname = next(iter(self._server.sockets)).getsockname()
        return sockname[0], sockname[1]

    @property
    def url(self) -> str:
        """``ws://HOST:PORT``: where a client connects instead of the upstream."""
        host, port = self.address
        return f"ws://[{host}]:{port}" if ":" in host else f"ws://{host}:{port}"

    @property
    def connections(self) -> tuple[ConnectionInfo, ...]:
        return tuple(
            ConnectionInfo(c.index, c.opened_at, c.up.forwarded, c.down.forwarded, c.state)
            for c in self._connections
        )

    def index_of_client(self, port: int) -> int | None:
        """The accept index of the newest connection from this client source port: how a
        caller that owns many clients finds the one to inject a fault into."""
        return self._by_client_port.get(port)

    def now(self) -> float:
        """Seconds since the proxy started: the log's ``t``."""
        return time.monotonic() - self._started

    # -- injecting ---------------------------------------------------------------------------

    def inject(self, fault: Fault, connection: int | None = None) -> tuple[int, ...]:
        """Apply ``fault`` now to the connection with that accept index, or to every connection
        still open; returns the indexes it was applied to. Call it from the proxy's loop."""
        if not isinstance(fault, tuple(FAULT_TYPES.values())):
            raise UsageError(f"not a proxy fault: {fault!r}")
        if connection is not None:
            if not 0 <= connection < len(self._connections):
                raise UsageError(
                    f"no connection {connection}: {len(self._connections)} accepted so far"
                )
            targets = [self._connections[connection]]
        else:
            targets = [c for c in self._connections if not c.finished]
        if not targets:
            self._report(None, fault.name, fault.params())
        for conn in targets:
            self._apply(conn, fault)
        return tuple(c.index for c in targets)

    def _apply(self, conn: ProxyConnection, fault: Fault, **extra: Any) -> None:
        self._report(conn.index, fault.name, {**fault.params(), **extra})
        conn.apply(fault)

    def _report(self, connection: int | None, fault: str, params: dict[str, Any]) -> None:
        entry = {
            "t": round(self.now(), 6),
            "wall": round(time.time(), 6),
            "connection": connection,
            "fault": fault,
            **params,
        }
        if self._log is None:
            return
        try:
            self._log(entry)
        except Exception as exc:  # a broken callback must not break the traffic
            print(f"conformance proxy: the log callback failed: {exc!r}", file=sys.stderr)

    # -- serving -----------------------------------------------------------------------------

    def _rng(self, index: int, direction: str) -> random.Random:
        return seeded_rng(self.seed, index, direction)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(self._connections)
        conn = ProxyConnection(
            index,
            self.now(),
            rng_for=self._rng,
            report=lambda entry: self._report(index, entry.pop("fault"), entry),
        )
        self._connections.append(conn)
        peer = writer.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._by_client_port[peer[1]] = index
        if self.schedule is not None:
            self._spawn(self._run_schedule(conn, self.schedule))
        try:
            host, port, _ = self.upstream
            try:
                upstream = await asyncio.wait_for(self._open_upstream(), UPSTREAM_CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
                conn.report({"fault": "error", "where": "connect upstream",
                             "error": f"{host}:{port}: {exc!r}"})  # fmt: skip
                conn.up.writer = None
                conn.down.writer = writer
                conn.reset()
                return
            await conn.run((reader, writer), upstream)
        except Exception as exc:
            conn.report({"fault": "error", "where": "connection", "error": repr(exc)})
            conn.reset()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port, _ = self.upstream
        if self.upstream_ssl is None:
            return await asyncio.open_connection(host, port)
        return await asyncio.open_connection(
            host,
            port,
            ssl=self.upstream_ssl,
            server_hostname=host,
            ssl_shutdown_timeout=UPSTREAM_TLS_SHUTDOWN_TIMEOUT,
        )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_schedule(self, conn: ProxyConnection, schedule: Schedule) -> None:
        """Sleep to each step's time after accept and apply what is due; ends with the
        connection, or after the last step."""
        cursor = schedule.cursor(conn.index)
        accepted = time.monotonic()
        try:
            while (next_at := cursor.next_at) is not None and not conn.finished:
                wait = accepted + next_at - time.monotonic()
                if wait > 0:
                    try:
                        async with asyncio.timeout(wait):
                            await conn.done.wait()
                        return
                    except TimeoutError:
                        pass
                for injection in cursor.due(time.monotonic() - accepted):
                    if not conn.finished:
                        self._apply(conn, injection.fault, step=injection.step)
        except Exception as exc:
            conn.report({"fault": "error", "where": "schedule", "error": repr(exc)})
