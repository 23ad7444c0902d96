"""A connection's life apart from its channels: handshake, heartbeat, errors and close.

Feed it what arrives (``open``, ``receive_text``, ``receive_binary``, ``receive_ping``,
``receive_pong``, ``receive_eof``) and the time (``tick``); drain what must be written with
``data_to_send()``; sleep until ``next_deadline()``. It never touches a socket or a clock.

Theory of operation::

    CONNECTING --open(known key)--> OPEN --close (error, pong timeout) or eof--> CLOSED
    CONNECTING --open(unknown key)--> CLOSED (after pusher:error 4001 + close 4001)
    CONNECTING --open(protocol 1-3)--> CLOSED (after pusher:error 4007 + close 4007)

While OPEN, the heartbeat is either *idle-waiting* (a ping is due ``activity_timeout`` after
the last client frame) or *ping-sent* (a close is due ``pong_timeout`` after the ping). Any
client frame returns it to idle-waiting.

What a parsed message *means* (subscribing, client events, ...) is left to the subclass,
``connection.Connection``, through ``_handle``; so are the channels a closing connection
leaves (``_leave_everything``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..serves import serves
from . import frames
from .admission import Admission, admission_refusal
from .channels import Delivery
from .errors import (
    InvalidMessage,
    OverCapacity,
    PongTimeout,
    ProtocolError,
    ServerShuttingDown,
    SubscriptionRefused,
    UnknownAppKey,
    UnsupportedFrame,
    UnsupportedProtocol,
)
from .messages import ClientMessage, parse_client_message
from .socket_ids import SocketIdAllocator
from .webhooks import WebhookEvent

__all__ = [
    "SHUTDOWN_REASON",
    "Close",
    "ConnectionLifecycle",
    "ConnectionSettings",
    "Output",
    "SendBinary",
    "SendPong",
    "SendText",
    "State",
    "protocol_version",
]

#: The reason of the 4200 close a draining server sends.
SHUTDOWN_REASON = "Server shutting down; please reconnect"
OVER_CAPACITY_REASON = "Over capacity: the client did not read its messages in time"

#: Pusher protocol: "Protocols 1, 2, and 3 are no longer supported."
UNSUPPORTED_PROTOCOLS = frozenset({1, 2, 3})
#: Pusher protocol, "Connection closure": below protocol 6 a pusher:error precedes every close.
FIRST_PROTOCOL_WITHOUT_CLOSE_ERROR = 6


def protocol_version(value: str | None) -> int | None:
    """The ``protocol`` query parameter as a number; ``None`` when it is missing or not a
    plain decimal integer (such a client is served as a current one)."""
    if value is None or not value.isascii() or not value.isdecimal() or len(value) > 9:
        return None
    return int(value)


# RFC 6455 5.5: control frame payloads, hence close reasons, fit in 125 bytes.
_MAX_CLOSE_REASON_BYTES = 123


class State(enum.IntEnum):
    #: Upgraded, app key not checked yet.
    CONNECTING = 0
    #: ``connection_established`` sent.
    OPEN = 1
    #: Close requested or connection lost; every input is ignored.
    CLOSED = 2


@dataclass(frozen=True)
class SendText:
    text: str


@dataclass(frozen=True)
class SendBinary:
    """A binary WebSocket message; the Pusher protocol itself only ever speaks text."""

    data: bytes


@dataclass(frozen=True)
class SendPong:
    """A WebSocket pong frame echoing a ping's payload (RFC 6455 5.5.3)."""

    payload: bytes


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


Output = SendText | SendBinary | SendPong | Close


@dataclass(frozen=True)
class ConnectionSettings:
    """What every connection of the app shares."""

    app_key: str
    activity_timeout: float
    pong_timeout: float
    #: Signs channel auth and sign-in; only needed for authenticated channels and sign-in.
    app_secret: str = ""
    #: Whether ``client-*`` events are relayed (off by default, as on hosted Pusher).
    client_events: bool = False
    #: The app's enabled flag and connection quota.
    admission: Admission = field(default_factory=Admission)


def _truncate_reason(reason: str) -> str:
    encoded = reason.encode("utf-8", "replace")[:_MAX_CLOSE_REASON_BYTES]
    return encoded.decode(errors="ignore")


class ConnectionLifecycle:
    """One client connection, from upgrade to close, minus what its messages ask for."""

    def __init__(self, settings: ConnectionSettings, socket_ids: SocketIdAllocator) -> None:
        self.settings = settings
        self._socket_ids = socket_ids
        self.state = State.CONNECTING
        #: Assigned by a successful ``open``.
        self.socket_id: str | None = None
        self._last_activity = 0.0
        self._ping_sent_at: float | None = None
        self._outgoing: list[Output] = []
        self._deliveries: list[Delivery] = []
        #: Close code we requested, if any.
        self.close_code: int | None = None
        #: Webhook events this connection's inputs caused (``webhooks.py`` decides which).
        self._webhooks: list[WebhookEvent] = []
        #: The protocol version the client asked for (``protocol_version``); set by ``open``.
        self.protocol: int | None = None

    # Inputs.

    def open(
        self, app_key: str, now: float, protocol: int | None = None, open_connections: int = 0
    ) -> None:
        """Run the handshake for ``/app/{app_key}?protocol={protocol}``; ``open_connections``
        is how many established connections the app already has (the adapter counts them)."""
        if self.state is not State.CONNECTING:
            return
        self.protocol = protocol
        if not self._knows_app_key(app_key):
            serves("PROTO-CONN-03")
            self._fail(UnknownAppKey(f"App key {app_key} does not exist"))
            return
        if not self._supports_protocol(protocol):
            serves("PROTO-CONN-14")
            self._fail(UnsupportedProtocol(f"Unsupported protocol version {protocol}"))
            return
        refusal = self._admission_refusal(open_connections)
        if refusal is not None:
            self._fail(refusal)
            return
        serves("PROTO-CONN-01", "PROTO-CONN-05")
        self.socket_id = self._allocate_socket_id()
        self.state = State.OPEN
        self._last_activity = now
        self._send(self._established_frame(self.socket_id))

    def receive_text(self, text: str, now: float) -> None:
        if not self._activity(now):
            return
        try:
            self._handle(self._parse(text), now)
        except InvalidMessage as exc:
            self._malformed(exc)
        except ProtocolError as exc:
            self._fail(exc)

    def receive_binary(self, data: bytes, now: float) -> None:
        if self._activity(now):
            serves("ROBUST-WS-04")
            self._fail(UnsupportedFrame("Binary frames are not supported"))

    def receive_ping(self, payload: bytes, now: float) -> None:
        """A WebSocket ping frame; RFC 6455 5.5.2: "an endpoint MUST send a Pong frame"."""
        if self._activity(now):
            serves("PROTO-PING-07")
            self._outgoing.append(SendPong(payload))

    def receive_pong(self, payload: bytes, now: float) -> None:
        """A WebSocket pong frame: counts as activity, like any client frame."""
        self._activity(now)

    def receive_eof(self) -> None:
        """The transport is gone: forget the connection's subscriptions and socket id."""
        self._release()
        self.state = State.CLOSED

    def shutdown(self) -> None:
        """The server is stopping: ``pusher:error`` 4200, then close 4200.

        Not 1001 "going away": Pusher clients treat 4200-4299 as "reconnect now", which is
        what a client of a draining server should do, while 1001 leaves it to their generic
        back-off.
        """
        if self.state is State.OPEN:
            serves("RECON-13")
            self._fail(ServerShuttingDown(SHUTDOWN_REASON))

    def over_capacity(self) -> None:
        """The client has stopped reading what it is sent (its send buffer is full):
        ``pusher:error`` 4100, then close 4100. Both wait behind the buffered frames; a client
        that never reads again is dropped when the close is given up on."""
        if self.state is State.OPEN:
            self._fail(OverCapacity(OVER_CAPACITY_REASON))

    def tick(self, now: float) -> None:
        """Fire whichever heartbeat timer is due at ``now``."""
        if self.state is not State.OPEN:
            return
        if self._ping_sent_at is None:
            if now >= self._last_activity + self.settings.activity_timeout:
                # The pong timer starts now, whatever ``_ping`` writes.
                serves("PROTO-PING-08")
                self._ping_sent_at = now
                self._ping()
            return
        deadline = self._pong_deadline(self._ping_sent_at)
        if deadline is not None and now >= deadline:
            serves("PROTO-PING-05", "RECON-02", "RECON-04")
            self._fail(PongTimeout("Pong reply not received"))

    # Outputs.

    def data_to_send(self) -> list[Output]:
        """Return and forget what must be written, in order."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def deliveries_to_send(self) -> list[Delivery]:
        """Return and forget the frames due to *other* connections, in order."""
        deliveries, self._deliveries = self._deliveries, []
        return deliveries

    def webhooks_to_send(self) -> list[WebhookEvent]:
        """Return and forget the webhook events caused so far, in order."""
        events, self._webhooks = self._webhooks, []
        return events

    def next_deadline(self) -> float | None:
        """When ``tick`` next has something to do; ``None`` means never (until more input)."""
        if self.state is not State.OPEN:
            return None
        if self._ping_sent_at is None:
            return self._last_activity + self.settings.activity_timeout
        return self._pong_deadline(self._ping_sent_at)

    # Seams: one protocol rule each, so that a variant can change exactly that rule.

    def _knows_app_key(self, app_key: str) -> bool:
        return app_key == self.settings.app_key

    def _admission_refusal(self, open_connections: int) -> ProtocolError | None:
        return admission_refusal(self.settings.admission, open_connections)

    def _supports_protocol(self, protocol: int | None) -> bool:
        """A missing or unreadable version is served as a current client: the docs' fallback
        to protocol 1 is deprecated and the 4008 meant to replace it is not yet in force."""
        return protocol not in UNSUPPORTED_PROTOCOLS

    def _legacy_protocol(self) -> bool:
        """Whether the client speaks a protocol before 6, which hears of every close in a
        ``pusher:error`` too."""
        return self.protocol is not None and self.protocol < FIRST_PROTOCOL_WITHOUT_CLOSE_ERROR

    def _allocate_socket_id(self) -> str:
        return self._socket_ids.allocate()

    def _established_frame(self, socket_id: str) -> str:
        return frames.connection_established(socket_id, self.settings.activity_timeout)

    def _parse(self, text: str) -> ClientMessage:
        return parse_client_message(text)

    def _handle(self, message: ClientMessage, now: float) -> None:
        """Act on one parsed message (the subclass knows what each one means).

        Raises:
            ProtocolError: the message is refused.
        """
        raise NotImplementedError

    def _pong(self) -> None:
        """Answer a ``pusher:ping``."""
        serves("PROTO-PING-01")
        self._send(frames.PONG)

    def _ping(self) -> None:
        """The client has been quiet for ``activity_timeout``: ask whether it is alive."""
        self._send(frames.PING)

    def _pong_deadline(self, ping_sent_at: float) -> float | None:
        """When an unanswered ``pusher:ping`` closes the connection; ``None``: never."""
        return ping_sent_at + self.settings.pong_timeout

    def _malformed(self, exc: InvalidMessage) -> None:
        """A message that is not a valid Pusher message: pusher:error (code null), and the
        connection carries on."""
        serves("ROBUST-WS-01", "ROBUST-WS-03", "RECON-03")
        self._fail(exc)

    def _leave_everything(self) -> None:
        """The connection is going: drop what it holds besides its socket id."""

    # Internals.

    def _activity(self, now: float) -> bool:
        """Record a client frame; return whether the connection still accepts input."""
        if self.state is not State.OPEN:
            return False
        serves("PROTO-PING-02", "RECON-12")
        self._last_activity = now
        self._ping_sent_at = None
        return True

    def _send(self, text: str) -> None:
        serves("PROTO-CONN-04")
        self._outgoing.append(SendText(text))

    def _deliver(self, text: str, targets: tuple[str, ...]) -> None:
        if targets:
            self._deliveries.append(Delivery(text, targets))

    def _report(self, events: list[WebhookEvent]) -> None:
        """Webhook events this input caused, for the adapter to send."""
        self._webhooks += events

    def _fail(self, exc: ProtocolError) -> None:
        """The one place where a protocol error becomes frames."""
        if exc.reported:
            # Sent before every close, not only a legacy client's (PROTO-CONN-03 allows it).
            if exc.close_code is not None and self._legacy_protocol():
                serves("PROTO-CONN-13")
            self._send(frames.error(exc.message, exc.code))
        if isinstance(exc, SubscriptionRefused) and exc.channel is not None:
            if exc.close_code is None:
                serves("CHAN-SUB-10")  # refused, and the connection goes on
            self._send(frames.subscription_error(exc.channel, exc.message))
        if exc.close_code is not None:
            self._close(exc.close_code, exc.message)

    def _close(self, code: int, reason: str) -> None:
        serves("RECON-01")
        self._outgoing.append(Close(code, _truncate_reason(reason)))
        self.close_code = code
        self._release()
        self.state = State.CLOSED

    def _release(self) -> None:
        if self.socket_id is not None and self.state is not State.CLOSED:
            self._leave_everything()
            self._socket_ids.release(self.socket_id)
