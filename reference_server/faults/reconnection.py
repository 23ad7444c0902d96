"""Faults in what a reconnecting client relies on: close codes and reasons, the advertised
heartbeat, finding dead links, and what a connection leaves behind when it goes.

Several reproduce bugs shipped by Pusher-compatible servers (cited in
docs/reference-server.md). The ones that need to know *how* a connection ended (dead link,
dropped without a close frame) read flags the endpoint sets (``faults/sessions.py``): the
protocol core does not tell those endings apart, and need not.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import frames, webhooks
from ..protocol.auth import check_channel_auth
from ..protocol.errors import (
    InvalidMessage,
    PongTimeout,
    ProtocolError,
    SubscriptionRefused,
    UnknownEvent,
)
from ..protocol.messages import Subscribe
from ..protocol.names import ChannelType
from ..protocol.presence import Left, Member
from .catalogue import Fault
from .channels import LeakyChannelRegistry
from .connection import ConnectionWithFaults

__all__ = ["RECENT_SOCKET_SECONDS", "ReconnectionFaults", "Session"]

#: ``auth_for_recent_socket_id_accepted``: how long a closed connection's socket id still
#: authorises subscribes.
RECENT_SOCKET_SECONDS = 60.0


class _DeadLinkClosed4009(ProtocolError):
    """``pong_timeout_closes_4009``: a dead link reported as "unauthorized, do not retry"."""

    code = 4009
    close_code = 4009


class _NonClosing4200(ProtocolError):
    """``nonclosing_error_code_4200``: a non-fatal error under a "reconnect" code."""

    code = 4200


@dataclass(frozen=True)
class Session:
    """What ``dropped_connection_resumed`` hands the next connection: the dropped one's
    socket id, its channels in subscription order, and its presence member on each."""

    socket_id: str
    channels: tuple[str, ...]
    members: tuple[tuple[str, Member], ...]


class ReconnectionFaults(ConnectionWithFaults):
    #: Set by ``presence_kept_after_dead_link`` when the pong timer closes the connection.
    _keep_presence = False
    #: The ``now`` of the subscribe being checked, for ``auth_for_recent_socket_id_accepted``.
    _subscribe_now = 0.0

    # Handshake and advertised heartbeat.

    def receive_text(self, text: str, now: float) -> None:
        before = self._last_activity, self._ping_sent_at
        super().receive_text(text, now)
        if self.has(Fault.ONLY_PONG_COUNTS_AS_LIFE) and '"pusher:pong"' not in text:
            # Only an answer to the server's ping keeps the connection alive: a client that
            # talks but never answers is pinged, then closed for a missing pong.
            self._last_activity, self._ping_sent_at = before

    def _established_frame(self, socket_id: str) -> str:
        if not self.has(Fault.ACTIVITY_TIMEOUT_ZERO):
            return super()._established_frame(socket_id)
        # Only the advertised value: the server's own timers still use the configured one.
        data = {"socket_id": socket_id, "activity_timeout": 0}
        return frames.compact_json(
            {"event": "pusher:connection_established", "data": frames.compact_json(data)}
        )

    def session(self) -> Session | None:
        """What this connection holds, for a later one to resume."""
        if self.socket_id is None:
            return None
        return Session(
            self.socket_id,
            tuple(self._subscriptions),
            tuple(self._presence.items()),
        )

    def _restore(self, session: Session) -> None:
        """``dropped_connection_resumed``: take over the dropped connection's channels and
        presence memberships without a subscribe, as a naive "session resume" would."""
        assert self.socket_id is not None
        members = dict(session.members)
        for channel in session.channels:
            if self._channel_type(channel) is ChannelType.SERVER_TO_USER:
                continue  # Goes with a sign-in, which is not resumed.
            self._subscriptions[channel] = None
            self._registry.subscribe(channel, self.socket_id)
            subscribers = len(self._registry.subscribers(channel))
            self._report(webhooks.after_subscribe(channel, subscribers))
            member = members.get(channel)
            if member is not None:
                self._presence[channel] = member
                self._member_added(
                    channel, self._registry.presence.join(channel, self.socket_id, member)
                )

    # Errors and closes.

    def _fail(self, exc: ProtocolError) -> None:
        if isinstance(exc, PongTimeout):
            if self.has(Fault.PRESENCE_KEPT_AFTER_DEAD_LINK):
                self._keep_presence = True
            if self.has(Fault.PONG_TIMEOUT_CLOSES_4009):
                exc = _DeadLinkClosed4009(exc.message)
        elif isinstance(exc, InvalidMessage | UnknownEvent) and self.has(
            Fault.NONCLOSING_ERROR_CODE_4200
        ):
            # Reverb's "Invalid message format" 4200; errors other rules pin (a duplicate
            # subscribe, a refused auth) keep code null.
            exc = _NonClosing4200(exc.message)
        super()._fail(exc)

    def _close(self, code: int, reason: str) -> None:
        super()._close(code, "" if self.has(Fault.CLOSE_WITHOUT_REASON) else reason)

    def _ping(self) -> None:
        super()._ping()
        if self.has(Fault.DEAD_LINK_NOT_DETECTED):
            # The server's own ping is counted as the client's activity: the pong timer never
            # runs, and a silent client is pinged every activity_timeout for ever.
            assert self._ping_sent_at is not None
            self._last_activity = self._ping_sent_at
            self._ping_sent_at = None

    # Leaving.

    def _leave_everything(self) -> None:
        if self._keep_presence:
            # A ghost member: still listed and counted, never announced as gone.
            self._presence.clear()
        super()._leave_everything()

    def _member_removed(self, channel: str, left: Left | None) -> None:
        super()._member_removed(channel, left)
        if left is not None and left.last and self.leaving_on_close:
            self.removed_on_close.append((channel, left.member))

    def clean_up_again(self) -> None:
        """``cleanup_twice_on_abrupt_close``: the leave is announced a second time."""
        for channel, member in self.removed_on_close:
            self._announce_member_removed(channel, member)

    # Channel auth.

    def _subscribe(self, message: Subscribe, now: float) -> None:
        self._subscribe_now = now
        newly = message.channel not in self._subscriptions
        super()._subscribe(message, now)
        channel = message.channel
        if not newly or channel not in self._subscriptions or self.socket_id is None:
            return
        if self._channel_type(channel) is not ChannelType.PUBLIC:
            return
        registry = self._registry
        assert isinstance(registry, LeakyChannelRegistry)
        if self.has(Fault.RESUBSCRIBER_GETS_EVENTS_TWICE):
            registry.double_if_recently_dropped(channel, self.socket_id, now)
        if self.has(Fault.DROPPED_CONNECTION_RESUMED):
            # A naive "session resume": joining one of a dropped connection's public channels
            # hands this connection everything else the dropped one was on.
            session = registry.claim_session(channel)
            if session is not None:
                others = tuple(c for c in session.channels if c != channel)
                self._restore(Session(session.socket_id, others, session.members))

    def _check_auth(self, message: Subscribe, kind: ChannelType, channel_data: str | None) -> None:
        try:
            super()._check_auth(message, kind, channel_data)
        except SubscriptionRefused:
            if not self.has(Fault.AUTH_FOR_RECENT_SOCKET_ID_ACCEPTED):
                raise
            since = self._subscribe_now - RECENT_SOCKET_SECONDS
            for socket_id in self._leaky.recently_closed(since):
                if self._signed_for(message, socket_id, channel_data):
                    return
            raise

    def _signed_for(self, message: Subscribe, socket_id: str, channel_data: str | None) -> bool:
        try:
            check_channel_auth(
                message.auth,
                app_key=self.settings.app_key,
                secret=self.settings.app_secret,
                socket_id=socket_id,
                channel=message.channel,
                channel_data=channel_data,
            )
        except SubscriptionRefused:
            return False
        return True
