"""The faulty server: the real one, built from the fault-switched variants of its parts.

``app.build_server`` uses ``FaultyReferenceServer`` whenever ``PUSHER_REF_FAULTS`` names a
fault. Faults that live in the adapter rather than in a protocol rule are here too:
``malformed_sender_address_blocked``, ``wrong_content_type_desync``, ``no_keep_alive`` and
``terminate_unauthenticated``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from ..app import ReferenceServer
from ..http_endpoints import HttpEndpoints
from ..peers import Fanout, Peer
from ..protocol.channels import ChannelRegistry
from ..protocol.connection import Connection, ConnectionSettings
from ..protocol.http_events import TriggerEvent
from ..protocol.http_requests import HttpRequest
from ..protocol.socket_ids import RandomSource, SocketIdAllocator
from ..protocol.webhooks import RetryPolicy
from ..responses import Handler, json_error
from ..webhook_sender import WebhookSender
from ..websocket_endpoint import WebSocketEndpoint
from .catalogue import Fault, FaultSet
from .channels import (
    DotlessSocketIdAllocator,
    LeakyChannelRegistry,
    ReclaimableSocketIdAllocator,
)
from .client_events import ClientEventFaults
from .delivery import ShapedPeer, shaper_for
from .http_api import (
    ChannelQueriesWithFaults,
    EventParserWithFaults,
    PublisherWithFaults,
    RequestAuthenticatorWithFaults,
)
from .lifecycle import LifecycleFaults
from .presence import PresenceFaults
from .reconnection import ReconnectionFaults
from .sessions import SessionFaultsEndpoint
from .subscriptions import SubscriptionFaults
from .webhooks import UndelayedWebhookSchedule, WebhookReportFaults, WebhookSenderWithFaults

__all__ = ["FaultyConnection", "FaultyReferenceServer"]


class FaultyConnection(
    ReconnectionFaults,
    LifecycleFaults,
    SubscriptionFaults,
    PresenceFaults,
    ClientEventFaults,
    WebhookReportFaults,
):
    """Every connection-level fault; each switch is read where its rule is."""


class FaultyWebSocketEndpoint(SessionFaultsEndpoint):
    """Builds fault-switched connections and peers, and keeps the per-address memory that
    ``malformed_sender_address_blocked`` needs."""

    def __init__(
        self,
        settings: ConnectionSettings,
        registry: LeakyChannelRegistry,
        socket_ids: SocketIdAllocator,
        fanout: Fanout,
        faults: FaultSet,
        webhooks: WebhookSender | None = None,
    ) -> None:
        super().__init__(settings, registry, socket_ids, fanout, faults, webhooks)
        #: ``malformed_sender_address_blocked``: client address -> its open connections that
        #: sent malformed input.
        self._offenders: dict[str, set[Peer]] = {}

    def _refusal(self, request: web.Request) -> web.Response | None:
        if self._offenders.get(request.remote or ""):
            return json_error(403, "Address blocked after malformed input")
        return super()._refusal(request)

    def _new_connection(self) -> Connection:
        return FaultyConnection(self.settings, self._leaky, self.socket_ids, self.faults)

    def _new_peer(
        self, ws: web.WebSocketResponse, connection: Connection, transport: asyncio.Transport
    ) -> Peer:
        shaper = shaper_for(self.faults)
        if shaper is None:
            return super()._new_peer(ws, connection, transport)
        return ShapedPeer(ws, connection, transport, self.fanout.cork, shaper)

    def _received(self, peer: Peer, remote: str) -> None:
        connection = peer.connection
        if (
            Fault.MALFORMED_SENDER_ADDRESS_BLOCKED in self.faults
            and isinstance(connection, FaultyConnection)
            and connection.malformed_inputs
        ):
            self._offenders.setdefault(remote, set()).add(peer)

    def _ended(self, peer: Peer, remote: str) -> None:
        self._offenders.get(remote, set()).discard(peer)
        super()._ended(peer, remote)


class FaultyHttpEndpoints(HttpEndpoints):
    """The HTTP faults that concern a request's transport rather than its content."""

    def __init__(
        self,
        authenticator: RequestAuthenticatorWithFaults,
        events: EventParserWithFaults,
        publisher: PublisherWithFaults,
        queries: ChannelQueriesWithFaults,
        fanout: Fanout,
        wall_clock: Callable[[], float],
        faults: FaultSet,
    ) -> None:
        super().__init__(authenticator, events, publisher, queries, fanout, wall_clock)
        self.faults = faults
        #: ``wrong_content_type_desync``: HTTP connections whose next JSON trigger is
        #: answered but lost.
        self._desynced: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()

    def middlewares(self) -> list[Middleware]:
        return [*super().middlewares(), self._keep_alive]

    @web.middleware
    async def _keep_alive(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """``no_keep_alive``: every API response closes its TCP connection."""
        response = await handler(request)
        if Fault.NO_KEEP_ALIVE in self.faults and not isinstance(response, web.WebSocketResponse):
            response.force_close()
        return response

    def _check_terminate(self, request: web.Request, http_request: HttpRequest) -> None:
        if Fault.TERMINATE_UNAUTHENTICATED in self.faults:
            self.authenticator.check_app(request.match_info["app_id"])
            return
        super()._check_terminate(request, http_request)

    def _publish_trigger(self, request: web.Request, event: TriggerEvent) -> None:
        if not self._lost_to_desync(request):
            super()._publish_trigger(request, event)

    def _lost_to_desync(self, request: web.Request) -> bool:
        """After a trigger with a non-JSON content type, the next JSON trigger on the same
        HTTP connection is answered but not published."""
        transport = request.transport
        if Fault.WRONG_CONTENT_TYPE_DESYNC not in self.faults or transport is None:
            return False
        if request.content_type != "application/json":
            self._desynced.add(transport)
            return False
        if transport in self._desynced:
            self._desynced.discard(transport)
            return True
        return False


class FaultyReferenceServer(ReferenceServer):
    """A ``ReferenceServer`` whose parts break the rules ``config.faults`` names."""

    @property
    def faults(self) -> FaultSet:
        return self.config.faults

    def _new_registry(self) -> ChannelRegistry:
        return LeakyChannelRegistry()

    def _leaky_registry(self) -> LeakyChannelRegistry:
        assert isinstance(self.registry, LeakyChannelRegistry)
        return self.registry

    def _new_socket_ids(self, random_source: RandomSource) -> SocketIdAllocator:
        if Fault.SOCKET_ID_WITHOUT_DOT in self.faults:
            return DotlessSocketIdAllocator(random_source)
        return ReclaimableSocketIdAllocator(random_source)

    def middlewares(self) -> list[Middleware]:
        if Fault.ANY_PATH_UPGRADES in self.faults:
            return [*super().middlewares(), self._any_path_upgrade]
        return super().middlewares()

    @web.middleware
    async def _any_path_upgrade(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """``any_path_upgrades``: a WebSocket upgrade on a path no route serves is taken as
        one on ``/app/{key}``, the key being the path's last segment."""
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if not upgrade or request.match_info.http_exception is None:
            return await handler(request)
        request.match_info["key"] = request.path.rstrip("/").rsplit("/", 1)[-1]
        return await self.websocket.handle(request)

    async def drain(self, *, spread: float = 0.0, timeout: float = 2.0) -> None:
        if Fault.SHUTDOWN_DROPS_TCP in self.faults:
            # Reverb's graceful stop: every socket is cut, no close frame, no 4200.
            for peer in list(self.fanout.open):
                peer.abort()
        await super().drain(spread=spread, timeout=timeout)

    def _new_webhook_sender(self) -> WebhookSender:
        assert self.config.webhook_url is not None
        options = self._webhook_options()
        if Fault.WEBHOOK_NO_RETRY in self.faults:
            options["retry"] = RetryPolicy(retry_for=0.0)
        if Fault.WEBHOOK_VACATED_NOT_DELAYED in self.faults:
            options["schedule"] = UndelayedWebhookSchedule(delay=self.config.webhook_delay)
        return WebhookSenderWithFaults(self.config.webhook_url, faults=self.faults, **options)

    def _new_websocket_endpoint(self) -> WebSocketEndpoint:
        return FaultyWebSocketEndpoint(
            self.settings,
            self._leaky_registry(),
            self.socket_ids,
            self.fanout,
            self.faults,
            self.webhooks,
        )

    def _new_http_endpoints(self) -> HttpEndpoints:
        return FaultyHttpEndpoints(
            RequestAuthenticatorWithFaults(self.credentials, self.limits, self.faults),
            EventParserWithFaults(self.limits, self.faults),
            PublisherWithFaults(self.registry, self.faults),
            ChannelQueriesWithFaults(self.registry, self.faults),
            self.fanout,
            self._wall_clock,
            self.faults,
        )
