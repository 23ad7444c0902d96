"""The servers a bench starts: the reference server comes up with one app and goes away with
its port; Soketi's config is held to loopback before anything runs, and only its ports change
in the copy it runs with. Soketi itself is never started here."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.bench.servers import (
    LOOPBACK_KEYS,
    REFERENCE_NAME,
    ServerStartError,
    check_loopback,
    config_value,
    default_peers_dir,
    default_soketi_dir,
    external_target,
    first_app,
    install_soketi,
    pid_is_running,
    reference_server,
    soketi_server,
    with_ports,
)
from conformance.bundled import _handshake_once
from conformance.errors import TargetUnreachable
from conformance.target import target_from_mapping

#: The shape of the peers' soketi.json: dotted keys written flat.
PEERS_CONFIG: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 6001,
    "metrics.host": "127.0.0.1",
    "metrics.port": 9601,
    "cluster.address": "127.0.0.1",
    "cluster.unicast": "127.0.0.1",
    "cluster.hostname": "127.0.0.1",
    "shutdownGracePeriod": 200,
    "appManager.array.apps": [
        {"id": "123", "key": "app-key", "secret": "app-secret", "enableClientMessages": True}
    ],
}


def _port_taken(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the Soketi config ----------------------------------------------------------------------


def test_the_peers_config_is_loopback() -> None:
    check_loopback(PEERS_CONFIG)


@pytest.mark.parametrize("key", LOOPBACK_KEYS)
def test_any_socket_beyond_loopback_is_refused(key: str) -> None:
    config = {**PEERS_CONFIG, key: "0.0.0.0"}
    with pytest.raises(ServerStartError, match=rf"{key}='0\.0\.0\.0'.*refusing to start Soketi"):
        check_loopback(config)


@pytest.mark.parametrize("key", LOOPBACK_KEYS)
def test_a_missing_host_is_refused_since_soketi_would_bind_everything(key: str) -> None:
    config = {k: v for k, v in PEERS_CONFIG.items() if k != key}
    with pytest.raises(ServerStartError, match=rf"{key}=None"):
        check_loopback(config)


def test_nested_settings_are_read_and_held_to_the_same_rule() -> None:
    nested = {
        "host": "127.0.0.1",
        "metrics": {"host": "127.0.0.1", "port": 9601},
        "cluster": {"address": "127.0.0.1", "unicast": "0.0.0.0"},
    }
    assert config_value(nested, "metrics.host") == "127.0.0.1"
    assert config_value(nested, "cluster.port") is None
    with pytest.raises(ServerStartError, match=r"cluster\.unicast"):
        check_loopback(nested)


def test_only_the_ports_change_in_the_copy() -> None:
    copied = with_ports(PEERS_CONFIG, 40001, 40002)
    assert copied["port"] == 40001
    assert copied["metrics.port"] == 40002
    assert {k: v for k, v in copied.items() if "port" not in k} == {
        k: v for k, v in PEERS_CONFIG.items() if "port" not in k
    }
    assert PEERS_CONFIG["port"] == 6001  # the original is left alone
    check_loopback(copied)
    nested = with_ports({"host": "127.0.0.1", "metrics": {"host": "127.0.0.1"}}, 1, 2)
    assert nested == {"host": "127.0.0.1", "port": 1, "metrics": {"host": "127.0.0.1", "port": 2}}


def test_the_credentials_are_the_first_apps() -> None:
    assert first_app(PEERS_CONFIG) == ("123", "app-key", "app-secret")
    numeric = {"appManager": {"array": {"apps": [{"id": 5, "key": "k", "secret": "s"}]}}}
    assert first_app(numeric) == ("5", "k", "s")
    for apps in ([], [{"id": "1", "key": "k"}], "nope"):
        with pytest.raises(ServerStartError, match="no app with id, key and secret"):
            first_app({"appManager.array.apps": apps})


def _peers(folder: Path, config: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"name": "soketi-peer"}', encoding="utf-8")
    (folder / "soketi.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def test_soketi_refuses_a_wide_config_before_installing_anything(tmp_path: Path) -> None:
    peers = _peers(tmp_path / "peers", {**PEERS_CONFIG, "host": "0.0.0.0"})
    scratch = tmp_path / "scratch"
    with (
        pytest.raises(ServerStartError, match=r"host='0\.0\.0\.0'"),
        soketi_server(peers, scratch, tmp_path / "soketi.log"),
    ):
        pass  # pragma: no cover - never reached
    assert not scratch.exists()


def test_an_install_whose_package_json_matches_is_reused(tmp_path: Path) -> None:
    peers = _peers(tmp_path / "peers", PEERS_CONFIG)
    scratch = tmp_path / "scratch"
    server_js = scratch / "node_modules/@soketi/soketi/bin/server.js"
    server_js.parent.mkdir(parents=True)
    server_js.write_text("", encoding="utf-8")
    (scratch / "package.json").write_bytes((peers / "package.json").read_bytes())
    assert install_soketi(peers, scratch, timeout=0.001) == server_js  # npm would take longer


def test_install_names_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ServerStartError, match=r"lacks package\.json or soketi\.json"):
        install_soketi(tmp_path / "nowhere", tmp_path / "scratch")
    peers = _peers(tmp_path / "peers", PEERS_CONFIG)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ServerStartError, match="needs node and npm"):
        install_soketi(peers, tmp_path / "scratch")


def test_the_default_folders_follow_the_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOKETI_PEERS", raising=False)
    monkeypatch.delenv("SOKETI_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", "/scratch")
    checkout = Path(__file__).resolve().parents[3]
    assert default_peers_dir() == checkout.parent / "shared" / "peers" / "soketi"
    assert default_soketi_dir() == Path("/scratch/pusher-conformance-soketi")
    monkeypatch.setenv("SOKETI_PEERS", "/elsewhere")
    assert default_peers_dir() == Path("/elsewhere")


# --- processes ----------------------------------------------------------------------------------


def test_a_finished_process_is_not_running() -> None:
    assert pid_is_running(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_is_running(child.pid)


def test_the_reference_server_starts_with_one_app_and_stops(tmp_path: Path) -> None:
    log = tmp_path / "reference-server.log"
    with reference_server(log) as target:
        assert target.name == REFERENCE_NAME
        assert target.server_pid is not None
        assert pid_is_running(target.server_pid)
        port = int(target.ws_url.rsplit(":", 1)[1])
        assert target.http_url == f"http://127.0.0.1:{port}"
        assert _handshake_once(port, target.key, 5.0)
        assert not _handshake_once(port, "another-key", 5.0)  # one app only
    assert not pid_is_running(target.server_pid)
    assert not _port_taken(port)


def test_a_reference_server_that_cannot_start_is_one_line(tmp_path: Path) -> None:
    with (
        pytest.raises(ServerStartError, match="did not start"),
        reference_server(tmp_path / "log", ("--no-such-flag",)),
    ):
        pass  # pragma: no cover - never reached


def test_an_external_target_must_answer(tmp_path: Path) -> None:
    port = _free_port()
    target = target_from_mapping(
        {
            "name": "elsewhere",
            "ws_url": f"ws://127.0.0.1:{port}",
            "http_url": f"http://127.0.0.1:{port}",
            "app_id": "1",
            "key": "k",
            "secret": "s",
        }
    )
    with pytest.raises(TargetUnreachable, match="nothing answers"), external_target(target):
        pass  # pragma: no cover - never reached
    with reference_server(tmp_path / "log") as started:
        running = target_from_mapping(
            {
                "name": "running",
                "ws_url": started.ws_url,
                "http_url": started.http_url,
                "app_id": started.app_id,
                "key": started.key,
                "secret": started.secret,
            }
        )
        with external_target(running, started.server_pid) as bench_target:
            assert bench_target.server_pid == started.server_pid
            assert bench_target.name == "running"
