"""Target files and flags: every mistake is one clear UsageError."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from conformance.errors import TargetUnreachable, UsageError
from conformance.target import Target, check_reachable, load_target_file, target_from_mapping

GOOD = {
    "name": "x",
    "ws_url": "ws://127.0.0.1:6001",
    "http_url": "http://127.0.0.1:6001",
    "app_id": 123,
    "key": "k",
    "secret": "s",
    "capabilities": ["client_events"],
    "timings": {"activity_timeout": 30},
    "limits": {"max_event_bytes": 102400},
}


def test_a_good_mapping() -> None:
    target = target_from_mapping(GOOD)
    assert target.app_id == "123"
    assert target.capabilities == frozenset({"client_events"})
    assert target.timings.activity_timeout == 30.0
    assert target.timings.pong_timeout is None
    assert target.max_event_bytes == 102400
    assert "secret" not in target.public()


def test_the_wire_carries_the_whole_target_and_public_never_the_secret() -> None:
    target = target_from_mapping(
        {
            **GOOD,
            "capabilities": ["webhooks"],
            "webhooks": {"listen": "http://127.0.0.1:9/h"},
            "restart": {"command": "systemctl restart my-server", "within": 20},
        },
        bundled=True,
    )
    assert target.restart_command == "systemctl restart my-server"
    assert target.restart_within == 20.0
    wire = target.to_wire()
    assert Target.from_wire(wire) == target
    assert '"secret": "s"' in wire
    assert "secret" not in target.public()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ws_url": "http://127.0.0.1:1"}, "ws_url must be a ws or wss URL"),
        ({"http_url": "nope"}, "http_url must be a http or https URL"),
        ({"key": ""}, "target is missing 'key'"),
        ({"capabilities": ["teleport"]}, "unknown capability: teleport"),
        ({"timings": {"activity_timeout": -1}}, "activity_timeout must be a positive number"),
        ({"timings": {"idle": 1}}, "timings must be a mapping"),
        ({"limits": {"max_event_bytes": "big"}}, "limits.max_event_bytes must be an integer"),
        ({"colour": "blue"}, "unknown target field"),
        ({"restart": "systemctl restart x"}, "restart must be a mapping with command"),
        ({"restart": {"command": ""}}, "restart.command must be a shell command"),
        ({"restart": {"command": "x", "within": 0}}, "restart.within must be a positive"),
    ],
)
def test_bad_mappings(change: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        target_from_mapping({**GOOD, **change})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="target file not found"):
        load_target_file(tmp_path / "nosuch.yaml")


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("ws_url: [\n")
    with pytest.raises(UsageError, match="is not valid YAML"):
        load_target_file(path)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("ws_url: ws://127.0.0.1:1\n")
    with pytest.raises(UsageError, match=r"t\.yaml: target is missing 'http_url'"):
        load_target_file(path)


def test_unreachable_fails_fast() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = target_from_mapping(
        {**GOOD, "ws_url": f"ws://127.0.0.1:{port}", "http_url": f"http://127.0.0.1:{port}"}
    )
    started = time.monotonic()
    with pytest.raises(TargetUnreachable, match=f"nothing answers at 127.0.0.1:{port}"):
        check_reachable(target)
    assert time.monotonic() - started < 5
