"""Runs against targets in trouble end in bounded time and say what the trouble was: a target
whose handshakes are slow, and one that dies in the middle of the run."""

from __future__ import annotations

import asyncio
import contextlib
import json
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
) -> Iterator[int]:
    """A loopback TCP relay that holds every new connection ``delay`` seconds before it
    reaches the server: a far-away or overloaded deployment, as the client sees it.
    ``on_long_connection`` is called once, when a connection has lasted ``long_after`` s; the
    relay then stops listening, so that the target is gone for new connections too."""
    loop = asyncio.new_event_loop()
    ready: list[int] = []
    called: list[bool] = []
    listening: list[asyncio.Server] = []

    async def watch() -> None:
        await asyncio.sleep(long_after)
        if on_long_connection is not None and not called:
            called.append(True)
            on_long_connection()
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
            relayed, tmp_path / "report", "-n", "1", "--check", "PROTO-PING-02",
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
