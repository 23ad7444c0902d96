"""``conformance simulate`` end to end: a few virtual users against the bundled reference server
through a server restart and through a reset of every tab, all back with nothing lost, also over
wss with a private CA; and the usage mistakes that end with status 2 and one line, before any
server is started or reached."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.bundled import BundledTls, start_bundled
from conformance.cli import main

TINY: dict[str, Any] = {
    "scenario": "tiny",
    "title": "Two users, two tabs",
    "channels": {
        "notifications": "private-admin.notifications",
        "health": "private-admin.health-alerts",
    },
    "alerts": [
        {"event": "admin.notification", "channel": "notifications"},
        {"event": "health.alert", "channel": "health"},
    ],
    "load": {
        "users": 2,
        "tabs": 2,
        "ramp_seconds": 1,
        "duration_seconds": 4,
        "settle_seconds": 1,
        "publish_per_second": 5,
        "incidents": [],
    },
}


def scenario_file(directory: Path, *incidents: dict[str, Any]) -> Path:
    content = {**TINY, "load": {**TINY["load"], "incidents": list(incidents)}}
    path = directory / "tiny.yaml"
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    return path


def simulate(scenario: Path, report: Path, *extra: str) -> int:
    return main(
        [
            "simulate", "--scenario", str(scenario), "--workers", "1", "--no-progress",
            "--seed", "11", "--report-dir", str(report), *extra,
        ]
    )  # fmt: skip


def criteria(data: dict[str, Any]) -> dict[str, bool | None]:
    return {c["name"]: c["met"] for c in data["readiness"]["criteria"]}


def assert_everyone_came_back(data: dict[str, Any]) -> None:
    f = data["figures"]
    assert (f["users"], f["tabs"]) == (2, 4)
    assert f["recovered_users"] == 2
    assert f["refused_tabs"] == 0
    assert f["published"] > 0
    assert f["owed"] > 0  # so "nothing lost" says something
    assert f["lost"] == 0
    assert f["delivered"] == f["owed"]
    assert f["duplicates"] == 0
    assert f["out_of_order"] == 0
    assert f["reconnect_ms"]["count"] >= 4  # every tab came back at least once
    assert f["slowest_user"]["recovered"] is True
    # 20 deliveries a second offered against a bar of 1,000: throughput is not tested, and
    # nothing else is missed.
    assert data["readiness"]["verdict"] == "inconclusive"
    assert data["readiness"]["note"] == "not tested: messages delivered per second"
    assert criteria(data) == {
        "connect time p99": True,
        "messages delivered per second": None,
        "users recovered after the faults": True,
        "lost for connected subscribers": True,
        "delivered twice": True,
        "out of order": True,
    }


def test_a_server_restart_under_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report"
    assert simulate(scenario_file(tmp_path, {"at": 1, "restart": True}), report) == 3
    data = json.loads((report / "simulation.json").read_text())
    assert data["kind"] == "simulation"
    assert data["seed"] == 11
    assert data["target"]["bundled"] is True
    assert data["scenario"]["incidents"] == ["t+1s restart the server"]
    assert_everyone_came_back(data)
    assert data["figures"]["connection_ends"].get("4200") == 4  # the drain told everyone
    timeline = " / ".join(data["timeline"])
    assert "server restart begins" in timeline
    assert "server back" in timeline
    assert (report / "simulation.md").read_text().startswith("## Simulation: Two users, two tabs")
    assert "server restart begins" in (report / "simulation.html").read_text()
    err = capsys.readouterr().err
    assert "Traceback" not in err
    flat = "".join(err.split())  # rich wraps the console at its width
    for said in (
        "2 users x 2 tabs, 1 worker(s), seed 11",
        "production readiness: INCONCLUSIVE",
        f"report written to {report}/simulation.{{json,md,html}}",
    ):
        assert "".join(said.split()) in flat


def test_every_tab_reset_and_every_tab_back(tmp_path: Path) -> None:
    report = tmp_path / "report"
    incident = {"at": 1, "fault": "reset", "share": 1.0}
    assert simulate(scenario_file(tmp_path, incident), report) == 3
    data = json.loads((report / "simulation.json").read_text())
    assert data["scenario"]["incidents"] == ["t+1s reset on 100% of tabs"]
    assert data["proxy_injections"] == {"reset": 4}
    assert data["figures"]["connection_ends"].get("dropped without a close frame") == 4
    assert_everyone_came_back(data)
    assert any("reset on 100% of tabs" in line for line in data["timeline"])


@pytest.mark.parametrize(
    "trust", ["--ca-file", pytest.param("--insecure", marks=pytest.mark.nginx)]
)
def test_over_wss_with_a_private_ca(
    trust: str,
    tmp_path: Path,
    tls_files: Callable[..., BundledTls],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The workers' proxies speak TLS to the server and the publisher posts over https, both
    trusting --ca-file, or trusting anything with --insecure (then warned about, and slow
    enough to run with the TLS deployment tests): every tab is reset through its proxy and
    every tab comes back."""
    server = start_bundled(tmp_path / "server.log", tls=tls_files(tmp_path / "certs"))
    try:
        t = server.target
        assert t.ca_file is not None
        target = write_target(
            tmp_path, name="bundled over wss", ws_url=t.ws_url, http_url=t.http_url,
            app_id=t.app_id, key=t.key, secret=t.secret,
        )  # fmt: skip
        report = tmp_path / "report"
        incident = {"at": 1, "fault": "reset", "share": 1.0}
        args = ["--target-file", str(target), trust, *([t.ca_file] if trust == "--ca-file" else [])]
        assert simulate(scenario_file(tmp_path, incident), report, *args) == 3
    finally:
        server.stop()
    data = json.loads((report / "simulation.json").read_text())
    assert data["target"]["ws_url"].startswith("wss://")
    assert data["target"]["ca_file"] == (t.ca_file if trust == "--ca-file" else None)
    assert data["target"]["insecure"] is (trust == "--insecure")
    assert data["proxy_injections"] == {"reset": 4}
    assert_everyone_came_back(data)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert ("simulate: warning: --insecure: the TLS certificate of wss://" in err) is (
        trust == "--insecure"
    )


# -- usage mistakes: status 2, one line, nothing started ------------------------------------------


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("conformance: error: ")
    return lines[0]


def test_an_unknown_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report"
    assert simulate(Path("no-such-scenario"), report) == 2
    assert one_line_error(capsys) == (
        "conformance: error: unknown scenario 'no-such-scenario'"
        " (bundled: admin-alerts, flaky-network, node-sigterm, restart-under-load)"
    )
    assert not report.exists()


def write_target(directory: Path, **extra: Any) -> Path:
    """A target where nothing listens (port 1): only the checks before reaching it can pass."""
    target = {
        "name": "nowhere",
        "ws_url": "ws://127.0.0.1:1",
        "http_url": "http://127.0.0.1:1",
        "app_id": "1",
        "key": "k",
        "secret": "s",
        **extra,
    }
    path = directory / "target.yaml"
    path.write_text(yaml.safe_dump(target), encoding="utf-8")
    return path


def test_a_restart_scenario_needs_a_restart_command_in_the_target_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = write_target(tmp_path)
    report = tmp_path / "report"
    args = ["--target-file", str(target)]
    assert simulate(Path("restart-under-load"), report, *args) == 2
    assert one_line_error(capsys) == (
        "conformance: error: scenario 'restart-under-load' restarts the server: the target file"
        " must give restart: {command: ..., within: SECONDS} (docs/simulate.md)"
    )
    assert not report.exists()
    # The same scenario from a file of one's own, with a restart incident.
    own = scenario_file(tmp_path, {"at": 1, "restart": True})
    assert simulate(own, report, *args) == 2
    assert "scenario 'tiny' restarts the server" in one_line_error(capsys)


def test_a_ca_file_needs_a_target_file_and_must_hold_a_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report"
    assert simulate(scenario_file(tmp_path), report, "--ca-file", str(tmp_path / "ca.pem")) == 2
    assert "--ca-file is for a wss:// target file" in one_line_error(capsys)
    args = ["--target-file", str(write_target(tmp_path)), "--ca-file", str(tmp_path / "ca.pem")]
    assert simulate(scenario_file(tmp_path), report, *args) == 2
    assert "CA file not found" in one_line_error(capsys)
    assert not report.exists()


def test_with_a_restart_command_the_target_must_then_be_reachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = write_target(tmp_path, restart={"command": "true", "within": 5})
    report = tmp_path / "report"
    assert simulate(Path("restart-under-load"), report, "--target-file", str(target)) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("conformance: target unreachable: nothing answers at 127.0.0.1:1")
    assert "\n" not in err
    assert not report.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--duration", "5"],
            "conformance: error: the command line: incident 't+10s restart the server' comes"
            " at or after the end of the measured phase (5s)",
        ),
        (["--users", "0"], "conformance: error: conformance simulate: argument --users: must be"),
        (["--tabs", "21"], "conformance: error: --tabs must be a whole number from 1 to 20"),
        (["--duration", "0.5"], "conformance: error: --duration must be a number of at least 1"),
        (["--workers", "x"], "argument --workers: not a whole number: 'x'"),
    ],
)
def test_bad_sizes_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert simulate(Path("restart-under-load"), tmp_path / "report", *extra) == 2
    assert message in one_line_error(capsys)


def test_a_bad_scenario_file_names_the_file_and_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({**TINY, "load": {**TINY["load"], "user": 3}}), encoding="utf-8")
    assert simulate(path, tmp_path / "report") == 2
    assert "conformance: error: typo.yaml: load: unknown field(s) user (known: " in (
        one_line_error(capsys)
    )


# -- a broken server: the figures go red -------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "figure", "criterion"),
    [
        # The bundled server's delivery faults strike in fan-out to three or more connections:
        # one event in five dropped, one in four sent twice.
        ("drop_one_in_n", "lost", "lost for connected subscribers"),
        ("duplicate_delivery", "duplicates", "delivered twice"),
    ],
)
def test_a_server_that_breaks_delivery_is_not_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str, figure: str, criterion: str
) -> None:
    monkeypatch.setenv("PUSHER_REF_FAULTS", fault)
    report = tmp_path / "report"
    assert simulate(scenario_file(tmp_path), report) == 1
    data = json.loads((report / "simulation.json").read_text())
    assert data["readiness"]["verdict"] == "not ready"
    assert data["figures"][figure] > 0
    missed = [name for name, met in criteria(data).items() if met is False]
    assert missed == [criterion]


def test_a_restart_command_that_fails_is_reported_not_blamed_on_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_bundled(tmp_path / "server.log")
    try:
        t = server.target
        target = write_target(
            tmp_path,
            name="a server whose restart command is broken",
            ws_url=t.ws_url, http_url=t.http_url, app_id=t.app_id, key=t.key, secret=t.secret,
            restart={"command": "echo 'no such service' >&2; exit 1", "within": 5},
        )  # fmt: skip
        report = tmp_path / "report"
        own = scenario_file(tmp_path, {"at": 1, "restart": True})
        assert simulate(own, report, "--target-file", str(target)) == 3
    finally:
        server.stop()
    data = json.loads((report / "simulation.json").read_text())  # the run still reports
    assert data["readiness"]["verdict"] == "inconclusive"
    assert data["readiness"]["note"].startswith("the restart failed: the restart command exited")
    assert "no such service" in data["readiness"]["note"]
    assert any("the restart failed" in line for line in data["timeline"])
    assert data["figures"]["recovered_users"] == 2  # nothing was restarted: nobody left
    assert "Traceback" not in capsys.readouterr().err
