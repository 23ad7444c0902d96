"""The production-readiness verdict: ready, not ready, or inconclusive when the generator was
the bottleneck or the scenario offered too little to test throughput; its exit codes; and how
the generator's own samples say it was saturated."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from conformance.simulate.cluster import StoppedNode
from conformance.simulate.ledger import Figures
from conformance.simulate.scenario import Thresholds
from conformance.simulate.verdict import (
    SATURATED_CPU,
    SATURATED_LAG_MS,
    Criterion,
    Generator,
    Readiness,
    judge,
)

BAR = Thresholds(connect_p99_ms=1000, delivered_per_second=100, recovered_share=1.0, lost=0)
IDLE = Generator(workers=2, cpu_share_p90=0.2, lag_ms_p99=5.0)
BUSY = Generator(workers=2, cpu_share_p90=0.99, lag_ms_p99=5.0)


def figures(**changes: Any) -> Figures:
    """A run that meets BAR: 120 deliveries a second over 10 s, everyone back, nothing lost."""
    good = Figures(
        users=10, tabs=20, connections=20, connect_ms=[20.0] * 19 + [200.0],
        reconnect_ms=[], latency_ms=[3.0], published=60, publish_failed=0, owed=1200,
        delivered=1200, lost=0, duplicates=0, out_of_order=0, received_total=1200,
        window_seconds=10.0, unseen_while_away=0, recovered_users=10, refused_tabs=0,
        closes={}, per_user=[],
    )  # fmt: skip
    return dataclasses.replace(good, **changes)


def verdict(generator: Generator = IDLE, offered: float = 200.0, **changes: Any) -> Readiness:
    return judge(figures(**changes), BAR, generator, offered_per_second=offered)


def met(readiness: Readiness) -> dict[str, bool | None]:
    return {c.name: c.met for c in readiness.criteria}


def test_a_run_that_meets_every_criterion_is_ready() -> None:
    r = verdict()
    assert (r.verdict, r.note, r.exit_code) == ("ready", "every criterion met", 0)
    assert set(met(r).values()) == {True}
    assert [c.name for c in r.criteria] == [
        "connect time p99",
        "messages delivered per second",
        "users recovered after the faults",
        "lost for connected subscribers",
        "delivered twice",
        "out of order",
    ]
    shown = {c.name: (c.measured, c.bar, c.shown) for c in r.criteria}
    assert shown["connect time p99"] == ("200 ms", "< 1000 ms", "yes")
    assert shown["messages delivered per second"] == ("120/s", ">= 100/s", "yes")
    assert shown["users recovered after the faults"] == ("10/10", ">= 100%", "yes")
    assert shown["lost for connected subscribers"] == ("0 of 1200", "<= 0", "yes")


@pytest.mark.parametrize(
    ("changes", "missed"),
    [
        ({"connect_ms": [20.0, 1000.0]}, "connect time p99"),
        ({"connect_ms": []}, "connect time p99"),
        ({"received_total": 990}, "messages delivered per second"),
        ({"recovered_users": 9}, "users recovered after the faults"),
        ({"lost": 1, "delivered": 1199}, "lost for connected subscribers"),
        ({"duplicates": 1}, "delivered twice"),
        ({"out_of_order": 2}, "out of order"),
    ],
)
def test_a_missed_criterion_is_not_ready(changes: dict[str, Any], missed: str) -> None:
    r = verdict(**changes)
    assert (r.verdict, r.exit_code) == ("not ready", 1)
    assert r.note == f"missed: {missed}"
    assert [name for name, ok in met(r).items() if ok is False] == [missed]
    assert next(c for c in r.criteria if c.name == missed).shown == "no"


def test_no_connection_at_all_is_named() -> None:
    r = verdict(connect_ms=[])
    assert r.criteria[0].measured == "no connection"


def test_every_missed_criterion_is_named_in_order() -> None:
    r = verdict(duplicates=3, recovered_users=0)
    assert r.note == "missed: users recovered after the faults, delivered twice"


def test_thresholds_are_the_scenarios() -> None:
    lenient = Thresholds(connect_p99_ms=5000, delivered_per_second=10, recovered_share=0.5, lost=5)
    f = figures(connect_ms=[1500.0], lost=5, recovered_users=5, received_total=100)
    r = judge(f, lenient, IDLE, offered_per_second=20)
    assert r.verdict == "ready"
    assert verdict(connect_ms=[999.0]).verdict == "ready"  # under the bar, strictly
    assert verdict(received_total=1000).verdict == "ready"  # 100/s meets ">= 100/s"


def test_a_saturated_generator_makes_a_miss_inconclusive() -> None:
    r = verdict(BUSY, connect_ms=[5000.0])
    assert (r.verdict, r.exit_code) == ("inconclusive", 3)
    assert r.note == "connect time p99 missed, but the load generator was saturated"


def test_a_saturated_generator_does_not_spoil_a_ready_run() -> None:
    assert verdict(BUSY).verdict == "ready"


def test_throughput_is_not_tested_when_the_scenario_offers_less_than_the_bar() -> None:
    r = verdict(offered=40.0, received_total=400)  # 40/s of 40 offered; the bar is 100
    assert (r.verdict, r.exit_code) == ("inconclusive", 3)
    assert r.note == "not tested: messages delivered per second"
    throughput = r.criteria[1]
    assert throughput.met is None
    assert throughput.shown == "not tested"
    assert throughput.bar == ">= 100/s (offered only 40/s)"


def test_throughput_reached_despite_a_small_offer_is_met() -> None:
    r = verdict(offered=50.0, received_total=1500)  # duplicates can lift it over
    assert r.criteria[1].met is True
    assert r.criteria[1].bar == ">= 100/s"


def test_throughput_missed_with_enough_offered_is_a_fail() -> None:
    r = verdict(offered=100.0, received_total=500)
    assert r.criteria[1].met is False
    assert r.verdict == "not ready"


def test_a_miss_outweighs_an_untested_criterion() -> None:
    r = verdict(offered=10.0, received_total=100, lost=2)
    assert (r.verdict, r.exit_code) == ("not ready", 1)
    assert r.note == "missed: lost for connected subscribers"
    r = verdict(BUSY, offered=10.0, received_total=100, lost=2)
    assert r.verdict == "inconclusive"


@pytest.mark.parametrize(("name", "code"), [("ready", 0), ("not ready", 1), ("inconclusive", 3)])
def test_exit_codes(name: str, code: int) -> None:
    assert Readiness(name, (), "").exit_code == code


def test_criterion_shows_yes_no_or_not_tested() -> None:
    assert [Criterion("x", "", "", m).shown for m in (True, False, None)] == [
        "yes", "no", "not tested",
    ]  # fmt: skip


# -- the generator --------------------------------------------------------------------------------


def test_saturation_thresholds() -> None:
    assert (SATURATED_CPU, SATURATED_LAG_MS) == (0.9, 250.0)
    assert not Generator(1, SATURATED_CPU, SATURATED_LAG_MS).saturated  # at the bar: fine
    assert Generator(1, SATURATED_CPU + 0.001, 0.0).saturated
    assert Generator(1, 0.0, SATURATED_LAG_MS + 0.1).saturated
    assert not Generator(1, 0.0, 0.0).saturated


def test_from_samples_takes_the_busiest_workers_p90_and_the_lag_p99() -> None:
    calm = [0.1] * 10
    busy = [0.5] * 8 + [0.95, 0.97]  # p90 (rank 9 of 10): 0.95
    lags = [1.0] * 99 + [400.0]  # p99 (rank 99 of 100): 1.0
    g = Generator.from_samples(2, [calm, busy], lags)
    assert g == Generator(workers=2, cpu_share_p90=0.95, lag_ms_p99=1.0)
    assert g.saturated
    assert Generator.from_samples(1, [[0.2]], [1.0] * 98 + [300.0, 300.0]).lag_ms_p99 == 300.0


def test_from_samples_with_nothing_sampled_is_idle() -> None:
    assert Generator.from_samples(3, [], []) == Generator(3, 0.0, 0.0)
    assert Generator.from_samples(2, [[], []], []) == Generator(2, 0.0, 0.0)


def test_explain_says_why_it_was_the_bottleneck() -> None:
    assert IDLE.explain() == "2 worker(s): CPU p90 20% of a core, event-loop lag p99 5 ms"
    busy = Generator(1, 0.5, 300.0).explain()
    assert busy.startswith("1 worker(s): CPU p90 50% of a core, event-loop lag p99 300 ms (over")
    assert "the generator was the bottleneck; run with more --workers or fewer --users" in busy


def test_a_harness_problem_makes_the_verdict_inconclusive() -> None:
    ready = judge(figures(), BAR, IDLE, offered_per_second=200.0, problems=["the restart failed"])
    assert (ready.verdict, ready.note) == ("inconclusive", "the restart failed")
    missed = judge(
        figures(lost=3), BAR, IDLE, offered_per_second=200.0, problems=["the restart failed"]
    )
    assert missed.verdict == "inconclusive"
    assert missed.note == "the restart failed (lost for connected subscribers missed)"
    assert missed.exit_code == 3


# -- a stopped node of a cluster ------------------------------------------------------------------


def stopped(
    tabs: int = 100, closed: int = 100, back: int = 100, down_after: float | None = 0.8
) -> StoppedNode:
    return StoppedNode(
        node=1, stopped_at=50.0, down_after=down_after, tabs=tabs, closed_4200=closed,
        came_back=back,
        back_through={2: back}, reconnect_ms=[40.0] * back,
    )  # fmt: skip


def with_stop(node: StoppedNode, **changes: Any) -> Readiness:
    return judge(figures(**changes), BAR, IDLE, offered_per_second=200.0, stopped=[node])


def test_every_tab_of_the_stopped_node_told_4200_and_back_elsewhere_is_ready() -> None:
    r = with_stop(stopped())
    assert r.verdict == "ready"
    shown = {c.name: (c.measured, c.bar, c.met) for c in r.criteria}
    assert shown["node 1 down after the stop"] == ("in 0.8 s", "by the end of the run", True)
    assert shown["node 1's tabs closed with 4200"] == ("100/100", "all", True)
    assert shown["node 1's tabs back through another node"] == ("100/100", "all", True)
    assert [c.name for c in r.criteria][-3:] == [
        "node 1 down after the stop",
        "node 1's tabs closed with 4200",
        "node 1's tabs back through another node",
    ]


@pytest.mark.parametrize(
    ("node", "missed"),
    [
        (stopped(closed=99), "node 1's tabs closed with 4200"),
        (stopped(back=99), "node 1's tabs back through another node"),
        (stopped(down_after=None), "node 1 down after the stop"),
    ],
)
def test_one_tab_not_told_4200_or_not_back_is_not_ready(node: StoppedNode, missed: str) -> None:
    r = with_stop(node)
    assert (r.verdict, r.note, r.exit_code) == ("not ready", f"missed: {missed}", 1)


@pytest.mark.parametrize(
    ("changes", "missed"),
    [
        ({"lost": 1, "delivered": 1199}, "lost for connected subscribers"),
        ({"duplicates": 1}, "delivered twice"),
        ({"out_of_order": 1}, "out of order"),
    ],
)
def test_a_stop_with_anything_lost_or_doubled_is_not_ready(
    changes: dict[str, int], missed: str
) -> None:
    r = with_stop(stopped(), **changes)
    assert (r.verdict, r.note) == ("not ready", f"missed: {missed}")


def test_a_stopped_node_that_had_no_tabs_proves_nothing() -> None:
    r = with_stop(stopped(tabs=0, closed=0, back=0))
    assert r.verdict == "inconclusive"
    assert r.note == (
        "not tested: node 1's tabs closed with 4200, node 1's tabs back through another node"
    )
