"""Reconnection faults that live in the WebSocket endpoint: how a connection ended (a close
frame, or none), what it leaves for the next one, and the handshakes of a draining server.

The endpoint is the only place that knows a client went without a close frame, so it marks
the connection (``dropped``) before its release for the connection-level faults in
``reconnection.py``, and does the adapter-level ones itself.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..peers import CLOSE_TIMEOUT, Fanout, Peer
from ..protocol.connection import ConnectionSettings
from ..protocol.socket_ids import SocketIdAllocator
from ..webhook_sender import WebhookSender
from ..websocket_endpoint import WebSocketEndpoint
from .catalogue import Fault, FaultSet
from .channels import LeakyChannelRegistry
from .reconnection import ReconnectionFaults
from .webhooks import WebhookSenderWithFaults

__all__ = ["SessionFaultsEndpoint"]


class SessionFaultsEndpoint(WebSocketEndpoint):
    def __init__(
        self,
        settings: ConnectionSettings,
        registry: LeakyChannelRegistry,
        socket_ids: SocketIdAllocator,
        fanout: Fanout,
        faults: FaultSet,
        webhooks: WebhookSender | None = None,
    ) -> None:
        super().__init__(settings, registry, socket_ids, fanout)
        self._leaky = registry
        self.faults = faults
        self._webhooks = webhooks

    def _new_websocket(self) -> web.WebSocketResponse:
        if Fault.CLOSE_WITHOUT_REASON in self.faults:
            # aiohttp's own closes (protocol errors, oversized messages) keep an empty reason.
            return web.WebSocketResponse(autoping=False, timeout=CLOSE_TIMEOUT)
        return super()._new_websocket()

    def _refuses_while_draining(self) -> bool:
        return Fault.SHUTDOWN_ACCEPTS_NEW_HANDSHAKES not in self.faults

    def _ended(self, peer: Peer, remote: str) -> None:
        super()._ended(peer, remote)
        connection = peer.connection
        if not peer.dropped or not isinstance(connection, ReconnectionFaults):
            return
        connection.dropped = True
        session = connection.session()
        if session is None:
            return
        if Fault.DROPPED_CONNECTION_RESUMED in self.faults:
            self._leaky.keep_session(session)
        if Fault.RESUBSCRIBER_GETS_EVENTS_TWICE in self.faults:
            self._leaky.note_dropped(session.channels, asyncio.get_running_loop().time())

    def _report_final_webhooks(self, peer: Peer) -> None:
        sender = self._webhooks
        if (
            peer.dropped
            and Fault.WEBHOOK_GRACE_IGNORED_ON_ABRUPT_CLOSE in self.faults
            and isinstance(sender, WebhookSenderWithFaults)
        ):
            # channel_vacated / member_removed go out now: a quick return cannot cancel them.
            sender.submit_at_once(peer.connection.webhooks_to_send())
            return
        super()._report_final_webhooks(peer)

    def _released(self, peer: Peer) -> None:
        super()._released(peer)
        connection = peer.connection
        socket_id = connection.socket_id
        if socket_id is not None and Fault.AUTH_FOR_RECENT_SOCKET_ID_ACCEPTED in self.faults:
            self._leaky.remember_closed(socket_id, asyncio.get_running_loop().time())
        if (
            peer.dropped
            and Fault.CLEANUP_TWICE_ON_ABRUPT_CLOSE in self.faults
            and isinstance(connection, ReconnectionFaults)
        ):
            # The reader's cleanup and the close handler's both run; the second one announces
            # the same leaves again.
            connection.clean_up_again()
            self.fanout.route(connection.deliveries_to_send())
