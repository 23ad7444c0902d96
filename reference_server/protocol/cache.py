"""Cache channels: the last event published to each, kept for a while (clock passed in).

Pusher docs, "Cache channels": the last event is cached "for 30 minutes", whether or not the
channel is occupied; only events published through the HTTP API are cached.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["CACHE_TTL", "CachedEvent", "EventCache"]

#: Seconds an event stays cached.
CACHE_TTL = 30 * 60.0


@dataclass(frozen=True)
class CachedEvent:
    name: str
    data: str
    stored_at: float


class EventCache:
    """Channel -> its last event, forgotten ``ttl`` seconds after it was stored."""

    def __init__(self, ttl: float = CACHE_TTL) -> None:
        self.ttl = ttl
        self._events: dict[str, CachedEvent] = {}

    def store(self, channel: str, name: str, data: str, now: float) -> None:
        self._events[channel] = CachedEvent(name, data, now)

    def get(self, channel: str, now: float) -> CachedEvent | None:
        """The live cached event, if any; an expired one is dropped."""
        event = self._events.get(channel)
        if event is not None and now - event.stored_at >= self.ttl:
            del self._events[channel]
            return None
        return event

    def __len__(self) -> int:
        return len(self._events)

    def live(self, now: float) -> Iterator[tuple[str, CachedEvent]]:
        """Every channel's live cached event (for a node joining a cluster)."""
        for channel in list(self._events):
            event = self.get(channel, now)
            if event is not None:
                yield channel, event
