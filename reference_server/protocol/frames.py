"""Server -> client frames, serialised to the exact text that goes on the wire.

Pusher protocol, "Double encoding": the ``data`` field of server -> client events is a
*string*; for ``pusher:`` and ``pusher_internal:`` events it is a JSON-serialised object.
That rule lives here and nowhere else. ``pusher:error`` is the documented exception: its
``data`` is an object ``{"code": ..., "message": ...}``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..serves import serves

__all__ = [
    "PING",
    "PONG",
    "advertised_activity_timeout",
    "cache_miss",
    "channel_event",
    "client_event",
    "compact_json",
    "connection_established",
    "error",
    "member_added",
    "member_removed",
    "presence_subscription_succeeded",
    "signin_success",
    "subscription_succeeded",
]


def compact_json(value: Any) -> str:
    """JSON that always encodes as UTF-8, even holding a lone surrogate."""
    # Compact and UTF-8: what hosted Pusher sends, and one string shared by every subscriber.
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            # A lone surrogate (sent escaped, as "\ud800", which JSON allows) cannot go into a
            # UTF-8 text frame: send it escaped again, as it came, and everything else with it.
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=True)
    return text


PING = compact_json({"event": "pusher:ping", "data": compact_json({})})
PONG = compact_json({"event": "pusher:pong", "data": compact_json({})})


def advertised_activity_timeout(seconds: float) -> int:
    """The ``activity_timeout`` a client is told: whole seconds, at least 1, rounded up.

    pusher-js and others parse it as a positive integer (0 would make them ping in a tight
    loop); rounding up keeps the client's own ping from racing ahead of the server's timer.
    """
    return max(1, math.ceil(seconds))


#: ``connection_established`` for a socket id of the usual form, which needs no escaping: it
#: is built for every connection, and two ``json.dumps`` calls were a tenth of what a
#: connection costs the server.
_ESTABLISHED = (
    '{{"event":"pusher:connection_established",'
    '"data":"{{\\"socket_id\\":\\"{}\\",\\"activity_timeout\\":{}}}"}}'
)


def connection_established(socket_id: str, activity_timeout: float) -> str:
    """The first frame of every accepted connection."""
    serves("PROTO-CONN-07")
    seconds = advertised_activity_timeout(activity_timeout)
    if socket_id.replace(".", "", 1).isdigit() and socket_id.isascii():
        return _ESTABLISHED.format(socket_id, seconds)
    data = {"socket_id": socket_id, "activity_timeout": seconds}
    return compact_json({"event": "pusher:connection_established", "data": compact_json(data)})


def error(message: str, code: int | None) -> str:
    """``pusher:error``; ``code`` is ``None`` (JSON null) for non-fatal errors."""
    serves("CHAN-SUB-09", "RECON-03")
    return compact_json({"event": "pusher:error", "data": {"code": code, "message": message}})


def subscription_error(channel: str, message: str) -> str:
    """``pusher:subscription_error`` on the refused channel, shaped like pusher-js's own report
    of a failed authorization request (``type``, ``error``, ``status``) so one callback handles
    both."""
    data = {"type": "AuthError", "error": message, "status": 401}
    return compact_json(
        {"event": "pusher:subscription_error", "channel": channel, "data": compact_json(data)}
    )


def subscription_succeeded(channel: str) -> str:
    """Outside presence channels the roster is empty: ``data`` is ``"{}"``."""
    return compact_json(
        {
            "event": "pusher_internal:subscription_succeeded",
            "channel": channel,
            "data": compact_json({}),
        }
    )


def channel_event(event: str, channel: str, data: str) -> str:
    """An event published to a channel; ``data`` goes out exactly as the publisher sent it."""
    return compact_json({"event": event, "channel": channel, "data": data})


def presence_subscription_succeeded(channel: str, roster: dict[str, Any]) -> str:
    """``subscription_succeeded`` on a presence channel: ``data`` is ``{"presence": roster}``."""
    return compact_json(
        {
            "event": "pusher_internal:subscription_succeeded",
            "channel": channel,
            "data": compact_json({"presence": roster}),
        }
    )


def member_added(channel: str, user_id: str | int, user_info: Any = None) -> str:
    """``user_info`` ``None`` (none given) is left out of ``data``."""
    member: dict[str, Any] = {"user_id": user_id}
    if user_info is not None:
        member["user_info"] = user_info
    return compact_json(
        {"event": "pusher_internal:member_added", "channel": channel, "data": compact_json(member)}
    )


def member_removed(channel: str, user_id: str | int) -> str:
    return compact_json(
        {
            "event": "pusher_internal:member_removed",
            "channel": channel,
            "data": compact_json({"user_id": user_id}),
        }
    )


def cache_miss(channel: str) -> str:
    """Pusher docs, "Cache channels": sent instead of a cached event when there is none."""
    return compact_json({"event": "pusher:cache_miss", "channel": channel})


def signin_success(user_data: str) -> str:
    """Pusher protocol: ``{"event":"pusher:signin_success","data":{"user_data":String}}``."""
    return compact_json({"event": "pusher:signin_success", "data": {"user_data": user_data}})


def client_event(event: str, channel: str, data: Any, user_id: str | None = None) -> str:
    """A relayed client event: ``event``, ``channel`` and ``data`` as sent, plus the sender's
    ``user_id`` on presence channels. ``data`` ``None`` (none sent) is left out."""
    frame: dict[str, Any] = {"event": event, "channel": channel}
    if data is not None:
        frame["data"] = data
    if user_id is not None:
        frame["user_id"] = user_id
    return compact_json(frame)
