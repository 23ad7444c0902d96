"""Runs against targets in trouble end in bounded time and say what the trouble was: a target
whose handshakes are slow, and one that dies in the middle of the run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

KEY, SECRET, APP_ID = "troubled-key", "troubled-secret", "4242"


@contextlib.contextmanager
def _reference_server() -> Iterator[tuple[subprocess.Popen[str], int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "reference_server", "--host", "127.0.0.1", "--port", "0",
         "--app-id", APP_ID, "--key", KEY, "--secret", SECRET,
         "--activity-timeout", "3", "--pong-timeout", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        port = int(json.loads(process.stdout.readline())["port"])
        yield process, port
    finally:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def _slow_handshakes(
    upstream_port: int,
    delay: float,
    *,
    on_long_connection: Callable[[], None] | None = None,
    long_after: float = 2.5,
    keep_listening: bool = False,
) -> Iterator[int]:
    """A loopback TCP relay that holds every new connection ``delay`` seconds before it
    reaches the server: a far-away or overloaded deployment, as the client sees it.
    ``on_long_connection`` is called once, when a connection has lasted ``long_after`` s; the
    relay then stops listening, so that the target is gone for new connections too (unless
    ``keep_listening``: then it goes on relaying to whatever listens upstream)."""
    loop = asyncio.new_event_loop()
    ready: list[int] = []
    called: list[bool] = []
    listening: list[asyncio.Server] = []

    async def watch() -> None:
        await asyncio.sleep(long_after)
        if on_long_connection is not None and not called:
            called.append(True)
            on_long_connection()
            if not keep_listening:
                listening[0].close()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            writer.close()
            return
        watcher = asyncio.ensure_future(watch())
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            watcher.cancel()

    async def start() -> asyncio.Server:
        server = await asyncio.start_server(relay, "127.0.0.1", 0)
        listening.append(server)
        ready.append(server.sockets[0].getsockname()[1])
        return server

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def _run(port: int, report: Path, *extra: str, timeout: float) -> tuple[int, str, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--report-dir", str(report),
         "--no-save-regressions", "--ws-url", f"ws://127.0.0.1:{port}",
         "--http-url", f"http://127.0.0.1:{port}", "--app-id", APP_ID, "--key", KEY,
         "--secret", SECRET, "--activity-timeout", "3", "--pong-timeout", "2", *extra],
        capture_output=True, text=True, timeout=timeout, cwd=report.parent,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, json.loads((report / "results.json").read_text())


def test_slow_handshakes_are_measured_and_named(tmp_path: Path) -> None:
    with _reference_server() as (_, port), _slow_handshakes(port, 1.5) as slow_port:
        began = time.monotonic()
        code, out, data = _run(
            slow_port, tmp_path / "report", "--check", "PROTO-CONN-05", timeout=120
        )
    assert time.monotonic() - began < 60
    probe = data["run"]["target_probe"]
    assert min(probe["handshake_ms"]) >= 1400
    assert "the target is slow: WebSocket handshakes took" in out
    assert "--timeout-multiplier 2" in out
    assert code == 0  # slow is not wrong: the check itself passes


def test_a_target_that_dies_mid_run_is_the_finding_and_voids_the_rest(tmp_path: Path) -> None:
    with (
        _reference_server() as (process, port),
        # Only the heartbeat check's connection lives long (about 7 s; the pre-flight's are
        # gone at once): 2.5 s into it, the server dies, however slowly the run started.
        _slow_handshakes(port, 0.0, on_long_connection=process.kill) as relayed,
    ):
        # One at a time: the heartbeat check runs first, and the connection checks wait their
        # turn behind it.
        code, out, data = _run(
            # --strict: PROTO-PING-02 rests on an inference, and its failure must still count.
            relayed, tmp_path / "report", "-n", "1", "--strict", "--check", "PROTO-PING-02",
            "--check", "PROTO-CONN-*", timeout=120,
        )  # fmt: skip
    died = data["run"]["target_died"]
    assert "PROTO-PING-02/answering-client-kept" in died["finding"]
    checks = {c["id"]: c for r in data["requirements"] for c in r["checks"]}
    outcomes = {check_id: c["outcome"] for check_id, c in checks.items()}
    # The check that saw the death keeps what it saw, with the death named beside it.
    noticed = checks["PROTO-PING-02/answering-client-kept"]
    assert noticed["outcome"] in ("failed", "error")
    assert "the target died during this check" in noticed["message"]
    assert code == (1 if noticed["outcome"] == "failed" else 3)
    voided = [check for check, outcome in outcomes.items() if outcome == "void"]
    assert voided, outcomes
    assert all(check.startswith("PROTO-CONN-") for check in voided)
    assert "INCONCLUSIVE" not in {r["outcome"] for r in data["requirements"]}
    assert "THE TARGET DIED" in out


@pytest.mark.parametrize("flag", ["--concurrency", "-n"])
def test_concurrency_must_be_a_positive_number(flag: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "run", flag, "0"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "must be positive" in result.stderr


RESTART_SCRIPT = """
import socket, subprocess, sys, time
port, pid_file, log, app_id, key, secret = int(sys.argv[1]), *sys.argv[2:]
server = subprocess.Popen(
    [sys.executable, "-m", "reference_server", "--host", "127.0.0.1", "--port", str(port),
     "--app-id", app_id, "--key", key, "--secret", secret, "--activity-timeout", "3",
     "--pong-timeout", "2"],
    stdin=subprocess.DEVNULL, stdout=open(log, "w"), stderr=subprocess.STDOUT,
    start_new_session=True,
)
open(pid_file, "w").write(str(server.pid))
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("the reference server did not listen within 15 s")
"""


def test_a_target_that_dies_and_can_be_restarted_is_restarted_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    script = tmp_path / "restart.py"
    script.write_text(RESTART_SCRIPT, encoding="utf-8")
    pid_file = tmp_path / "server.pid"
    try:
        with (
            _reference_server() as (process, port),
            _slow_handshakes(
                port, 0.0, on_long_connection=process.kill, keep_listening=True
            ) as relayed,
        ):
            target = tmp_path / "target.yaml"
            command = (
                f"{sys.executable} {script} {port} {pid_file} {tmp_path / 'again.log'}"
                f" {APP_ID} {KEY} {SECRET}"
            )
            target.write_text(
                json.dumps({
                    "name": "a server that dies once", "ws_url": f"ws://127.0.0.1:{relayed}",
                    "http_url": f"http://127.0.0.1:{relayed}", "app_id": APP_ID, "key": KEY,
                    "secret": SECRET, "timings": {"activity_timeout": 3, "pong_timeout": 2},
                    "restart": {"command": command, "within": 30},
                }),
                encoding="utf-8",
            )  # fmt: skip
            report = tmp_path / "report"
            result = subprocess.run(
                [sys.executable, "-m", "conformance", "run", "--report-dir", str(report),
                 "--no-save-regressions", "--target", str(target), "-n", "1",
                 "--check", "PROTO-PING-02", "--check", "PROTO-CONN-*"],
                capture_output=True, text=True, timeout=180, cwd=tmp_path,
            )  # fmt: skip
    finally:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert "Traceback" not in result.stderr, result.stderr
    data = json.loads((report / "results.json").read_text())
    assert "target_died" not in data["run"]
    [(revived)] = data["run"]["target_restarted_after"]
    assert "PROTO-PING-02/answering-client-kept" in revived["finding"]
    checks = {c["id"]: c for r in data["requirements"] for c in r["checks"]}
    # The check that saw the death keeps it as its finding; every other check ran, on the
    # restarted server, and got a real verdict.
    assert (
        "the target died during this check"
        in checks["PROTO-PING-02/answering-client-kept"]["message"]
    )
    others = {i: c["outcome"] for i, c in checks.items() if i.startswith("PROTO-CONN-")}
    assert others
    assert "void" not in others.values(), others
    assert "THE TARGET DIED and was restarted" in result.stdout
