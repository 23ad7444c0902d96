"""The cluster's pure rules: what a node knows of the others, and what each message changes
for its own clients (no Redis, no sockets)."""

from __future__ import annotations

import pytest

from reference_server.protocol import webhooks
from reference_server.protocol.channels import Cached, ChannelRegistry, Relay, Touched
from reference_server.protocol.cluster import ClusterState, MemberChange, bus_decides
from reference_server.protocol.cluster_messages import (
    CacheStore,
    ChannelState,
    Goodbye,
    Heartbeat,
    Hello,
    RelayFrame,
    RemoteMember,
    Sync,
    Terminate,
    decode,
    encode,
)
from reference_server.protocol.presence import Member

ALICE = Member("alice", {"name": "A"})
BOB = Member(42)


def nobody(channel: str) -> list[str]:
    return []


def state(node: str, channel: str, count: int, *members: tuple[Member, int]) -> ChannelState:
    return ChannelState(node, channel, count, tuple(RemoteMember(m, n) for m, n in members))


@pytest.mark.parametrize(
    "message",
    [
        state("n1", "presence-a", 3, (ALICE, 2), (BOB, 1)),
        state("n1", "a", 0),
        RelayFrame("n1", "#server-to-user-7", '{"event":"e"}', "1.2"),
        RelayFrame("n1", "a", "text"),
        CacheStore("n1", "cache-a", "e", "d", 1.5),
        Terminate("n1", "alice"),
        Heartbeat("n1"),
        Hello("n1"),
        Goodbye("n1"),
        Sync("n1", "7"),
    ],
)
def test_messages_survive_the_wire(message: object) -> None:
    assert decode(encode(message)) == message  # type: ignore[arg-type]
    assert decode(encode(message).encode()) == message  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"k":"nope","node":"n"}',
        '{"k":"heartbeat"}',
        '{"k":"state","node":"n","channel":"a","subscriptions":-1}',
        '{"k":"state","node":"n","channel":"a","subscriptions":1,"members":[["x",null]]}',
        '{"k":"relay","node":"n","channel":"a"}',
        '{"k":"cache","node":"n","channel":"a","name":"e","data":"d","age":-1}',
    ],
)
def test_a_malformed_message_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError, match="cluster"):
        decode(text)


def test_counts_and_channels_add_up_over_nodes() -> None:
    cluster = ClusterState("me")
    cluster.apply(state("n1", "a", 2), 0.0, nobody)
    cluster.apply(state("n2", "a", 1), 0.0, nobody)
    cluster.apply(state("n2", "b", 1), 0.0, nobody)
    assert cluster.subscription_count("a") == 3
    assert cluster.subscription_count("c") == 0
    assert list(cluster.channels()) == ["a", "b"]
    # A node's state replaces what it held: never added up twice.
    cluster.apply(state("n1", "a", 2), 0.0, nobody)
    assert cluster.subscription_count("a") == 3
    cluster.apply(state("n2", "b", 0), 0.0, nobody)
    assert list(cluster.channels()) == ["a"]
    assert cluster.nodes == ("n1", "n2")


def test_member_events_follow_the_first_and_last_connection_anywhere() -> None:
    cluster = ClusterState("me")
    joined = cluster.apply(state("n1", "presence-a", 1, (ALICE, 1)), 0.0, nobody)
    assert joined == [MemberChange("presence-a", ALICE, added=True)]
    # The same user on a second node: not a new member.
    assert cluster.apply(state("n2", "presence-a", 1, (ALICE, 1)), 0.0, nobody) == []
    assert cluster.apply(state("n1", "presence-a", 0), 0.0, nobody) == []
    left = cluster.apply(state("n2", "presence-a", 0), 0.0, nobody)
    assert left == [MemberChange("presence-a", ALICE, added=False)]
    assert cluster.members("presence-a") == {}


def test_a_user_connected_here_is_never_announced_from_elsewhere() -> None:
    cluster = ClusterState("me")

    def alice_here(channel: str) -> list[str]:
        return ["alice"]

    assert cluster.apply(state("n1", "presence-a", 1, (ALICE, 1)), 0.0, alice_here) == []
    assert cluster.apply(state("n1", "presence-a", 0), 0.0, alice_here) == []


def test_silent_nodes_expire_and_their_members_leave() -> None:
    cluster = ClusterState("me")
    cluster.apply(state("n1", "presence-a", 1, (ALICE, 1)), 0.0, nobody)
    cluster.apply(state("n2", "presence-a", 1, (BOB, 1)), 0.0, nobody)
    cluster.heard("n2", 4.0)
    assert cluster.silent(5.0, 5.0) == ["n1"]
    assert cluster.forget("n1", nobody) == [MemberChange("presence-a", ALICE, added=False)]
    assert cluster.nodes == ("n2",)
    assert cluster.subscription_count("presence-a") == 1
    assert cluster.forget("n2", nobody) == [MemberChange("presence-a", BOB, added=False)]
    assert cluster.forget("n2", nobody) == []


def test_heard_says_whether_a_node_is_new() -> None:
    cluster = ClusterState("me")
    assert cluster.heard("n1", 0.0)
    assert not cluster.heard("n1", 1.0)


def test_the_smallest_live_node_id_speaks_for_the_departed() -> None:
    assert ClusterState("b").sends_for_the_departed()
    cluster = ClusterState("b")
    cluster.heard("c", 0.0)
    assert cluster.sends_for_the_departed()
    cluster.heard("a", 0.0)
    assert not cluster.sends_for_the_departed()


def test_a_registry_in_a_cluster_answers_for_every_node() -> None:
    cluster = ClusterState("me")
    registry = ChannelRegistry()
    registry.join_cluster(cluster)
    cluster.apply(state("n1", "presence-a", 1, (ALICE, 1)), 0.0, nobody)
    cluster.apply(state("n1", "b", 2), 0.0, nobody)
    registry.subscribe("b", "1.1")
    assert registry.subscription_count("b") == 3
    assert registry.subscribers("b") == ["1.1"]  # routing stays local
    assert registry.occupied() == ["b", "presence-a"]
    # alice is already elsewhere: her first connection here is not a new member...
    joined = registry.presence.join("presence-a", "1.1", ALICE)
    assert not joined.first
    registry.presence.join("presence-a", "1.2", BOB)
    assert registry.presence.get("presence-a").roster()["ids"] == ["alice", "42"]
    assert list(registry.presence.local("presence-a").members) == ["alice", "42"]
    # ... nor is her leaving here her last.
    left = registry.presence.leave("presence-a", "1.1")
    assert left is not None
    assert not left.last
    assert registry.presence.get("presence-a").roster()["ids"] == ["42", "alice"]
    left = registry.presence.leave("presence-a", "1.2")
    assert left is not None
    assert left.last


def test_a_registry_keeps_notes_only_in_a_cluster() -> None:
    alone = ChannelRegistry()
    alone.subscribe("a", "1.1")
    alone.note(Relay("a", "text"))
    assert alone.take_notes() == []
    registry = ChannelRegistry()
    registry.join_cluster(ClusterState("me"))
    registry.subscribe("a", "1.1")
    registry.note(Relay("a", "text", "1.1"))
    registry.note(Cached("cache-a", "e", "d"))
    registry.unsubscribe("a", "1.1")
    assert registry.take_notes() == [
        Touched("a"),
        Relay("a", "text", "1.1"),
        Cached("cache-a", "e", "d"),
        Touched("a"),
    ]
    assert registry.take_notes() == []


def test_relayed_frames_go_to_subscribers_or_to_the_user() -> None:
    registry = ChannelRegistry()
    registry.subscribe("a", "1.1")
    registry.subscribe("a", "1.2")
    registry.users.sign_in("1.3", "7")
    registry.users.sign_in("1.4", "7")
    assert registry.relay_targets("a", "1.1") == ("1.2",)
    assert registry.relay_targets("#server-to-user-7", "1.4") == ("1.3",)
    assert registry.relay_targets("#server-to-user-8", None) == ()


def test_each_webhook_goes_from_the_node_whose_message_made_the_change() -> None:
    cluster = ClusterState("me")
    mine = state("me", "presence-a", 1, (ALICE, 1))
    theirs = state("n1", "presence-a", 1, (BOB, 1))
    assert cluster.ordered(theirs) == []  # n1's own to send
    assert cluster.ordered(mine) == [webhooks.member_added("presence-a", "alice")]
    assert cluster.ordered(state("n1", "presence-a", 0)) == []
    assert cluster.ordered(state("me", "presence-a", 0)) == [
        webhooks.member_removed("presence-a", "alice"),
        webhooks.channel_vacated("presence-a"),
    ]
    assert cluster.ordered(state("me", "b", 2)) == [webhooks.channel_occupied("b")]


def test_a_departed_nodes_webhooks_are_computed_for_one_node_to_send() -> None:
    cluster = ClusterState("me")
    cluster.ordered(state("me", "presence-a", 1, (ALICE, 1)))
    cluster.ordered(state("n1", "presence-a", 1, (BOB, 1), (ALICE, 1)))
    cluster.ordered(state("n1", "b", 1))
    assert cluster.forget_ordered("n1") == [
        webhooks.member_removed("presence-a", "42"),
        webhooks.channel_vacated("b"),
    ]
    assert cluster.forget_ordered("n1") == []


def test_only_occupancy_and_membership_webhooks_follow_the_bus() -> None:
    assert bus_decides(webhooks.channel_occupied("a"))
    assert bus_decides(webhooks.member_removed("presence-a", "x"))
    assert not bus_decides(webhooks.cache_miss("cache-a"))


def test_a_node_back_on_the_bus_gives_every_node_a_full_timeout() -> None:
    cluster = ClusterState("me")
    cluster.heard("n1", 0.0)
    assert cluster.silent(10.0, 5.0) == ["n1"]
    cluster.rejoined(10.0)
    assert cluster.silent(14.0, 5.0) == []
    assert cluster.silent(15.0, 5.0) == ["n1"]
