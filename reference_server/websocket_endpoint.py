"""``GET /app/{key}``: the WebSocket endpoint, one reader task and one timer per connection.

It only moves frames and fires timers: frames go in through ``Connection.receive_*``, the
heartbeat timer is set for ``Connection.next_deadline()``, and whatever the core wants
written goes out through the connection's ``Peer``. A timer rather than a task per
connection: an idle connection should cost the server as little memory as it can.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web
from aiohttp.http_websocket import WebSocketError, WSMessage

from .logs import log
from .peers import CLOSE_TIMEOUT, DEFAULT_SEND_BUFFER_LIMIT, Fanout, Peer
from .protocol.channels import ChannelRegistry
from .protocol.connection import Connection, ConnectionSettings, State
from .protocol.lifecycle import protocol_version
from .protocol.socket_ids import SocketIdAllocator
from .responses import json_error
from .serves import serves

__all__ = ["DRAINING_BODY", "ReasonedWebSocketResponse", "WebSocketEndpoint"]

#: The body of the 503 that refuses a handshake while the server drains.
DRAINING_BODY = "Server shutting down; reconnect later\n"

#: Reasons for the closes aiohttp sends on its own (a frame it cannot parse, a message over
#: its size limit), which it would otherwise send with an empty reason.
_DEFAULT_REASONS = {
    1000: "Normal closure",
    1002: "WebSocket protocol error",
    1007: "Invalid UTF-8 in a text frame",
    1009: "Message too big",
    1011: "Internal server error",
}


class ReasonedWebSocketResponse(web.WebSocketResponse):
    """A WebSocket whose every close frame carries a reason.

    The protocol core always gives one; this covers the closes aiohttp makes by itself, so
    that a client can always log why the server hung up.
    """

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        if not message:
            serves("RECON-01", "ROBUST-WS-04")
            message = _DEFAULT_REASONS.get(code, "Connection closed by the server").encode()
        return await super().close(code=code, message=message, drain=drain)


class WebSocketEndpoint:
    def __init__(
        self,
        settings: ConnectionSettings,
        registry: ChannelRegistry,
        socket_ids: SocketIdAllocator,
        fanout: Fanout,
        send_buffer_limit: int = DEFAULT_SEND_BUFFER_LIMIT,
    ) -> None:
        self.settings = settings
        self.send_buffer_limit = send_buffer_limit
        self.registry = registry
        self.socket_ids = socket_ids
        self.fanout = fanout
        #: This app's established connections, the count its connection quota is held to.
        #: Its own, not the fan-out's: the fan-out is the routing, which may be shared.
        self.admitted: set[Peer] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = self._new_websocket()
        if not ws.can_prepare(request).ok:
            return json_error(426, "This endpoint expects a WebSocket upgrade")
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        opened_at = loop.time()
        transport = request.transport
        if transport is None:  # The client went during the handshake.
            return ws
        connection = self._new_connection()
        peer = self._new_peer(ws, connection, transport)
        self.fanout.add(peer)
        protocol = protocol_version(request.query.get("protocol"))
        connection.open(
            request.match_info["key"],
            opened_at,
            protocol=protocol,
            open_connections=len(self.admitted),
        )
        socket_id = connection.socket_id
        remote = request.remote or ""
        observer = self.fanout.observer
        if socket_id is not None:
            self.admitted.add(peer)
            self.fanout.established[socket_id] = peer
            observer.opened(connection, remote)
        else:
            log(logging.DEBUG, "connection_refused", key=request.match_info["key"])
        self.fanout.flush(peer)
        self._arm(peer, loop)
        # The handler is the reader: a task of its own per connection would cost every idle
        # connection a task's memory.
        peer.reader = asyncio.current_task()
        try:
            try:
                await self._read(peer, loop, remote)
            except asyncio.CancelledError:
                if not peer.stop_requested():
                    raise
                # Stopped by our own close (``Peer._stop_reader``): not an error.
        finally:
            peer.reader_stopped()
            # Everything up to ``peer.finish()`` runs without yielding, so the connection's
            # subscriptions, presence and socket id are released the moment the reader ends,
            # whatever the close handshake then takes (a stalled peer never answers it).
            self._ended(peer, remote)
            if peer.timer is not None:
                peer.timer.cancel()
                peer.timer = None
            connection.receive_eof()
            self.admitted.discard(peer)
            if socket_id is not None and self.fanout.established.get(socket_id) is peer:
                del self.fanout.established[socket_id]
            # E.g. member_removed for the presence channels this connection was in.
            self.fanout.route(connection.deliveries_to_send())
            self._report_final_webhooks(peer)
            self._released(peer)
            if socket_id is not None:
                observer.closed(
                    connection,
                    connection.close_code or ws.close_code,
                    loop.time() - opened_at,
                    peer.dropped,
                )
            try:
                await peer.finish()
            finally:
                self.fanout.discard(peer)  # Even if cancelled: a drain waits on this.
        return ws

    async def _read(self, peer: Peer, loop: asyncio.AbstractEventLoop, remote: str) -> None:
        connection, ws, fanout = peer.connection, peer.ws, self.fanout
        metrics = fanout.observer.metrics
        while True:
            message = await ws.receive()
            now = loop.time()
            match message.type:
                case WSMsgType.TEXT:
                    metrics.messages_received += 1
                    connection.receive_text(message.data, now)
                case WSMsgType.BINARY:
                    metrics.messages_received += 1
                    connection.receive_binary(message.data, now)
                case WSMsgType.PING:
                    connection.receive_ping(message.data, now)
                case WSMsgType.PONG:
                    connection.receive_pong(message.data, now)
                case _:  # CLOSE, CLOSING, CLOSED, ERROR: the connection is over.
                    peer.dropped = self._is_drop(connection, message)
                    return
            fanout.flush(peer)
            fanout.cork.flush_if_few()
            self._arm(peer, loop)
            self._received(peer, remote)

    @staticmethod
    def _is_drop(connection: Connection, message: WSMessage) -> bool:
        """Whether the client went without a close frame: EOF or a transport error while the
        connection was open. A close frame (CLOSE), a close we started (CLOSING) and a frame
        aiohttp refused and closed on (an ERROR carrying a ``WebSocketError``) are not."""
        if connection.state is not State.OPEN:
            return False
        if message.type is WSMsgType.CLOSED:
            return True
        return message.type is WSMsgType.ERROR and not isinstance(message.data, WebSocketError)

    def _arm(self, peer: Peer, loop: asyncio.AbstractEventLoop) -> None:
        """Set the heartbeat timer for the core's next deadline, unless it is set for then or
        earlier: activity only moves the deadline later, and the timer checks when it fires."""
        deadline = peer.connection.next_deadline()
        timer = peer.timer
        if deadline is None:
            if timer is not None:
                timer.cancel()
                peer.timer = None
        elif timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            peer.timer = loop.call_at(deadline, self._due, peer, loop)

    def _due(self, peer: Peer, loop: asyncio.AbstractEventLoop) -> None:
        """The timer fired: let the core decide what is due, if anything still is."""
        peer.timer = None
        connection = peer.connection
        if connection.state is State.CLOSED:
            return
        deadline = connection.next_deadline()
        if deadline is not None and loop.time() >= deadline:
            connection.tick(loop.time())
            self.fanout.flush(peer)
        self._arm(peer, loop)

    # Seams: what a variant of the server may do differently.

    def _new_websocket(self) -> web.WebSocketResponse:
        return ReasonedWebSocketResponse(autoping=False, timeout=CLOSE_TIMEOUT, compress=False)

    def _refusal(self, request: web.Request) -> web.Response | None:
        """An answer that refuses the upgrade before it happens; ``None`` lets it through.

        A draining server refuses every handshake with 503, so that a client reconnecting
        after the 4200 close is sent elsewhere (or retries) rather than joining a server that
        is about to go.
        """
        if self.fanout.draining and self._refuses_while_draining():
            serves("RECON-13")
            return web.Response(status=503, text=DRAINING_BODY, headers={"Retry-After": "1"})
        return None

    def _refuses_while_draining(self) -> bool:
        return True

    def _new_connection(self) -> Connection:
        return Connection(self.settings, self.registry, self.socket_ids)

    def _new_peer(
        self, ws: web.WebSocketResponse, connection: Connection, transport: asyncio.Transport
    ) -> Peer:
        return Peer(ws, connection, transport, self.fanout.cork, self.send_buffer_limit)

    def _received(self, peer: Peer, remote: str) -> None:
        """Called after each client frame has been handled."""

    def _ended(self, peer: Peer, remote: str) -> None:
        """Called once the client has gone, before its connection is released."""

    def _report_final_webhooks(self, peer: Peer) -> None:
        """Hand over the webhooks the connection's release caused (channel_vacated, ...)."""
        self.fanout.report_webhooks(peer.connection)

    def _released(self, peer: Peer) -> None:
        """Called once the connection's state is released, before the close handshake ends."""
