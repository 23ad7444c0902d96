"""Presence channels: members keyed by ``user_id``, with the events their changes cause.

Pusher protocol, "Presence channel events": ``member_added`` is sent "when a user's first
connection joins", ``member_removed`` only after "the last connection of that user" leaves.
So each channel maps a user to the set of its connections; the ``user_info`` kept is the one
sent by the user's first connection. Everything here is pure data: ``join`` and ``leave`` say
what changed and the connection turns that into frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..serves import serves
from .errors import SubscriptionRefused
from .messages import json_object

__all__ = [
    "MAX_CHANNEL_DATA_BYTES",
    "MAX_MEMBERS",
    "MAX_USER_ID_LENGTH",
    "Joined",
    "Left",
    "Member",
    "PresenceChannel",
    "PresenceRegistry",
    "parse_channel_data",
]

#: Pusher docs, "Presence channels", limits: 100 members, user_id <= 128 chars, 1 KB object.
MAX_MEMBERS = 100
MAX_USER_ID_LENGTH = 128
MAX_CHANNEL_DATA_BYTES = 1024


@dataclass(frozen=True)
class Member:
    """A presence member as its ``channel_data`` declared it.

    ``user_id`` is kept as given (a string, or an integer); ``key`` is its string form, used
    for the roster and the users endpoint. ``user_info`` ``None`` means none was given.
    """

    user_id: str | int
    user_info: Any = None

    @property
    def key(self) -> str:
        return str(self.user_id)


@dataclass(frozen=True)
class Joined:
    """A connection joined; ``first`` when it is its user's first (``member_added`` is due)."""

    member: Member
    first: bool


@dataclass(frozen=True)
class Left:
    """A connection left; ``last`` when it was its user's last (``member_removed`` is due)."""

    member: Member
    last: bool


def _is_user_id(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return len(str(value)) <= MAX_USER_ID_LENGTH
    return isinstance(value, str) and 0 < len(value) <= MAX_USER_ID_LENGTH


def parse_channel_data(channel_data: str | None) -> Member:
    """Validate a presence subscription's ``channel_data`` and build its member.

    Raises:
        SubscriptionRefused: ``channel_data`` missing, too big, not a JSON object, or without a
            valid ``user_id``.
    """
    if channel_data is None:
        raise SubscriptionRefused("Presence subscriptions need channel_data")
    if len(channel_data.encode("utf-8", "surrogatepass")) > MAX_CHANNEL_DATA_BYTES:
        serves("CHAN-PRES-05")
        raise SubscriptionRefused(f"channel_data is over {MAX_CHANNEL_DATA_BYTES} bytes")
    serves("CHAN-PRES-01")
    data = json_object(channel_data)
    if data is None:
        raise SubscriptionRefused("channel_data must be a JSON object")
    user_id = data.get("user_id")
    if not _is_user_id(user_id):
        raise SubscriptionRefused(
            f"channel_data needs a user_id: a non-empty string of at most "
            f"{MAX_USER_ID_LENGTH} characters"
        )
    serves("CHAN-PRES-01")
    assert isinstance(user_id, str | int)
    return Member(user_id, data.get("user_info"))


@dataclass
class PresenceChannel:
    """The members of one presence channel, in order of arrival."""

    #: User key -> that user's connections (socket ids), in join order.
    connections: dict[str, dict[str, None]] = field(default_factory=dict)
    #: User key -> the member as its first connection declared it.
    members: dict[str, Member] = field(default_factory=dict)
    #: Socket id -> user key.
    by_socket: dict[str, str] = field(default_factory=dict)

    def join(self, socket_id: str, member: Member) -> Joined:
        """Add a connection; joining twice with one socket id keeps the first membership."""
        if socket_id in self.by_socket:
            return Joined(self.members[self.by_socket[socket_id]], first=False)
        key = member.key
        first = key not in self.members
        if first:
            self.members[key] = member
            self.connections[key] = {}
        self.connections[key][socket_id] = None
        self.by_socket[socket_id] = key
        return Joined(self.members[key], first=first)

    def leave(self, socket_id: str) -> Left | None:
        """Remove a connection; ``None`` if it was not a member."""
        key = self.by_socket.pop(socket_id, None)
        if key is None:
            return None
        member = self.members[key]
        sockets = self.connections[key]
        del sockets[socket_id]
        if sockets:
            return Left(member, last=False)
        del self.connections[key]
        del self.members[key]
        return Left(member, last=True)

    def has_room_for(self, key: str, limit: int = MAX_MEMBERS) -> bool:
        """A further connection of a member always fits; a new user only below ``limit``."""
        return key in self.members or len(self.members) < limit

    def member_of(self, socket_id: str) -> Member | None:
        key = self.by_socket.get(socket_id)
        return None if key is None else self.members[key]

    def roster(self) -> dict[str, Any]:
        """``{"ids": [...], "hash": {id: user_info}, "count": n}`` over distinct users."""
        members = list(self.members.values())
        return {
            "ids": [m.key for m in members],
            "hash": {m.key: m.user_info for m in members},
            "count": len(members),
        }

    def __len__(self) -> int:
        return len(self.members)


def _nobody_elsewhere(channel: str) -> Mapping[str, Member]:
    return {}


class PresenceRegistry:
    """Every presence channel of the app; empty channels are dropped.

    In a cluster (``protocol/cluster.py``) ``elsewhere`` names the members connected to the
    other nodes: a user already there is not "first" when it joins here, nor "last" when
    it leaves here, and rosters and counts include them. Alone, nobody is elsewhere.
    """

    def __init__(
        self, elsewhere: Callable[[str], Mapping[str, Member]] = _nobody_elsewhere
    ) -> None:
        self._channels: dict[str, PresenceChannel] = {}
        self.elsewhere = elsewhere

    def get(self, channel: str) -> PresenceChannel:
        """The channel's members; an empty, unregistered one if nobody is there.

        With members on other nodes, a copy that lists them too (their connections are
        not known here), to read rosters and counts from.
        """
        local = self._channels.get(channel) or PresenceChannel()
        remote = self.elsewhere(channel)
        if not remote:
            return local
        members = {**local.members}
        members.update((key, member) for key, member in remote.items() if key not in members)
        return PresenceChannel(dict(local.connections), members, dict(local.by_socket))

    def local(self, channel: str) -> PresenceChannel:
        """The members connected to this node only."""
        return self._channels.get(channel) or PresenceChannel()

    def join(self, channel: str, socket_id: str, member: Member) -> Joined:
        joined = self._channels.setdefault(channel, PresenceChannel()).join(socket_id, member)
        if joined.first and joined.member.key in self.elsewhere(channel):
            return Joined(joined.member, first=False)
        return joined

    def leave(self, channel: str, socket_id: str) -> Left | None:
        entry = self._channels.get(channel)
        if entry is None:
            return None
        left = entry.leave(socket_id)
        if not entry:
            del self._channels[channel]
        if left is not None and left.last and left.member.key in self.elsewhere(channel):
            return Left(left.member, last=False)
        return left

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._channels))
