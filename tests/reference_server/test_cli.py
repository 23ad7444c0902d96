"""The real entry point, as the suite runs it: a subprocess with a ready line on stdout."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from reference_server.cli import BatchingHandler, JsonFormatter, main


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reference_server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    process = start("--port", "0")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # Blocks until ready; the process is killed on failure.
        yield process, json.loads(line)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=5)


def test_ready_line_names_a_listening_port(
    server: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    _, ready = server
    port = ready["port"]
    assert isinstance(port, int)
    assert port > 0
    assert ready == {
        "event": "listening",
        "host": "127.0.0.1",
        "port": port,
        "ws_url": f"ws://127.0.0.1:{port}",
        "http_url": f"http://127.0.0.1:{port}",
    }
    # Printed only once listening: connecting right away must work.
    with urllib.request.urlopen(f"{ready['http_url']}/health", timeout=5) as response:
        assert json.load(response) == {"status": "ok"}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_cleanly_with_json_logs(
    server: tuple[subprocess.Popen[str], dict[str, Any]], signum: signal.Signals
) -> None:
    process, _ = server
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert stdout == ""  # Nothing after the ready line.
    records = [json.loads(line) for line in stderr.splitlines()]
    assert {"ts", "level", "event"} <= records[0].keys()
    assert [r["event"] for r in records][-1] == "stopping"


def drain_until_closed(ws: ClientConnection) -> None:
    while True:
        ws.recv(timeout=5)


def test_sigterm_drains_open_websockets(
    server: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    """A client still connected gets close 4200 with a reason; the drain is logged."""
    process, ready = server
    with connect(f"{ready['ws_url']}/app/app-key", open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["event"] == "pusher:connection_established"
        process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            drain_until_closed(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4200
    assert closed.value.rcvd.reason
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    records = {r["event"]: r for r in map(json.loads, stderr.splitlines())}
    assert records["draining"]["connections"] == 1
    assert records["draining"]["level"] == "info"
    assert records["drained"]["dropped_after_timeout"] == 0


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--port", "abc"], {}, "'abc'"),
        ([], {"PUSHER_REF_FAULTS": "not_a_fault"}, "'not_a_fault'"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(
    args: list[str], env: dict[str, str], named: str
) -> None:
    process = start(*args, env=env)
    stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 2
    assert stdout == ""
    assert len(stderr.splitlines()) == 1
    assert named in stderr
    assert "Traceback" not in stderr


def test_busy_port_exits_2_with_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        process = start("--port", str(port))
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 2
    assert stdout == ""
    assert len(stderr.splitlines()) == 1
    assert f"127.0.0.1:{port}" in stderr


def test_main_reports_config_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--log-level", "shouty"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reference-server: error: ")
    assert "'shouty'" in err


def _record(level: int, event: str) -> logging.LogRecord:
    return logging.LogRecord("reference_server", level, __file__, 0, event, None, None)


@pytest.mark.asyncio
async def test_log_lines_are_written_in_batches_and_a_warning_at_once() -> None:
    stream = io.StringIO()
    handler = BatchingHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.handle(_record(logging.INFO, "first"))
    handler.handle(_record(logging.INFO, "second"))
    assert stream.getvalue() == ""  # Waiting for the loop's timer.
    await asyncio.sleep(BatchingHandler.FLUSH_AFTER * 2)
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == [
        "first",
        "second",
    ]
    handler.handle(_record(logging.INFO, "third"))
    handler.handle(_record(logging.WARNING, "trouble"))
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events[2:] == ["third", "trouble"]  # At once, in order.


def test_without_an_event_loop_a_line_goes_out_at_once() -> None:
    stream = io.StringIO()
    handler = BatchingHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.handle(_record(logging.INFO, "alone"))
    assert json.loads(stream.getvalue())["event"] == "alone"
