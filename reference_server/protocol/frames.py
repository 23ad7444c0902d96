"""Server -> client frames, serialised to the exact text that goes on the wire.

Pusher protocol, "Double encoding": the ``data`` field of server -> client events is a
*string*; for ``pusher:`` and ``pusher_internal:`` events it is a JSON-serialised object.
That rule lives here and nowhere else. ``pusher:error`` is the documented exception: its
``data`` is an object ``{"code": ..., "message": ...}``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "PING",
    "PONG",
    "channel_event",
    "connection_established",
    "error",
    "subscription_succeeded",
]


def _dumps(value: Any) -> str:
    # Compact and UTF-8: what hosted Pusher sends, and one string shared by every subscriber.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _number(seconds: float) -> int | float:
    # Advertise 120, not 120.0: clients multiply it, but some parse it as an integer.
    return int(seconds) if float(seconds).is_integer() else seconds


PING = _dumps({"event": "pusher:ping", "data": _dumps({})})
PONG = _dumps({"event": "pusher:pong", "data": _dumps({})})


def connection_established(
    socket_id: str, activity_timeout: float, *, data_as_object: bool = False
) -> str:
    """The first frame of every accepted connection.

    ``data_as_object`` is only for the ``established_data_as_object`` fault.
    """
    data = {"socket_id": socket_id, "activity_timeout": _number(activity_timeout)}
    encoded: Any = data if data_as_object else _dumps(data)
    return _dumps({"event": "pusher:connection_established", "data": encoded})


def error(message: str, code: int | None) -> str:
    """``pusher:error``; ``code`` is ``None`` (JSON null) for non-fatal errors."""
    return _dumps({"event": "pusher:error", "data": {"code": code, "message": message}})


def subscription_succeeded(channel: str, *, with_data: bool = True) -> str:
    """``with_data=False`` is only for the ``subscription_succeeded_without_data`` fault."""
    frame: dict[str, Any] = {"event": "pusher_internal:subscription_succeeded", "channel": channel}
    if with_data:
        frame["data"] = _dumps({})
    return _dumps(frame)


def channel_event(event: str, channel: str, data: str, *, reencode_json_data: bool = False) -> str:
    """An event published to a channel; ``data`` goes out exactly as the publisher sent it.

    ``reencode_json_data`` is only for the ``event_data_reencoded`` fault: data that parses as
    JSON is embedded as the parsed value instead of the string.
    """
    payload: Any = data
    if reencode_json_data:
        try:
            payload = json.loads(data)
        except ValueError:
            payload = data
    return _dumps({"event": event, "channel": channel, "data": payload})
