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

Some inputs concern *other* connections: presence ``member_added``/``member_removed`` and
relayed client events. Those come out of ``deliveries_to_send()`` as ``Delivery`` values (one
serialised frame, the socket ids it goes to), for the adapter to route.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from ..faults import Fault, FaultSet
from . import frames, webhooks
from .auth import check_channel_auth, check_signin
from .channels import ChannelRegistry, Delivery
from .errors import (
    ClientEventRateLimited,
    ClientEventRefused,
    ConnectionTerminated,
    ExistingSubscription,
    InvalidChannelName,
    InvalidJson,
    InvalidMessage,
    PongTimeout,
    ProtocolError,
    SigninRefused,
    SubscriptionRefused,
    UnknownAppKey,
    UnknownEvent,
    UnsupportedFrame,
)
from .messages import (
    ClientEvent,
    Ping,
    Pong,
    Signin,
    Subscribe,
    Unrecognised,
    Unsubscribe,
    parse_client_message,
)
from .names import (
    CHANNEL_NAME_MAX_LENGTH,
    ChannelType,
    channel_type,
    is_cache_channel,
    is_pusher_event,
    is_valid_channel_name,
    server_to_user_id,
)
from .presence import MAX_MEMBERS, Joined, Left, Member, parse_channel_data
from .rate_limit import RollingWindow
from .socket_ids import SocketIdAllocator
from .webhooks import WebhookEvent

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
#: Client event names, like HTTP API event names, are at most 200 characters.
CLIENT_EVENT_NAME_MAX_LENGTH = 200
#: Client event ``data`` (as sent: the string, or the JSON text of any other value), in bytes.
CLIENT_EVENT_MAX_BYTES = 10240
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
    #: Signs channel auth and sign-in; only needed for authenticated channels and sign-in.
    app_secret: str = ""
    #: Whether ``client-*`` events are relayed (off by default, as on hosted Pusher).
    client_events: bool = False


def _truncate_reason(reason: str) -> str:
    encoded = reason.encode("utf-8", "replace")[:_MAX_CLOSE_REASON_BYTES]
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
        self._deliveries: list[Delivery] = []
        #: Close code we requested, if any.
        self.close_code: int | None = None
        #: Presence channel -> the member this connection joined as.
        self._presence: dict[str, Member] = {}
        #: Set by a successful ``pusher:signin``.
        self.user_id: str | None = None
        self._client_event_window = RollingWindow()
        #: Webhook events this connection's inputs caused (``webhooks.py`` decides which).
        self._webhooks: list[WebhookEvent] = []
        #: Messages that were not valid Pusher messages, and binary frames (only the
        #: ``malformed_sender_address_blocked`` fault reads it).
        self.malformed_inputs = 0

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
                    self._subscribe(message, now)
                case Unsubscribe():
                    self._unsubscribe(message)
                case Signin():
                    self._signin(message)
                case ClientEvent():
                    self._client_event(message.event, message.channel, message.data, now)
                case Unrecognised():
                    if (
                        Fault.NON_CLIENT_EVENTS_RELAYED in self._faults
                        and not message.event.startswith("pusher")
                        and message.channel is not None
                    ):
                        self._client_event(message.event, message.channel, message.data, now)
                        return
                    kind = (
                        "Unknown pusher event"
                        if is_pusher_event(message.event)
                        else ("Unsupported event")
                    )
                    raise UnknownEvent(f"{kind} {message.event}")
        except InvalidMessage as exc:
            self._malformed(exc)
        except ProtocolError as exc:
            self._fail(exc)

    def receive_binary(self, data: bytes, now: float) -> None:
        if self._activity(now):
            self.malformed_inputs += 1
            if Fault.BINARY_FRAME_CLOSE_1011 in self._faults:
                self._close(1011, "Internal error")
                return
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

    def terminate(self) -> None:
        """HTTP ``terminate_connections`` for this connection's user: 4009, then close."""
        if self.state is State.OPEN:
            self._fail(ConnectionTerminated("You got disconnected by the app"))

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

    def _deliver(self, text: str, targets: tuple[str, ...]) -> None:
        if targets:
            self._deliveries.append(Delivery(text, targets))

    def _channel_type(self, channel: str) -> ChannelType:
        return channel_type(
            channel, unanchored_private=Fault.UNANCHORED_PRIVATE_PREFIX in self._faults
        )

    def _check_name(self, channel: str, kind: ChannelType) -> None:
        if kind is ChannelType.SERVER_TO_USER:
            # ``#`` is outside the name grammar: only this one reserved form is allowed.
            user_id = server_to_user_id(channel)
            if user_id is None or user_id != self.user_id:
                raise SubscriptionRefused(
                    f"Channel {channel} is only for a connection signed in as that user"
                )
            return
        if Fault.INVALID_CHANNEL_NAMES_ACCEPTED in self._faults:
            if not channel:
                raise InvalidChannelName("Invalid channel name ''")
            return
        max_length = (
            _FAULTY_CHANNEL_NAME_MAX_LENGTH
            if Fault.CHANNEL_NAME_LENGTH_100 in self._faults
            else CHANNEL_NAME_MAX_LENGTH
        )
        if not is_valid_channel_name(channel, max_length=max_length):
            raise InvalidChannelName(f"Invalid channel name {channel!r}")

    def _authorise(self, message: Subscribe, kind: ChannelType) -> Member | None:
        """Check a private, encrypted or presence subscribe; return the presence member."""
        assert self.socket_id is not None
        channel = message.channel
        channel_data = None
        if kind is ChannelType.PRESENCE:
            channel_data = message.channel_data
            if channel_data is None:
                raise SubscriptionRefused(f"Presence channel {channel} needs channel_data")
        skip = (
            kind is ChannelType.ENCRYPTED and Fault.ENCRYPTED_WITHOUT_AUTH_ACCEPTED in self._faults
        ) or (
            kind is ChannelType.PRIVATE
            and not message.auth
            and Fault.PRIVATE_WITHOUT_AUTH_ACCEPTED in self._faults
        )
        if not skip:
            check_channel_auth(
                message.auth,
                app_key=self.settings.app_key,
                secret=self.settings.app_secret,
                socket_id=self.socket_id,
                channel=channel,
                channel_data=channel_data,
                faults=self._faults,
            )
        if kind is not ChannelType.PRESENCE:
            return None
        missing = self.socket_id if Fault.PRESENCE_USER_ID_OPTIONAL in self._faults else None
        member = parse_channel_data(channel_data, missing_user_id=missing)
        if Fault.PRESENCE_MEMBER_LIMIT_OFF not in self._faults and not (
            self._registry.presence.get(channel).has_room_for(member.key, MAX_MEMBERS)
        ):
            raise SubscriptionRefused(f"Presence channel {channel} is full ({MAX_MEMBERS} members)")
        return member

    def _subscribe(self, message: Subscribe, now: float) -> None:
        channel = message.channel
        kind = self._channel_type(channel)
        self._check_name(channel, kind)
        if channel in self._subscriptions:
            if Fault.DUPLICATE_SUBSCRIBE_SILENT not in self._faults:
                raise ExistingSubscription(f"Existing subscription to channel {channel}")
            self._succeeded(channel, kind)
            return
        member = None
        if kind.needs_auth:
            member = self._authorise(message, kind)
        elif message.auth and Fault.PUBLIC_AUTH_CHECKED in self._faults:
            raise SubscriptionRefused(f"Invalid auth for public channel {channel}")
        assert self.socket_id is not None
        self._subscriptions[channel] = None
        if kind is not ChannelType.SERVER_TO_USER:
            # Server-to-user publishes go by signed-in user, never by subscription.
            self._registry.subscribe(channel, self.socket_id)
            self._webhooks += webhooks.after_subscribe(
                channel, len(self._registry.subscribers(channel))
            )
        joined = None
        if member is not None:
            self._presence[channel] = member
            joined = self._registry.presence.join(channel, self.socket_id, member)
        self._succeeded(channel, kind)
        if joined is not None:
            self._member_added(channel, joined)
        if is_cache_channel(channel):
            self._replay_cache(channel, now)

    def _succeeded(self, channel: str, kind: ChannelType) -> None:
        if kind is ChannelType.PRESENCE and channel in self._presence:
            exclude = None
            if Fault.PRESENCE_ROSTER_EXCLUDES_SELF in self._faults:
                exclude = self._presence[channel].key
            roster = self._registry.presence.get(channel).roster(exclude=exclude)
            self._send(frames.presence_subscription_succeeded(channel, roster))
            return
        self._send(
            frames.subscription_succeeded(
                channel,
                with_data=Fault.SUBSCRIPTION_SUCCEEDED_WITHOUT_DATA not in self._faults,
            )
        )

    def _member_added(self, channel: str, joined: Joined) -> None:
        """Pusher protocol: only when a user's first connection joins, to the others."""
        self._webhooks += webhooks.after_join(channel, joined, self._faults)
        if joined.first or Fault.PRESENCE_COUNTED_PER_CONNECTION in self._faults:
            member = joined.member
            self._deliver(
                frames.member_added(channel, member.user_id, member.user_info),
                self._registry.targets(channel, exclude=self.socket_id),
            )

    def _member_removed(self, channel: str, left: Left | None) -> None:
        """Pusher protocol: only when a user's last connection leaves, to the others."""
        if left is None:
            return
        self._webhooks += webhooks.after_leave(channel, left, self._faults)
        if (
            left.last
            or Fault.PRESENCE_COUNTED_PER_CONNECTION in self._faults
            or Fault.MEMBER_REMOVED_ON_FIRST_LEAVE in self._faults
        ):
            self._deliver(
                frames.member_removed(channel, left.member.user_id),
                self._registry.targets(channel, exclude=self.socket_id),
            )

    def _replay_cache(self, channel: str, now: float) -> None:
        """Pusher docs, "Cache channels": the cached event, or ``pusher:cache_miss``."""
        cached = None
        if Fault.CACHE_MISS_ALWAYS not in self._faults:
            cached = self._registry.cache.get(channel, now)
        if cached is None:
            self._send(frames.cache_miss(channel))
            self._webhooks += webhooks.after_cache_miss(channel, self._faults)
        else:
            self._send(frames.channel_event(cached.name, channel, cached.data))

    def _unsubscribe(self, message: Unsubscribe) -> None:
        # No reply, whether or not the client was subscribed.
        channel = message.channel
        if self._subscriptions.pop(channel, False) is None:
            assert self.socket_id is not None
            if Fault.UNSUBSCRIBE_IGNORED not in self._faults:
                left = self._registry.unsubscribe(channel, self.socket_id)
                if left and Fault.LEAK_TO_UNSUBSCRIBED in self._faults:
                    self._registry.keep_former(channel, self.socket_id)
                self._webhooks += webhooks.after_unsubscribe(
                    channel, len(self._registry.subscribers(channel))
                )
            # Presence side effects happen even under ``unsubscribe_ignored``, which breaks
            # only delivery.
            if self._presence.pop(channel, None) is not None:
                self._member_removed(
                    channel, self._registry.presence.leave(channel, self.socket_id)
                )

    def _signin(self, message: Signin) -> None:
        assert self.socket_id is not None
        user_id = check_signin(
            message.auth,
            message.user_data,
            app_key=self.settings.app_key,
            secret=self.settings.app_secret,
            socket_id=self.socket_id,
            faults=self._faults,
        )
        if self.user_id is not None and user_id != self.user_id:
            raise SigninRefused(f"Already signed in as another user ({self.user_id})")
        assert message.user_data is not None
        self.user_id = user_id
        self._registry.users.sign_in(self.socket_id, user_id)
        self._send(frames.signin_success(message.user_data))

    def _client_event(self, event: str, channel: str | None, data: Any, now: float) -> None:
        """Pusher docs, "Client events": relay to the channel's other subscribers."""
        if not self.settings.client_events:
            raise ClientEventRefused(f"Client events are not enabled for this app ({event})")
        if len(event) > CLIENT_EVENT_NAME_MAX_LENGTH:
            raise ClientEventRefused(
                f"Client event name is over {CLIENT_EVENT_NAME_MAX_LENGTH} characters"
            )
        if channel is None:
            raise ClientEventRefused(f"Client event {event} needs a channel")
        kind = self._channel_type(channel)
        allowed = kind in (ChannelType.PRIVATE, ChannelType.PRESENCE) or (
            kind is ChannelType.PUBLIC and Fault.CLIENT_EVENTS_ON_PUBLIC in self._faults
        )
        if not allowed:
            raise ClientEventRefused(
                f"Client events are only allowed on private and presence channels, not on {channel}"
            )
        if (
            channel not in self._subscriptions
            and Fault.CLIENT_EVENTS_FROM_UNSUBSCRIBED not in self._faults
        ):
            raise ClientEventRefused(
                f"Cannot broadcast client event (connection not subscribed to channel {channel})"
            )
        text = data if isinstance(data, str) else json.dumps(data)
        size = len(text.encode("utf-8", "surrogatepass"))  # a lone surrogate is valid JSON
        if size > CLIENT_EVENT_MAX_BYTES:
            raise ClientEventRefused(f"Client event data is over {CLIENT_EVENT_MAX_BYTES} bytes")
        if (
            not self._client_event_window.allow(now)
            and Fault.CLIENT_EVENT_RATE_UNLIMITED not in self._faults
        ):
            raise ClientEventRateLimited("Client event rejected due to rate limit")
        user_id = None
        member = self._presence.get(channel)
        if member is not None and Fault.CLIENT_EVENT_NO_USER_ID not in self._faults:
            user_id = member.key
        exclude = None if Fault.CLIENT_EVENT_ECHO in self._faults else self.socket_id
        # Serialised once, whatever the number of subscribers.
        self._deliver(
            frames.client_event(event, channel, data, user_id),
            self._registry.targets(
                channel,
                exclude=exclude,
                with_former=Fault.LEAK_TO_UNSUBSCRIBED in self._faults,
            ),
        )
        assert self.socket_id is not None
        self._webhooks += webhooks.after_client_event(
            channel,
            event,
            data,
            self.socket_id,
            member.key if member is not None else None,
            self._faults,
        )

    def _malformed(self, exc: InvalidMessage) -> None:
        """A message that is not a valid Pusher message: pusher:error (code null), and the
        connection carries on."""
        self.malformed_inputs += 1
        if Fault.INVALID_JSON_CLOSES in self._faults and isinstance(exc, InvalidJson):
            self._close(1008, exc.message)
            return
        if Fault.MALFORMED_ERROR_BROADCAST in self._faults and self.socket_id is not None:
            others = {
                target
                for channel in self._subscriptions
                for target in self._registry.targets(channel, exclude=self.socket_id)
            }
            self._deliver(frames.error(exc.message, exc.code), tuple(sorted(others)))
        self._fail(exc)

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
            for left_channel in self._registry.remove_socket(self.socket_id):
                self._webhooks += webhooks.after_unsubscribe(
                    left_channel, len(self._registry.subscribers(left_channel))
                )
            for channel in list(self._presence):
                self._member_removed(
                    channel, self._registry.presence.leave(channel, self.socket_id)
                )
            self._registry.users.sign_out(self.socket_id)
            self._socket_ids.release(self.socket_id)
        self._presence.clear()
        self._subscriptions.clear()
