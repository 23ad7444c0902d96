"""Several nodes, one server: what a node knows of the others, and the messages between them.

Nodes share nothing but a message bus (Redis pub/sub, ``redis_adapter.py``). Each node keeps
its own connections in its ``ChannelRegistry`` and tells the others about them; this module
holds what it has heard from the others (``ClusterState``, the registry's ``Elsewhere``)
and decides what each message changes for this node's own clients. Pure: the clock and the
node's own presence members are passed in, nothing here does I/O.

The design, in short:

- *State is sent whole, per channel.* After any change to a channel's subscriptions or
  presence members a node sends ``ChannelState``: its subscription count there and its
  members with their connection counts. Receiving it replaces what was known of that node
  and channel, so a repeated or late message cannot leave a count wrong, and a node that
  missed messages catches up with the next one.
- *member_added/member_removed are decided by each node for its own clients*, from "is
  this user connected anywhere" before and after a message (``MemberChange``): the user's
  first connection anywhere, and its last connection anywhere.
- *Frames are relayed once* (``Relay``): the node where an event enters routes it to its
  own subscribers and sends it to the others, which route it to theirs. Messages carry the
  sender's node id and a node ignores its own, so each subscriber gets it exactly once;
  one sender's messages keep their order on the bus, so publisher order holds.
- *Liveness*: every node sends ``Heartbeat`` regularly; a node not heard of for the node
  timeout is dead (``ClusterState.expire``): its state is dropped and its members leave.
  A node starting (or reconnecting) sends ``Hello``, and every node answers by sending its
  whole state (``Resync``) so the newcomer sees existing rosters, counts and cached events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .presence import Member

__all__ = [
    "CacheStore",
    "ChannelState",
    "ClusterMessage",
    "ClusterState",
    "Goodbye",
    "Heartbeat",
    "Hello",
    "MemberChange",
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


@dataclass(frozen=True)
class MemberChange:
    """A user came to (``added``) or left the whole cluster's view of a presence channel:
    this node's own subscribers are due ``member_added`` or ``member_removed``."""

    channel: str
    member: Member
    added: bool


@dataclass
class _Node:
    last_heard: float
    channels: dict[str, ChannelState] = field(default_factory=dict)


LocalMembers = Callable[[str], Collection[str]]
"""This node's own members of a presence channel (user keys)."""


class ClusterState:
    """What this node has heard from every other live node.

    It is the registry's ``Elsewhere``: counts, occupied channels and members of the
    other nodes.
    """

    def __init__(self, node: str) -> None:
        self.node = node
        self._nodes: dict[str, _Node] = {}

    @property
    def nodes(self) -> tuple[str, ...]:
        """The other nodes heard of and not yet expired, in order of first contact."""
        return tuple(self._nodes)

    def heard(self, node: str, now: float) -> bool:
        """Note a sign of life; return whether the node was unknown until now."""
        entry = self._nodes.get(node)
        if entry is None:
            self._nodes[node] = _Node(now)
            return True
        entry.last_heard = now
        return False

    def apply(self, state: ChannelState, now: float, local: LocalMembers) -> list[MemberChange]:
        """Replace what ``state.node`` holds on ``state.channel``; return the member events
        due to this node's subscribers."""
        self.heard(state.node, now)
        channel = state.channel
        before = self._present(channel, local)
        channels = self._nodes[state.node].channels
        if state.subscriptions or state.members:
            channels[channel] = state
        else:
            channels.pop(channel, None)
        return self._changes(channel, before, self._present(channel, local))

    def forget(self, node: str, local: LocalMembers) -> list[MemberChange]:
        """Drop a node (gone or dead) and everything it held."""
        entry = self._nodes.get(node)
        if entry is None:
            return []
        before = {channel: self._present(channel, local) for channel in entry.channels}
        del self._nodes[node]
        changes: list[MemberChange] = []
        for channel, present in before.items():
            changes += self._changes(channel, present, self._present(channel, local))
        return changes

    def silent(self, now: float, timeout: float) -> list[str]:
        """The nodes not heard of for ``timeout`` seconds: dead, to be forgotten."""
        return [node for node, entry in self._nodes.items() if now - entry.last_heard >= timeout]

    def held(self, node: str) -> list[str]:
        """The channels ``node`` has subscribers on."""
        entry = self._nodes.get(node)
        return [] if entry is None else [c for c, s in entry.channels.items() if s.subscriptions]

    def sends_for_the_departed(self) -> bool:
        """Whether this node sends the webhooks a departed node can no longer send: the
        node with the smallest id among those alive does, so they go once."""
        return self.node == min((self.node, *self._nodes))

    # Elsewhere: what the registry asks.

    def subscription_count(self, channel: str) -> int:
        return sum(
            state.subscriptions
            for entry in self._nodes.values()
            if (state := entry.channels.get(channel)) is not None
        )

    def channels(self) -> Iterable[str]:
        occupied: dict[str, None] = {}
        for entry in self._nodes.values():
            occupied.update((name, None) for name, s in entry.channels.items() if s.subscriptions)
        return list(occupied)

    def members(self, channel: str) -> Mapping[str, Member]:
        members: dict[str, Member] = {}
        for entry in self._nodes.values():
            state = entry.channels.get(channel)
            if state is not None:
                for remote in state.members:
                    members.setdefault(remote.member.key, remote.member)
        return members

    # Helpers.

    def _present(self, channel: str, local: LocalMembers) -> dict[str, Member | None]:
        """Users connected to ``channel`` anywhere; ``None`` for those connected here, whose
        joins and leaves this node's own connections announce."""
        present: dict[str, Member | None] = dict.fromkeys(local(channel))
        for key, member in self.members(channel).items():
            present.setdefault(key, member)
        return present

    @staticmethod
    def _changes(
        channel: str, before: Mapping[str, Member | None], after: Mapping[str, Member | None]
    ) -> list[MemberChange]:
        changes = [
            MemberChange(channel, member, False)
            for key, member in before.items()
            if key not in after and member is not None
        ]
        changes += [
            MemberChange(channel, member, True)
            for key, member in after.items()
            if key not in before and member is not None
        ]
        return changes
