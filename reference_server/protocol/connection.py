"""Per-connection state machine: handshake, subscriptions and heartbeat timers.

Feed it what arrives (``open``, ``receive_text``, ``receive_binary``, ``receive_ping``,
``receive_pong``, ``receive_eof``) and the time (``tick``); drain what must be written with
``data_to_send()``; sleep until ``next_deadline()``. It never touches a socket or a clock.

Theory of operation::

    CONNECTING --open(known key)--> OPEN --close (error, pong timeout) or eof--> CLOSED
    CONNECTING --open(unknown key)--> CLOSED (after pusher:error 4001 + close 4001)

While OPEN, the heartbeat is either *idle-waiting* (a ping is due ``activity_timeout`` after
the last client frame) or *ping-sent* (a close is due ``pong_timeout`` after the ping). Any
client frame returns it to idle-waiting.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..faults import Fault, FaultSet
from . import frames
from .channels import ChannelRegistry
from .errors import (
    ClientEventRefused,
    ExistingSubscription,
    InvalidChannelName,
    PongTimeout,
    ProtocolError,
    SubscriptionRefused,
    UnknownAppKey,
    UnknownEvent,
    UnsupportedChannel,
    UnsupportedFrame,
)
from .messages import (
    ClientEvent,
    Ping,
    Pong,
    Subscribe,
    Unrecognised,
    Unsubscribe,
    parse_client_message,
)
from .names import (
    CHANNEL_NAME_MAX_LENGTH,
    ChannelType,
    channel_type,
    is_pusher_event,
    is_valid_channel_name,
)
from .socket_ids import SocketIdAllocator

__all__ = [
    "Close",
    "Connection",
    "ConnectionSettings",
    "Output",
    "SendBinary",
    "SendPong",
    "SendText",
    "State",
]

# The ``channel_name_length_100`` fault's (wrong) limit.
_FAULTY_CHANNEL_NAME_MAX_LENGTH = 100
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
    """Only produced under the ``pong_as_binary`` fault."""

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
    faults: FaultSet = frozenset()


def _truncate_reason(reason: str) -> str:
    encoded = reason.encode()[:_MAX_CLOSE_REASON_BYTES]
    return encoded.decode(errors="ignore")


class Connection:
    """One client connection, from upgrade to close."""

    def __init__(
        self,
        settings: ConnectionSettings,
        registry: ChannelRegistry,
        socket_ids: SocketIdAllocator,
    ) -> None:
        self.settings = settings
        self._faults = settings.faults
        self._registry = registry
        self._socket_ids = socket_ids
        self.state = State.CONNECTING
        #: Assigned by a successful ``open``.
        self.socket_id: str | None = None
        #: Channels this client believes it is subscribed to, in subscription order.
        self._subscriptions: dict[str, None] = {}
        self._last_activity = 0.0
        self._ping_sent_at: float | None = None
        self._outgoing: list[Output] = []
        #: Close code we requested, if any.
        self.close_code: int | None = None

    # Inputs.

    def open(self, app_key: str, now: float) -> None:
        """Run the handshake for ``/app/{app_key}``."""
        if self.state is not State.CONNECTING:
            return
        if app_key != self.settings.app_key and Fault.UNKNOWN_KEY_ACCEPTED not in self._faults:
            self._fail(UnknownAppKey(f"App key {app_key} does not exist"))
            return
        self.socket_id = self._socket_ids.allocate()
        self.state = State.OPEN
        self._last_activity = now
        self._send(
            frames.connection_established(
                self.socket_id,
                self.settings.activity_timeout,
                data_as_object=Fault.ESTABLISHED_DATA_AS_OBJECT in self._faults,
            )
        )

    def receive_text(self, text: str, now: float) -> None:
        if not self._activity(now):
            return
        try:
            message = parse_client_message(text)
            match message:
                case Ping():
                    self._pong()
                case Pong():
                    pass  # Activity was recorded above; nothing else to do.
                case Subscribe():
                    self._subscribe(message)
                case Unsubscribe():
                    self._unsubscribe(message)
                case ClientEvent():
                    raise ClientEventRefused(f"Client events are not supported: {message.event}")
                case Unrecognised():
                    kind = (
                        "Unknown pusher event"
                        if is_pusher_event(message.event)
                        else ("Unsupported event")
                    )
                    raise UnknownEvent(f"{kind} {message.event}")
        except ProtocolError as exc:
            self._fail(exc)

    def receive_binary(self, data: bytes, now: float) -> None:
        if self._activity(now):
            self._fail(UnsupportedFrame("Binary frames are not supported"))

    def receive_ping(self, payload: bytes, now: float) -> None:
        """A WebSocket ping frame; RFC 6455 5.5.2: "an endpoint MUST send a Pong frame"."""
        if self._activity(now) and Fault.WS_PING_IGNORED not in self._faults:
            self._outgoing.append(SendPong(payload))

    def receive_pong(self, payload: bytes, now: float) -> None:
        """A WebSocket pong frame: counts as activity, like any client frame."""
        self._activity(now)

    def receive_eof(self) -> None:
        """The transport is gone: forget the connection's subscriptions and socket id."""
        self._release()
        self.state = State.CLOSED

    def shutdown(self) -> None:
        """The server is stopping: close with 1001 "going away" (RFC 6455 7.4.1)."""
        if self.state is State.OPEN:
            self._close(1001, "Server shutting down")

    def tick(self, now: float) -> None:
        """Fire whichever heartbeat timer is due at ``now``."""
        if self.state is not State.OPEN:
            return
        if self._ping_sent_at is None:
            if now >= self._last_activity + self.settings.activity_timeout:
                self._ping_sent_at = now
                # ``no_idle_ping``: the timer still runs, only the frame is missing.
                if Fault.NO_IDLE_PING not in self._faults:
                    self._send(frames.PING)
        elif (
            now >= self._ping_sent_at + self.settings.pong_timeout
            and Fault.PONG_TIMEOUT_NOT_ENFORCED not in self._faults
        ):
            self._fail(PongTimeout("Pong reply not received"))

    # Outputs.

    def data_to_send(self) -> list[Output]:
        """Return and forget what must be written, in order."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def next_deadline(self) -> float | None:
        """When ``tick`` next has something to do; ``None`` means never (until more input)."""
        if self.state is not State.OPEN:
            return None
        if self._ping_sent_at is None:
            return self._last_activity + self.settings.activity_timeout
        if Fault.PONG_TIMEOUT_NOT_ENFORCED in self._faults:
            return None
        return self._ping_sent_at + self.settings.pong_timeout

    @property
    def subscriptions(self) -> tuple[str, ...]:
        return tuple(self._subscriptions)

    # Internals.

    def _activity(self, now: float) -> bool:
        """Record a client frame; return whether the connection still accepts input."""
        if self.state is not State.OPEN:
            return False
        self._last_activity = now
        self._ping_sent_at = None
        return True

    def _send(self, text: str) -> None:
        self._outgoing.append(SendText(text))

    def _pong(self) -> None:
        if Fault.NO_PONG in self._faults:
            return
        if Fault.PONG_AS_BINARY in self._faults:
            self._outgoing.append(SendBinary(frames.PONG.encode()))
        else:
            self._send(frames.PONG)

    def _subscribe(self, message: Subscribe) -> None:
        channel = message.channel
        max_length = (
            _FAULTY_CHANNEL_NAME_MAX_LENGTH
            if Fault.CHANNEL_NAME_LENGTH_100 in self._faults
            else CHANNEL_NAME_MAX_LENGTH
        )
        if not is_valid_channel_name(channel, max_length=max_length):
            raise InvalidChannelName(f"Invalid channel name {channel!r}")
        if channel_type(channel) is not ChannelType.PUBLIC:
            # Private, presence and encrypted channels need channel auth (issue 3).
            raise UnsupportedChannel(f"Channel {channel} requires authentication, not supported")
        if channel in self._subscriptions:
            if Fault.DUPLICATE_SUBSCRIBE_SILENT not in self._faults:
                raise ExistingSubscription(f"Existing subscription to channel {channel}")
        else:
            if message.auth and Fault.PUBLIC_AUTH_CHECKED in self._faults:
                raise SubscriptionRefused(f"Invalid auth for public channel {channel}")
            assert self.socket_id is not None
            self._subscriptions[channel] = None
            self._registry.subscribe(channel, self.socket_id)
        self._send(
            frames.subscription_succeeded(
                channel,
                with_data=Fault.SUBSCRIPTION_SUCCEEDED_WITHOUT_DATA not in self._faults,
            )
        )

    def _unsubscribe(self, message: Unsubscribe) -> None:
        # No reply, whether or not the client was subscribed.
        if self._subscriptions.pop(message.channel, False) is None:
            assert self.socket_id is not None
            if Fault.UNSUBSCRIBE_IGNORED not in self._faults:
                self._registry.unsubscribe(message.channel, self.socket_id)

    def _fail(self, exc: ProtocolError) -> None:
        """The one place where a protocol error becomes frames."""
        if exc.reported:
            self._send(frames.error(exc.message, exc.code))
        if exc.close_code is not None:
            self._close(exc.close_code, exc.message)

    def _close(self, code: int, reason: str) -> None:
        self._outgoing.append(Close(code, _truncate_reason(reason)))
        self.close_code = code
        self._release()
        self.state = State.CLOSED

    def _release(self) -> None:
        if self.socket_id is not None and self.state is not State.CLOSED:
            self._registry.remove_socket(self.socket_id)
            self._socket_ids.release(self.socket_id)
        self._subscriptions.clear()
