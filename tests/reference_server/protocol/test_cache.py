from __future__ import annotations

from reference_server.protocol.cache import CACHE_TTL, CachedEvent, EventCache


def test_last_event_is_kept_for_thirty_minutes() -> None:
    cache = EventCache()
    assert CACHE_TTL == 1800
    assert cache.get("cache-a", 0.0) is None
    cache.store("cache-a", "e1", "d1", 10.0)
    cache.store("cache-a", "e2", "d2", 20.0)
    assert cache.get("cache-a", 20.0 + CACHE_TTL - 0.001) == CachedEvent("e2", "d2", 20.0)
    assert cache.get("cache-a", 20.0 + CACHE_TTL) is None
    assert len(cache) == 0


def test_channels_are_independent() -> None:
    cache = EventCache(ttl=5)
    cache.store("cache-a", "e", "a", 0.0)
    cache.store("cache-b", "e", "b", 3.0)
    assert cache.get("cache-a", 6.0) is None
    assert cache.get("cache-b", 6.0) == CachedEvent("e", "b", 3.0)
