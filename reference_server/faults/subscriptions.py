"""Faults in subscribing and unsubscribing: channel names, auth, presence and cache."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..protocol import frames, webhooks
from ..protocol.errors import InvalidChannelName, ProtocolError, SubscriptionRefused
from ..protocol.messages import Signin, Subscribe, json_object
from ..protocol.names import ChannelType
from ..protocol.presence import MAX_CHANNEL_DATA_BYTES, Joined, Left, Member
from .auth import check_channel_auth_with_faults, correct_signin_auth
from .catalogue import Fault
from .connection import ConnectionWithFaults

__all__ = ["FAULTY_CHANNEL_NAME_MAX_LENGTH", "InternalError", "SubscriptionFaults"]

#: ``channel_name_length_100``: the (wrong) longest channel name accepted.
FAULTY_CHANNEL_NAME_MAX_LENGTH = 100


class InternalError(ProtocolError):
    """An unexpected input that crashes the connection's handler: closed 1011, unexplained."""

    close_code = 1011
    reported = False


class SubscriptionFaults(ConnectionWithFaults):
    def _channel_type(self, channel: str) -> ChannelType:
        kind = super()._channel_type(channel)
        # Any name containing ``private-`` counts as private.
        unanchored = self.has(Fault.UNANCHORED_PRIVATE_PREFIX) and "private-" in channel
        if kind is ChannelType.PUBLIC and unanchored:
            return ChannelType.PRIVATE
        return kind

    def _check_channel_name(self, channel: str) -> None:
        if self.has(Fault.INVALID_CHANNEL_NAMES_ACCEPTED):
            if not channel:
                raise InvalidChannelName("Invalid channel name ''")
            return
        if (
            self.has(Fault.CHANNEL_NAME_LENGTH_100)
            and len(channel) > FAULTY_CHANNEL_NAME_MAX_LENGTH
        ):
            raise InvalidChannelName(f"Invalid channel name {channel!r}")
        super()._check_channel_name(channel)

    def _resubscribe(self, channel: str, kind: ChannelType) -> None:
        if self.has(Fault.DUPLICATE_SUBSCRIBE_SILENT):
            self._succeeded(channel, kind)
            return
        super()._resubscribe(channel, kind)

    def _authorise(self, message: Subscribe, kind: ChannelType) -> Member | None:
        if not kind.needs_auth and message.auth and self.has(Fault.PUBLIC_AUTH_CHECKED):
            raise SubscriptionRefused(f"Invalid auth for public channel {message.channel}")
        return super()._authorise(message, kind)

    def _check_auth(self, message: Subscribe, kind: ChannelType, channel_data: str | None) -> None:
        if kind is ChannelType.ENCRYPTED and self.has(Fault.ENCRYPTED_WITHOUT_AUTH_ACCEPTED):
            return
        if (
            kind is ChannelType.PRIVATE
            and not message.auth
            and self.has(Fault.PRIVATE_WITHOUT_AUTH_ACCEPTED)
        ):
            return
        missing = kind is ChannelType.PRIVATE and message.auth is None
        if missing and self.has(Fault.PRIVATE_AUTH_MISSING_CLOSES):
            # The handler assumed ``auth`` is there and falls over instead of refusing.
            raise InternalError("Internal server error")
        assert self.socket_id is not None
        check_channel_auth_with_faults(
            message.auth,
            app_key=self.settings.app_key,
            secret=self.settings.app_secret,
            socket_id=self.socket_id,
            channel=message.channel,
            channel_data=channel_data,
            faults=self.faults,
        )

    def _presence_member(self, channel_data: str | None) -> Member:
        if self.has(Fault.PRESENCE_USER_ID_OPTIONAL) and channel_data is not None:
            # A member without ``user_id`` joins under its socket id; every other rule holds.
            size = len(channel_data.encode("utf-8", "surrogatepass"))
            data = json_object(channel_data) if size <= MAX_CHANNEL_DATA_BYTES else None
            if data is not None and "user_id" not in data:
                assert self.socket_id is not None
                return Member(self.socket_id, data.get("user_info"))
        return super()._presence_member(channel_data)

    def _has_room(self, channel: str, member: Member) -> bool:
        return self.has(Fault.PRESENCE_MEMBER_LIMIT_OFF) or super()._has_room(channel, member)

    def _succeeded(self, channel: str, kind: ChannelType) -> None:
        presence = kind is ChannelType.PRESENCE and channel in self._presence
        if self.has(Fault.SUBSCRIPTION_SUCCEEDED_WITHOUT_DATA) and not presence:
            self._send(
                frames.compact_json(
                    {"event": "pusher_internal:subscription_succeeded", "channel": channel}
                )
            )
            return
        super()._succeeded(channel, kind)

    def _roster(self, channel: str) -> dict[str, Any]:
        roster = super()._roster(channel)
        if not self.has(Fault.PRESENCE_ROSTER_EXCLUDES_SELF):
            return roster
        me = self._presence[channel].key
        ids = [key for key in roster["ids"] if key != me]
        hash_ = {key: info for key, info in roster["hash"].items() if key != me}
        return {"ids": ids, "hash": hash_, "count": len(ids)}

    def _member_added(self, channel: str, joined: Joined) -> None:
        super()._member_added(channel, joined)
        if joined.first:
            return
        # A user's further connections, announced and reported as if they were new members.
        if self.has(Fault.WEBHOOK_MEMBERS_PER_CONNECTION):
            self._report(webhooks.after_join(channel, replace(joined, first=True)))
        if self.has(Fault.PRESENCE_COUNTED_PER_CONNECTION):
            self._announce_member_added(channel, joined.member)

    def _member_removed(self, channel: str, left: Left | None) -> None:
        super()._member_removed(channel, left)
        if left is None or left.last:
            return
        if self.has(Fault.WEBHOOK_MEMBERS_PER_CONNECTION):
            self._report(webhooks.after_leave(channel, replace(left, last=True)))
        if self.has(Fault.PRESENCE_COUNTED_PER_CONNECTION) or self.has(
            Fault.MEMBER_REMOVED_ON_FIRST_LEAVE
        ):
            self._announce_member_removed(channel, left.member)

    def _replay_cache(self, channel: str, now: float) -> None:
        if self.has(Fault.CACHE_MISS_ALWAYS):
            self._send(frames.cache_miss(channel))
            self._report(webhooks.after_cache_miss(channel))
            return
        cached = self._registry.cache.get(channel, now)
        if cached is not None and self.has(Fault.CACHE_HIT_SENT_AS_CACHE_MISS):
            # The cached event goes out, but under the name meant for an empty cache.
            frame = {"event": "pusher:cache_miss", "channel": channel, "data": cached.data}
            self._send(frames.compact_json(frame))
            return
        if cached is not None and self.has(Fault.CACHED_EVENT_WITHOUT_CHANNEL):
            self._send(frames.compact_json({"event": cached.name, "data": cached.data}))
            return
        super()._replay_cache(channel, now)

    def _leave_channel(self, channel: str) -> None:
        # ``unsubscribe_ignored`` breaks delivery only: presence still sees the leave.
        if self.has(Fault.UNSUBSCRIBE_IGNORED):
            return
        assert self.socket_id is not None
        was_subscribed = self._registry.is_subscribed(channel, self.socket_id)
        super()._leave_channel(channel)
        if was_subscribed and self.has(Fault.LEAK_TO_UNSUBSCRIBED):
            self._leaky.keep_former(channel, self.socket_id)

    def _check_signin(self, message: Signin) -> str:
        if self.has(Fault.SIGNIN_SIGNATURE_UNCHECKED) and message.user_data is not None:
            assert self.socket_id is not None
            auth = correct_signin_auth(
                self.settings.app_key,
                self.settings.app_secret,
                self.socket_id,
                message.user_data,
            )
            return super()._check_signin(replace(message, auth=auth))
        return super()._check_signin(message)
