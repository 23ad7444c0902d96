"""The aiohttp application: one app's server state, its endpoints, and the server lifecycle.

It only moves bytes and fires timers. Every protocol decision is made in ``protocol/``; the
WebSocket side is ``websocket_endpoint.py``, the HTTP API ``http_endpoints.py``, and both
reach connections through ``peers.Fanout``. When ``PUSHER_REF_FAULTS`` names any fault,
``build_server`` builds the variant in ``faults/server.py`` instead; nothing here knows what
the faults do. With ``--redis-url`` the server is one node of a cluster: its
``RedisCluster`` (``redis_adapter.py``, imported only then) keeps it in step with the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from .config import ConfigError, ServerConfig
from .http_endpoints import MAX_READ_BYTES, HttpEndpoints
from .logs import log
from .metrics import Metrics
from .operations import add_routes, observe_requests
from .peers import Fanout, Peer
from .protocol.admission import Admission
from .protocol.channels import ChannelRegistry
from .protocol.connection import ConnectionSettings
from .protocol.http_events import EventParser
from .protocol.http_publish import Publisher
from .protocol.http_queries import ChannelQueries
from .protocol.http_requests import ApiLimits, AppCredentials, RequestAuthenticator
from .protocol.socket_ids import RandomSource, SocketIdAllocator
from .responses import json_errors
from .serves import serves
from .teardown import STEP_LIMIT, bounded
from .tls import redirect_app, server_context
from .webhook_sender import WebhookSender
from .websocket_endpoint import WebSocketEndpoint

if TYPE_CHECKING:
    from .apps import AppsServer
    from .redis_adapter import RedisCluster

__all__ = ["ReferenceServer", "RunningServer", "build_server", "log", "run_server"]

#: Seconds graceful shutdown waits for handlers before cancelling them.
SHUTDOWN_TIMEOUT = 3.0


class ReferenceServer:
    """One app's server state plus the aiohttp application that exposes it.

    The ``_new_*`` methods build its parts; a variant of the server overrides them.

    Args:
        config: the validated configuration.
        random_source: source of socket ids; ``random.SystemRandom()`` by default.
        wall_clock: Unix time, for ``auth_timestamp`` and webhooks' ``time_ms``; the
            heartbeat uses the loop's clock.
        metrics: the process's metrics, shared by every app it serves; by default, a
            registry of this server's own.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        random_source: RandomSource | None = None,
        wall_clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self._wall_clock = wall_clock
        #: The process's metrics (``GET /metrics``), shared by every app it serves.
        self.process_metrics = metrics if metrics is not None else Metrics()
        #: This app's numbers, counted by its parts.
        self.metrics = self.process_metrics.app(config.app_id)
        self.registry = self._new_registry()
        self.socket_ids = self._new_socket_ids(
            random_source if random_source is not None else random.SystemRandom()
        )
        self.settings = ConnectionSettings(
            app_key=config.key,
            activity_timeout=config.activity_timeout,
            pong_timeout=config.pong_timeout,
            app_secret=config.secret,
            client_events=config.client_events,
            admission=Admission(config.enabled, config.max_connections),
        )
        self.credentials = AppCredentials(config.app_id, config.key, config.secret)
        self.limits = ApiLimits(max_event_bytes=config.max_event_bytes)
        #: ``None`` unless ``--webhook-url`` is set.
        self.webhooks = self._new_webhook_sender() if config.webhook_url is not None else None
        self.fanout = self._new_fanout()
        self.websocket = self._new_websocket_endpoint()
        self.http = self._new_http_endpoints()
        #: This node's name among the nodes sharing ``--redis-url``.
        self.node_id = config.node_id or secrets.token_hex(6)
        #: The link to the other nodes; ``None`` without ``--redis-url``.
        self.cluster = self._new_cluster() if config.redis_url is not None else None
        if self.cluster is not None:
            self.fanout.cluster = self.cluster

    def ready(self) -> list[str]:
        """Why the server should not be sent new clients now; empty when it is ready
        (``GET /ready`` answers 503 with them). A variant with more to be ready for extends
        the list: ``return [*super().ready(), *its_own_reasons]``."""
        reasons = ["draining"] if self.fanout.draining else []
        if self.cluster is not None:
            reasons += self.cluster.not_ready_reasons()
        return reasons

    def make_app(self) -> web.Application:
        app = web.Application(
            middlewares=[
                observe_requests(lambda _request: self.metrics),
                json_errors,
                *self.middlewares(),
            ],
            client_max_size=MAX_READ_BYTES,
        )
        app.router.add_get("/app/{key}", self.websocket.handle)
        self.http.add_routes(app)
        add_routes(app, registry=self.process_metrics.registry, ready=self.ready)
        self.attach(app)
        return app

    def middlewares(self) -> list[Middleware]:
        """The middlewares this app needs around every request (a variant adds its own)."""
        return self.http.middlewares()

    def attach(self, app: web.Application) -> None:
        """Tie this app's background parts (webhook sender, writers) to ``app``'s life, the
        application that serves it alone or several apps together (``apps.py``)."""
        app.on_shutdown.append(self._on_shutdown)
        app_id = self.config.app_id
        if self.webhooks is not None:
            sender = self.webhooks
            app.on_startup.append(lambda _app: sender.start())
            app.on_cleanup.append(
                lambda _app: bounded(sender.stop(), STEP_LIMIT, f"webhook sender stop ({app_id})")
            )
        if self.cluster is not None:
            cluster = self.cluster
            app.on_startup.append(lambda _app: cluster.start())
            # Stopped before the webhook sender: its last states' webhooks are sent by it.
            app.on_cleanup.insert(
                0, lambda _app: bounded(cluster.stop(), STEP_LIMIT, f"cluster stop ({app_id})")
            )

    async def _on_shutdown(self, app: web.Application) -> None:
        self.fanout.shutdown()

    async def drain(self, *, spread: float = 0.0, timeout: float = 2.0) -> None:
        """Graceful shutdown's first half, while the listener is still open.

        From now on every new handshake is refused with 503 (the HTTP API keeps answering).
        Each open WebSocket gets ``pusher:error`` and a close with 4200, "reconnect now";
        with ``spread`` the closes are spaced evenly over that many seconds, so that clients
        without reconnect jitter (pusher-js has none) do not all come back at once. Then the
        close handshakes get up to ``timeout`` seconds; connections still open after that
        are dropped, so the exit is not held up by a peer that never answers.
        """
        serves("RECON-13")
        self.fanout.draining = True
        peers = list(self.fanout.open)
        log(
            logging.INFO,
            "draining",
            app_id=self.config.app_id,
            connections=len(peers),
            spread=spread,
            timeout=timeout,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._close_for_drain(peers, spread)
        closed = await self.fanout.wait_closed(timeout)
        unfinished = list(self.fanout.open)
        for peer in unfinished:
            peer.abort()
        log(
            logging.INFO,
            "drained",
            app_id=self.config.app_id,
            connections=len(peers),
            dropped_after_timeout=0 if closed else len(unfinished),
            seconds=round(loop.time() - started, 3),
        )

    async def _close_for_drain(self, peers: list[Peer], spread: float) -> None:
        """Close each peer with 4200, evenly over ``spread`` seconds (at once for 0)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        for index, peer in enumerate(peers):
            if spread > 0 and index:
                await asyncio.sleep(max(0.0, started + spread * index / len(peers) - loop.time()))
            self.fanout.close_for_shutdown(peer)

    # Parts.

    def _new_registry(self) -> ChannelRegistry:
        return ChannelRegistry()

    def _new_socket_ids(self, random_source: RandomSource) -> SocketIdAllocator:
        return SocketIdAllocator(random_source)

    def _new_fanout(self) -> Fanout:
        return Fanout(self.webhooks, self.metrics)

    def _webhook_options(self) -> dict[str, Any]:
        config = self.config
        return {
            "key": config.key,
            "secret": config.secret,
            "delay": config.webhook_delay,
            "retry_for": config.webhook_retry_for,
            "queue_size": config.webhook_queue_size,
            "wall_clock": self._wall_clock,
            "metrics": self.metrics,
        }

    def _new_cluster(self) -> RedisCluster:
        config = self.config
        assert config.redis_url is not None
        args = (config.redis_url, self.node_id, config.app_id, self.registry, self.fanout)
        if config.cluster_faults:
            from .faults.cluster import FaultyRedisCluster

            return FaultyRedisCluster(
                *args, node_timeout=config.node_timeout, faults=config.cluster_faults
            )
        from .redis_adapter import RedisCluster

        return RedisCluster(*args, node_timeout=config.node_timeout)

    def _new_webhook_sender(self) -> WebhookSender:
        assert self.config.webhook_url is not None
        return WebhookSender(self.config.webhook_url, **self._webhook_options())

    def _new_websocket_endpoint(self) -> WebSocketEndpoint:
        return WebSocketEndpoint(
            self.settings,
            self.registry,
            self.socket_ids,
            self.fanout,
            self.config.send_buffer_limit,
        )

    def _new_http_endpoints(self) -> HttpEndpoints:
        return HttpEndpoints(
            RequestAuthenticator(self.credentials, self.limits),
            EventParser(self.limits),
            Publisher(self.registry),
            ChannelQueries(self.registry),
            self.fanout,
            self._wall_clock,
        )


def build_server(
    config: ServerConfig,
    *,
    random_source: RandomSource | None = None,
    wall_clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
) -> ReferenceServer:
    """The server for ``config``: the real one, or with any fault on, the faulty variant."""
    if not config.faults:
        return ReferenceServer(
            config, random_source=random_source, wall_clock=wall_clock, metrics=metrics
        )
    from .faults.server import FaultyReferenceServer

    return FaultyReferenceServer(
        config, random_source=random_source, wall_clock=wall_clock, metrics=metrics
    )


@dataclass(frozen=True)
class RunningServer:
    """Where a started server listens."""

    #: One app's server, or with an apps file the apps served together (``apps.AppsServer``).
    server: ReferenceServer | AppsServer
    host: str
    port: int
    #: Whether ``port`` speaks TLS (wss:// and https://) rather than plain ws:// and http://.
    tls: bool = False
    #: With TLS, the port that redirects plain requests to ``port``, if any.
    plain_port: int | None = None
    #: With ``--redis-url``, this node's name in the cluster.
    node_id: str | None = None

    def _netloc(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self._netloc(self.port)}"

    @property
    def http_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self._netloc(self.port)}"

    def ready_line(self) -> dict[str, Any]:
        """The object printed once on stdout when listening (the TLS fields only with TLS, so
        a plain server's line stays what readers of it already parse)."""
        line: dict[str, Any] = {
            "event": "listening",
            "host": self.host,
            "port": self.port,
            "ws_url": self.ws_url,
            "http_url": self.http_url,
        }
        if self.tls:
            line["tls"] = True
        if self.plain_port is not None:
            line["plain_port"] = self.plain_port
            line["plain_url"] = f"http://{self._netloc(self.plain_port)}"
        if self.node_id is not None:
            line["node_id"] = self.node_id
        return line


def bind(host: str, port: int) -> socket.socket:
    """Bind one listening socket on the first address ``host`` resolves to.

    One socket, so ``--port 0`` yields one port even when ``host`` has several addresses.

    Raises:
        OSError: the host does not resolve or the port cannot be bound.
    """
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return socket.create_server(address[:2], family=family)


@contextlib.asynccontextmanager
async def run_server(
    config: ServerConfig,
    *,
    random_source: RandomSource | None = None,
    wall_clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
) -> AsyncIterator[RunningServer]:
    """Listen on ``config.host``/``config.port`` for the duration of the block (with TLS when
    configured, and then also on the plain redirect port if one is asked for).

    Raises:
        ConfigError: the TLS certificate or key cannot be used (before anything is bound).
    """
    ssl_context = (
        server_context(config.tls_cert, config.tls_key)
        if config.tls_cert is not None and config.tls_key is not None
        else None
    )
    if config.redis_url is not None and config.node_id is None:
        # One name per process, shared by its apps: the nodes know each other by it.
        config = dataclasses.replace(config, node_id=secrets.token_hex(6))
    server: ReferenceServer | AppsServer
    if config.apps:
        from .apps import build_apps_server

        server = build_apps_server(
            config, random_source=random_source, wall_clock=wall_clock, metrics=metrics
        )
    else:
        server = build_server(
            config, random_source=random_source, wall_clock=wall_clock, metrics=metrics
        )
    sock = bind(config.host, config.port)
    runner = web.AppRunner(
        server.make_app(),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    plain: tuple[socket.socket, web.AppRunner] | None = None
    try:
        await runner.setup()
        site = web.SockSite(runner, sock, ssl_context=ssl_context)
        await site.start()
        host, port = sock.getsockname()[:2]
        plain_port = None
        if config.plain_port is not None:
            try:
                plain_sock = bind(config.host, config.plain_port)
            except OSError as exc:
                raise ConfigError(
                    f"cannot listen on {config.host}:{config.plain_port} (--plain-port): "
                    f"{exc.strerror or exc}"
                ) from None
            plain = (
                plain_sock,
                web.AppRunner(redirect_app(port), access_log=None, handle_signals=False),
            )
            await plain[1].setup()
            await web.SockSite(plain[1], plain[0]).start()
            plain_port = plain[0].getsockname()[1]
        node_id = config.node_id if config.redis_url is not None else None
        yield RunningServer(server, host, port, ssl_context is not None, plain_port, node_id)
    finally:
        if plain is not None:
            await plain[1].cleanup()
            plain[0].close()
        await runner.cleanup()
        sock.close()
