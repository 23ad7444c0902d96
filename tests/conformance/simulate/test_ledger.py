"""The ledger: what is owed to a connection, what was lost, duplicated or out of order, how long
a tab was away, who recovered, from hand-built lives and publications (no sockets)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.simulate.ledger import (
    Figures,
    Life,
    NodeFigures,
    Publication,
    UserFigures,
    percentile,
    tally,
)

SLOTS = ("a", "b")


def life(
    number: int = 0,
    *,
    tab: str = "u1.t0",
    user: str = "u1",
    opened: float = 0.0,
    established: float | None = 0.1,
    subscribed: dict[str, float] | None = None,
    ended: float | None = 20.0,
    how: str = "end of run",
    close_code: int | None = None,
    faulted: float | None = None,
    received: dict[str, list[int]] | None = None,
) -> Life:
    """A connection, subscribed to both slots at 0.2 unless told otherwise."""
    return Life(
        tab=tab,
        user=user,
        number=number,
        opened=opened,
        established=established,
        subscribed={"a": 0.2, "b": 0.2} if subscribed is None else subscribed,
        ended=ended,
        how=how,
        close_code=close_code,
        faulted=faulted,
        received=received or {},
    )


def published(
    *seqs: int, slot: str = "a", at: float = 1.0, every: float = 1.0
) -> list[Publication]:
    """Publications of ``seqs`` on ``slot``, sent ``every`` s from ``at``, acked 10 ms later."""
    return [
        Publication(seq, slot, at + n * every, at + n * every + 0.01) for n, seq in enumerate(seqs)
    ]


def count(lives: Sequence[Life], publications: Sequence[Publication], **kw: Any) -> Figures:
    options: dict[str, Any] = {
        "slots": SLOTS, "run_end": 20.0, "window": (0.0, 10.0), "grace": 1.0, **kw,
    }  # fmt: skip
    return tally(lives, publications, **options)


# -- owed, delivered, lost ------------------------------------------------------------------------


def test_an_owed_event_not_received_is_lost() -> None:
    pubs = published(1, 2, 3)
    figures = count([life(received={"a": [1, 3]})], pubs)
    assert (figures.owed, figures.delivered, figures.lost) == (3, 2, 1)
    assert figures.published == 3
    assert figures.publish_failed == 0
    assert figures.received_total == 2
    assert figures.per_user[0].lost == 1
    assert figures.per_user[0].owed == 3
    assert figures.unseen_while_away == 0  # lost, not missed while away: counted once


def test_everything_received_is_nothing_lost() -> None:
    pubs = [*published(1, 3), *published(2, 4, slot="b", at=1.5)]
    figures = count([life(received={"a": [1, 3], "b": [2, 4]})], pubs)
    assert (figures.owed, figures.delivered, figures.lost) == (4, 4, 0)
    assert figures.unseen_while_away == 0


def test_events_published_before_the_subscription_are_not_owed() -> None:
    pubs = published(1, 2, 3, 4)  # sent at 1, 2, 3, 4
    lives = [life(subscribed={"a": 2.5, "b": 0.2}, received={"a": [3, 4]})]
    figures = count(lives, pubs)
    assert (figures.owed, figures.lost) == (2, 0)
    # Sent at the very instant of the subscription: owed.
    assert count([life(subscribed={"a": 2.0, "b": 0.2})], pubs).owed == 3


def test_a_channel_never_subscribed_is_owed_nothing() -> None:
    lives = [life(subscribed={"b": 0.2}, received={})]
    assert count(lives, published(1, 2)).owed == 0


def test_a_connection_that_ended_early_is_owed_only_its_gaps() -> None:
    # Received 1 and 3 of 1-4 before a close at 4.5: 2 is a gap (3, published after it, came
    # through), 4 may have been queued behind the close: not judged.
    lives = [life(ended=4.5, how="close 4200 restart", close_code=4200, received={"a": [1, 3]})]
    figures = count(lives, published(1, 2, 3, 4))
    assert (figures.owed, figures.lost) == (3, 1)
    # However long before the end it was acknowledged: after the last event received, nothing
    # is owed to a connection that ended early.
    assert count([life(ended=9.0, how="no pong", received={"a": [1]})], published(1, 2)).owed == 1
    assert count([life(ended=9.0, how="no pong")], published(1, 2)).owed == 0


def test_a_connection_open_to_the_end_is_owed_until_grace_before_it() -> None:
    exact = [Publication(1, "a", 3.0, 4.0)]
    assert count([life(ended=5.0)], exact, run_end=5.0).owed == 1  # exactly the grace
    assert count([life(ended=5.0)], exact, run_end=5.0, grace=1.5).owed == 0


def test_a_connection_still_open_is_healthy_until_the_run_ends() -> None:
    lives = [life(ended=None, how="")]
    assert count(lives, published(1, 2), run_end=3.0).owed == 1  # acked 2.01 + 1 > 3
    assert count(lives, published(1, 2), run_end=3.02).owed == 2
    assert lives[0].healthy_until(3.0) == 3.0


def test_events_acked_after_a_fault_less_grace_are_not_owed() -> None:
    # Open to the end but faulted at 3.5 (a stall lifted in time): acked 1.01 and 2.01 are
    # owed (2.01 + 1 <= 3.5), 3.01 and 4.01 are not.
    lives = [life(faulted=3.5, received={"a": []})]
    figures = count(lives, published(1, 2, 3, 4))
    assert (figures.owed, figures.lost) == (2, 2)
    assert lives[0].healthy_until(20.0) == 3.5
    # A gap is a gap, fault or not: 4 came through, so 1 to 4 were owed and 2 and 3 lost.
    gaps = count(
        [life(faulted=3.5, ended=8.0, how="no pong", received={"a": [1, 4]})], published(1, 2, 3, 4)
    )
    assert (gaps.owed, gaps.lost) == (4, 2)
    # A fault after the end changes nothing.
    assert life(faulted=9.0, ended=8.0).healthy_until(20.0) == 8.0


def test_failed_publishes_are_never_owed() -> None:
    pubs = [
        Publication(1, "a", 1.0, 1.01),
        Publication(2, "a", 2.0, None),  # refused, or timed out
        Publication(3, "a", 3.0, None),
    ]
    figures = count([life(received={"a": [1, 3]})], pubs)  # 3 arrived all the same
    assert (figures.owed, figures.lost) == (1, 0)
    assert (figures.published, figures.publish_failed) == (1, 2)
    assert figures.received_total == 2
    assert count([life(received={"a": []})], pubs[1:]).owed == 0


def test_unseen_counts_accepted_events_only() -> None:
    pubs = [
        Publication(1, "a", 1.0, 1.01),
        Publication(2, "a", 2.0, None),  # failed, yet delivered
        Publication(3, "a", 3.0, 3.01),  # in flight when the connection ended
    ]
    lives = [life(ended=3.5, how="close 4200", close_code=4200, received={"a": [1, 2]})]
    figures = count(lives, pubs)
    assert (figures.owed, figures.lost) == (1, 0)
    assert figures.unseen_while_away == 1


def test_each_tab_is_owed_on_its_own() -> None:
    lives = [
        life(tab="u1.t0", received={"a": [1, 2]}),
        life(tab="u1.t1", received={"a": [1]}),
        life(tab="u2.t0", user="u2", received={"a": [2]}),
    ]
    figures = count(lives, published(1, 2))
    assert (figures.users, figures.tabs, figures.connections) == (2, 3, 3)
    assert (figures.owed, figures.lost) == (6, 2)
    assert figures.duplicates == 0  # the same event in two tabs is no duplicate
    assert [(u.user, u.owed, u.lost) for u in figures.per_user] == [("u1", 4, 1), ("u2", 2, 1)]


def test_events_missed_while_away_are_unseen_not_lost() -> None:
    lives = [
        life(0, ended=2.5, how="close 4200", close_code=4200, received={"a": [1]}),
        life(1, opened=4.5, established=4.6, subscribed={"a": 4.7, "b": 4.7}, received={"a": [5]}),
    ]
    figures = count(lives, published(1, 2, 3, 4, 5))  # 2 within grace, 3 and 4 while away
    assert figures.lost == 0
    assert figures.owed == 2
    assert figures.unseen_while_away == 3


# -- duplicates and order -------------------------------------------------------------------------


def test_duplicates_across_two_lives_of_a_tab() -> None:
    lives = [
        life(0, ended=5.0, how="close 4200", close_code=4200, received={"a": [1, 2]}),
        life(1, opened=5.0, established=5.1, subscribed={"a": 5.2, "b": 5.2}, received={"a": [2]}),
    ]
    figures = count(lives, published(1, 2, 3))
    assert figures.duplicates == 1
    assert figures.out_of_order == 0  # a new connection starts its own order
    assert figures.per_user[0].duplicates == 1


def test_a_repeat_within_one_life_is_a_duplicate_not_out_of_order() -> None:
    figures = count([life(received={"a": [1, 1, 2]})], published(1, 2))
    assert (figures.duplicates, figures.out_of_order, figures.lost) == (1, 0, 0)
    assert figures.received_total == 3


def test_lives_are_read_in_their_own_order() -> None:
    second = life(1, opened=5.0, received={"a": [3, 1]})
    first = life(0, ended=5.0, how="close 4200", close_code=4200, received={"a": [1]})
    figures = count([second, first], published(1, 2, 3))
    assert figures.duplicates == 1
    assert figures.out_of_order == 1


def test_out_of_order_within_a_life_and_a_channel() -> None:
    figures = count([life(received={"a": [1, 3, 2, 4]})], published(1, 2, 3, 4))
    assert (figures.out_of_order, figures.duplicates, figures.lost) == (1, 0, 0)
    assert figures.per_user[0].out_of_order == 1
    # Every event below the highest so far counts.
    assert count([life(received={"a": [4, 1, 2, 3]})], published(1, 2, 3, 4)).out_of_order == 3


def test_order_is_per_channel() -> None:
    pubs = [*published(2, slot="a"), *published(1, slot="b")]
    figures = count([life(received={"a": [2], "b": [1]})], pubs)
    assert figures.out_of_order == 0


# -- connecting, reconnecting, recovering ---------------------------------------------------------


def test_connect_time_of_every_connection_and_each_users_worst_first() -> None:
    lives = [
        life(0, tab="u1.t0", opened=0.0, established=0.25),
        life(0, tab="u1.t1", opened=1.0, established=1.5),
        life(0, tab="u2.t0", user="u2", opened=0.0, established=None, how="connect timed out"),
    ]
    figures = count(lives, [])
    assert sorted(figures.connect_ms) == pytest.approx([250.0, 500.0])
    assert figures.per_user[0].connect_ms == pytest.approx(500.0)
    assert figures.per_user[1].connect_ms is None


def test_reconnect_is_from_the_end_of_a_life_to_the_next_one_on_every_channel() -> None:
    lives = [
        life(0, ended=5.0, how="close 4200 restart", close_code=4200),
        life(1, opened=5.0, established=None, subscribed={}, ended=5.05, how="handshake failed"),
        # Subscribed to one channel only, then dropped: not yet back.
        life(2, opened=6.0, established=6.1, subscribed={"a": 6.2}, ended=6.3, how="no pong"),
        life(3, opened=6.3, established=6.4, subscribed={"a": 6.5, "b": 7.0}),
    ]
    figures = count(lives, [])
    assert figures.reconnect_ms == pytest.approx([2000.0])  # 5.0 -> 7.0
    assert figures.per_user[0].worst_reconnect_ms == pytest.approx(2000.0)
    assert figures.per_user[0].recovered
    assert figures.recovered_users == 1
    assert figures.connections == 4
    assert dict(figures.closes) == {"4200": 1, "handshake failed": 1, "no pong": 1}


def test_each_outage_is_its_own_reconnect() -> None:
    lives = [
        life(0, ended=3.0, how="close 4200", close_code=4200),
        life(1, opened=3.0, established=3.1, subscribed={"a": 3.2, "b": 3.5}, ended=6.0,
             how="dropped without a close frame"),
        life(2, opened=7.0, established=7.1, subscribed={"a": 7.2, "b": 7.25}),
    ]  # fmt: skip
    figures = count(lives, [])
    assert figures.reconnect_ms == pytest.approx([500.0, 1250.0])
    assert figures.per_user[0].worst_reconnect_ms == pytest.approx(1250.0)


def test_a_first_connection_that_failed_is_no_reconnect() -> None:
    lives = [
        life(0, established=None, subscribed={}, ended=0.5, how="connect failed: refused"),
        life(1, opened=1.5, established=1.6, subscribed={"a": 1.7, "b": 1.8}),
    ]
    figures = count(lives, [])
    assert figures.reconnect_ms == []
    assert figures.per_user[0].recovered
    # Connect time runs from the tab's first attempt, the failed one included.
    assert figures.per_user[0].connect_ms == pytest.approx(1600.0)


def test_a_life_that_ends_with_the_run_is_no_outage() -> None:
    figures = count([life(0, ended=20.0, how="end of run")], [])
    assert figures.reconnect_ms == []
    assert dict(figures.closes) == {}
    assert figures.per_user[0].recovered


def test_a_tab_whose_last_life_never_got_ready_is_not_recovered() -> None:
    lives = [
        life(0, tab="u1.t0", ended=5.0, how="close 4200", close_code=4200),
        life(1, tab="u1.t0", opened=5.0, established=5.1, subscribed={"a": 5.2}),
        life(0, tab="u1.t1"),
        life(0, tab="u2.t0", user="u2"),
    ]
    figures = count(lives, [])
    assert [(u.user, u.recovered) for u in figures.per_user] == [("u1", False), ("u2", True)]
    assert figures.recovered_users == 1
    assert figures.recovered_share == 0.5
    assert figures.reconnect_ms == []  # never back on every channel


def test_a_tab_that_gave_up_reconnecting_is_not_recovered() -> None:
    lives = [
        life(0, ended=5.0, how="no pong"),
        life(1, opened=5.0, established=None, subscribed={}, ended=20.0, how="handshake failed"),
    ]
    figures = count(lives, [])
    assert not figures.per_user[0].recovered
    assert figures.refused_tabs == 0


def test_a_refused_tab_is_counted_and_not_recovered() -> None:
    lives = [
        life(0, tab="u1.t0", ended=2.0, how="refused: close 4001 over quota", close_code=4001),
        life(0, tab="u1.t1"),
    ]
    figures = count(lives, [])
    assert figures.refused_tabs == 1
    assert not figures.per_user[0].recovered
    assert figures.recovered_users == 0
    assert dict(figures.closes) == {"4001": 1}


def test_connection_ends_by_code_or_by_how() -> None:
    lives = [
        life(0, tab="t0", ended=1.0, how="close 4200 restart", close_code=4200),
        life(1, tab="t0", ended=2.0, how="close 4200 restart", close_code=4200),
        life(2, tab="t0", ended=3.0, how="handshake refused: HTTP 503"),
        life(3, tab="t0", ended=4.0, how="error: ValueError: x"),
        life(4, tab="t0"),
    ]
    figures = count(lives, [])
    assert list(figures.closes.items()) == [
        ("4200", 2), ("error", 1), ("handshake refused", 1),
    ]  # fmt: skip


# -- the whole ------------------------------------------------------------------------------------


def test_throughput_is_every_receipt_over_the_measured_window() -> None:
    lives = [life(received={"a": [1, 2, 2]}), life(tab="u1.t1", received={"a": [1]})]
    figures = count(lives, published(1, 2), window=(2.0, 4.0))
    assert figures.window_seconds == 2.0
    assert figures.delivered_per_second == 2.0
    assert count(lives, [], window=(4.0, 2.0)).delivered_per_second == 0.0


def test_latency_is_passed_through() -> None:
    assert list(count([life()], [], latency_ms=(5.0, 7.0)).latency_ms) == [5.0, 7.0]


def test_no_lives_at_all() -> None:
    figures = count([], published(1))
    assert (figures.users, figures.tabs, figures.connections, figures.owed) == (0, 0, 0, 0)
    assert figures.recovered_share == 1.0
    assert figures.slowest_user() is None


def test_a_life_survives_the_trip_through_a_pipe() -> None:
    original = life(
        3, faulted=4.0, how="close 4200 x", close_code=4200, received={"a": [1, 2], "b": [3]}
    )
    data = original.to_dict()
    assert data["received"] == {"a": [1, 2], "b": [3]}
    assert Life.from_dict(data) == original
    through_a_node = dataclasses.replace(original, node=2)
    assert through_a_node.to_dict()["node"] == 2
    assert Life.from_dict(through_a_node.to_dict()) == through_a_node
    assert original.ready_at(SLOTS) == 0.2
    assert life(subscribed={"a": 1.0, "b": 3.0}).ready_at(SLOTS) == 3.0
    assert life(subscribed={"a": 1.0}).ready_at(SLOTS) is None


# -- a cluster: each node's connections ---------------------------------------------------------


def test_a_single_server_has_no_node_figures() -> None:
    assert count([life(received={"a": [1]})], published(1)).per_node == {}


def test_losses_duplicates_and_disorder_go_to_the_node_they_happened_on() -> None:
    pubs = published(1, 2, 3, 4)  # sent at 1, 2, 3, 4
    lives = [
        # Node 0: 2 missing before 3 arrived (a gap), and 1 after 3 (out of order).
        dataclasses.replace(life(tab="u1.t0", received={"a": [3, 1, 4]}), node=0),
        # Node 1, then node 2: the tab reads 2 again through node 2 (a duplicate there).
        dataclasses.replace(
            life(0, tab="u2.t0", user="u2", ended=2.5, how="close 4200", close_code=4200,
                 received={"a": [1, 2]}),
            node=1,
        ),
        dataclasses.replace(
            life(1, tab="u2.t0", user="u2", subscribed={"a": 2.6, "b": 2.6},
                 received={"a": [2, 3, 4]}),
            node=2,
        ),
    ]  # fmt: skip
    figures = count(lives, pubs)
    assert figures.per_node == {
        0: NodeFigures(connections=1, owed=4, lost=1, duplicates=0, out_of_order=1),
        1: NodeFigures(connections=1, owed=2, lost=0, duplicates=0, out_of_order=0),
        2: NodeFigures(connections=1, owed=2, lost=0, duplicates=1, out_of_order=0),
    }
    assert (figures.lost, figures.duplicates, figures.out_of_order) == (1, 1, 1)
    assert sum(n.owed for n in figures.per_node.values()) == figures.owed


# -- percentile and the slowest user --------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0, 15.0), (5, 15.0), (20, 15.0), (30, 20.0), (40, 20.0), (50, 35.0), (99, 50.0), (100, 50.0)],
)
def test_percentile_is_nearest_rank(p: float, expected: float) -> None:
    assert percentile([50.0, 15.0, 40.0, 20.0, 35.0], p) == expected


def test_percentile_of_nothing_is_none_and_of_one_is_that_one() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 0) == 7.0
    assert percentile([7.0], 99) == 7.0
    hundred = [float(n) for n in range(1, 101)]
    assert (percentile(hundred, 50), percentile(hundred, 90), percentile(hundred, 99)) == (
        50.0, 90.0, 99.0,
    )  # fmt: skip


def user(
    name: str, *, connect: float | None = 10.0, worst: float | None = None, recovered: bool = True
) -> UserFigures:
    return UserFigures(name, connect, worst, 0, 0, 0, 0, recovered)


def slowest(*users: UserFigures) -> str | None:
    found = dataclasses.replace(count([], []), per_user=list(users)).slowest_user()
    return found.user if found is not None else None


def test_the_slowest_user_is_one_not_recovered_first() -> None:
    assert slowest(user("a", worst=9000.0), user("b", recovered=False)) == "b"


def test_then_the_longest_reconnect() -> None:
    assert slowest(user("a", worst=500.0), user("b", worst=1500.0), user("c")) == "b"
    assert slowest(user("a", connect=900.0), user("b", connect=5.0, worst=1.0)) == "b"


def test_then_the_longest_connect_and_never_connected_is_slowest() -> None:
    assert slowest(user("a", connect=10.0), user("b", connect=30.0)) == "b"
    assert slowest(user("a", connect=10.0), user("b", connect=None)) == "b"


def test_the_slowest_user_from_a_tally() -> None:
    lives = [
        life(0, tab="u1.t0", ended=5.0, how="close 4200", close_code=4200),
        life(1, tab="u1.t0", opened=5.0, established=5.1, subscribed={"a": 5.2, "b": 5.3}),
        life(0, tab="u2.t0", user="u2", opened=0.0, established=0.9),
    ]
    found = count(lives, []).slowest_user()
    assert found is not None
    assert found.user == "u1"
    assert found.worst_reconnect_ms == pytest.approx(300.0)


# -- a property: owed is exactly what the rules say, and lost is what of it never arrived --------

SEQS = 30
PUBLICATIONS = [
    Publication(seq, "a", seq * 0.5, None if seq % 7 == 0 else seq * 0.5 + (seq % 4) * 0.1)
    for seq in range(1, SEQS + 1)
]


@settings(max_examples=150, deadline=None)
@given(
    since=st.floats(0, 16),
    ended=st.none() | st.floats(0, 20),
    faulted=st.none() | st.floats(0, 20),
    grace=st.floats(0, 3),
    received=st.lists(st.integers(1, SEQS), max_size=40),
)
def test_delivered_and_lost_add_up_to_owed(
    since: float, ended: float | None, faulted: float | None, grace: float, received: list[int]
) -> None:
    # Open to the end: owed until grace before the end (or the fault); ended early: owed up to
    # the last event it received (a gap), whatever the times.
    healthy = min(20.0, faulted if faulted is not None else 99.0) if ended is None else -1.0
    last = max(received, default=0)
    owed = {
        p.seq
        for p in PUBLICATIONS
        if p.acked is not None and p.sent >= since and (p.seq <= last or p.acked + grace <= healthy)
    }
    one = life(
        subscribed={"a": since, "b": since},
        ended=ended,
        how="close 4200" if ended is not None else "",
        faulted=faulted,
        received={"a": received},
    )
    figures = count([one], PUBLICATIONS, grace=grace)
    assert figures.owed == len(owed)
    assert figures.lost == len(owed - set(received))
    assert figures.delivered + figures.lost == figures.owed
    assert figures.published == SEQS - SEQS // 7
    accepted = {p.seq for p in PUBLICATIONS if p.acked is not None}
    assert figures.unseen_while_away == len(accepted - set(received) - owed)
    everything = count(
        [Life.from_dict({**one.to_dict(), "received": {"a": sorted(owed) + received}})],
        PUBLICATIONS,
        grace=grace,
    )
    assert everything.lost == 0
    assert everything.delivered == everything.owed == len(owed)
