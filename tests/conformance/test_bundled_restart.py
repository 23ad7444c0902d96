"""Restarting the bundled reference server: SIGTERM, the drain seen by a connected client, the
exit, and the same port, credentials and options afterwards."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from conformance.bundled import BundledServer, start_bundled
from conformance.errors import HarnessError


@contextlib.contextmanager
def greeted(server: BundledServer) -> Iterator[ClientConnection]:
    with connect(f"{server.target.ws_url}/app/{server.target.key}", open_timeout=5) as ws:
        frame = json.loads(ws.recv(timeout=5))
        assert frame["event"] == "pusher:connection_established"
        yield ws


def read_until_closed(ws: ClientConnection) -> None:
    while True:
        ws.recv(timeout=10)


def test_restart_drains_then_comes_back_on_the_same_port(tmp_path: Path) -> None:
    server = start_bundled(tmp_path / "server.log")
    try:
        target = server.target
        with greeted(server) as ws:
            server.terminate()
            with pytest.raises(ConnectionClosed) as closed:
                read_until_closed(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4200
        assert server.wait_stopped() == 0
        server.start_again()
        assert server.target == target  # Same port, credentials and options.
        with greeted(server):
            pass
        # And all in one call.
        restart = server.restart()
        assert restart.exit_code == 0
        assert restart.back_in < 20
        with greeted(server):
            pass
        records = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()]
        drained = [r for r in records if r["event"] == "drained"]
        # Both runs' logs are kept; each app of the bundled server drains on its own.
        assert [r["app_id"] for r in drained].count(target.app_id) == 2
    finally:
        server.stop()
    assert server.process.poll() is not None


def test_start_again_refuses_a_running_server_and_names_a_lost_port(tmp_path: Path) -> None:
    server = start_bundled(tmp_path / "server.log")
    try:
        with pytest.raises(HarnessError, match="still running"):
            server.start_again(timeout=1.0)
        server.terminate()
        server.wait_stopped()
        port = int(server.target.ws_url.rsplit(":", 1)[1])
        with (
            socket.create_server(("127.0.0.1", port)),
            pytest.raises(HarnessError, match=f"port {port}"),
        ):
            server.start_again(timeout=1.0)
    finally:
        server.stop()
