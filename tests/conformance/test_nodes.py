"""A target's ``nodes:``: parsed with one clear error per mistake, the cluster capabilities
derived (never declared), and a check's ``node: K`` picked modulo the cluster's size."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.errors import UsageError
from conformance.nodes import Node, capability_met, derived_capabilities, node_at
from conformance.options import RunOptions
from conformance.target import Target, target_from_mapping

CREDENTIALS = {"app_id": "1", "key": "k", "secret": "s"}
NODE_A = {"ws_url": "ws://127.0.0.1:7001", "http_url": "http://127.0.0.1:7001"}
NODE_B = {"ws_url": "ws://127.0.0.1:7002/", "http_url": "http://127.0.0.1:7002"}
NODE_C = {"ws_url": "wss://c.example:443", "http_url": "https://c.example", "stop": "kill 42"}


def cluster(*nodes: dict[str, Any], **more: Any) -> Target:
    return target_from_mapping({**CREDENTIALS, "nodes": list(nodes), **more})


def test_the_first_node_is_the_targets_own_address_and_each_node_is_kept() -> None:
    target = cluster(NODE_A, NODE_B)
    assert (target.ws_url, target.http_url) == (NODE_A["ws_url"], NODE_A["http_url"])
    assert target.nodes == (
        Node("ws://127.0.0.1:7001", "http://127.0.0.1:7001"),
        Node("ws://127.0.0.1:7002", "http://127.0.0.1:7002"),  # trailing slash dropped
    )
    assert target.capabilities == {"cluster"}


def test_a_stop_command_on_the_last_node_adds_node_control() -> None:
    assert cluster(NODE_A, NODE_C).capabilities == {"cluster", "node_control"}
    # Only the last node's command is used: a stop on another node does not make it stoppable.
    assert cluster(NODE_C | {"ws_url": "ws://x:1"}, NODE_A).capabilities == {"cluster"}


def test_one_node_is_a_single_server_without_cluster_capabilities() -> None:
    target = cluster(NODE_A, capabilities=["client_events"])
    assert target.capabilities == {"client_events"}
    assert target.ws_url == NODE_A["ws_url"]


def test_the_wire_carries_the_nodes() -> None:
    target = cluster(NODE_A, NODE_C)
    assert Target.from_wire(target.to_wire()) == target
    assert target.public()["nodes"][1] == {
        "ws_url": "wss://c.example:443",
        "http_url": "https://c.example",
        "stop": "kill 42",
    }


def test_on_node_counts_from_zero_modulo_the_size_and_minus_one_is_the_last() -> None:
    target = cluster(NODE_A, NODE_B, NODE_C)
    assert target.on_node(1).ws_url == "ws://127.0.0.1:7002"
    assert target.on_node(3).ws_url == NODE_A["ws_url"]
    assert target.on_node(-1).http_url == "https://c.example"
    assert target.on_node(2).app_id == "1"  # the same app everywhere
    two = cluster(NODE_A, NODE_B)
    assert [two.on_node(n).ws_url for n in (0, 1, 2)] == [
        NODE_A["ws_url"],
        "ws://127.0.0.1:7002",
        NODE_A["ws_url"],
    ]


def test_a_target_without_nodes_cannot_pick_one() -> None:
    with pytest.raises(UsageError, match="names no nodes"):
        node_at((), 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"nodes": []}, "nodes must be a non-empty list"),
        ({"nodes": "ws://x"}, "nodes must be a non-empty list"),
        ({"nodes": ["ws://x"]}, r"nodes\[0\] must be a mapping"),
        ({"nodes": [NODE_A, {"ws_url": "ws://y:1"}]}, r"nodes\[1\] is missing 'http_url'"),
        ({"nodes": [NODE_A | {"weight": 2}]}, r"nodes\[0\] has unknown field\(s\): weight"),
        ({"nodes": [NODE_A | {"ws_url": "http://x:1"}]}, r"nodes\[0\]\.ws_url must be a ws or wss"),
        ({"nodes": [NODE_A | {"stop": ""}]}, r"nodes\[0\]\.stop must be a shell command"),
        ({"nodes": [NODE_A, NODE_A]}, r"nodes\[1\]\.ws_url is the same as nodes\[0\]'s"),
        ({"nodes": [NODE_A], "ws_url": "ws://x:1"}, "gives ws_url in each node only"),
        ({"nodes": [NODE_A, NODE_B], "capabilities": ["cluster"]}, "follows from the target's"),
        ({"capabilities": ["node_control"], **NODE_A}, "node_control is not declared"),
    ],
)
def test_every_mistake_is_one_clear_line(data: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        target_from_mapping({**CREDENTIALS, **data})


def test_the_derived_capabilities_need_two_nodes() -> None:
    one = (Node("ws://a:1", "http://a:1"),)
    two = (*one, Node("ws://b:1", "http://b:1"))
    assert derived_capabilities(one, suite_controls_nodes=True) == frozenset()
    assert derived_capabilities(two, suite_controls_nodes=False) == {"cluster"}
    assert derived_capabilities(two, suite_controls_nodes=True) == {"cluster", "node_control"}


@pytest.mark.parametrize(
    ("needed", "declared", "met"),
    [
        (None, set(), True),
        ("cluster", {"cluster"}, True),
        ("cluster", set(), False),
        ("cluster+client_events", {"cluster"}, False),
        ("cluster+client_events", {"client_events"}, False),
        ("cluster+client_events", {"client_events", "cluster", "webhooks"}, True),
    ],
)
def test_a_joined_capability_needs_every_part(
    needed: str | None, declared: set[str], met: bool
) -> None:
    assert capability_met(needed, declared) is met


def test_bundled_nodes_exclude_a_target_of_ones_own() -> None:
    with pytest.raises(UsageError, match="--bundled-nodes starts a cluster of its own"):
        RunOptions(bundled_nodes=2, target_file="t.yaml")
    assert "--bundled-nodes 3" in RunOptions(bundled_nodes=3).replay_prefix()
