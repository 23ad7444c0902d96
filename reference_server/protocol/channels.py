"""Channel registry: who is subscribed where, and where a published event must go.

A pure data structure shared by every connection of one app. Subscribers are kept in
insertion order so fan-out order is deterministic. The app's other shared state hangs off it
too: presence members (``presence``), signed-in users (``users``) and cached events
(``cache``), so that one object is all a connection and the HTTP API need to share.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .cache import EventCache
from .names import ChannelType, channel_type
from .presence import PresenceRegistry
from .users import UserRegistry

__all__ = ["Channel", "ChannelRegistry", "Delivery"]


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

    def subscribe(self, channel: str, socket_id: str) -> bool:
        """Add a subscription; return ``False`` if it already existed."""
        entry = self._channels.get(channel)
        if entry is None:
            entry = self._channels[channel] = Channel(channel, channel_type(channel))
        if socket_id in entry.subscribers:
            return False
        entry.subscribers[socket_id] = None
        self._by_socket.setdefault(socket_id, {})[channel] = None
        return True

    def unsubscribe(self, channel: str, socket_id: str) -> bool:
        """Remove a subscription; return ``False`` if there was none.

        Empty channels are dropped, so "occupied" means "present in the registry".
        """
        entry = self._channels.get(channel)
        if entry is None or socket_id not in entry.subscribers:
            return False
        del entry.subscribers[socket_id]
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
