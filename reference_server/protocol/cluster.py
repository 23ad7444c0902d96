"""Several nodes, one server: what a node knows of the others, and what their messages mean.

Nodes share nothing but a message bus (Redis pub/sub, ``redis_adapter.py``) and its
messages (``cluster_messages.py``). Each node keeps its own connections in its
``ChannelRegistry`` and tells the others about them; this module
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
- *Occupancy and membership webhooks follow the bus's order.* Redis hands every node the
  messages in one and the same order, a node's own included. Each node replays all channel
  states in that order (``ClusterState.ordered``) and sends ``channel_occupied``,
  ``channel_vacated``, ``member_added`` and ``member_removed`` only for the transitions its
  own messages make there; so exactly one node sends each, even when two nodes change
  the same channel at the same moment. (The core's own decision, made before the others
  could know, is not used in a cluster: ``bus_decides``.)
- *Liveness*: every node sends ``Heartbeat`` regularly; a node not heard of for the node
  timeout is dead (``ClusterState.silent``): its state is dropped and its members leave.
  A node starting (or reconnecting) sends ``Hello``, and every node answers by sending its
  whole state again, so the newcomer sees existing rosters, counts and cached events.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from . import webhooks
from .cluster_messages import ChannelState
from .presence import Member

__all__ = ["ClusterState", "LocalMembers", "MemberChange", "bus_decides"]


@dataclass(frozen=True)
class MemberChange:
    """A user came to (``added``) or left the whole cluster's view of a presence channel:
    this node's own subscribers are due ``member_added`` or ``member_removed``."""

    channel: str
    member: Member
    added: bool


#: The webhooks a cluster sends from the bus's order of channel states, not from the core.
_BUS_ORDERED = frozenset(
    {
        webhooks.CHANNEL_OCCUPIED,
        webhooks.CHANNEL_VACATED,
        webhooks.MEMBER_ADDED,
        webhooks.MEMBER_REMOVED,
    }
)


def bus_decides(event: webhooks.WebhookEvent) -> bool:
    """Whether, in a cluster, ``event`` is sent from the bus's order (``ClusterState
    .ordered``) rather than as the core decided it."""
    return event.name in _BUS_ORDERED


def _transitions(
    channel: str,
    before: tuple[int, dict[str, Member]],
    after: tuple[int, dict[str, Member]],
) -> list[webhooks.WebhookEvent]:
    """Occupancy and membership webhooks between two whole-cluster views of a channel, in
    the order one server sends them (occupied first, vacated last)."""
    (count_before, members_before), (count_after, members_after) = before, after
    events = []
    if not count_before and count_after:
        events.append(webhooks.channel_occupied(channel))
    events += [
        webhooks.member_removed(channel, k) for k in members_before if k not in members_after
    ]
    events += [webhooks.member_added(channel, k) for k in members_after if k not in members_before]
    if count_before and not count_after:
        events.append(webhooks.channel_vacated(channel))
    return events


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
        #: Every node's channel states, this node's own included, applied in the bus's
        #: order: node -> channel -> state.
        self._ordered: dict[str, dict[str, ChannelState]] = {}

    def ordered(self, state: ChannelState) -> list[webhooks.WebhookEvent]:
        """Apply a state (any node's, this node's own echo included) in the bus's order;
        return the webhooks this node must send: those its own message causes."""
        channel = state.channel
        before = self._cluster_view(channel)
        held = self._ordered.setdefault(state.node, {})
        if state.subscriptions or state.members:
            held[channel] = state
        else:
            held.pop(channel, None)
        after = self._cluster_view(channel)
        return _transitions(channel, before, after) if state.node == self.node else []

    def _cluster_view(self, channel: str) -> tuple[int, dict[str, Member]]:
        count, members = 0, dict[str, Member]()
        for held in self._ordered.values():
            state = held.get(channel)
            if state is not None:
                count += state.subscriptions
                for remote in state.members:
                    members.setdefault(remote.member.key, remote.member)
        return count, members

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

    def forget_ordered(self, node: str) -> list[webhooks.WebhookEvent]:
        """Drop a departed node from the bus-ordered view; return the webhooks it can no
        longer send (``channel_vacated``, ``member_removed``), for one node to send
        (``sends_for_the_departed``)."""
        channels = list(self._ordered.get(node, {}))
        before = {channel: self._cluster_view(channel) for channel in channels}
        self._ordered.pop(node, None)
        events = []
        for channel in channels:
            events += _transitions(channel, before[channel], self._cluster_view(channel))
        return events

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

    def rejoined(self, now: float) -> None:
        """This node is back on the bus after losing it: it heard nobody meanwhile, through
        no fault of theirs, so every node gets a full timeout from now to be heard again."""
        for entry in self._nodes.values():
            entry.last_heard = now

    def silent(self, now: float, timeout: float) -> list[str]:
        """The nodes not heard of for ``timeout`` seconds: dead, to be forgotten."""
        return [node for node, entry in self._nodes.items() if now - entry.last_heard >= timeout]

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
