"""One node's side of a cluster, whatever carries the messages: what to tell the other
nodes after a local change, and what a message from them means for this node's clients.

The rules live in ``protocol/cluster.py`` (``ClusterState``); this module turns the
registry's notes into messages and applies incoming messages through ``Fanout``. The bus
itself (Redis pub/sub) is ``redis_adapter.py``: it calls ``receive`` for each message from
another node, ``tick`` on a timer, and sends what ``send`` is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from .logs import log
from .peers import Fanout
from .protocol import frames
from .protocol.channels import Cached, ChannelRegistry, Delivery, Relay, Touched
from .protocol.cluster import ClusterState, MemberChange
from .protocol.cluster_messages import (
    CacheStore,
    ChannelState,
    ClusterMessage,
    Goodbye,
    Heartbeat,
    Hello,
    RelayFrame,
    RemoteMember,
    Sync,
    Terminate,
)

__all__ = ["ClusterLink"]


class ClusterLink:
    """Keeps this node and the others in step.

    Args:
        send: hands one message to the bus (never blocks; the bus keeps the order).
        clock: the loop's clock, for liveness and the cache's lifetime.
    """

    def __init__(
        self,
        node: str,
        registry: ChannelRegistry,
        fanout: Fanout,
        *,
        node_timeout: float,
        send: Callable[[ClusterMessage], None],
        clock: Callable[[], float],
    ) -> None:
        self.node = node
        self.registry = registry
        self.fanout = fanout
        self.node_timeout = node_timeout
        self.state = ClusterState(node)
        self._send = send
        self._clock = clock
        registry.join_cluster(self.state)

    # What the other nodes must hear.

    def flush(self) -> None:
        """Send what the registry noted since the last flush, in order; a channel's state
        goes once per flush, as it is after all of the flush's changes."""
        sent: set[str] = set()
        for note in self.registry.take_notes():
            match note:
                case Touched(channel):
                    if channel not in sent:
                        sent.add(channel)
                        self._send(self.channel_state(channel))
                case Relay(channel, text, exclude):
                    self._send(RelayFrame(self.node, channel, text, exclude))
                case Cached(channel, name, data):
                    self._send(CacheStore(self.node, channel, name, data))

    def terminate_elsewhere(self, user_id: str) -> None:
        self._send(Terminate(self.node, user_id))

    def channel_state(self, channel: str) -> ChannelState:
        """This node's subscriptions and members on ``channel``."""
        presence = self.registry.presence.local(channel)
        members = tuple(
            RemoteMember(member, len(presence.connections[key]))
            for key, member in presence.members.items()
        )
        return ChannelState(self.node, channel, len(self.registry.subscribers(channel)), members)

    def send_everything(self) -> None:
        """Send this node's whole state: every channel it holds and every cached event."""
        channels = dict.fromkeys(entry.name for entry in self.registry)
        channels.update(dict.fromkeys(self.registry.presence))
        for channel in channels:
            self._send(self.channel_state(channel))
        now = self._clock()
        for channel, event in self.registry.cache.live(now):
            age = max(0.0, now - event.stored_at)
            self._send(CacheStore(self.node, channel, event.name, event.data, age))

    def hello(self) -> None:
        """(Re)joined: ask every node for its state, and give ours."""
        self.state.rejoined(self._clock())
        self._send(Hello(self.node))
        self.send_everything()

    def goodbye(self) -> None:
        self._send(Goodbye(self.node))

    # What the other nodes said.

    def receive(self, message: ClusterMessage) -> None:
        """Apply one message; this node's own (the bus echoes them) are ignored."""
        if message.node == self.node:
            if isinstance(message, ChannelState):
                # Our own state, in the bus's order: the webhooks are ours to send.
                self.fanout.submit_webhooks(self.state.ordered(message))
            return
        now = self._clock()
        if isinstance(message, Goodbye):
            log(logging.INFO, "cluster_node_left", node=message.node)
            self._drop(message.node)
            return
        if self.state.heard(message.node, now):
            log(logging.INFO, "cluster_node_joined", node=message.node)
            if not isinstance(message, Hello):
                # A node we had given up on (or missed the Hello of): resynchronise all.
                self.hello()
        match message:
            case Hello():
                self.send_everything()
            case ChannelState():
                self.state.ordered(message)
                self._announce(self.state.apply(message, now, self._local_members))
            case RelayFrame(_, channel, text, exclude):
                targets = self.registry.relay_targets(channel, exclude)
                if targets:
                    self.fanout.route([Delivery(text, targets)])
            case CacheStore(_, channel, name, data, age):
                self.registry.cache.store(channel, name, data, now - age)
            case Terminate(_, user_id):
                self.fanout.terminate(self.registry.users.sockets_of(user_id))
            case Heartbeat() | Sync():
                pass

    def tick(self) -> None:
        """Send a heartbeat and give up on the nodes silent for the node timeout."""
        self._send(Heartbeat(self.node))
        for node in self.state.silent(self._clock(), self.node_timeout):
            log(logging.WARNING, "cluster_node_lost", node=node, timeout=self.node_timeout)
            self._drop(node)

    # Helpers.

    def _drop(self, node: str) -> None:
        """Forget a node that left or died: its members leave this node's rosters, and one
        node sends the webhooks the departed one cannot (``member_removed`` for its
        members, ``channel_vacated`` for the channels nobody is left on)."""
        self._announce(self.state.forget(node, self._local_members))
        events = self.state.forget_ordered(node)
        if self.state.sends_for_the_departed():
            self.fanout.submit_webhooks(events)

    def _local_members(self, channel: str) -> Collection[str]:
        return self.registry.presence.local(channel).members.keys()

    def _announce(self, changes: list[MemberChange]) -> None:
        """member_added / member_removed to this node's subscribers of each channel."""
        deliveries = []
        for change in changes:
            member = change.member
            text = (
                frames.member_added(change.channel, member.user_id, member.user_info)
                if change.added
                else frames.member_removed(change.channel, member.user_id)
            )
            targets = self.registry.targets(change.channel)
            if targets:
                deliveries.append(Delivery(text, targets))
        if deliveries:
            self.fanout.route(deliveries)
