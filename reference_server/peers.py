"""The outbound side of every WebSocket, and the routing of frames between connections.

A ``Peer`` hands each frame to its TCP transport synchronously, with no task, queue or
coroutine per recipient: a broadcast encodes its frame once and every recipient gets the same
bytes. Frames are corked until the end of the event loop's pass (``Cork``): the send system
call, not Python, is what a frame to a subscriber costs, so the frames one pass produces for
a connection (a batch, several publishes handled together) go out in one. What the kernel
cannot take waits in the transport's buffer, and that buffer is bounded: a subscriber that
stops reading is closed with 4100 (over capacity) once ``send_buffer_limit`` bytes wait for
it, so it neither holds up the others nor grows the server's memory. Only a close is
asynchronous (its handshake waits for the client).

``Fanout`` knows the established peers by socket id and hands each one what the protocol
core wants written to it, to the others and to the webhook sender, telling its ``Observer``
(logs and metrics) as it goes. In a cluster it also passes what the core noted for the other
nodes to the node's ``ClusterLink``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

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
from .websocket_frames import binary_frame, pong_frame, text_frame

__all__ = [
    "CLOSE_TIMEOUT",
    "DEFAULT_SEND_BUFFER_LIMIT",
    "ClusterOutlet",
    "Cork",
    "Fanout",
    "Peer",
]

#: Seconds to wait for the client's close frame after ours (aiohttp's default is 10).
CLOSE_TIMEOUT = 2.0
#: Seconds after which a close that has not completed (a peer that reads nothing, so not
#: even our close frame can be written) is given up and the TCP connection dropped.
GIVE_UP_AFTER = CLOSE_TIMEOUT * 2
#: Bytes that may wait in a connection's send buffer, beyond what the kernel holds, before
#: the connection is closed as over capacity (``--send-buffer-limit``).
DEFAULT_SEND_BUFFER_LIMIT = 1 << 20


class Cork:
    """The peers with frames waiting for the end of this pass of the event loop.

    Waiting is worth it when many connections get frames: the frames of every publish (or
    client event) handled in the same pass then reach each connection in one send. For a few
    connections it only adds the rest of the pass to their latency, so whoever produced the
    frames may ``flush_if_few`` once done.
    """

    #: Peers waiting at most, for ``flush_if_few`` to write them at once.
    FEW = 16

    def __init__(self) -> None:
        self._peers: list[Peer] = []

    def add(self, peer: Peer) -> None:
        """``peer`` has its first frame of this pass waiting."""
        if not self._peers:
            asyncio.get_running_loop().call_soon(self.flush)
        self._peers.append(peer)

    def flush(self) -> None:
        peers, self._peers = self._peers, []
        for peer in peers:
            peer.uncork()

    def flush_if_few(self) -> None:
        """Write now if only a few peers wait (the end of the pass still runs, for nothing)."""
        if len(self._peers) <= self.FEW:
            self.flush()


class Peer:
    """One WebSocket's outbound side: frames written at the end of the pass, a close as a
    task."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        connection: Connection,
        transport: asyncio.Transport,
        cork: Cork,
        send_buffer_limit: int = DEFAULT_SEND_BUFFER_LIMIT,
    ) -> None:
        self.ws = ws
        self._cork = cork
        #: Frames written in this pass of the event loop, not yet handed to the transport.
        self._pending: list[bytes] = []
        self.connection = connection
        #: The TCP connection under the WebSocket: frames are written to it directly.
        self.transport = transport
        self.send_buffer_limit = send_buffer_limit
        #: Set by the reader when the client went without a close frame (EOF, reset).
        self.dropped = False
        #: The task reading this WebSocket (the endpoint's handler), stopped before we close
        #: it (see ``_stop_reader``).
        self.reader: asyncio.Task[Any] | None = None
        self._reader_done = False
        #: Set while our close waits for the reader to leave its loop.
        self._reader_stop: asyncio.Future[None] | None = None
        #: Told (once, from the event loop) when the send buffer overflows: the fan-out
        #: closes the connection as over capacity.
        self.on_overflow: Callable[[Peer], None] | None = None
        #: The heartbeat's timer (``WebSocketEndpoint``), ``None`` while nothing is due.
        self.timer: asyncio.TimerHandle | None = None
        self._dead = False
        self._closing = False
        self._overflowed = False
        #: No more data frames: dead, closing or overflowed (one flag for the hot path).
        self._stopped = False
        self._finished = False
        self._closer: asyncio.Task[None] | None = None
        self._give_up: asyncio.TimerHandle | None = None

    @property
    def accepting(self) -> bool:
        """Whether frames sent now will still be written."""
        return not (self._dead or self._closing)

    def send(self, output: Output, fanout: int = 1) -> None:
        """Write one output; ``fanout`` is how many connections share this very frame."""
        match output:
            case SendText(text):
                self.write(text_frame(text))
            case SendBinary(data):
                self.write(binary_frame(data))
            case SendPong(payload):
                self.write(pong_frame(payload))
            case Close(code, reason):
                if not self.accepting:
                    return
                self._closing = self._stopped = True
                loop = asyncio.get_running_loop()
                self._give_up = loop.call_later(GIVE_UP_AFTER, self._close_overdue)
                self._closer = loop.create_task(self._close(code, reason))

    def send_shared(self, output: SendText, frame: bytes, fanout: int) -> None:
        """Write a frame a broadcast already encoded (``frame`` is ``output``'s bytes)."""
        self.write(frame)

    def write(self, frame: bytes) -> None:
        """Queue one whole frame for the end of this pass, unless the peer takes no more."""
        if self._stopped:
            return
        pending = self._pending
        pending.append(frame)
        if len(pending) == 1:
            self._cork.add(self)

    def uncork(self) -> None:
        """Hand this pass's frames to the transport in one write, unless the client has gone
        or has let more than ``send_buffer_limit`` bytes pile up."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self._dead or self._overflowed:  # Frames written before a close still go.
            return
        transport = self.transport
        if transport.is_closing():
            self._dead = self._stopped = True  # The reader will see the end and clean up.
            return
        if transport.get_write_buffer_size() > self.send_buffer_limit:
            self._overflow()
            return
        transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def _overflow(self) -> None:
        """The client reads slower than it is sent to: from here on it gets nothing more
        but the close the fan-out decides (scheduled, not run inside the broadcast)."""
        self._overflowed = self._stopped = True
        log(
            logging.INFO,
            "send_buffer_full",
            socket_id=self.connection.socket_id,
            buffered=self.transport.get_write_buffer_size(),
        )
        if self.on_overflow is not None:
            asyncio.get_running_loop().call_soon(self.on_overflow, self)

    def flush(self) -> list[Output]:
        """Write everything the protocol core wants written; return it."""
        outputs = self.connection.data_to_send()
        for output in outputs:
            self.send(output)
        return outputs

    def _close_overdue(self) -> None:
        """Our close has not completed in time: the peer has stopped reading (its TCP window
        is full, so even our close frame cannot be written). Drop the connection; its state
        was released when the close was decided."""
        if not self._finished:
            log(logging.DEBUG, "close_overdue", socket_id=self.connection.socket_id)
            self.abort()

    async def _close(self, code: int, reason: str) -> None:
        # What was written before the close goes out before it (aiohttp writes its close
        # frame to the transport itself).
        self.uncork()
        try:
            await self._stop_reader()
            await self.ws.close(code=code, message=reason.encode())
        except (ConnectionError, RuntimeError) as exc:
            # The client went away mid-close; the reader has ended, nothing is left to do.
            log(
                logging.DEBUG,
                "close_failed",
                socket_id=self.connection.socket_id,
                error=repr(exc),
            )
            self._dead = self._stopped = True

    async def _stop_reader(self) -> None:
        """Stop the reader before our close frame goes out.

        While a task waits in ``receive()``, aiohttp's ``close()`` closes the TCP connection
        right after writing the close frame; with no reader waiting, it waits (up to
        ``CLOSE_TIMEOUT``) for the client's close frame, a real close handshake. Only then can
        a draining server tell which clients have taken note of its 4200. Stopping the reader
        (the endpoint's handler, cancelled in its ``receive()``) ends the connection in the
        endpoint at once, so its release does not wait for the handshake either.
        """
        reader = self.reader
        if reader is None or reader is asyncio.current_task() or self._reader_done:
            return
        self._reader_stop = asyncio.get_running_loop().create_future()
        reader.cancel()
        await asyncio.shield(self._reader_stop)

    def stop_requested(self) -> bool:
        """Whether the reader's cancellation is ours (``_stop_reader``); if so, it is taken
        back, so that the reader's own waits after it are not cut short."""
        reader = self.reader
        if self._reader_stop is None or reader is None:
            return False
        return reader.uncancel() == 0  # Cancelled by somebody else as well: theirs stands.

    def reader_stopped(self) -> None:
        """The reader has left its loop: a close waiting for that may go on."""
        self._reader_done = True
        if self._reader_stop is not None and not self._reader_stop.done():
            self._reader_stop.set_result(None)

    def abort(self) -> None:
        """Drop the TCP connection at once, without a close frame.

        For a client that has not answered a close frame by the end of a drain: waiting for
        its close handshake any longer would only delay the server's exit.
        """
        self._dead = self._stopped = True
        self.transport.abort()
        if self._closer is not None:
            self._closer.cancel()  # A close handshake, if one was under way, is given up.

    async def finish(self) -> None:
        """Let a requested close complete; write nothing more."""
        closer = self._closer
        if closer is not None and not self._dead:
            # ``asyncio.wait`` neither raises the closer's errors nor swallows our
            # cancellation; the margin lets the close handshake's own timeout fire first.
            await asyncio.wait([closer], timeout=CLOSE_TIMEOUT + 1.0)
        if closer is not None:
            closer.cancel()
            await asyncio.wait([closer])
        self._dead = self._stopped = True
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
        #: Where every peer's frames wait for the end of the event loop's pass.
        self.cork = Cork()
        self._emptied = asyncio.Event()

    def add(self, peer: Peer) -> None:
        self.open[peer] = None
        peer.on_overflow = self._over_capacity
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
        """Write each frame to its targets; return the number written.

        Each frame was serialised once by the core and is encoded once here: every target
        gets the same bytes.
        """
        queued = 0
        established = self.established
        for delivery in outgoing:
            serves("DELIV-01", "DELIV-02", "DELIV-08")
            output = SendText(delivery.text)
            frame = text_frame(delivery.text)
            fanout = len(delivery.socket_ids)
            for socket_id in delivery.socket_ids:
                peer = established.get(socket_id)
                if peer is not None:
                    peer.send_shared(output, frame, fanout)
                    queued += 1
        if self.cluster is not None:
            # Every change of state ends up here (a connection's input, its release, a
            # publish), so this is where the other nodes are told, in the same order.
            self.cluster.flush()
        if queued:
            self.observer.routed(queued)
        return queued

    def _over_capacity(self, peer: Peer) -> None:
        """A peer's send buffer overflowed: close it with 4100 (``Connection.over_capacity``)."""
        peer.connection.over_capacity()
        self.flush(peer)

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
