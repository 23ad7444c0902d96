"""Several apps on one server: one ``ReferenceServer`` per app behind one aiohttp application.

``ReferenceServer`` stays one app's state (its channels, connections, webhooks, quota). This
module only routes: ``/app/{key}`` goes to the app with that key, ``/apps/{app_id}/...`` to the
app with that id, and the server-wide routes (``/health``) exist once. A key or an id no app has
goes to the first app, which refuses it exactly as a one-app server refuses a wrong key (4001)
or a wrong app id; so adding apps changes nothing for clients of an unknown app.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from aiohttp import web

from .app import ReferenceServer, build_server
from .config import ServerConfig
from .http_endpoints import MAX_READ_BYTES
from .metrics import AppMetrics, Metrics
from .operations import add_routes, observe_requests
from .protocol.socket_ids import RandomSource
from .responses import Handler, json_errors
from .serves import serves

__all__ = ["AppsServer", "build_apps_server"]


class AppsServer:
    """The apps of one process, each its own ``ReferenceServer``, served together.

    Args:
        servers: one per app, the first being where unknown keys and ids are refused. Keys
            and ids are unique (the apps file is checked before this is built).
    """

    def __init__(self, servers: Sequence[ReferenceServer]) -> None:
        if not servers:
            raise ValueError("an AppsServer needs at least one app")
        self.servers = tuple(servers)
        self.by_key = {server.config.key: server for server in self.servers}
        self.by_id = {server.config.app_id: server for server in self.servers}
        self._fallback = self.servers[0]
        #: Per app, its API handlers in ``api_routes()`` order, built once.
        self._handlers = {
            id(server): [handler for _, _, handler in server.http.api_routes()]
            for server in self.servers
        }

    def make_app(self) -> web.Application:
        fallback = self._fallback
        # Middlewares are the server's, not an app's: any app's set would do (faults are
        # switched on server-wide), and the fallback app is always there.
        app = web.Application(
            middlewares=[observe_requests(self._metrics_of), json_errors, *fallback.middlewares()],
            client_max_size=MAX_READ_BYTES,
        )
        app.router.add_get("/app/{key}", self._websocket)
        fallback.http.add_server_routes(app)
        # The apps share one process's metrics (``build_apps_server``).
        add_routes(app, registry=fallback.process_metrics.registry, ready=self.ready)
        for index, (method, path, _) in enumerate(fallback.http.api_routes()):
            app.router.add_route(method, path, self._api(index))
        for server in self.servers:
            server.attach(app)
        return app

    def ready(self) -> list[str]:
        """Every app's reasons not to be sent new clients, each once; empty when all are
        ready."""
        return list(dict.fromkeys(reason for server in self.servers for reason in server.ready()))

    def for_key(self, key: str) -> ReferenceServer:
        return self._pick(self.by_key, key)

    def for_app_id(self, app_id: str) -> ReferenceServer:
        return self._pick(self.by_id, app_id)

    def _pick(self, table: dict[str, ReferenceServer], name: str) -> ReferenceServer:
        """The app ``name`` belongs to, whose own state alone serves the request: this is
        where one app's traffic is kept from every other app's."""
        server = table.get(name)
        if server is None:
            return self._fallback
        serves("DELIV-07")
        return server

    def _metrics_of(self, request: web.Request) -> AppMetrics:
        """The metrics of the app that serves ``request`` (the fallback's for an unknown id)."""
        return self.by_id.get(request.match_info.get("app_id", ""), self._fallback).metrics

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        return await self.for_key(request.match_info["key"]).websocket.handle(request)

    def _api(self, index: int) -> Handler:
        async def dispatch(request: web.Request) -> web.StreamResponse:
            server = self.for_app_id(request.match_info["app_id"])
            return await self._handlers[id(server)][index](request)

        return dispatch

    async def drain(self, *, spread: float = 0.0, timeout: float = 2.0) -> None:
        """Drain every app at once: the stop takes as long as the slowest app, not their sum."""
        await asyncio.gather(
            *(server.drain(spread=spread, timeout=timeout) for server in self.servers)
        )


def build_apps_server(
    config: ServerConfig,
    *,
    random_source: RandomSource | None = None,
    wall_clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
) -> AppsServer:
    """The apps of ``config`` (its apps file), each built as ``build_server`` builds one; with
    a fault on, the faulty variants (``faults/apps.py``). They count into one ``metrics``."""
    configs = config.app_configs()
    if metrics is None:
        metrics = Metrics()
    if config.faults:
        from .faults.apps import build_faulty_servers

        servers = build_faulty_servers(
            configs, random_source=random_source, wall_clock=wall_clock, metrics=metrics
        )
    else:
        servers = [
            build_server(
                app_config, random_source=random_source, wall_clock=wall_clock, metrics=metrics
            )
            for app_config in configs
        ]
    return AppsServer(servers)
