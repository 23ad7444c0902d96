"""The messages the nodes of a cluster send each other, and their wire form (JSON).

What each message means is in ``cluster.py``; here they are only defined, written and read.
A message that does not parse is refused with ``ValueError`` naming what was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .presence import Member

__all__ = [
    "CacheStore",
    "ChannelState",
    "ClusterMessage",
    "Goodbye",
    "Heartbeat",
    "Hello",
    "RelayFrame",
    "RemoteMember",
    "Sync",
    "Terminate",
    "decode",
    "encode",
]


@dataclass(frozen=True)
class RemoteMember:
    """A presence member connected to another node, with how many connections it has there."""

    member: Member
    connections: int


@dataclass(frozen=True)
class ChannelState:
    """Everything one node holds on one channel; zero and no members means it left it."""

    node: str
    channel: str
    subscriptions: int
    members: tuple[RemoteMember, ...] = ()


@dataclass(frozen=True)
class RelayFrame:
    """A frame for every node's recipients on ``channel`` except ``exclude`` (a socket id)."""

    node: str
    channel: str
    text: str
    exclude: str | None = None


@dataclass(frozen=True)
class CacheStore:
    """A cache channel's last event, stored ``age`` seconds before it was sent."""

    node: str
    channel: str
    name: str
    data: str
    age: float = 0.0


@dataclass(frozen=True)
class Terminate:
    """``terminate_connections`` for ``user_id``: every node closes that user's sockets."""

    node: str
    user_id: str


@dataclass(frozen=True)
class Heartbeat:
    node: str


@dataclass(frozen=True)
class Hello:
    """A node has (re)joined and knows nothing: every node sends its whole state."""

    node: str


@dataclass(frozen=True)
class Goodbye:
    """A node is stopping: forget it now rather than after the node timeout."""

    node: str


@dataclass(frozen=True)
class Sync:
    """A node's marker to itself: once it comes back, every message Redis took before it
    has reached every node (see ``RedisCluster.caught_up``); the other nodes ignore it."""

    node: str
    token: str


ClusterMessage = (
    ChannelState | RelayFrame | CacheStore | Terminate | Heartbeat | Hello | Goodbye | Sync
)

_KINDS: dict[str, type[ClusterMessage]] = {
    "state": ChannelState,
    "relay": RelayFrame,
    "cache": CacheStore,
    "terminate": Terminate,
    "heartbeat": Heartbeat,
    "hello": Hello,
    "goodbye": Goodbye,
    "sync": Sync,
}
_KIND_OF = {kind: name for name, kind in _KINDS.items()}


def encode(message: ClusterMessage) -> str:
    """The message as one JSON text, its kind under ``k``."""
    body: dict[str, Any] = {"k": _KIND_OF[type(message)], **message.__dict__}
    if isinstance(message, ChannelState):
        body["members"] = [
            [m.member.user_id, m.member.user_info, m.connections] for m in message.members
        ]
    return json.dumps(body, separators=(",", ":"))


def _text(body: Mapping[str, Any], name: str, *, optional: bool = False) -> Any:
    value = body.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"cluster message field {name!r} must be a string")
    return value


def decode(text: str | bytes) -> ClusterMessage:
    """Parse what ``encode`` wrote.

    Raises:
        ValueError: not a cluster message (the adapter logs it and goes on).
    """
    try:
        body = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"cluster message is not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("k") not in _KINDS:
        raise ValueError("cluster message without a known kind")
    kind = _KINDS[body["k"]]
    node = _text(body, "node")
    if kind is ChannelState:
        count, raw = body.get("subscriptions"), body.get("members", [])
        if not isinstance(count, int) or count < 0 or not isinstance(raw, list):
            raise ValueError("cluster state needs a count and a member list")
        members = []
        for item in raw:
            if not (isinstance(item, list) and len(item) == 3 and isinstance(item[2], int)):
                raise ValueError("cluster state member must be [user_id, user_info, connections]")
            members.append(RemoteMember(Member(item[0], item[1]), item[2]))
        return ChannelState(node, _text(body, "channel"), count, tuple(members))
    if kind is RelayFrame:
        exclude = _text(body, "exclude", optional=True)
        return RelayFrame(node, _text(body, "channel"), _text(body, "text"), exclude)
    if kind is CacheStore:
        age = body.get("age", 0.0)
        if not isinstance(age, int | float) or age < 0:
            raise ValueError("cluster cache age must be a non-negative number")
        name, data = _text(body, "name"), _text(body, "data")
        return CacheStore(node, _text(body, "channel"), name, data, float(age))
    if kind is Terminate:
        return Terminate(node, _text(body, "user_id"))
    if kind is Sync:
        return Sync(node, _text(body, "token"))
    return kind(node)  # type: ignore[call-arg]
