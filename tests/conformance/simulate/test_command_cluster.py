"""``conformance simulate`` against a cluster: the usage mistakes a ``stop_node`` scenario can
make (status 2, one line, nothing started), and, behind the ``cluster`` marker, node 1 of three
bundled nodes on Redis stopped under live traffic: every tab it held told 4200 and back through
another node with nothing lost, and the same run going red for a node that forwards twice and
for a node killed without a goodbye."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.bundled_cluster import start_bundled_cluster
from conformance.cli import main

#: 30 tabs over 3 nodes, 5 events/s, node 1 stopped 4 s into a 10 s measured phase.
SMALL: dict[str, Any] = {
    "scenario": "small-node-sigterm",
    "title": "SIGTERM of one node, small",
    "channels": {
        "notifications": "private-admin.notifications",
        "health": "admin.health-alerts",
    },
    "alerts": [
        {"event": "admin.notification", "channel": "notifications"},
        {"event": "health.alert", "channel": "health"},
    ],
    "load": {
        "users": 15,
        "tabs": 2,
        "ramp_seconds": 2,
        "duration_seconds": 10,
        "settle_seconds": 2,
        "publish_per_second": 5,
        "incidents": [{"at": 4, "stop_node": 1}],
        # 150 deliveries a second offered: a bar the run can test. The connect time is not
        # what these runs are about, and a busy machine stretches it: a generous bar.
        "thresholds": {"delivered_per_second": 50, "connect_p99_ms": 10_000},
    },
}


def scenario_file(directory: Path, stop_node: int = 1) -> Path:
    incidents = [{"at": 4, "stop_node": stop_node}]
    path = directory / "small.yaml"
    path.write_text(
        yaml.safe_dump({**SMALL, "load": {**SMALL["load"], "incidents": incidents}}),
        encoding="utf-8",
    )
    return path


def simulate(scenario: Path | str, report: Path, *extra: str) -> int:
    return main(
        [
            "simulate", "--scenario", str(scenario), "--workers", "1", "--no-progress",
            "--seed", "7", "--report-dir", str(report), *extra,
        ]
    )  # fmt: skip


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("conformance: error: ")
    return lines[0]


def cluster_target(directory: Path, stops: dict[int, str] | None = None, nodes: int = 3) -> Path:
    """A target file naming ``nodes`` nodes where nothing listens (ports 1, 2, ...): only the
    checks made before reaching them can pass."""
    listed = [
        {"ws_url": f"ws://127.0.0.1:{n + 1}", "http_url": f"http://127.0.0.1:{n + 1}"}
        | ({"stop": (stops or {})[n]} if n in (stops or {}) else {})
        for n in range(nodes)
    ]
    target = {"name": "nowhere", "app_id": "1", "key": "k", "secret": "s", "nodes": listed}
    path = directory / "target.yaml"
    path.write_text(yaml.safe_dump(target), encoding="utf-8")
    return path


# -- usage mistakes: status 2, one line, nothing started ------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            [],
            "scenario 'node-sigterm' stops node 1 of a cluster: give --bundled-nodes N (N >= 2),"
            " or a target file with nodes: (docs/simulate.md)",
        ),
        (["--bundled-nodes", "1"], "--bundled-nodes must be 2 to 5, got 1"),
        (["--bundled-nodes", "6"], "--bundled-nodes must be 2 to 5, got 6"),
        (
            ["--bundled-nodes", "0"],
            "argument --bundled-nodes: must be positive: '0'",
        ),
    ],
)
def test_a_node_stop_needs_a_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    report = tmp_path / "report"
    assert simulate("node-sigterm", report, *extra) == 2
    assert message in one_line_error(capsys)
    assert not report.exists()


def test_a_target_files_node_needs_a_stop_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report"
    target = cluster_target(tmp_path, stops={0: "true", 2: "true"})
    assert simulate("node-sigterm", report, "--target-file", str(target)) == 2
    assert one_line_error(capsys) == (
        "conformance: error: scenario 'node-sigterm' stops node 1, but the target file's"
        " nodes[1] has no stop command (nodes: [{ws_url, http_url, stop: COMMAND}, ...];"
        " docs/simulate.md)"
    )
    assert not report.exists()
    # One node is no cluster: there is nowhere else to come back to.
    target = cluster_target(tmp_path, stops={0: "true"}, nodes=1)
    assert simulate("node-sigterm", report, "--target-file", str(target)) == 2
    assert "stops node 1 of a cluster: give --bundled-nodes N" in one_line_error(capsys)


def test_bundled_nodes_is_not_for_a_target_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = cluster_target(tmp_path, stops={1: "true"})
    args = ["--target-file", str(target), "--bundled-nodes", "3"]
    assert simulate("node-sigterm", tmp_path / "report", *args) == 2
    assert one_line_error(capsys) == (
        "conformance: error: --bundled-nodes starts a cluster of its own: give it without"
        " --target-file"
    )


def test_a_cluster_has_no_one_server_to_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert simulate("restart-under-load", tmp_path / "report", "--bundled-nodes", "3") == 2
    assert one_line_error(capsys) == (
        "conformance: error: scenario 'restart-under-load' restarts the server, which a cluster"
        " does not have one of: stop a node instead (stop_node: N; docs/simulate.md)"
    )


# -- node 1 of three stopped under live traffic (bundled nodes on Redis) --------------------------


def stopped_node(data: dict[str, Any]) -> dict[str, Any]:
    (node,) = data["figures"]["stopped_nodes"]
    return dict(node)


@pytest.mark.cluster
def test_every_tab_of_the_stopped_node_told_4200_and_back_elsewhere_nothing_lost(
    tmp_path: Path, redis_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # ``redis_server`` decides whether Redis is there (skip, or fail in CI); the bundled
    # cluster starts a Redis of its own, as ``simulate --bundled-nodes`` does.
    report = tmp_path / "report"
    assert simulate(scenario_file(tmp_path), report, "--bundled-nodes", "3") == 0
    data = json.loads((report / "simulation.json").read_text())
    figures = data["figures"]
    node = stopped_node(data)
    assert node["node"] == 1
    assert 8 <= node["tabs"] <= 10  # a third of 30 tabs, less any caught between connections
    assert node["closed_4200"] == node["tabs"]
    assert node["came_back"] == node["tabs"]
    assert node["back_through"] == {"2": node["tabs"]}  # the next node in each tab's turn
    assert node["reconnect_ms"]["count"] == node["tabs"]
    assert figures["owed"] > 0
    assert (figures["lost"], figures["duplicates"], figures["out_of_order"]) == (0, 0, 0)
    assert set(figures["per_node"]) == {"0", "1", "2"}
    assert figures["recovered_users"] == 15
    assert data["readiness"]["verdict"] == "ready"
    assert any("node 1 down" in line for line in data["timeline"])
    assert 0 < node["down_after"] < 10
    assert "Traceback" not in capsys.readouterr().err
    markdown = (report / "simulation.md").read_text(encoding="utf-8")
    assert f"| stopped node 1: back through another node | {node['tabs']} / " in markdown
    assert (report / "reference-server-node1.log").is_file()  # the evidence goes with it


@pytest.mark.cluster
def test_a_node_that_forwards_twice_is_not_ready(
    tmp_path: Path, redis_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bundled cluster switches the faults on in node 1 only, and the publisher posts
    # through the nodes not stopped: stopping node 2 leaves node 1 posting (twice) to node 0.
    monkeypatch.setenv("PUSHER_REF_FAULTS", "cluster_double_forward")
    report = tmp_path / "report"
    assert simulate(scenario_file(tmp_path, stop_node=2), report, "--bundled-nodes", "3") == 1
    data = json.loads((report / "simulation.json").read_text())
    per_node = data["figures"]["per_node"]
    assert data["figures"]["duplicates"] > 0
    assert per_node["0"]["duplicates"] > 0
    assert per_node["1"]["duplicates"] == 0  # its own tabs get its publishes once
    assert data["readiness"]["note"] == "missed: delivered twice"


@pytest.mark.cluster
def test_a_node_killed_without_a_goodbye_is_not_ready(
    tmp_path: Path, redis_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = start_bundled_cluster(3, tmp_path / "cluster")
    try:
        t = cluster.target
        nodes = [
            {"ws_url": n.ws_url, "http_url": n.http_url}
            | ({"stop": f"kill -9 {cluster.nodes[1].process.pid}"} if i == 1 else {})
            for i, n in enumerate(t.nodes)
        ]
        target = tmp_path / "target.yaml"
        target.write_text(
            yaml.safe_dump(
                {"name": "a cluster whose node 1 crashes", "app_id": t.app_id, "key": t.key,
                 "secret": t.secret, "nodes": nodes}
            ),
            encoding="utf-8",
        )  # fmt: skip
        report = tmp_path / "report"
        assert simulate(scenario_file(tmp_path), report, "--target-file", str(target)) == 1
    finally:
        cluster.stop()
    data = json.loads((report / "simulation.json").read_text())
    node = stopped_node(data)
    assert node["tabs"] > 0
    assert node["closed_4200"] == 0
    assert node["not_closed_examples"][0].endswith(": dropped without a close frame")
    assert node["came_back"] == node["tabs"]  # the others took them in all the same
    assert data["readiness"]["note"] == "missed: node 1's tabs closed with 4200"
    assert "Traceback" not in capsys.readouterr().err
