"""The load generator end to end: each kind of phase, tiny, against the reference server; and
against servers that refuse or say nothing, which must end in an error, promptly."""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from conformance.bench import delivery_phases, orders, phases
from conformance.bench.loadgen import LoadGenerator, WorkerError, WorkerPool
from conformance.bench.model import BenchSettings, BenchTarget, PhaseResult
from conformance.bundled import _launch, stop_child
from conformance.signing import api_auth_params, sign_api_request

TINY = BenchSettings(
    connections=40,
    connect_concurrency=10,
    fanout_deliveries=600,
    fanout_min_events=20,
    fanout_max_events=200,
    publish_concurrency=4,
    relay_pairs=4,
    relay_rate=8.0,
    relay_seconds=0.5,
    latency_rate=200.0,
    latency_seconds=0.5,
    idle_connections=60,
    stalled_subscribers=3,
    stalled_events=60,
    stalled_payload_bytes=8000,
    workers=2,
    phase_timeout=20.0,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchTarget]:
    command = [
        sys.executable, "-m", "reference_server", "--host", "127.0.0.1", "--port", "0",
        "--app-id", "A", "--key", "K", "--secret", "S", "--client-events",
    ]  # fmt: skip
    log = tmp_path_factory.mktemp("bench-server") / "server.log"
    process, ready = _launch(command, log, 20.0)
    port = ready["port"]
    yield BenchTarget(
        "reference-server",
        f"ws://127.0.0.1:{port}",
        f"http://127.0.0.1:{port}",
        "A",
        "K",
        "S",
        server_pid=process.pid,
    )
    stop_child(process, process.terminate)


@pytest.fixture(scope="module")
def loadgen() -> Iterator[LoadGenerator]:
    with LoadGenerator(TINY) as generator:
        yield generator


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorter waits where a phase waits on the clock rather than on the server."""
    monkeypatch.setattr(phases, "IDLE_SETTLE_SECONDS", 0.3)
    monkeypatch.setattr(delivery_phases, "STALLED_RESUME_WAIT", 1.0)


def run(loadgen: LoadGenerator, target: BenchTarget, phase: str) -> PhaseResult:
    seen: list[tuple[str, float]] = []
    result = loadgen.run_phase(target, phase, lambda text, fraction: seen.append((text, fraction)))
    assert seen
    assert all(t.startswith(f"{phase}: ") and 0 <= f <= 1 for t, f in seen)
    return result


def clean(result: PhaseResult, *, busy: bool = True) -> None:
    """No error, loss or copy; both sides' CPU read (a tiny phase may use under a clock tick,
    so the load generator's CPU is asked to show only where it worked: ``busy``)."""
    assert result.error is None, result
    assert (result.loss, result.duplicates) == (0, 0), result
    assert result.server_cpu_percent is not None, result
    assert result.loadgen_cpu_percent > 0 or not busy, result


def occupied_channels(target: BenchTarget) -> dict[str, object]:
    path = f"/apps/{target.app_id}/channels"
    params = api_auth_params(target.key, b"", int(time.time()))
    params["auth_signature"] = sign_api_request(target.secret, "GET", path, params)
    with urllib.request.urlopen(f"{target.http_url}{path}?{urlencode(params)}", timeout=5) as r:
        channels: dict[str, object] = json.load(r)["channels"]
        return channels


@pytest.mark.usefixtures("quick")
def test_idle(loadgen: LoadGenerator, server: BenchTarget) -> None:
    result = run(loadgen, server, "idle")
    clean(result, busy=False)
    assert result.figures["connections"] == 60
    assert result.figures["rss_kb_per_connection"] is not None
    assert (result.figures["rss_mb"] or 0) > 1


def test_connect(loadgen: LoadGenerator, server: BenchTarget) -> None:
    result = run(loadgen, server, "connect")
    clean(result, busy=False)
    figures = result.figures
    assert figures["failed"] == 0
    assert 0 < (figures["p50_ms"] or 0) <= (figures["p99_ms"] or 0)
    assert (figures["per_s"] or 0) > 0


@pytest.mark.parametrize(("phase", "events"), [("fanout-events-3", 200), ("fanout-batch-7", 85)])
def test_fanout_leaves_no_subscriber_behind(
    loadgen: LoadGenerator, server: BenchTarget, phase: str, events: int
) -> None:
    result = run(loadgen, server, phase)
    clean(result, busy=False)
    assert result.figures["events"] == events
    assert (result.figures["deliveries_per_s"] or 0) > 0
    assert occupied_channels(server) == {}


def test_relay(loadgen: LoadGenerator, server: BenchTarget) -> None:
    result = run(loadgen, server, "relay")
    clean(result, busy=False)
    assert result.figures["pairs"] == 4
    # 4 pairs at 8 a second: about 32 relayed a second, whatever the server could do.
    assert 16 < (result.figures["relayed_per_s"] or 0) < 64
    assert result.notes == ()


def test_latency(loadgen: LoadGenerator, server: BenchTarget) -> None:
    result = run(loadgen, server, "latency-2")
    clean(result)
    figures = result.figures
    assert 0 < (figures["p50_ms"] or 0) <= (figures["p99_ms"] or 0)
    assert (figures["rate"] or 0) > 100


@pytest.mark.usefixtures("quick")
def test_stalled(loadgen: LoadGenerator, server: BenchTarget) -> None:
    result = run(loadgen, server, "stalled")
    clean(result)
    figures = result.figures
    assert (figures["baseline_per_s"] or 0) > 0
    assert (figures["others_per_s"] or 0) > 0
    assert figures["ratio"] is not None
    assert (figures["baseline_p99_ms"] or 0) > 0
    assert (figures["others_p99_ms"] or 0) > 0
    assert figures["p99_ratio"] is not None
    assert figures["server_rss_growth_mb"] is not None
    assert any("stalled subscriber" in note for note in result.notes)


def test_a_large_message_crosses_the_pipes_whole(loadgen: LoadGenerator) -> None:
    """Orders and answers bigger than a pipe's buffer (a latency phase's receipts can be)."""
    pool = WorkerPool(loadgen._workers)
    runner = loadgen._runner
    assert runner is not None
    with pytest.raises(WorkerError, match="unknown order") as caught:
        runner.run(pool.call(0, "x" * 2_000_000, 10))
    assert len(str(caught.value)) > 2_000_000
    assert runner.run(pool.call(0, orders.Progress(), 10)) == (0, None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("phase", ["idle", "connect", "fanout-batch-2", "relay"])
def test_a_closed_port_is_an_error_promptly(loadgen: LoadGenerator, phase: str) -> None:
    port = free_port()
    target = BenchTarget(
        "nobody", f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", "A", "K", "S"
    )
    started = time.monotonic()
    result = run(loadgen, target, phase)
    assert time.monotonic() - started < 5
    assert result.error is not None
    assert "refused" in result.error.lower()
    assert result.server_cpu_percent is None


def test_a_silent_server_is_cut_off_at_the_phase_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(100)  # the kernel completes connects; nobody ever answers
        port = listener.getsockname()[1]
        target = BenchTarget(
            "mute", f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", "A", "K", "S"
        )
        settings = BenchSettings(connections=5, workers=1, phase_timeout=1.0)
        with LoadGenerator(settings) as generator:
            started = time.monotonic()
            result = generator.run_phase(target, "connect", lambda *_: None)
            assert time.monotonic() - started < 1.0 + 5
    assert result.error is not None
    assert "1 s" in result.error or "no answer in time" in result.error


def test_an_unknown_phase_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="unknown bench phase 'fanout-carrier-1'"):
        LoadGenerator(TINY).run_phase(
            BenchTarget("t", "ws://127.0.0.1:1", "http://127.0.0.1:1", "A", "K", "S"),
            "fanout-carrier-1",
            lambda *_: None,
        )
