"""A node's side of the cluster without a bus: the messages its changes become, and the
frames the other nodes' messages become for its clients."""

from __future__ import annotations

import json
from collections.abc import Iterable

from reference_server.cluster_link import ClusterLink
from reference_server.peers import Fanout
from reference_server.protocol.channels import ChannelRegistry, Delivery
from reference_server.protocol.cluster_messages import (
    CacheStore,
    ChannelState,
    ClusterMessage,
    Goodbye,
    Heartbeat,
    Hello,
    RelayFrame,
    RemoteMember,
    Terminate,
)
from reference_server.protocol.http_events import TriggerEvent
from reference_server.protocol.http_publish import Publisher
from reference_server.protocol.presence import Member
from reference_server.protocol.webhooks import (
    WebhookEvent,
    channel_occupied,
    channel_vacated,
    member_added,
    member_removed,
)


class RecordingFanout(Fanout):
    """Routes nowhere; keeps what it was asked to route and to terminate."""

    def __init__(self) -> None:
        super().__init__(None)
        self.routed: list[Delivery] = []
        self.terminated: list[str] = []
        self.webhooks: list[WebhookEvent] = []

    def route(self, outgoing: list[Delivery]) -> int:
        self.routed += outgoing
        return super().route(outgoing)

    def terminate(self, socket_ids: Iterable[str]) -> None:
        self.terminated += socket_ids

    def submit_webhooks(self, events: list[WebhookEvent]) -> None:
        self.webhooks += events


class Node:
    def __init__(self, name: str = "me", now: float = 100.0) -> None:
        self.registry = ChannelRegistry()
        self.fanout = RecordingFanout()
        self.sent: list[ClusterMessage] = []
        self.now = now
        self.link = ClusterLink(
            name,
            self.registry,
            self.fanout,
            node_timeout=5.0,
            send=self.sent.append,
            clock=lambda: self.now,
        )

    def echo(self) -> None:
        """What the bus does: hand this node its own messages back, in order."""
        self.link.flush()
        for message in list(self.sent):
            self.link.receive(message)

    def events(self) -> list[tuple[str, str | None, tuple[str, ...]]]:
        return [
            (json.loads(d.text)["event"], json.loads(d.text).get("channel"), d.socket_ids)
            for d in self.fanout.routed
        ]


def test_local_changes_become_one_state_per_channel_then_relays_in_order() -> None:
    node = Node()
    node.registry.subscribe("presence-a", "1.1")
    node.registry.presence.join("presence-a", "1.1", Member("alice"))
    node.registry.subscribe("presence-a", "1.2")
    node.registry.presence.join("presence-a", "1.2", Member("alice"))
    node.link.flush()
    assert node.sent == [
        ChannelState("me", "presence-a", 2, (RemoteMember(Member("alice"), 2),)),
    ]


def test_a_publish_and_a_cache_store_are_relayed() -> None:
    node = Node()
    publisher = Publisher(node.registry)
    event = TriggerEvent("e", "d", ("cache-a", "b"), socket_id="1.9")
    publisher.store_in_cache(event, 0.0)
    node.fanout.route(publisher.deliveries(event))
    node.link.flush()
    assert node.sent == [
        CacheStore("me", "cache-a", "e", "d"),
        RelayFrame("me", "cache-a", '{"event":"e","channel":"cache-a","data":"d"}', "1.9"),
        RelayFrame("me", "b", '{"event":"e","channel":"b","data":"d"}', "1.9"),
    ]


def test_other_nodes_members_are_announced_to_local_subscribers() -> None:
    node = Node()
    node.registry.subscribe("presence-a", "1.1")
    node.registry.presence.join("presence-a", "1.1", Member("bob"))
    node.sent.clear()
    joined = ChannelState("n1", "presence-a", 1, (RemoteMember(Member("alice", {"x": 1}), 1),))
    node.link.receive(joined)
    node.link.receive(ChannelState("n1", "presence-a", 0))
    assert node.events() == [
        ("pusher_internal:member_added", "presence-a", ("1.1",)),
        ("pusher_internal:member_removed", "presence-a", ("1.1",)),
    ]
    # n1 was new and did not say Hello: this node asks every node for its state again.
    assert isinstance(node.sent[0], Hello)


def test_relays_terminates_and_cache_stores_are_applied_here() -> None:
    node = Node()
    node.link.receive(Hello("n1"))
    node.registry.subscribe("a", "1.1")
    node.registry.subscribe("a", "1.2")
    node.registry.users.sign_in("1.3", "alice")
    node.link.receive(RelayFrame("n1", "a", '{"event":"e","channel":"a"}', "1.2"))
    node.link.receive(RelayFrame("n1", "nobody-here", '{"event":"e"}'))
    node.link.receive(Terminate("n1", "alice"))
    node.link.receive(CacheStore("n1", "cache-a", "e", "d", age=10.0))
    assert node.events() == [("e", "a", ("1.1",))]
    assert node.fanout.terminated == ["1.3"]
    cached = node.registry.cache.get("cache-a", node.now)
    assert cached is not None
    assert cached.stored_at == node.now - 10.0


def test_own_messages_are_ignored() -> None:
    node = Node()
    node.registry.subscribe("a", "1.1")
    node.link.receive(RelayFrame("me", "a", '{"event":"e","channel":"a"}'))
    node.link.receive(ChannelState("me", "a", 5))
    assert node.fanout.routed == []
    assert node.registry.subscription_count("a") == 1


def test_a_hello_is_answered_with_the_whole_state() -> None:
    node = Node()
    node.registry.subscribe("a", "1.1")
    node.registry.cache.store("cache-b", "e", "d", node.now - 3.0)
    node.registry.take_notes()
    node.link.receive(Hello("n1"))
    assert node.sent == [ChannelState("me", "a", 1), CacheStore("me", "cache-b", "e", "d", 3.0)]


def test_a_silent_node_is_given_up_and_a_leaving_one_forgotten_at_once() -> None:
    node = Node()
    node.registry.subscribe("presence-a", "1.1")
    node.registry.presence.join("presence-a", "1.1", Member("bob"))
    alice = (RemoteMember(Member("alice"), 1),)
    carol = (RemoteMember(Member("carol"), 1),)
    node.link.receive(Hello("n1"))
    node.link.receive(ChannelState("n1", "presence-a", 1, alice))
    node.link.receive(Hello("n2"))
    node.link.receive(ChannelState("n2", "presence-a", 1, carol))
    node.fanout.routed.clear()
    node.now += 4.0
    node.link.receive(Heartbeat("n2"))
    node.now += 1.0
    node.link.tick()
    assert node.events() == [("pusher_internal:member_removed", "presence-a", ("1.1",))]
    assert node.link.state.nodes == ("n2",)
    assert isinstance(node.sent[-1], Heartbeat)
    node.link.receive(Goodbye("n2"))
    assert node.link.state.nodes == ()
    assert len(node.events()) == 2


def test_the_smallest_live_node_sends_the_webhooks_of_a_dead_node() -> None:
    for name, speaks in (("a", True), ("z", False)):
        node = Node(name)
        node.registry.subscribe("presence-p", "1.1")
        node.registry.presence.join("presence-p", "1.1", Member("bob"))
        node.echo()
        node.fanout.webhooks.clear()
        alice = (RemoteMember(Member("alice"), 1),)
        node.link.receive(Hello("n1"))
        node.link.receive(ChannelState("n1", "presence-p", 1, alice))
        node.link.receive(ChannelState("n1", "lonely", 2))
        node.link.receive(Hello("m"))
        node.now += 5.0
        node.link.receive(Heartbeat("m"))  # m lives on; n1 is silent
        node.link.tick()
        assert node.link.state.nodes == ("m",)
        expected = [member_removed("presence-p", "alice"), channel_vacated("lonely")]
        assert node.fanout.webhooks == (expected if speaks else [])


def test_occupancy_and_membership_webhooks_follow_the_bus_order() -> None:
    for first_on_the_bus, sends in (("n1", False), ("me", True)):
        node = Node()
        node.registry.subscribe("presence-p", "1.1")
        node.registry.presence.join("presence-p", "1.1", Member("bob"))
        node.link.flush()
        (mine,) = node.sent
        theirs = ChannelState("n1", "presence-p", 1, (RemoteMember(Member("bob"), 1),))
        for message in (theirs, mine) if first_on_the_bus == "n1" else (mine, theirs):
            node.link.receive(message)
        first = [channel_occupied("presence-p"), member_added("presence-p", "bob")]
        assert node.fanout.webhooks == (first if sends else [])
