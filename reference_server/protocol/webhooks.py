"""Webhooks: which state changes notify the application, when, and how a request is signed.

Pusher docs, "Webhooks": the server POSTs ``{"time_ms": ..., "events": [...]}`` to the app's
URL with ``X-Pusher-Key`` and ``X-Pusher-Signature`` (hex HMAC-SHA256 of the raw body with the
app secret). ``channel_vacated`` and ``member_removed`` wait a few seconds and are dropped
(together with the matching ``channel_occupied`` / ``member_added``) when the channel or user
comes back in that window, so that a page reload does not look like a leave and a join. A
non-2xx answer is retried with exponential back-off for a bounded time.

Everything here is pure: events are built from what the connection tells us, times are passed
in, and the adapter (``webhook_sender.py``) does the sending.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..serves import serves
from .frames import compact_json
from .presence import Joined, Left

__all__ = [
    "CACHE_MISS",
    "CHANNEL_OCCUPIED",
    "CHANNEL_VACATED",
    "CLIENT_EVENT",
    "DEFAULT_DELAY",
    "DEFAULT_RETRY_FOR",
    "MEMBER_ADDED",
    "MEMBER_REMOVED",
    "RetryPolicy",
    "WebhookEvent",
    "WebhookRequest",
    "WebhookSchedule",
    "after_cache_miss",
    "after_client_event",
    "after_join",
    "after_leave",
    "after_subscribe",
    "after_unsubscribe",
    "build_request",
    "cache_miss",
    "channel_occupied",
    "channel_vacated",
    "client_event",
    "is_success",
    "member_added",
    "member_removed",
    "sign_body",
    "split_requests",
]

CHANNEL_OCCUPIED = "channel_occupied"
CHANNEL_VACATED = "channel_vacated"
MEMBER_ADDED = "member_added"
MEMBER_REMOVED = "member_removed"
CLIENT_EVENT = "client_event"
CACHE_MISS = "cache_miss"

#: Pusher docs: vacated/member_removed are held back "up to 3 s".
DEFAULT_DELAY = 3.0
#: Pusher docs: non-2xx answers are retried "for 5 minutes".
DEFAULT_RETRY_FOR = 300.0

#: Which delayed event a returning channel/user cancels, and the event its return would send.
_CANCELLED_BY = {CHANNEL_OCCUPIED: CHANNEL_VACATED, MEMBER_ADDED: MEMBER_REMOVED}


@dataclass(frozen=True)
class WebhookEvent:
    """One entry of a webhook's ``events`` list: ``name``, ``channel`` and its own fields."""

    name: str
    channel: str
    fields: tuple[tuple[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "channel": self.channel, **dict(self.fields)}

    @property
    def user_id(self) -> str | None:
        value = dict(self.fields).get("user_id")
        return None if value is None else str(value)

    @property
    def key(self) -> tuple[str, str, str | None]:
        """What a delayed event is matched on when its channel or user comes back."""
        return (self.name, self.channel, self.user_id)


def channel_occupied(channel: str) -> WebhookEvent:
    serves("WH-06", "WH-08")
    return WebhookEvent(CHANNEL_OCCUPIED, channel)


def channel_vacated(channel: str) -> WebhookEvent:
    serves("WH-06", "WH-08")
    return WebhookEvent(CHANNEL_VACATED, channel)


def member_added(channel: str, user_id: str) -> WebhookEvent:
    serves("WH-06", "WH-08")
    return WebhookEvent(MEMBER_ADDED, channel, (("user_id", user_id),))


def member_removed(channel: str, user_id: str) -> WebhookEvent:
    serves("WH-06", "WH-08")
    return WebhookEvent(MEMBER_REMOVED, channel, (("user_id", user_id),))


def client_event(
    channel: str,
    event: str,
    data: Any,
    socket_id: str,
    user_id: str | None,
) -> WebhookEvent:
    """``user_id`` only on presence channels (the sender's member id)."""
    fields: list[tuple[str, Any]] = [("event", event), ("data", data), ("socket_id", socket_id)]
    if user_id is not None:
        fields.append(("user_id", user_id))
    return WebhookEvent(CLIENT_EVENT, channel, tuple(fields))


def cache_miss(channel: str) -> WebhookEvent:
    return WebhookEvent(CACHE_MISS, channel)


# Requests.


@dataclass(frozen=True)
class WebhookRequest:
    """One POST: the exact body and the headers that go with it."""

    body: bytes
    headers: tuple[tuple[str, str], ...]
    events: tuple[WebhookEvent, ...]


def sign_body(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the raw body: what ``X-Pusher-Signature`` carries."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def build_request(
    events: Iterable[WebhookEvent],
    *,
    time_ms: int,
    key: str,
    secret: str,
) -> WebhookRequest:
    """Serialise once and sign those very bytes; a retry resends them unchanged."""
    batch = tuple(events)
    serves("WH-01", "WH-02")
    body = compact_json({"time_ms": time_ms, "events": [e.to_json() for e in batch]}).encode()
    headers = (
        ("Content-Type", "application/json"),
        ("X-Pusher-Key", key),
        ("X-Pusher-Signature", sign_body(secret, body)),
    )
    return WebhookRequest(body, headers, batch)


def split_requests(events: Iterable[WebhookEvent]) -> list[tuple[WebhookEvent, ...]]:
    """Without batch webhooks, each request carries exactly one event (Pusher docs)."""
    serves("WH-03")
    return [(event,) for event in events]


def is_success(status: int) -> bool:
    return 200 <= status < 300


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off, given up once ``retry_for`` seconds have passed since the first
    attempt; ``retry_for`` 0 means a single attempt."""

    first_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    retry_for: float = DEFAULT_RETRY_FOR

    def next_delay(self, attempts: int, elapsed: float) -> float | None:
        """Seconds before the next attempt after ``attempts`` failed ones, ``elapsed`` seconds
        after the first; ``None``: give up."""
        serves("WH-04")
        delay = min(self.max_delay, self.first_delay * self.factor ** max(0, attempts - 1))
        if elapsed + delay > self.retry_for:
            return None
        return delay


# Delays and de-duplication.


@dataclass
class WebhookSchedule:
    """Holds ``channel_vacated`` and ``member_removed`` back for ``delay`` seconds, cancels
    them when the channel is re-occupied or the user rejoins in that window (the return is
    then not reported either), and sends one ``cache_miss`` per channel per ``delay`` window
    when several clients find the same cache empty."""

    delay: float = DEFAULT_DELAY
    _pending: dict[tuple[str, str, str | None], tuple[float, WebhookEvent]] = field(
        default_factory=dict
    )
    _last_miss: dict[str, float] = field(default_factory=dict)

    def _delayed(self) -> bool:
        """Whether leaves wait for a possible return before they are reported."""
        return self.delay > 0

    def add(self, events: Iterable[WebhookEvent], now: float) -> list[WebhookEvent]:
        """Take new events; return those to send right away, in order."""
        ready: list[WebhookEvent] = []
        for event in events:
            if event.name in (CHANNEL_VACATED, MEMBER_REMOVED) and self._delayed():
                serves("WH-05")
                self._pending[event.key] = (now + self.delay, event)
                continue
            cancels = _CANCELLED_BY.get(event.name)
            if cancels is not None and (cancels, event.channel, event.user_id) in self._pending:
                serves("WH-05", "RECON-11")
                del self._pending[(cancels, event.channel, event.user_id)]
                continue
            if event.name == CACHE_MISS:
                last = self._last_miss.get(event.channel)
                if last is not None and now - last < self.delay:
                    serves("CHAN-CACHE-03")
                    continue
                self._forget_misses(now)
                self._last_miss[event.channel] = now
            ready.append(event)
        return ready

    def _forget_misses(self, now: float) -> None:
        for channel, when in list(self._last_miss.items()):
            if now - when >= self.delay:
                del self._last_miss[channel]

    def due(self, now: float) -> list[WebhookEvent]:
        """Pop the held-back events whose delay is over, oldest first."""
        ready = sorted(
            ((when, event) for when, event in self._pending.values() if when <= now),
            key=lambda item: item[0],
        )
        for _, event in ready:
            del self._pending[event.key]
        return [event for _, event in ready]

    def next_deadline(self) -> float | None:
        if not self._pending:
            return None
        return min(when for when, _ in self._pending.values())

    def __len__(self) -> int:
        return len(self._pending)


# What a connection's state changes cause (called by ``connection.py``).


def after_subscribe(channel: str, subscribers: int) -> list[WebhookEvent]:
    """``channel_occupied`` when the first connection subscribes."""
    return [channel_occupied(channel)] if subscribers == 1 else []


def after_unsubscribe(channel: str, subscribers: int) -> list[WebhookEvent]:
    """``channel_vacated`` when the last connection has left."""
    return [channel_vacated(channel)] if subscribers == 0 else []


def after_join(channel: str, joined: Joined) -> list[WebhookEvent]:
    """``member_added`` for a user's first connection only (per user, not per connection)."""
    return [member_added(channel, joined.member.key)] if joined.first else []


def after_leave(channel: str, left: Left | None) -> list[WebhookEvent]:
    """``member_removed`` once the user's last connection has left."""
    if left is not None and left.last:
        return [member_removed(channel, left.member.key)]
    return []


def after_cache_miss(channel: str) -> list[WebhookEvent]:
    serves("CHAN-CACHE-03", "WH-06")
    return [cache_miss(channel)]


def after_client_event(
    channel: str, event: str, data: Any, socket_id: str, user_id: str | None
) -> list[WebhookEvent]:
    serves("CEVT-10", "WH-06")
    return [client_event(channel, event, data, socket_id, user_id)]
