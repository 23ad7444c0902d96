"""The outbound side of every WebSocket, and the routing of frames between connections.

Each ``Peer`` owns one writer task fed by an unbounded queue: queueing never blocks, so a
slow or dead subscriber delays nobody else, and a write error ends only that peer's writer.
``Fanout`` knows the established peers by socket id and hands each one what the protocol
core wants written to it, to the others and to the webhook sender, telling its ``Observer``
(logs and metrics) as it goes. In a cluster it also passes what the core noted for the other
nodes to the node's ``ClusterLink``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Protocol

from aiohttp import web

from .logs import log
from .metrics import AppMetrics
from .observe import Observer
from .protocol.channels import Delivery
from .protocol.cluster import bus_decides
from .protocol.connection import Close, Connection, Output, SendBinary, SendPong, SendText
from .protocol.webhooks import WebhookEvent
from .serves import serves
from .webhook_sender import WebhookSender

__all__ = ["CLOSE_TIMEOUT", "ClusterOutlet", "Fanout", "Peer"]

#: Seconds to wait for the client's close frame after ours (aiohttp's default is 10).
CLOSE_TIMEOUT = 2.0
#: Seconds after which a close that has not completed (a peer that reads nothing, so not
#: even our close frame can be written) is given up and the TCP connection dropped.
GIVE_UP_AFTER = CLOSE_TIMEOUT * 2


class Peer:
    """One WebSocket's outbound side: a queue drained by a single writer task."""

    def __init__(self, ws: web.WebSocketResponse, connection: Connection) -> None:
        self.ws = ws
        self.connection = connection
        #: The TCP connection under the WebSocket, for ``abort``; set once upgraded.
        self.transport: asyncio.Transport | None = None
        #: Set by the reader when the client went without a close frame (EOF, reset).
        self.dropped = False
        #: The task reading this WebSocket, stopped before we close it (see ``_stop_reader``).
        self.reader: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Output] = asyncio.Queue()
        self._dead = False
        self._closing = False
        self._finished = False
        self._give_up: asyncio.TimerHandle | None = None
        #: Set on every client frame; wakes a heartbeat that had no deadline.
        self.activity = asyncio.Event()
        self._writer = asyncio.create_task(self._write())

    @property
    def accepting(self) -> bool:
        """Whether frames queued now will still be written."""
        return not (self._dead or self._closing)

    def send(self, output: Output, fanout: int = 1) -> None:
        """Queue one output; ``fanout`` is how many connections share this very frame."""
        if not self.accepting:
            return
        if isinstance(output, Close):
            self._closing = True
            self._give_up = asyncio.get_running_loop().call_later(
                GIVE_UP_AFTER, self._close_overdue
            )
        self._queue.put_nowait(output)

    def _close_overdue(self) -> None:
        """Our close has not completed in time: the peer has stopped reading (its TCP window
        is full, so even our close frame cannot be written). Drop the connection; its state
        was released when the close was decided."""
        if not self._finished:
            log(logging.DEBUG, "close_overdue", socket_id=self.connection.socket_id)
            self.abort()

    def flush(self) -> list[Output]:
        """Queue everything the protocol core wants written; return it."""
        outputs = self.connection.data_to_send()
        for output in outputs:
            self.send(output)
        return outputs

    async def _write(self) -> None:
        while True:
            output = await self._queue.get()
            try:
                match output:
                    case SendText(text):
                        await self.ws.send_str(text)
                    case SendBinary(data):
                        await self.ws.send_bytes(data)
                    case SendPong(payload):
                        await self.ws.pong(payload)
                    case Close(code, reason):
                        await self._stop_reader()
                        await self.ws.close(code=code, message=reason.encode())
                        return
            except (ConnectionError, RuntimeError) as exc:
                # The client went away mid-write; the reader will notice and clean up.
                log(
                    logging.DEBUG,
                    "write_failed",
                    socket_id=self.connection.socket_id,
                    error=repr(exc),
                )
                self._dead = True
                return

    async def _stop_reader(self) -> None:
        """Stop the reader before our close frame goes out.

        While another task waits in ``receive()``, aiohttp's ``close()`` closes the TCP
        connection right after writing the close frame; with no reader waiting, it waits (up
        to ``CLOSE_TIMEOUT``) for the client's close frame, a real close handshake. Only then
        can a draining server tell which clients have taken note of its 4200. Stopping the
        reader ends the connection in the endpoint at once, so its release does not wait for
        the handshake either.
        """
        reader = self.reader
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            await asyncio.wait([reader])

    def abort(self) -> None:
        """Drop the TCP connection at once, without a close frame.

        For a client that has not answered a close frame by the end of a drain: waiting for
        its close handshake any longer would only delay the server's exit.
        """
        self._dead = True
        if self.transport is not None:
            self.transport.abort()

    async def finish(self) -> None:
        """Let a requested close complete; drop anything else still queued."""
        if self._closing and not self._dead:
            # ``asyncio.wait`` neither raises the writer's errors nor swallows our cancellation;
            # the margin lets the close handshake's own timeout fire first.
            await asyncio.wait([self._writer], timeout=CLOSE_TIMEOUT + 1.0)
        self._writer.cancel()
        await asyncio.wait([self._writer])
        self._dead = True
        if not self.ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), CLOSE_TIMEOUT)
        self._finished = True
        if self._give_up is not None:
            self._give_up.cancel()


class ClusterOutlet(Protocol):
    """Where a clustered node's changes go (``cluster_link.ClusterLink``)."""

    def flush(self) -> None: ...

    def terminate_elsewhere(self, user_id: str) -> None: ...

    async def caught_up(self) -> None: ...


class Fanout:
    """Every open peer, the established ones by socket id, and the routes between them."""

    def __init__(self, webhooks: WebhookSender | None, metrics: AppMetrics | None = None) -> None:
        self._webhooks = webhooks
        #: The link to the other nodes; ``None`` when this process is the whole server.
        self.cluster: ClusterOutlet | None = None
        #: The app's logs and metrics of what goes through here.
        self.observer = Observer(metrics if metrics is not None else AppMetrics(""))
        #: Established connections by socket id: the fan-out targets.
        self.established: dict[str, Peer] = {}
        #: Every open WebSocket, including refused ones, so shutdown can close them all;
        #: oldest first, the order a drain closes them in.
        self.open: dict[Peer, None] = {}
        #: Set when the server starts draining: new WebSocket handshakes are refused.
        self.draining = False
        self._emptied = asyncio.Event()

    def add(self, peer: Peer) -> None:
        self.open[peer] = None
        self._emptied.clear()

    def discard(self, peer: Peer) -> None:
        """A peer's handler has finished: its close handshake is over, or given up on."""
        self.open.pop(peer, None)
        if not self.open:
            self._emptied.set()

    async def wait_closed(self, timeout: float) -> bool:
        """Wait until no WebSocket is open, at most ``timeout`` s; return whether none is."""
        if self.open and timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._emptied.wait(), timeout)
        return not self.open

    def route(self, outgoing: list[Delivery]) -> int:
        """Queue each frame for its targets; return the number queued.

        Each frame was serialised once and the same ``str`` is queued for every target.
        """
        queued = 0
        for delivery in outgoing:
            serves("DELIV-01", "DELIV-02", "DELIV-08")
            output = SendText(delivery.text)
            fanout = len(delivery.socket_ids)
            for socket_id in delivery.socket_ids:
                peer = self.established.get(socket_id)
                if peer is not None:
                    peer.send(output, fanout)
                    queued += 1
        if self.cluster is not None:
            # Every change of state ends up here (a connection's input, its release, a
            # publish), so this is where the other nodes are told, in the same order.
            self.cluster.flush()
        if queued:
            self.observer.routed(queued)
        return queued

    def terminate(self, socket_ids: Iterable[str]) -> None:
        """Close these connections with 4009 (``terminate_connections``)."""
        for socket_id in socket_ids:
            peer = self.established.get(socket_id)
            if peer is not None:
                peer.connection.terminate()
                self.flush(peer)

    def flush(self, peer: Peer) -> None:
        """Queue what the core wants written to this peer, then to the others."""
        connection = peer.connection
        self.observer.sent(connection, peer.flush())
        self.observer.subscriptions_changed(connection)
        self.route(connection.deliveries_to_send())
        self.report_webhooks(connection)

    def report_webhooks(self, connection: Connection) -> None:
        """Hand the webhook events the core produced to the sender (never blocks)."""
        events = connection.webhooks_to_send()
        if not events:
            return
        self.observer.reported(events)
        if self.cluster is not None:
            # Occupancy and membership are decided cluster-wide, in the bus's order.
            events = [event for event in events if not bus_decides(event)]
        self.submit_webhooks(events)

    def submit_webhooks(self, events: list[WebhookEvent]) -> None:
        if self._webhooks is not None:
            self._webhooks.submit(events)

    def shutdown(self) -> None:
        """The server is stopping: every connection still open closes with 4200."""
        for peer in list(self.open):
            self.close_for_shutdown(peer)

    def close_for_shutdown(self, peer: Peer) -> None:
        peer.connection.shutdown()
        self.flush(peer)
