"""Faults in which webhooks a connection causes and in how they are built and sent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..protocol.frames import compact_json
from ..protocol.webhooks import (
    CACHE_MISS,
    CHANNEL_VACATED,
    CLIENT_EVENT,
    MEMBER_REMOVED,
    WebhookEvent,
    WebhookRequest,
    WebhookSchedule,
    build_request,
    channel_vacated,
    sign_body,
    split_requests,
)
from ..webhook_sender import WebhookSender
from .catalogue import Fault, FaultSet
from .connection import ConnectionWithFaults

__all__ = [
    "UndelayedWebhookSchedule",
    "WebhookReportFaults",
    "WebhookSenderWithFaults",
    "build_request_with_faults",
    "split_requests_with_faults",
]


class WebhookReportFaults(ConnectionWithFaults):
    """Drops or alters webhook events as the connection reports them."""

    def _report(self, events: list[WebhookEvent]) -> None:
        kept: list[WebhookEvent] = []
        for event in events:
            if event.name == CACHE_MISS and self.has(Fault.WEBHOOK_NO_CACHE_MISS):
                continue
            if self._lost_on_close(event.name):
                continue
            if event.name == CLIENT_EVENT:
                if self.has(Fault.WEBHOOK_NO_CLIENT_EVENT):
                    continue
                dropped = set()
                if self.has(Fault.WEBHOOK_CLIENT_EVENT_WITHOUT_SOCKET_ID):
                    dropped.add("socket_id")
                if self.has(Fault.WEBHOOK_CLIENT_EVENT_WITHOUT_USER_ID):
                    dropped.add("user_id")
                fields = tuple(f for f in event.fields if f[0] not in dropped)
                event = WebhookEvent(event.name, event.channel, fields)
            kept.append(event)
        super()._report(kept)

    def _lost_on_close(self, name: str) -> bool:
        """Leave webhooks that a closing connection's cleanup fails to send, while an
        explicit ``pusher:unsubscribe`` still sends them."""
        if not self.leaving_on_close:
            return False
        if name == CHANNEL_VACATED:
            return self.has(Fault.WEBHOOK_VACATED_NOT_ON_CLOSE)
        return name == MEMBER_REMOVED and self.has(Fault.WEBHOOK_MEMBER_REMOVED_NOT_ON_CLOSE)

    def _leave_channel(self, channel: str) -> None:
        super()._leave_channel(channel)
        self._vacated_while_occupied([channel])

    def _leave_everything(self) -> None:
        left = list(self._subscriptions)
        super()._leave_everything()
        self._vacated_while_occupied(left)

    def _vacated_while_occupied(self, channels: list[str]) -> None:
        """``webhook_vacated_on_any_leave``: a leave reports ``channel_vacated`` even though
        others are still subscribed (the last leave reports it as usual)."""
        if not self.has(Fault.WEBHOOK_VACATED_ON_ANY_LEAVE):
            return
        self._report([channel_vacated(ch) for ch in channels if self._registry.subscribers(ch)])


class UndelayedWebhookSchedule(WebhookSchedule):
    """``webhook_vacated_not_delayed``: leaves are reported at once, never cancelled."""

    def _delayed(self) -> bool:
        return False


def split_requests_with_faults(
    events: Iterable[WebhookEvent], faults: FaultSet
) -> list[tuple[WebhookEvent, ...]]:
    """``webhook_batched_per_input``: everything one input caused goes in one request."""
    if Fault.WEBHOOK_BATCHED_PER_INPUT not in faults:
        return split_requests(events)
    batch = tuple(events)
    return [batch] if batch else []


def build_request_with_faults(
    events: Iterable[WebhookEvent], *, time_ms: int, key: str, secret: str, faults: FaultSet
) -> WebhookRequest:
    """``build_request`` under ``webhook_without_time_ms``, ``webhook_bad_signature`` (the
    signature covers the body plus a newline) and ``webhook_content_type_text``."""
    request = build_request(events, time_ms=time_ms, key=key, secret=secret)
    body = request.body
    if Fault.WEBHOOK_WITHOUT_TIME_MS in faults:
        body = compact_json({"events": [e.to_json() for e in request.events]}).encode()
    signed = body + b"\n" if Fault.WEBHOOK_BAD_SIGNATURE in faults else body
    content_type = "text/plain" if Fault.WEBHOOK_CONTENT_TYPE_TEXT in faults else "application/json"
    headers = (
        ("Content-Type", content_type),
        ("X-Pusher-Key", key),
        ("X-Pusher-Signature", sign_body(secret, signed)),
    )
    return WebhookRequest(body, headers, request.events)


class WebhookSenderWithFaults(WebhookSender):
    def __init__(self, url: str, *, faults: FaultSet, **options: Any) -> None:
        super().__init__(url, **options)
        self._faults = faults

    def submit_at_once(self, events: list[WebhookEvent]) -> None:
        """Queue ``events`` without the schedule's hold-back and cancellation
        (``webhook_grace_ignored_on_abrupt_close``)."""
        self._enqueue(events)

    def _requests(self, events: list[WebhookEvent], time_ms: int) -> list[WebhookRequest]:
        return [
            build_request_with_faults(
                group, time_ms=time_ms, key=self._key, secret=self._secret, faults=self._faults
            )
            for group in split_requests_with_faults(events, self._faults)
        ]
