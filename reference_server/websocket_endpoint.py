"""``GET /app/{key}``: the WebSocket endpoint, one reader and one heartbeat per connection.

It only moves frames and fires timers: frames go in through ``Connection.receive_*``, the
heartbeat sleeps until ``Connection.next_deadline()``, and whatever the core wants written
goes out through the connection's ``Peer``.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from .logs import log
from .peers import CLOSE_TIMEOUT, Fanout, Peer
from .protocol.channels import ChannelRegistry
from .protocol.connection import Connection, ConnectionSettings, State
from .protocol.socket_ids import SocketIdAllocator
from .responses import json_error

__all__ = ["WebSocketEndpoint"]


class WebSocketEndpoint:
    def __init__(
        self,
        settings: ConnectionSettings,
        registry: ChannelRegistry,
        socket_ids: SocketIdAllocator,
        fanout: Fanout,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.socket_ids = socket_ids
        self.fanout = fanout

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False, timeout=CLOSE_TIMEOUT)
        if not ws.can_prepare(request).ok:
            return json_error(426, "This endpoint expects a WebSocket upgrade")
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        connection = self._new_connection()
        peer = self._new_peer(ws, connection)
        self.fanout.open.add(peer)
        connection.open(request.match_info["key"], loop.time())
        socket_id = connection.socket_id
        if socket_id is not None:
            self.fanout.established[socket_id] = peer
            log(logging.DEBUG, "connection_opened", socket_id=socket_id)
        else:
            log(logging.DEBUG, "connection_refused", key=request.match_info["key"])
        self.fanout.flush(peer)
        heartbeat = asyncio.create_task(self._heartbeat(peer, loop))
        remote = request.remote or ""
        try:
            await self._read(peer, loop, remote)
        finally:
            self._ended(peer, remote)
            heartbeat.cancel()
            connection.receive_eof()
            if socket_id is not None:
                self.fanout.established.pop(socket_id, None)
            # E.g. member_removed for the presence channels this connection was in.
            self.fanout.route(connection.deliveries_to_send())
            self.fanout.report_webhooks(connection)
            await peer.finish()
            self.fanout.open.discard(peer)
            if socket_id is not None:
                log(
                    logging.DEBUG,
                    "connection_closed",
                    socket_id=socket_id,
                    close_code=connection.close_code or ws.close_code,
                )
        return ws

    async def _read(self, peer: Peer, loop: asyncio.AbstractEventLoop, remote: str) -> None:
        connection, ws = peer.connection, peer.ws
        while True:
            message = await ws.receive()
            now = loop.time()
            match message.type:
                case WSMsgType.TEXT:
                    connection.receive_text(message.data, now)
                case WSMsgType.BINARY:
                    connection.receive_binary(message.data, now)
                case WSMsgType.PING:
                    connection.receive_ping(message.data, now)
                case WSMsgType.PONG:
                    connection.receive_pong(message.data, now)
                case _:  # CLOSE, CLOSING, CLOSED, ERROR: the connection is over.
                    return
            self.fanout.flush(peer)
            peer.activity.set()
            self._received(peer, remote)

    async def _heartbeat(self, peer: Peer, loop: asyncio.AbstractEventLoop) -> None:
        """Sleep until the core's next deadline, then let it decide what is due."""
        connection = peer.connection
        while connection.state is not State.CLOSED:
            deadline = connection.next_deadline()
            if deadline is None:
                await peer.activity.wait()
                peer.activity.clear()
                continue
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            connection.tick(loop.time())
            self.fanout.flush(peer)

    # Seams: what a variant of the server may do differently.

    def _refusal(self, request: web.Request) -> web.Response | None:
        """An answer that refuses the upgrade before it happens; ``None`` lets it through."""
        return None

    def _new_connection(self) -> Connection:
        return Connection(self.settings, self.registry, self.socket_ids)

    def _new_peer(self, ws: web.WebSocketResponse, connection: Connection) -> Peer:
        return Peer(ws, connection)

    def _received(self, peer: Peer, remote: str) -> None:
        """Called after each client frame has been handled."""

    def _ended(self, peer: Peer, remote: str) -> None:
        """Called once the client has gone, before its connection is released."""
