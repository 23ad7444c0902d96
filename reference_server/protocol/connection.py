"""What a connection's messages ask for: subscriptions, presence, sign-in and client events.

``ConnectionLifecycle`` (``lifecycle.py``) runs the handshake, the heartbeat and closing; this
subclass gives each parsed message its meaning. Some inputs concern *other* connections:
presence ``member_added``/``member_removed`` and relayed client events. Those come out of
``deliveries_to_send()`` as ``Delivery`` values (one serialised frame, the socket ids it goes
to), for the adapter to route.

Each rule a subscribe or a client event must pass is a small method of its own, so that a
variant of the server can change one rule and no other.
"""

from __future__ import annotations

import json
from typing import Any

from ..serves import serves
from . import frames, webhooks
from .auth import check_channel_auth, check_signin
from .channels import ChannelRegistry, Relay
from .errors import (
    ClientEventRateLimited,
    ClientEventRefused,
    ConnectionTerminated,
    ExistingSubscription,
    InvalidChannelName,
    SigninRefused,
    SubscriptionRefused,
    UnknownEvent,
)
from .lifecycle import (
    Close,
    ConnectionLifecycle,
    ConnectionSettings,
    Output,
    SendBinary,
    SendPong,
    SendText,
    State,
)
from .messages import (
    ClientEvent,
    ClientMessage,
    Ping,
    Pong,
    Signin,
    Subscribe,
    Unrecognised,
    Unsubscribe,
)
from .names import (
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

__all__ = [
    "CLIENT_EVENT_MAX_BYTES",
    "CLIENT_EVENT_NAME_MAX_LENGTH",
    "Close",
    "Connection",
    "ConnectionSettings",
    "Output",
    "SendBinary",
    "SendPong",
    "SendText",
    "State",
]

#: Client event names, like HTTP API event names, are at most 200 characters.
CLIENT_EVENT_NAME_MAX_LENGTH = 200
#: Client event ``data`` (as sent: the string, or the JSON text of any other value), in bytes.
CLIENT_EVENT_MAX_BYTES = 10240


class Connection(ConnectionLifecycle):
    """One client connection, from upgrade to close."""

    def __init__(
        self,
        settings: ConnectionSettings,
        registry: ChannelRegistry,
        socket_ids: SocketIdAllocator,
    ) -> None:
        super().__init__(settings, socket_ids)
        self._registry = registry
        #: Channels this client believes it is subscribed to, in subscription order.
        self._subscriptions: dict[str, None] = {}
        #: Presence channel -> the member this connection joined as.
        self._presence: dict[str, Member] = {}
        #: Set by a successful ``pusher:signin``.
        self.user_id: str | None = None
        self._client_event_window = RollingWindow()

    def terminate(self) -> None:
        """HTTP ``terminate_connections`` for this connection's user: 4009, then close."""
        if self.state is State.OPEN:
            serves("AUTH-USER-06", "AUTH-USER-07")
            self._fail(ConnectionTerminated("You got disconnected by the app"))

    @property
    def subscriptions(self) -> tuple[str, ...]:
        return tuple(self._subscriptions)

    def _handle(self, message: ClientMessage, now: float) -> None:
        match message:
            case Ping():
                self._pong()
            case Pong():
                pass  # Activity was recorded on arrival; nothing else to do.
            case Subscribe():
                self._subscribe(message, now)
            case Unsubscribe():
                self._unsubscribe(message)
            case Signin():
                self._signin(message)
            case ClientEvent():
                self._client_event(message.event, message.channel, message.data, now)
            case Unrecognised():
                pusher = is_pusher_event(message.event)
                kind = "Unknown pusher event" if pusher else "Unsupported event"
                serves("CEVT-01")
                raise UnknownEvent(f"{kind} {message.event}")

    # Subscribing.

    def _subscribe(self, message: Subscribe, now: float) -> None:
        channel = message.channel
        kind = self._channel_type(channel)
        try:
            self._check_name(channel, kind)
            if channel in self._subscriptions:
                self._resubscribe(channel, kind)
                return
            member = self._authorise(message, kind)
        except SubscriptionRefused as exc:
            raise exc.on_channel(channel) from None
        assert self.socket_id is not None
        self._subscriptions[channel] = None
        if kind is not ChannelType.SERVER_TO_USER:
            # Server-to-user publishes go by signed-in user, never by subscription.
            self._registry.subscribe(channel, self.socket_id)
            self._report(
                webhooks.after_subscribe(channel, self._registry.subscription_count(channel))
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

    def _channel_type(self, channel: str) -> ChannelType:
        return channel_type(channel)

    def _check_name(self, channel: str, kind: ChannelType) -> None:
        if kind is ChannelType.SERVER_TO_USER:
            # ``#`` is outside the name grammar: only this one reserved form is allowed.
            user_id = server_to_user_id(channel)
            if user_id is None or user_id != self.user_id:
                raise SubscriptionRefused(
                    f"Channel {channel} is only for a connection signed in as that user"
                )
            serves("CHAN-SUB-07")
            return
        self._check_channel_name(channel)

    def _check_channel_name(self, channel: str) -> None:
        """The name grammar and length of every channel but ``#server-to-user-<id>``."""
        serves("CHAN-NAME-01")
        if not is_valid_channel_name(channel):
            raise InvalidChannelName(f"Invalid channel name {channel!r}")

    def _resubscribe(self, channel: str, kind: ChannelType) -> None:
        """A subscribe to a channel the connection is already in."""
        serves("CHAN-SUB-04")
        raise ExistingSubscription(f"Existing subscription to channel {channel}")

    def _authorise(self, message: Subscribe, kind: ChannelType) -> Member | None:
        """Check a subscribe's ``auth``; return the presence member, if any.

        Public channels (and ``#server-to-user-<id>``, checked by name) need no auth and
        ignore any sent.
        """
        if not kind.needs_auth:
            serves("CHAN-SUB-01")
            return None
        channel_data = None
        if kind is ChannelType.PRESENCE:
            channel_data = message.channel_data
            if channel_data is None:
                serves("CHAN-SUB-03")
                raise SubscriptionRefused(f"Presence channel {message.channel} needs channel_data")
        self._check_auth(message, kind, channel_data)
        if kind is not ChannelType.PRESENCE:
            return None
        member = self._presence_member(channel_data)
        if not self._has_room(message.channel, member):
            serves("CHAN-PRES-05")
            raise SubscriptionRefused(
                f"Presence channel {message.channel} is full ({MAX_MEMBERS} members)"
            )
        return member

    def _check_auth(self, message: Subscribe, kind: ChannelType, channel_data: str | None) -> None:
        """The signature of a private, encrypted or presence subscribe."""
        assert self.socket_id is not None
        serves("AUTH-CH-01", "AUTH-CH-02", "CHAN-ENC-01", "RECON-09")
        check_channel_auth(
            message.auth,
            app_key=self.settings.app_key,
            secret=self.settings.app_secret,
            socket_id=self.socket_id,
            channel=message.channel,
            channel_data=channel_data,
        )

    def _presence_member(self, channel_data: str | None) -> Member:
        return parse_channel_data(channel_data)

    def _has_room(self, channel: str, member: Member) -> bool:
        return self._registry.presence.get(channel).has_room_for(member.key, MAX_MEMBERS)

    def _succeeded(self, channel: str, kind: ChannelType) -> None:
        if kind is ChannelType.PRESENCE and channel in self._presence:
            serves("CHAN-PRES-02", "DELIV-05")
            self._send(frames.presence_subscription_succeeded(channel, self._roster(channel)))
            return
        serves("CHAN-SUB-02", "CHAN-SUB-08")
        self._send(frames.subscription_succeeded(channel))

    def _roster(self, channel: str) -> dict[str, Any]:
        return self._registry.presence.get(channel).roster()

    def _member_added(self, channel: str, joined: Joined) -> None:
        """Pusher protocol: only when a user's first connection joins, to the others."""
        self._report(webhooks.after_join(channel, joined))
        if joined.first:
            serves("CHAN-PRES-03", "DELIV-05")
            self._announce_member_added(channel, joined.member)

    def _announce_member_added(self, channel: str, member: Member) -> None:
        self._deliver(
            frames.member_added(channel, member.user_id, member.user_info),
            self._registry.targets(channel, exclude=self.socket_id),
        )

    def _member_removed(self, channel: str, left: Left | None) -> None:
        """Pusher protocol: only when a user's last connection leaves, to the others."""
        if left is None:
            return
        self._report(webhooks.after_leave(channel, left))
        if left.last:
            serves("CHAN-PRES-04", "DELIV-05")
            self._announce_member_removed(channel, left.member)

    def _announce_member_removed(self, channel: str, member: Member) -> None:
        self._deliver(
            frames.member_removed(channel, member.user_id),
            self._registry.targets(channel, exclude=self.socket_id),
        )

    def _replay_cache(self, channel: str, now: float) -> None:
        """Pusher docs, "Cache channels": the cached event, or ``pusher:cache_miss``."""
        cached = self._registry.cache.get(channel, now)
        if cached is None:
            serves("CHAN-CACHE-01")
            self._send(frames.cache_miss(channel))
            self._report(webhooks.after_cache_miss(channel))
        else:
            serves("CHAN-CACHE-01")
            self._send(frames.channel_event(cached.name, channel, cached.data))

    # Unsubscribing and leaving.

    def _unsubscribe(self, message: Unsubscribe) -> None:
        # No reply, whether or not the client was subscribed.
        channel = message.channel
        if self._subscriptions.pop(channel, False) is None:
            serves("CHAN-SUB-05")
            self._leave_channel(channel)
            if self._presence.pop(channel, None) is not None:
                assert self.socket_id is not None
                self._member_removed(
                    channel, self._registry.presence.leave(channel, self.socket_id)
                )

    def _leave_channel(self, channel: str) -> None:
        """Stop delivering the channel's events to this connection."""
        assert self.socket_id is not None
        self._registry.unsubscribe(channel, self.socket_id)
        count = self._registry.subscription_count(channel)
        self._report(webhooks.after_unsubscribe(channel, count))

    def _leave_everything(self) -> None:
        assert self.socket_id is not None
        for left_channel in self._registry.remove_socket(self.socket_id):
            self._report(
                webhooks.after_unsubscribe(
                    left_channel, self._registry.subscription_count(left_channel)
                )
            )
        for channel in list(self._presence):
            serves("RECON-05", "RECON-06", "RECON-07")
            self._member_removed(channel, self._registry.presence.leave(channel, self.socket_id))
        self._registry.users.sign_out(self.socket_id)

    def _release(self) -> None:
        super()._release()
        self._presence.clear()
        self._subscriptions.clear()

    # Sign-in.

    def _signin(self, message: Signin) -> None:
        assert self.socket_id is not None
        user_id = self._check_signin(message)
        if self.user_id is not None and user_id != self.user_id:
            serves("AUTH-USER-02")
            raise SigninRefused(f"Already signed in as another user ({self.user_id})")
        assert message.user_data is not None
        self.user_id = user_id
        self._registry.users.sign_in(self.socket_id, user_id)
        serves("AUTH-USER-01", "AUTH-USER-02")
        self._send(frames.signin_success(message.user_data))

    def _check_signin(self, message: Signin) -> str:
        """Check a ``pusher:signin``'s signature and return the user id it signs in."""
        assert self.socket_id is not None
        return check_signin(
            message.auth,
            message.user_data,
            app_key=self.settings.app_key,
            secret=self.settings.app_secret,
            socket_id=self.socket_id,
        )

    # Client events.

    def _client_event(self, event: str, channel: str | None, data: Any, now: float) -> None:
        """Pusher docs, "Client events": relay to the channel's other subscribers."""
        if not self.settings.client_events:
            serves("CEVT-02")
            raise ClientEventRefused(f"Client events are not enabled for this app ({event})")
        if len(event) > CLIENT_EVENT_NAME_MAX_LENGTH:
            raise ClientEventRefused(
                f"Client event name is over {CLIENT_EVENT_NAME_MAX_LENGTH} characters"
            )
        if channel is None:
            raise ClientEventRefused(f"Client event {event} needs a channel")
        if not self._client_events_allowed_on(self._channel_type(channel)):
            serves("CEVT-03")
            raise ClientEventRefused(
                f"Client events are only allowed on private and presence channels, not on {channel}"
            )
        if not self._may_broadcast_on(channel):
            serves("CEVT-04")
            raise ClientEventRefused(
                f"Cannot broadcast client event (connection not subscribed to channel {channel})"
            )
        text = data if isinstance(data, str) else json.dumps(data)
        size = len(text.encode("utf-8", "surrogatepass"))  # a lone surrogate is valid JSON
        if size > CLIENT_EVENT_MAX_BYTES:
            serves("CEVT-08")
            raise ClientEventRefused(f"Client event data is over {CLIENT_EVENT_MAX_BYTES} bytes")
        if not self._within_client_event_rate(now):
            serves("CEVT-07")
            raise ClientEventRateLimited("Client event rejected due to rate limit")
        serves("CEVT-09")
        member = self._presence.get(channel)
        # Serialised once, whatever the number of subscribers (on every node).
        frame = self._client_event_frame(event, channel, data, member)
        self._deliver(frame, self._client_event_recipients(channel))
        assert self.socket_id is not None
        self._registry.note(Relay(channel, frame, exclude=self.socket_id))
        self._report(
            webhooks.after_client_event(
                channel, event, data, self.socket_id, member.key if member is not None else None
            )
        )

    def _client_events_allowed_on(self, kind: ChannelType) -> bool:
        return kind in (ChannelType.PRIVATE, ChannelType.PRESENCE)

    def _may_broadcast_on(self, channel: str) -> bool:
        """Only a subscriber may send client events on a channel."""
        return channel in self._subscriptions

    def _within_client_event_rate(self, now: float) -> bool:
        return self._client_event_window.allow(now)

    def _client_event_frame(
        self, event: str, channel: str, data: Any, member: Member | None
    ) -> str:
        """On presence channels the frame names the sender's ``user_id``."""
        serves("CEVT-06")
        return frames.client_event(event, channel, data, member.key if member is not None else None)

    def _client_event_recipients(self, channel: str) -> tuple[str, ...]:
        """The channel's other subscribers: a sender never gets its own client event."""
        serves("CEVT-05")
        return self._registry.targets(channel, exclude=self.socket_id)
