"""Client -> server messages: frozen dataclasses and the one parser that builds them.

Pusher protocol, "Double encoding": in client -> server ``pusher:subscribe`` and
``pusher:unsubscribe`` the ``data`` field is a JSON *object* (unlike server -> client frames).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import InvalidChannelName, InvalidJson, InvalidMessage
from .names import is_client_event

__all__ = [
    "MAX_JSON_DEPTH",
    "ClientEvent",
    "ClientMessage",
    "JsonTooDeep",
    "Ping",
    "Pong",
    "Signin",
    "Subscribe",
    "Unrecognised",
    "Unsubscribe",
    "json_object",
    "loads_bounded",
    "parse_client_message",
]


@dataclass(frozen=True)
class Ping:
    """``pusher:ping``: the client checks that we are alive."""


@dataclass(frozen=True)
class Pong:
    """``pusher:pong``: the client answers our ``pusher:ping``."""


@dataclass(frozen=True)
class Subscribe:
    """``pusher:subscribe``; ``auth`` for private, encrypted and presence channels,
    ``channel_data`` (the exact string, part of the signature) for presence ones."""

    channel: str
    auth: str | None = None
    channel_data: str | None = None


@dataclass(frozen=True)
class Unsubscribe:
    channel: str


@dataclass(frozen=True)
class Signin:
    """``pusher:signin``: ``{"auth": "key:signature", "user_data": "<JSON string>"}``."""

    auth: str | None
    user_data: str | None


@dataclass(frozen=True)
class ClientEvent:
    """A ``client-*`` event, relayed to the channel's other subscribers.

    ``data`` is the JSON value sent, ``None`` when there was none.
    """

    event: str
    channel: str | None
    data: Any


@dataclass(frozen=True)
class Unrecognised:
    """Any other event; the connection decides how to refuse it."""

    event: str


ClientMessage = Ping | Pong | Subscribe | Unsubscribe | Signin | ClientEvent | Unrecognised


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; RFC 8259 does not.
    raise ValueError(f"invalid JSON constant {name}")


#: Deepest nesting of arrays and objects a client message (or channel_data, user_data, an
#: HTTP API body) may have. Deeper JSON is refused: decoding and re-encoding it recursively
#: would exhaust the interpreter's stack (RecursionError) somewhere between 500 and 1000.
MAX_JSON_DEPTH = 100


class JsonTooDeep(ValueError):
    """The JSON text nests arrays and objects more than ``MAX_JSON_DEPTH`` levels deep."""


def _depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value, without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def loads_bounded(text: str | bytes, **options: Any) -> Any:
    """``json.loads``, but JSON nested over ``MAX_JSON_DEPTH`` levels raises ``JsonTooDeep``
    instead of ``RecursionError`` (or of succeeding, only to fail later when re-encoded).

    Raises:
        ValueError: not JSON (``JsonTooDeep`` when only too deep).
    """
    try:
        value = json.loads(text, **options)
    except RecursionError:
        raise JsonTooDeep(f"JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    # Cheap pre-check: fewer opening brackets than the limit cannot nest deeper than it.
    raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
    if raw.count("[") + raw.count("{") > MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise JsonTooDeep(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def json_object(text: str) -> dict[str, Any] | None:
    """``text`` decoded when it is a JSON object (as ``channel_data`` and ``user_data`` must
    be); None otherwise, too deep included."""
    try:
        value = loads_bounded(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _load_object(text: str) -> dict[str, Any]:
    try:
        value = loads_bounded(text, parse_constant=_refuse_constant)
    except JsonTooDeep as exc:
        raise InvalidMessage(str(exc)) from None
    except ValueError:
        raise InvalidJson("Invalid JSON") from None
    if not isinstance(value, dict):
        raise InvalidMessage("Message must be a JSON object")
    return value


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InvalidMessage(f"{key} must be a string")


def _channel(message: dict[str, Any], event: str) -> tuple[dict[str, Any], str]:
    data = message.get("data")
    if not isinstance(data, dict):
        raise InvalidMessage(f"{event} data must be a JSON object")
    channel = data.get("channel")
    if not isinstance(channel, str):
        raise InvalidChannelName(f"{event} needs a channel name")
    return data, channel


def parse_client_message(text: str) -> ClientMessage:
    """Parse one text frame.

    Only the envelope and field types are checked here; whether the request is allowed (name
    grammar, subscription state, channel type) is the connection's decision.

    Raises:
        InvalidMessage: not JSON, not an object, no ``event`` string, or ill-typed fields.
        InvalidChannelName: a (un)subscribe without a channel name string.
    """
    message = _load_object(text)
    event = message.get("event")
    if not isinstance(event, str):
        raise InvalidMessage("Message must have an event string")
    if event == "pusher:ping":
        return Ping()
    if event == "pusher:pong":
        return Pong()
    if event == "pusher:subscribe":
        data, channel = _channel(message, event)
        return Subscribe(
            channel=channel,
            auth=_optional_str(data, "auth"),
            channel_data=_optional_str(data, "channel_data"),
        )
    if event == "pusher:unsubscribe":
        _, channel = _channel(message, event)
        return Unsubscribe(channel=channel)
    if event == "pusher:signin":
        fields = message.get("data")
        if not isinstance(fields, dict):
            raise InvalidMessage(f"{event} data must be a JSON object")
        return Signin(
            auth=_optional_str(fields, "auth"), user_data=_optional_str(fields, "user_data")
        )
    if is_client_event(event):
        target = message.get("channel")
        return ClientEvent(
            event=event,
            channel=target if isinstance(target, str) else None,
            data=message.get("data"),
        )
    return Unrecognised(event=event)
