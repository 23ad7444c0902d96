"""A simulation against a cluster, without sockets: which node each tab starts on and tries
next, which nodes the publisher posts through, which scenarios a cluster cannot carry out, and
what the tabs of a stopped node went through, from hand-built lives."""

from __future__ import annotations

from collections import Counter

import pytest

from conformance.errors import UsageError
from conformance.simulate.cluster import (
    StoppedNode,
    check_stops,
    first_node,
    node_turn,
    publish_nodes,
    stopped_node_figures,
)
from conformance.simulate.ledger import Life

SLOTS = ("a", "b")
STOPPED_AT = 10.0


def connection(
    tab: str,
    number: int,
    node: int,
    *,
    opened: float,
    ended: float | None,
    close_code: int | None = None,
    how: str = "",
    ready: bool = True,
) -> Life:
    """One connection of ``tab`` through ``node``, established and subscribed 0.1 s after it
    opened (or never subscribed with ``ready=False``)."""
    return Life(
        tab=tab,
        user=tab.split(".")[0],
        number=number,
        opened=opened,
        established=opened + 0.05,
        subscribed={slot: opened + 0.1 for slot in SLOTS} if ready else {},
        ended=ended,
        how=how or (f"close {close_code}" if close_code else "end of run"),
        close_code=close_code,
        node=node,
    )


def moved(
    tab: str, *, to: int, close_code: int | None = 4200, back_after: float = 0.2
) -> list[Life]:
    """A tab on node 1 at the stop, closed at 10.5, subscribed again through ``to``."""
    return [
        connection(tab, 0, 1, opened=1.0, ended=10.5, close_code=close_code),
        connection(tab, 1, to, opened=10.5 + back_after - 0.1, ended=30.0),
    ]


def figures(lives: list[Life], down_at: float | None = STOPPED_AT + 0.8) -> StoppedNode:
    return stopped_node_figures(lives, node=1, stopped_at=STOPPED_AT, down_at=down_at, slots=SLOTS)


# -- where tabs go --------------------------------------------------------------------------------


def test_tabs_are_spread_over_the_nodes_round_robin() -> None:
    assert [first_node(i, 3) for i in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    assert Counter(first_node(i, 3) for i in range(300)) == {0: 100, 1: 100, 2: 100}
    assert {first_node(i, 1) for i in range(5)} == {0}


def test_a_tab_tries_the_next_node_in_turn() -> None:
    assert node_turn(1, 3) == (1, 2, 0)
    assert node_turn(2, 3) == (2, 0, 1)
    assert node_turn(0, 2) == (0, 1)
    # Every tab's turn has every node once, starting from its own.
    for first in range(4):
        turn = node_turn(first, 4)
        assert turn[0] == first
        assert sorted(turn) == [0, 1, 2, 3]


def test_the_publisher_posts_through_every_node_that_is_not_stopped() -> None:
    assert publish_nodes(3, [1]) == (0, 2)
    assert publish_nodes(3, []) == (0, 1, 2)
    assert publish_nodes(4, [0, 3]) == (1, 2)
    with pytest.raises(ValueError, match="every node is stopped"):
        publish_nodes(2, [0, 1])


# -- what a cluster can carry out -----------------------------------------------------------------


def test_a_scenario_without_stops_needs_nothing() -> None:
    check_stops("s", [], 1, None)
    check_stops("s", [], 3, [])


def test_stopping_a_node_of_a_cluster_that_can_stop_it_is_fine() -> None:
    check_stops("s", [1], 3, None)  # bundled: the suite started the nodes
    check_stops("s", [1], 3, [1])  # a target file's node 1 has a stop command


@pytest.mark.parametrize(
    ("stops", "nodes", "stoppable", "message"),
    [
        ([1], 1, None, "scenario 's' stops node 1 of a cluster: give --bundled-nodes N"),
        ([3], 3, None, "scenario 's' stops node 3, but the cluster has 3 nodes (0 to 2)"),
        ([1, 1], 3, None, "scenario 's' stops the same node twice"),
        ([0, 1], 2, None, "scenario 's' stops every node of the cluster"),
        ([1], 3, [0, 2], "stops node 1, but the target file's nodes[1] has no stop command"),
    ],
)
def test_a_stop_the_cluster_cannot_carry_out_is_refused_in_one_line(
    stops: list[int], nodes: int, stoppable: list[int] | None, message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        check_stops("s", stops, nodes, stoppable)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# -- the stopped node's tabs ----------------------------------------------------------------------


def test_tabs_told_4200_and_back_through_other_nodes_are_counted_per_node() -> None:
    lives = [
        *moved("u1.t0", to=2, back_after=0.2),
        *moved("u2.t0", to=2, back_after=0.4),
        *moved("u3.t0", to=0, back_after=0.3),
        # On other nodes at the stop: not the stopped node's tabs.
        connection("u4.t0", 0, 0, opened=1.0, ended=30.0),
        connection("u5.t0", 0, 2, opened=1.0, ended=30.0),
    ]
    s = figures(lives)
    assert (s.node, s.stopped_at) == (1, STOPPED_AT)
    assert s.down_after == pytest.approx(0.8)
    assert (s.tabs, s.closed_4200, s.came_back) == (3, 3, 3)
    assert s.back_through == {0: 1, 2: 2}
    assert sorted(round(ms) for ms in s.reconnect_ms) == [200, 300, 400]
    assert s.every_tab_closed
    assert s.every_tab_back
    assert (s.not_closed_examples, s.not_back_examples) == ([], [])


def test_a_tab_closed_otherwise_is_named() -> None:
    lives = [
        *moved("u1.t0", to=2),
        *moved("u2.t0", to=2, close_code=None),  # dropped without a close frame
        *moved("u3.t0", to=2, close_code=1006),
    ]
    s = figures(lives)
    assert (s.tabs, s.closed_4200, s.came_back) == (3, 1, 3)
    assert not s.every_tab_closed
    assert s.every_tab_back
    assert s.not_closed_examples == ["u2.t0: end of run", "u3.t0: close 1006"]


def test_a_tab_back_on_the_same_node_or_nowhere_did_not_come_back() -> None:
    lives = [
        *moved("u1.t0", to=1),  # the same node (it was not really stopped)
        connection("u2.t0", 0, 1, opened=1.0, ended=10.5, close_code=4200),
        # Tried node 2, never subscribed there.
        connection("u2.t0", 1, 2, opened=10.5, ended=30.0, ready=False),
        connection("u3.t0", 0, 1, opened=1.0, ended=None, how=""),  # never told anything
    ]
    s = figures(lives)
    assert (s.tabs, s.closed_4200, s.came_back) == (3, 2, 0)
    assert s.back_through == {}
    assert s.reconnect_ms == []
    assert s.not_back_examples == [
        "u1.t0: back through node 1",
        "u2.t0: back through nowhere",
        "u3.t0: back through nowhere",
    ]
    assert not s.every_tab_back


def test_only_connections_open_on_the_node_at_the_stop_count() -> None:
    lives = [
        # Left node 1 before the stop, and was on node 2 when it came.
        connection("u1.t0", 0, 1, opened=1.0, ended=5.0, close_code=4200),
        connection("u1.t0", 1, 2, opened=5.0, ended=30.0),
        # Connected to node 1 after the stop (a failed attempt: never established).
        Life(
            tab="u2.t0",
            user="u2",
            number=0,
            opened=11.0,
            ended=11.1,
            how="handshake refused",
            node=1,
        ),
        connection("u2.t0", 1, 2, opened=12.0, ended=30.0),
    ]
    s = figures(lives)
    assert s.tabs == 0
    assert not s.every_tab_closed  # nothing shown, nothing proven
    assert not s.every_tab_back


def test_the_first_connection_after_the_close_that_subscribed_is_the_one_that_counts() -> None:
    lives = [
        connection("u1.t0", 0, 1, opened=1.0, ended=10.5, close_code=4200),
        connection("u1.t0", 1, 2, opened=10.5, ended=10.6, how="connect failed", ready=False),
        connection("u1.t0", 2, 0, opened=11.6, ended=30.0),
    ]
    s = figures(lives)
    assert (s.came_back, s.back_through) == (1, {0: 1})
    assert [round(ms) for ms in s.reconnect_ms] == [1200]  # 10.5 -> subscribed at 11.7


def test_a_node_not_down_by_the_end_has_no_down_time() -> None:
    assert figures(moved("u1.t0", to=2), down_at=None).down_after is None
