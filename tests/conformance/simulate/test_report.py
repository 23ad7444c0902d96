"""The simulation's report: the JSON for machines, the Markdown and HTML sections for people,
all from one hand-built result, saying the same figures in the same words (and HTML escaping
whatever came from a file or a server)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from conformance.proxy.faults import Reset
from conformance.simulate.cluster import StoppedNode
from conformance.simulate.coordinator import SimulationResult
from conformance.simulate.ledger import Figures, NodeFigures, UserFigures
from conformance.simulate.report import FORMAT_VERSION, figure_rows, to_html, to_json, to_markdown
from conformance.simulate.scenario import Incident, SimScenario, Thresholds
from conformance.simulate.verdict import Generator, judge
from conformance.target import Target

SCENARIO = SimScenario(
    name="storm",
    title="Storm <&> drill",
    description="",
    channels={"a": "private-a"},
    alerts=(("alert", "a"),),
    users=2,
    tabs=2,
    ramp_seconds=1.0,
    duration_seconds=8.0,
    publish_per_second=5.0,
    incidents=(Incident(at=1.0, restart=True), Incident(at=2.0, fault=Reset(), share=0.5)),
    thresholds=Thresholds(delivered_per_second=10),
)
TARGET = Target(
    name="server <one>",
    ws_url="ws://127.0.0.1:6001",
    http_url="http://127.0.0.1:6001",
    app_id="1",
    key="the-key",
    secret="the-secret",
)
USERS = [
    UserFigures("u00000", 12.0, 1500.0, 40, 0, 0, 0, True),
    UserFigures("u00001", 9.0, None, 38, 1, 0, 0, False),
]
FIGURES = Figures(
    users=2, tabs=4, connections=9, connect_ms=[9.0, 10.0, 11.0, 12.0],
    reconnect_ms=[1000.0, 1500.0, 1200.0], latency_ms=[2.0, 4.0], published=40,
    publish_failed=2, owed=78, delivered=77, lost=1, duplicates=3, out_of_order=4,
    received_total=1234, window_seconds=8.0, unseen_while_away=6, recovered_users=1,
    refused_tabs=1, closes={"4200": 4, "handshake failed": 1}, per_user=USERS,
)  # fmt: skip
GENERATOR = Generator(workers=1, cpu_share_p90=0.25, lag_ms_p99=7.0)


def result(**changes: Any) -> SimulationResult:
    figures = changes.pop("figures", FIGURES)
    generator = changes.pop("generator", GENERATOR)
    built = SimulationResult(
        scenario=SCENARIO,
        target=TARGET,
        seed=4242,
        figures=figures,
        generator=generator,
        readiness=judge(figures, SCENARIO.thresholds, generator, offered_per_second=100.0),
        injections={"reset": 2, "error: connect upstream": 3},
        publish_failures={"HTTP 503": 2},
        timeline=("t+   1.0s server restart begins", "t+   1.4s server <back> & ready"),
        started_at=1_700_000_000.0,
        seconds=15.4321,
    )
    return dataclasses.replace(built, **changes)


def test_figure_rows_in_the_readers_order() -> None:
    rows = dict(figure_rows(result()))
    assert list(rows)[:3] == [
        "virtual users x tabs",
        "connections opened",
        "connect time p50 / p99",
    ]
    assert rows["virtual users x tabs"] == "2 x 2 = 4 tabs"
    assert rows["connections opened"] == "9"
    assert rows["connect time p50 / p99"] == "10 ms / 12 ms"
    assert rows["delivery latency p50 / p99"] == "2 ms / 4 ms"
    assert rows["events published (failed)"] == "40 (2)"
    assert rows["delivered / owed"] == "77 / 78"
    assert (rows["lost"], rows["duplicated"], rows["out of order"]) == ("1", "3", "4")
    assert rows["messages delivered per second"] == "154"  # 1234 / 8
    assert rows["unseen while away (no history in the protocol)"] == "6"
    assert rows["reconnects"] == "3"
    assert rows["reconnect time p50 / p99"] == "1,200 ms / 1,500 ms"
    assert rows["users recovered"] == "1 / 2"
    assert rows["tabs refused (4000-4099, not retried)"] == "1"
    assert rows["connection ends"] == "4200 x4, handshake failed x1"
    assert rows["slowest user"] == (
        "u00001: connect 9 ms, worst reconnect —, lost 1, not recovered"
    )
    assert rows["load generator"] == GENERATOR.explain()
    assert rows["proxy injections"] == "reset x2"
    assert rows["proxy could not"] == "connect upstream x3"


def test_figure_rows_of_an_empty_run() -> None:
    empty = dataclasses.replace(
        FIGURES, connect_ms=[], reconnect_ms=[], latency_ms=[], closes={}, per_user=[]
    )
    rows = dict(figure_rows(result(figures=empty, injections={})))
    assert rows["connect time p50 / p99"] == "— / —"
    assert rows["connection ends"] == "—"
    assert "slowest user" not in rows
    assert "proxy injections" not in rows
    assert "proxy could not" not in rows


def test_json_has_every_figure_and_no_secret() -> None:
    data = to_json(result())
    assert json.loads(json.dumps(data)) == data  # plain JSON all the way down
    assert (data["format"], data["kind"], data["seed"]) == (FORMAT_VERSION, "simulation", 4242)
    assert data["seconds"] == 15.432
    assert data["scenario"] == {
        "name": "storm",
        "title": "Storm <&> drill",
        "users": 2,
        "tabs": 2,
        "ramp_seconds": 1.0,
        "duration_seconds": 8.0,
        "publish_per_second": 5.0,
        "incidents": ["t+1s restart the server", "t+2s reset on 50% of tabs"],
    }
    assert data["target"]["name"] == "server <one>"
    assert "the-secret" not in json.dumps(data)
    f = data["figures"]
    assert f["connect_ms"] == {"p50": 10.0, "p99": 12.0, "count": 4}
    assert f["reconnect_ms"] == {"p50": 1200.0, "p99": 1500.0, "count": 3}
    assert f["latency_ms"] == {"p50": 2.0, "p99": 4.0, "count": 2}
    assert (f["published"], f["publish_failed"], f["owed"], f["delivered"]) == (40, 2, 78, 77)
    assert (f["lost"], f["duplicates"], f["out_of_order"]) == (1, 3, 4)
    assert f["delivered_per_second"] == 154.2
    assert (f["unseen_while_away"], f["recovered_users"], f["refused_tabs"]) == (6, 1, 1)
    assert f["connection_ends"] == {"4200": 4, "handshake failed": 1}
    assert f["slowest_user"] == {
        "user": "u00001", "connect_ms": 9.0, "worst_reconnect_ms": None, "owed": 38,
        "lost": 1, "duplicates": 0, "out_of_order": 0, "recovered": False,
    }  # fmt: skip
    assert data["generator"] == {
        "workers": 1, "cpu_share_p90": 0.25, "lag_ms_p99": 7.0, "saturated": False,
    }  # fmt: skip
    readiness = data["readiness"]
    assert readiness["verdict"] == "not ready"
    assert readiness["note"] == (
        "missed: users recovered after the faults, lost for connected subscribers,"
        " delivered twice, out of order"
    )
    assert readiness["criteria"][0] == {
        "name": "connect time p99", "measured": "12 ms", "bar": "< 1000 ms", "met": True,
    }  # fmt: skip
    assert data["proxy_injections"] == {"reset": 2, "error: connect upstream": 3}
    assert data["publish_failures"] == {"HTTP 503": 2}
    assert data["timeline"] == [
        "t+   1.0s server restart begins",
        "t+   1.4s server <back> & ready",
    ]


def test_json_of_a_run_with_no_users() -> None:
    empty = dataclasses.replace(FIGURES, per_user=[], connect_ms=[])
    f = to_json(result(figures=empty))["figures"]
    assert f["slowest_user"] is None
    assert f["connect_ms"] == {"p50": None, "p99": None, "count": 0}


def test_markdown_section() -> None:
    text = to_markdown(result())
    assert text.startswith("## Simulation: Storm <&> drill\n")
    assert text.endswith("\n")
    assert "Target `server <one>` (ws://127.0.0.1:6001), scenario `storm`, seed 4242, 15 s." in text
    assert "**Production readiness: NOT READY** (missed: users recovered" in text
    assert "not part of the conformance outcomes" in text
    assert "| connect time p99 | 12 ms | < 1000 ms | yes |" in text
    assert "| users recovered after the faults | 1/2 | >= 100% | **no** |" in text
    assert "| lost for connected subscribers | 1 of 78 | <= 0 | **no** |" in text
    assert "| delivered / owed | 77 / 78 |" in text
    assert "| reconnect time p50 / p99 | 1,200 ms / 1,500 ms |" in text
    assert "| proxy injections | reset x2 |" in text
    assert text.endswith(
        "\n\nTimeline:\n\n- t+   1.0s server restart begins\n- t+   1.4s server <back> & ready\n"
    )


def test_markdown_every_figure_row_appears() -> None:
    r = result()
    text = to_markdown(r)
    for name, value in figure_rows(r):
        assert f"| {name} | {value} |" in text


def test_markdown_without_a_timeline_has_none() -> None:
    assert "Timeline" not in to_markdown(result(timeline=()))


def test_html_section_escapes_what_it_did_not_write() -> None:
    page = to_html(result())
    assert page.startswith("<!doctype html>")
    assert page.endswith("</section>\n")
    assert "<title>Simulation: Storm &lt;&amp;&gt; drill</title>" in page
    assert "<h2>Simulation: Storm &lt;&amp;&gt; drill</h2>" in page
    assert "<code>server &lt;one&gt;</code>" in page
    assert "<li>t+   1.0s server restart begins</li>" in page
    assert "<li>t+   1.4s server &lt;back&gt; &amp; ready</li>" in page
    for raw in ("<back>", "<one>", "<&>"):
        assert raw not in page
    assert "<strong>Production readiness: NOT READY</strong>" in page
    assert (
        "<tr><td>users recovered after the faults</td><td>1/2</td><td>&gt;= 100%</td>"
        '<td class="missed">no</td></tr>'
    ) in page
    assert (
        '<tr><td>connect time p99</td><td>12 ms</td><td>&lt; 1000 ms</td><td class="met">yes</td>'
    ) in page
    assert "<tr><td>delivered / owed</td><td>77 / 78</td></tr>" in page
    assert "<tr><td>slowest user</td><td>u00001: connect 9 ms, worst reconnect —" in page


def test_html_without_a_timeline_has_none() -> None:
    assert "Timeline" not in to_html(result(timeline=()))


def test_a_ready_run_reads_ready_everywhere() -> None:
    good = dataclasses.replace(
        FIGURES, lost=0, delivered=78, duplicates=0, out_of_order=0, recovered_users=2,
        refused_tabs=0, per_user=USERS[:1],
    )  # fmt: skip
    r = result(figures=good)
    assert r.readiness.verdict == "ready"
    assert to_json(r)["readiness"]["note"] == "every criterion met"
    assert "**Production readiness: READY** (every criterion met)" in to_markdown(r)
    assert "<strong>Production readiness: READY</strong> (every criterion met)" in to_html(r)
    assert 'class="missed"' not in to_html(r)
    assert "**no**" not in to_markdown(r)


STOPPED = StoppedNode(
    node=1, stopped_at=1_700_000_020.0, down_after=None, tabs=3, closed_4200=2, came_back=3,
    back_through={0: 1, 2: 2}, reconnect_ms=[30.0, 40.0, 900.0],
    not_closed_examples=["u00002.t1: dropped without a close frame"],
)  # fmt: skip
PER_NODE = {
    0: NodeFigures(connections=3, owed=40, lost=0, duplicates=0, out_of_order=0),
    1: NodeFigures(connections=2, owed=10, lost=1, duplicates=0, out_of_order=0),
    2: NodeFigures(connections=4, owed=28, lost=0, duplicates=3, out_of_order=4),
}


def test_a_cluster_shows_each_node_and_the_stopped_nodes_tabs() -> None:
    clustered = result(figures=dataclasses.replace(FIGURES, per_node=PER_NODE), stopped=(STOPPED,))
    rows = dict(figure_rows(clustered))
    assert rows["node 0"] == (
        "3 connections, delivered / owed 40 / 40, lost 0, duplicated 0, out of order 0"
    )
    assert rows["node 1"] == (
        "2 connections, delivered / owed 9 / 10, lost 1, duplicated 0, out of order 0"
    )
    assert rows["node 2"] == (
        "4 connections, delivered / owed 28 / 28, lost 0, duplicated 3, out of order 4"
    )
    assert rows["stopped node 1: down after"] == "not by the end of the run"
    assert rows["stopped node 1: tabs on it"] == "3"
    assert rows["stopped node 1: closed with 4200"] == "2 / 3"
    assert rows["stopped node 1: back through another node"] == "3 / 3 (node 0 x1, node 2 x2)"
    assert rows["stopped node 1: reconnect time p50 / p99"] == "40 ms / 900 ms"
    assert rows["stopped node 1: not closed with 4200"] == (
        "u00002.t1: dropped without a close frame"
    )
    assert "stopped node 1: not back" not in rows
    data = to_json(clustered)["figures"]
    assert data["per_node"]["2"] == {
        "connections": 4, "owed": 28, "lost": 0, "duplicates": 3, "out_of_order": 4,
    }  # fmt: skip
    assert data["stopped_nodes"] == [
        {
            "node": 1, "stopped_at": 1_700_000_020.0, "down_after": None, "tabs": 3,
            "closed_4200": 2, "came_back": 3, "back_through": {"0": 1, "2": 2},
            "reconnect_ms": {"p50": 40.0, "p99": 900.0, "count": 3},
            "not_closed_examples": ["u00002.t1: dropped without a close frame"],
            "not_back_examples": [],
        }
    ]  # fmt: skip
    assert "| stopped node 1: closed with 4200 | 2 / 3 |" in to_markdown(clustered)
    assert (
        dict(figure_rows(result(stopped=(dataclasses.replace(STOPPED, down_after=0.84),))))[
            "stopped node 1: down after"
        ]
        == "0.8 s"
    )


def test_a_single_server_shows_no_node_rows() -> None:
    rows = dict(figure_rows(result()))
    assert not [name for name in rows if name.startswith(("node ", "stopped node"))]
    data = to_json(result())["figures"]
    assert (data["per_node"], data["stopped_nodes"]) == ({}, [])
