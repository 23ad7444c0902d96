"""The HTTP API's aiohttp handlers: read the request, let the core decide, answer in JSON.

Every endpoint authenticates the request first (``RequestAuthenticator``); bodies up to
``MAX_READ_BYTES`` are read whole so that the documented check order (auth before size)
holds. Publishing hands the core's deliveries to ``Fanout``.

In a cluster a publish (and ``terminate_connections``) answers once its messages have
reached every node, and a query first takes in what reached this node before it
(``ClusterOutlet.caught_up``): a client that was answered on one node can act on another.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from .logs import log, logger
from .peers import Fanout
from .protocol.errors import HttpApiError, PayloadTooLarge
from .protocol.http_events import EventParser, TriggerEvent
from .protocol.http_publish import Publisher
from .protocol.http_queries import ChannelQueries
from .protocol.http_requests import HttpRequest, RequestAuthenticator
from .responses import Handler, json_error
from .serves import serves

__all__ = ["MAX_READ_BYTES", "HttpEndpoints"]

#: Bodies up to this size are read so that the documented check order (auth before size)
#: holds; larger ones are refused with 413 before anything else to bound memory.
MAX_READ_BYTES = 16 * 1024 * 1024


async def _read_body(request: web.Request) -> bytes:
    """The raw body; one over what aiohttp will read is a 413 before any other check."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"Body is over {MAX_READ_BYTES} bytes") from None


def _http_request(request: web.Request, body: bytes = b"") -> HttpRequest:
    return HttpRequest(
        method=request.method,
        path=request.path,
        query=tuple(request.query.items()),
        body=body,
    )


class HttpEndpoints:
    """One app's HTTP API.

    Args:
        wall_clock: Unix time, for ``auth_timestamp``; the cache uses the loop's clock.
    """

    def __init__(
        self,
        authenticator: RequestAuthenticator,
        events: EventParser,
        publisher: Publisher,
        queries: ChannelQueries,
        fanout: Fanout,
        wall_clock: Callable[[], float],
    ) -> None:
        self.authenticator = authenticator
        self.events = events
        self.publisher = publisher
        self.queries = queries
        self.fanout = fanout
        self._wall_clock = wall_clock

    def add_routes(self, app: web.Application) -> None:
        self.add_server_routes(app)
        for method, path, handler in self.api_routes():
            app.router.add_route(method, path, handler)

    def add_server_routes(self, app: web.Application) -> None:
        """The routes about the server as a whole, served once however many apps it has."""
        app.router.add_get("/health", self._health)

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        """This app's HTTP API: (method, path, handler), every path under ``/apps/{app_id}``."""
        return [
            ("POST", "/apps/{app_id}/events", self._trigger),
            ("POST", "/apps/{app_id}/batch_events", self._batch),
            ("GET", "/apps/{app_id}/channels", self._channels),
            ("GET", "/apps/{app_id}/channels/{channel}", self._channel),
            ("GET", "/apps/{app_id}/channels/{channel}/users", self._users),
            ("POST", "/apps/{app_id}/users/{user_id}/terminate_connections", self._terminate),
        ]

    def middlewares(self) -> list[Middleware]:
        """Middlewares this API adds to the application's own."""
        return []

    def publish(self, event: TriggerEvent, now: float | None = None) -> int:
        """Cache and fan an event out; return the number of frames queued.

        ``now`` is the loop's clock (the one connections see), for the cache's lifetime.
        """
        if now is None:
            now = asyncio.get_running_loop().time()
        self.publisher.store_in_cache(event, now)
        queued = self.fanout.route(self.publisher.deliveries(event))
        if logger.isEnabledFor(logging.DEBUG):  # Every publish: build the fields only if shown.
            log(
                logging.DEBUG,
                "trigger",
                name=event.name,
                channels=list(event.channels),
                socket_id=event.socket_id,
                frames=queued,
            )
        return queued

    def _validate(self, request: web.Request, http_request: HttpRequest) -> None:
        """Steps 1-6 (app id and request signature) for any endpoint.

        Raises:
            HttpApiError: for the first check that fails.
        """
        self.authenticator.validate(request.match_info["app_id"], http_request, self._wall_clock())

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _caught_up(self) -> None:
        """In a cluster, wait until what the other nodes did before now has arrived here (a
        bounded wait; alone, nothing to wait for)."""
        if self.fanout.cluster is not None:
            await self.fanout.cluster.caught_up()

    async def _channel(self, request: web.Request) -> web.Response:
        http_request = _http_request(request)
        try:
            self._validate(request, http_request)
            await self._caught_up()
            body = self.queries.channel_info(
                request.match_info["channel"], http_request, asyncio.get_running_loop().time()
            )
        except HttpApiError as exc:
            return json_error(exc.status, exc.message)
        return web.json_response(body)

    async def _users(self, request: web.Request) -> web.Response:
        try:
            self._validate(request, _http_request(request))
            await self._caught_up()
            body = self.queries.channel_users(request.match_info["channel"])
        except HttpApiError as exc:
            return json_error(exc.status, exc.message)
        return web.json_response(body)

    async def _channels(self, request: web.Request) -> web.Response:
        http_request = _http_request(request)
        try:
            self._validate(request, http_request)
            await self._caught_up()
            body = self.queries.list_channels(http_request)
        except HttpApiError as exc:
            return json_error(exc.status, exc.message)
        return web.json_response(body)

    async def _terminate(self, request: web.Request) -> web.Response:
        try:
            self._check_terminate(request, _http_request(request, await _read_body(request)))
        except HttpApiError as exc:
            return json_error(exc.status, exc.message)
        user_id = request.match_info["user_id"]
        serves("HTTP-USER-01")
        targets = self.queries.terminate_targets(user_id)
        self.fanout.terminate(targets)
        if self.fanout.cluster is not None:
            self.fanout.cluster.terminate_elsewhere(user_id)
            await self._caught_up()
        log(logging.DEBUG, "terminate_connections", user_id=user_id, connections=len(targets))
        return web.json_response({})

    async def _trigger(self, request: web.Request) -> web.Response:
        try:
            http_request = _http_request(request, await _read_body(request))
            self._validate(request, http_request)
            event = self.events.trigger(http_request)
        except HttpApiError as exc:
            log(logging.DEBUG, "trigger_refused", status=exc.status, error=exc.message)
            return json_error(exc.status, exc.message)
        serves("HTTP-AUTH-02", "HTTP-EVT-04")
        if event.info:
            await self._caught_up()
        reply = self.publisher.trigger_reply(event)
        self._publish_trigger(request, event)
        self.fanout.cork.flush_if_few()
        await self._caught_up()
        return web.json_response(reply)

    async def _batch(self, request: web.Request) -> web.Response:
        try:
            http_request = _http_request(request, await _read_body(request))
            self._validate(request, http_request)
        except HttpApiError as exc:
            return json_error(exc.status, exc.message)
        plan = self.events.batch(http_request.body)
        serves("HTTP-BATCH-01")
        if any(event.info for event in plan.events):
            await self._caught_up()
        reply = self.publisher.batch_reply(plan.events)
        for event in plan.events:
            self.publish(event)
        self.fanout.cork.flush_if_few()
        await self._caught_up()
        if plan.error is not None:
            log(logging.DEBUG, "batch_refused", status=plan.error.status, error=plan.error.message)
            return json_error(plan.error.status, plan.error.message)
        return web.json_response(reply)

    # Seams: what a variant of the server may do differently.

    def _check_terminate(self, request: web.Request, http_request: HttpRequest) -> None:
        """``terminate_connections`` is authenticated like every endpoint."""
        self._validate(request, http_request)

    def _publish_trigger(self, request: web.Request, event: TriggerEvent) -> None:
        """Publish an accepted trigger (its reply is already built)."""
        self.publish(event)
