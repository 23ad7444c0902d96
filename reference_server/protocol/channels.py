"""Channel registry: who is subscribed where, and where a published event must go.

A pure data structure shared by every connection of one app. Subscribers are kept in
insertion order so fan-out order is deterministic. The app's other shared state hangs off it
too: presence members (``presence``), signed-in users (``users``) and cached events
(``cache``), so that one object is all a connection and the HTTP API need to share.

In a cluster (``join_cluster``) it also knows what the other nodes hold (``Elsewhere``):
counts, occupied channels and presence rosters then answer for the whole cluster, while
``targets`` stay this node's own connections. What the other nodes must hear of (a channel
whose subscriptions or members changed, a frame for their subscribers, a cached event) is
kept in ``outbox`` for the adapter to send; alone, nothing is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .cache import EventCache
from .names import ChannelType, channel_type, server_to_user_id
from .presence import Member, PresenceRegistry
from .users import UserRegistry

__all__ = [
    "Cached",
    "Channel",
    "ChannelRegistry",
    "Delivery",
    "Elsewhere",
    "Note",
    "Relay",
    "Touched",
]


@dataclass
class Channel:
    """One occupied channel (presence members are kept in ``ChannelRegistry.presence``)."""

    name: str
    type: ChannelType
    subscribers: dict[str, None] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """One serialised frame and the sockets it must be sent to, unchanged."""

    text: str
    socket_ids: tuple[str, ...]


@dataclass(frozen=True)
class Touched:
    """A channel whose subscriptions or presence members changed on this node."""

    channel: str


@dataclass(frozen=True)
class Relay:
    """A frame every node must hand to its own recipients on ``channel`` (subscribers, or
    for ``#server-to-user-<id>`` the user's connections), except ``exclude``."""

    channel: str
    text: str
    exclude: str | None = None


@dataclass(frozen=True)
class Cached:
    """An event stored as a cache channel's last event."""

    channel: str
    name: str
    data: str


Note = Touched | Relay | Cached


class Elsewhere(Protocol):
    """What the other nodes of a cluster hold, as far as this node has heard."""

    def subscription_count(self, channel: str) -> int: ...

    def channels(self) -> Iterable[str]: ...

    def members(self, channel: str) -> Mapping[str, Member]: ...


class ChannelRegistry:
    """Subscriptions of every connection, indexed both by channel and by socket."""

    def __init__(self, cache: EventCache | None = None) -> None:
        self._channels: dict[str, Channel] = {}
        self._by_socket: dict[str, dict[str, None]] = {}
        #: Presence channels' members.
        self.presence = PresenceRegistry()
        #: Connections signed in with ``pusher:signin``.
        self.users = UserRegistry()
        #: Last HTTP-published event of each cache channel.
        self.cache = cache if cache is not None else EventCache()
        #: The other nodes' state; ``None`` when this node is alone.
        self.elsewhere: Elsewhere | None = None
        #: What the other nodes must hear of, in order; ``None`` when alone.
        self.outbox: list[Note] | None = None

    def join_cluster(self, elsewhere: Elsewhere) -> None:
        """From now on answer for the whole cluster and keep notes for the other nodes."""
        self.elsewhere = elsewhere
        self.presence.elsewhere = elsewhere.members
        self.outbox = []

    def take_notes(self) -> list[Note]:
        """Return and forget what the other nodes must hear of."""
        notes, self.outbox = self.outbox or [], ([] if self.outbox is not None else None)
        return notes

    def note(self, note: Note) -> None:
        """Keep ``note`` for the other nodes (nothing when alone)."""
        if self.outbox is not None:
            self.outbox.append(note)

    def subscription_count(self, channel: str) -> int:
        """Connections subscribed to ``channel``, on every node."""
        entry = self._channels.get(channel)
        count = 0 if entry is None else len(entry.subscribers)
        if self.elsewhere is not None:
            count += self.elsewhere.subscription_count(channel)
        return count

    def occupied(self) -> list[str]:
        """Channels with at least one subscriber on any node: this node's first."""
        names = dict.fromkeys(self._channels)
        if self.elsewhere is not None:
            names.update(dict.fromkeys(self.elsewhere.channels()))
        return list(names)

    def relay_targets(self, channel: str, exclude: str | None) -> tuple[str, ...]:
        """This node's recipients of a frame another node relayed (see ``Relay``)."""
        user_id = server_to_user_id(channel)
        if user_id is None:
            return self.targets(channel, exclude=exclude)
        return tuple(s for s in self.users.sockets_of(user_id) if s != exclude)

    def subscribe(self, channel: str, socket_id: str) -> bool:
        """Add a subscription; return ``False`` if it already existed."""
        entry = self._channels.get(channel)
        if entry is None:
            entry = self._channels[channel] = Channel(channel, channel_type(channel))
        if socket_id in entry.subscribers:
            return False
        entry.subscribers[socket_id] = None
        self._by_socket.setdefault(socket_id, {})[channel] = None
        self.note(Touched(channel))
        return True

    def unsubscribe(self, channel: str, socket_id: str) -> bool:
        """Remove a subscription; return ``False`` if there was none.

        Empty channels are dropped, so "occupied" means "present in the registry".
        """
        entry = self._channels.get(channel)
        if entry is None or socket_id not in entry.subscribers:
            return False
        del entry.subscribers[socket_id]
        self.note(Touched(channel))
        if not entry.subscribers:
            del self._channels[channel]
        channels = self._by_socket[socket_id]
        del channels[channel]
        if not channels:
            del self._by_socket[socket_id]
        return True

    def remove_socket(self, socket_id: str) -> list[str]:
        """Drop every subscription of a closed connection; return the channels it left."""
        channels = list(self._by_socket.get(socket_id, ()))
        for channel in channels:
            self.unsubscribe(channel, socket_id)
        return channels

    def is_subscribed(self, channel: str, socket_id: str) -> bool:
        entry = self._channels.get(channel)
        return entry is not None and socket_id in entry.subscribers

    def channels_of(self, socket_id: str) -> list[str]:
        return list(self._by_socket.get(socket_id, ()))

    def subscribers(self, channel: str) -> list[str]:
        entry = self._channels.get(channel)
        return [] if entry is None else list(entry.subscribers)

    def get(self, channel: str) -> Channel | None:
        return self._channels.get(channel)

    def __iter__(self) -> Iterator[Channel]:
        return iter(list(self._channels.values()))

    def __len__(self) -> int:
        return len(self._channels)

    def targets(self, channel: str, *, exclude: str | None = None) -> tuple[str, ...]:
        """Subscribers of ``channel`` that must receive an event, minus ``exclude``."""
        return tuple(sid for sid in self.subscribers(channel) if sid != exclude)

    def route(
        self, channels: Iterable[str], *, exclude: str | None = None
    ) -> list[tuple[str, tuple[str, ...]]]:
        """Targets per distinct channel, in the order given; channels nobody gets are skipped."""
        routes: list[tuple[str, tuple[str, ...]]] = []
        for channel in dict.fromkeys(channels):
            targets = self.targets(channel, exclude=exclude)
            if targets:
                routes.append((channel, targets))
        return routes
