"""The coordinator's plan, without starting anything: tabs spread over the ramp and over the
workers, channels tagged by the run, and each fault's seeded choice of tabs split by owner."""

from __future__ import annotations

import dataclasses
import os

import pytest

from conformance.nodes import Node
from conformance.proxy.faults import Reset, Stall
from conformance.simulate.coordinator import default_workers, plan_workers
from conformance.simulate.scenario import Incident, SimScenario
from conformance.simulate.worker import WorkerPlan
from conformance.target import Target

TARGET = Target(
    name="t", ws_url="ws://127.0.0.1:6001", http_url="http://127.0.0.1:6001", app_id="1",
    key="the-key", secret="the-secret",
)  # fmt: skip
SCENARIO = SimScenario(
    name="plan",
    title="plan",
    description="",
    channels={"a": "private-a", "b": "b"},
    alerts=(("x", "a"),),
    users=5,
    tabs=2,
    ramp_seconds=10.0,
    duration_seconds=30.0,
    incidents=(
        Incident(at=1.0, restart=True),
        Incident(at=2.0, fault=Stall("both"), share=0.5, lasts=3.0),
        Incident(at=4.0, fault=Reset(), share=0.01),
    ),
)


def plan(workers: int = 3, seed: int = 255) -> list[WorkerPlan]:
    return plan_workers(SCENARIO, workers=workers, seed=seed, start=1000.0, target=TARGET)


def stalled(plans: list[WorkerPlan]) -> list[str]:
    return sorted(
        t for p in plans for i in p["incidents"] if i["fault"] == "stall" for t in i["tabs"]
    )


def test_tabs_are_spread_over_the_ramp_and_the_workers() -> None:
    plans = plan()
    assert [p["index"] for p in plans] == [0, 1, 2]
    opened = sorted((at, tab) for p in plans for tab, _, at, _ in p["tabs"])
    assert len(opened) == 10
    assert opened[0] == (1000.0, "u00000.t0")
    assert opened[1] == (1001.0, "u00000.t1")  # 10 s of ramp over 10 tabs
    assert opened[-1] == (1009.0, "u00004.t1")
    assert [t for t, _, _, _ in plans[1]["tabs"]] == ["u00000.t1", "u00002.t0", "u00003.t1"]
    assert {u for p in plans for _, u, _, _ in p["tabs"]} == {f"u{n:05d}" for n in range(5)}
    assert {node for p in plans for _, _, _, node in p["tabs"]} == {0}  # one server


def test_every_worker_gets_the_same_run() -> None:
    for p in plan():
        assert p["channels"] == {"a": "private-a.ff", "b": "b.ff"}  # the seed, in hex
        assert p["upstreams"] == ["ws://127.0.0.1:6001"]
        assert p["path"].startswith("/app/the-key?protocol=7&client=pusher-conformance-simulate")
        assert (p["key"], p["secret"], p["seed"]) == ("the-key", "the-secret", 255)
        assert (p["measure_from"], p["measure_to"]) == (1010.0, 1040.0)
        assert p["behaviour"] == {
            "activity_timeout": 120.0, "pong_timeout": 30.0, "retry_jitter_seconds": 0.0,
        }  # fmt: skip


def test_faults_go_to_a_seeded_share_of_the_tabs_split_by_owner() -> None:
    plans = plan()
    incidents = [i for p in plans for i in p["incidents"]]
    stall = [i for i in incidents if i["fault"] == "stall"]
    reset = [i for i in incidents if i["fault"] == "reset"]
    assert sum(len(i["tabs"]) for i in stall) == 5  # half of 10 tabs
    assert sum(len(i["tabs"]) for i in reset) == 1  # at least one tab, however small the share
    assert all(i["at"] == 1012.0 and i["lift_at"] == 1015.0 for i in stall)
    assert all(i["params"] == {"direction": "both"} for i in stall)
    assert all(i["at"] == 1014.0 and i["lift_at"] is None for i in reset)
    for p in plans:
        mine = {t for t, _, _, _ in p["tabs"]}
        assert all(set(i["tabs"]) <= mine for i in p["incidents"])
    assert stalled(plans) == stalled(plan())  # the same seed, the same choice
    others = {tuple(stalled(plan(seed=seed))) for seed in range(20)}
    assert len(others) > 1  # another seed, another choice


def test_one_worker_gets_everything() -> None:
    (only,) = plan(workers=1)
    assert len(only["tabs"]) == 10
    assert [i["fault"] for i in only["incidents"]] == ["stall", "reset"]


@pytest.mark.parametrize("tabs", [1, 999, 2000, 10_000, 1_000_000])
def test_default_workers_is_at_most_one_per_core_and_eight(tabs: int) -> None:
    assert 1 <= default_workers(tabs) <= min(os.cpu_count() or 1, 8)


def test_a_few_tabs_get_one_worker() -> None:
    assert default_workers(1) == default_workers(250) == 1


def test_against_a_cluster_tabs_start_on_the_nodes_round_robin() -> None:
    cluster = dataclasses.replace(
        TARGET,
        nodes=tuple(
            Node(f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}")
            for port in (7001, 7002, 7003)
        ),
    )
    plans = plan_workers(SCENARIO, workers=2, seed=1, start=1000.0, target=cluster)
    for p in plans:
        assert p["upstreams"] == [
            "ws://127.0.0.1:7001", "ws://127.0.0.1:7002", "ws://127.0.0.1:7003",
        ]  # fmt: skip
    first = {tab: node for p in plans for tab, _, _, node in p["tabs"]}
    ordered = [first[f"u{u:05d}.t{k}"] for u in range(5) for k in range(2)]
    assert ordered == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    # The two tabs of one user are on two nodes: a user sees the cluster from both sides.
    assert first["u00000.t0"] != first["u00000.t1"]
