"""Faults in the app's shared state: socket ids and who counts as a channel's subscriber.

``leak_to_unsubscribed`` needs a memory the protocol has no use for: the connections that
left a channel. ``LeakyChannelRegistry`` keeps it beside the real subscriptions, so that
counts, occupancy and presence stay right while events still reach the leavers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..protocol.channels import ChannelRegistry
from ..protocol.socket_ids import SocketIdAllocator

__all__ = ["DotlessSocketIdAllocator", "LeakyChannelRegistry", "ReclaimableSocketIdAllocator"]

#: ``resubscriber_gets_events_twice``: how long after a drop a newcomer is doubled.
DOUBLING_SECONDS = 30.0


class ReclaimableSocketIdAllocator(SocketIdAllocator):
    """Can hand a released id out again on purpose (``dropped_connection_resumed``)."""

    def claim(self, socket_id: str) -> bool:
        """Take ``socket_id`` if no live connection has it; return whether it was taken."""
        if socket_id in self._live:
            return False
        self._live.add(socket_id)
        return True


class DotlessSocketIdAllocator(ReclaimableSocketIdAllocator):
    """``socket_id_without_dot``: ids are the two numbers run together."""

    def _compose(self, first: int, second: int) -> str:
        return f"{first}{second}"


class LeakyChannelRegistry(ChannelRegistry):
    """A registry that also remembers former subscribers, per channel, in leaving order.

    A former subscriber stays out of everything else (counts, presence, occupancy) until it
    subscribes again or disconnects.
    """

    def __init__(self) -> None:
        super().__init__()
        self._former: dict[str, dict[str, None]] = {}
        #: ``dropped_connection_resumed``: what dropped connections held, until a connection
        #: subscribing to one of their public channels claims it.
        self._sessions: list[Any] = []
        #: ``resubscriber_gets_events_twice``: channel -> when a connection on it was dropped;
        #: and the (channel, socket id) pairs that subscribed there soon after.
        self._dropped_on: dict[str, float] = {}
        self._doubled: set[tuple[str, str]] = set()
        #: Socket id -> when its connection closed, oldest first
        #: (``auth_for_recent_socket_id_accepted``).
        self._closed: dict[str, float] = {}

    def remember_closed(self, socket_id: str, now: float) -> None:
        self._closed.pop(socket_id, None)
        self._closed[socket_id] = now

    def recently_closed(self, since: float) -> tuple[str, ...]:
        """Socket ids whose connection closed at ``since`` or later; older ones are forgotten."""
        for socket_id, when in list(self._closed.items()):
            if when >= since:
                break
            del self._closed[socket_id]
        return tuple(self._closed)

    def keep_session(self, session: Any) -> None:
        """Keep a dropped connection's session (it has ``channels``) for a later claim."""
        self._sessions.append(session)

    def claim_session(self, channel: str) -> Any | None:
        """The oldest kept session that held ``channel``, taken out of the keep."""
        for session in self._sessions:
            if channel in session.channels:
                self._sessions.remove(session)
                return session
        return None

    def note_dropped(self, channels: Iterable[str], now: float) -> None:
        for channel in channels:
            self._dropped_on[channel] = now

    def double_if_recently_dropped(self, channel: str, socket_id: str, now: float) -> None:
        """A subscriber arriving within ``DOUBLING_SECONDS`` of a drop on the channel is counted
        twice when events are routed (never in counts or occupancy)."""
        dropped = self._dropped_on.get(channel)
        if dropped is not None and now - dropped <= DOUBLING_SECONDS:
            self._doubled.add((channel, socket_id))

    def targets(self, channel: str, *, exclude: str | None = None) -> tuple[str, ...]:
        targets = super().targets(channel, exclude=exclude)
        if not self._doubled:
            return targets
        return targets + tuple(sid for sid in targets if (channel, sid) in self._doubled)

    def keep_former(self, channel: str, socket_id: str) -> None:
        """Keep routing ``channel``'s events to a socket that left it."""
        self._former.setdefault(channel, {})[socket_id] = None

    def former_subscribers(self, channel: str) -> tuple[str, ...]:
        return tuple(self._former.get(channel, ()))

    def targets_with_former(self, channel: str, *, exclude: str | None) -> tuple[str, ...]:
        """The real subscribers, then the former ones, minus ``exclude``."""
        former = tuple(sid for sid in self._former.get(channel, ()) if sid != exclude)
        return self.targets(channel, exclude=exclude) + former

    def subscribe(self, channel: str, socket_id: str) -> bool:
        added = super().subscribe(channel, socket_id)
        if added:
            self._forget_former(channel, socket_id)
        return added

    def remove_socket(self, socket_id: str) -> list[str]:
        channels = super().remove_socket(socket_id)
        self._doubled = {pair for pair in self._doubled if pair[1] != socket_id}
        for former in list(self._former):
            self._forget_former(former, socket_id)
        return channels

    def _forget_former(self, channel: str, socket_id: str) -> None:
        former = self._former.get(channel)
        if former is None:
            return
        former.pop(socket_id, None)
        if not former:
            del self._former[channel]
