"""The proxy over loopback sockets: each fault as a peer sees it, the log, the schedule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from conformance.errors import UsageError
from conformance.proxy import (
    Bandwidth,
    CutAfter,
    FaultProxy,
    HalfOpen,
    Latency,
    Reset,
    Resume,
    Stall,
    schedule_from_mapping,
)
from conformance.proxy.pipe import Pipe
from conformance.proxy.schedule import seeded_rng
from conformance.proxy.server import parse_upstream

from .helpers import Client, Upstream

Setup = tuple[FaultProxy, Upstream, list[dict[str, Any]]]


@pytest_asyncio.fixture
async def setup() -> AsyncIterator[Setup]:
    upstream = Upstream()
    address = await upstream.start()
    log: list[dict[str, Any]] = []
    proxy = FaultProxy(address, log=log.append)
    await proxy.start()
    yield proxy, upstream, log
    await proxy.aclose()
    await upstream.close()


async def _round_trip(client: Client, payload: bytes) -> float:
    began = time.monotonic()
    expected = len(client.data) + len(payload)
    client.send(payload)
    assert await client.wait_until(lambda: len(client.data) >= expected, 2)
    return time.monotonic() - began


@pytest.mark.asyncio
async def test_bytes_pass_through_and_are_counted(setup: Setup) -> None:
    proxy, upstream, _ = setup
    client = await Client.open(proxy.address)
    await _round_trip(client, b"hello")
    assert client.data == b"hello"
    (info,) = proxy.connections
    assert (info.index, info.bytes_up, info.bytes_down, info.state) == (0, 5, 5, "open")
    assert upstream.received[0] == b"hello"
    client.close()


@pytest.mark.asyncio
async def test_latency_adds_delay_each_way(setup: Setup) -> None:
    proxy, _, log = setup
    client = await Client.open(proxy.address)
    baseline = await _round_trip(client, b"a")
    proxy.inject(Latency(150))
    delayed = await _round_trip(client, b"b")
    assert baseline < 0.1
    assert 0.29 <= delayed < 1.0
    assert log[-1]["fault"] == "latency"
    assert log[-1]["ms"] == 150
    proxy.inject(Latency(0))
    assert await _round_trip(client, b"c") < 0.1
    client.close()


@pytest.mark.asyncio
async def test_a_stall_holds_bytes_and_resume_releases_them_in_order(setup: Setup) -> None:
    proxy, upstream, _ = setup
    client = await Client.open(proxy.address)
    await _round_trip(client, b"0")
    proxy.inject(Stall("down"))
    for part in (b"one,", b"two,", b"three"):
        client.send(part)
        await asyncio.sleep(0.02)
    assert not await client.wait_until(lambda: len(client.data) > 1, 0.3)
    assert upstream.received[0] == b"0one,two,three"  # the other direction still flows
    assert proxy.connections[0].state == "stalled"
    proxy.inject(Resume())
    assert await client.wait_until(lambda: len(client.data) == 14, 1)
    assert client.data == b"0one,two,three"
    assert proxy.connections[0].state == "open"
    client.close()


@pytest.mark.asyncio
async def test_reset_gives_the_client_a_connection_reset(setup: Setup) -> None:
    proxy, _, log = setup
    client = await Client.open(proxy.address)
    await _round_trip(client, b"x")
    assert proxy.inject(Reset()) == (0,)
    assert await client.wait_until(lambda: client.lost, 1)
    assert isinstance(client.error, ConnectionResetError)
    assert proxy.connections[0].state == "reset"
    assert [e["fault"] for e in log] == ["reset"]


@pytest.mark.asyncio
async def test_half_open_is_silent_both_ways_with_no_eof(setup: Setup) -> None:
    proxy, upstream, _ = setup
    client = await Client.open(proxy.address)
    await _round_trip(client, b"x")
    proxy.inject(HalfOpen(), connection=0)
    client.send(b"lost")
    upstream.writers[0].write(b"late")
    upstream.writers[0].close()  # the server even sends FIN: it must not get through
    assert not await client.wait_until(lambda: client.data != b"x" or client.eof, 0.5)
    assert not client.lost
    assert upstream.received[0] == b"x"
    assert proxy.connections[0].state == "half_open"
    began = time.monotonic()
    await proxy.aclose(timeout=1.0)
    assert time.monotonic() - began < 1.5
    client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("direction", ["up", "down"])
async def test_cut_after_forwards_exactly_n_bytes_then_resets(setup: Setup, direction: str) -> None:
    proxy, upstream, _ = setup
    client = await Client.open(proxy.address)
    await _round_trip(client, b"-")
    proxy.inject(CutAfter(10, direction))  # type: ignore[arg-type]
    client.send(bytes(range(100)))
    assert await client.wait_until(lambda: client.lost, 1)
    assert isinstance(client.error, ConnectionResetError)
    if direction == "down":
        assert client.data == b"-" + bytes(range(10))
    else:
        assert upstream.received[0] == b"-" + bytes(range(10))
    info = proxy.connections[0]
    assert (info.bytes_up if direction == "up" else info.bytes_down) == 11


@pytest.mark.asyncio
async def test_bandwidth_limits_the_rate(setup: Setup) -> None:
    proxy, _, _ = setup
    client = await Client.open(proxy.address)
    proxy.inject(Bandwidth(20_000, direction="up"))
    took = await _round_trip(client, b"z" * 10_000)
    assert 0.4 <= took < 1.5
    client.close()


@pytest.mark.asyncio
async def test_injections_are_logged_with_times(setup: Setup) -> None:
    proxy, _, log = setup
    assert proxy.inject(Latency(1)) == ()  # no connection yet: logged all the same
    clients = [await Client.open(proxy.address) for _ in range(2)]
    for client in clients:
        await _round_trip(client, b"x")
    before = time.time()
    proxy.inject(Stall("up"))
    proxy.inject(Resume(), connection=1)
    assert [(e["connection"], e["fault"]) for e in log] == [
        (None, "latency"), (0, "stall"), (1, "stall"), (1, "resume"),
    ]  # fmt: skip
    assert log[1] == {"t": log[1]["t"], "wall": log[1]["wall"], "connection": 0,
                      "fault": "stall", "direction": "up"}  # fmt: skip
    times = [e["t"] for e in log]
    assert times == sorted(times)
    assert 0 <= times[0] < times[-1] < 5
    assert before - 1 <= log[-1]["wall"] <= time.time() + 1
    with pytest.raises(UsageError, match="no connection 5"):
        proxy.inject(Reset(), connection=5)
    with pytest.raises(UsageError, match="not a proxy fault"):
        proxy.inject("reset")  # type: ignore[arg-type]
    for client in clients:
        client.close()


@pytest.mark.asyncio
async def test_a_schedule_runs_per_connection_from_its_accept_time() -> None:
    upstream = Upstream()
    address = await upstream.start()
    schedule = schedule_from_mapping(
        {
            "name": "t",
            "seed": 5,
            "steps": [
                {"at": 0, "fault": "latency", "ms": 20, "jitter_ms": 10},
                {"at": 0.2, "fault": "stall", "direction": "down", "connections": [1]},
                {"at": 0.4, "fault": "resume"},
            ],
        }
    )
    log: list[dict[str, Any]] = []
    async with FaultProxy(address, schedule=schedule, log=log.append) as proxy:
        assert proxy.seed == 5
        first = await Client.open(proxy.address)
        await asyncio.sleep(0.1)
        second = await Client.open(proxy.address)
        await asyncio.sleep(0.6)
        opened = {c.index: c.opened_at for c in proxy.connections}
        by_connection = {
            i: [(e["fault"], e["step"]) for e in log if e["connection"] == i] for i in (0, 1)
        }
        assert by_connection == {
            0: [("latency", 1), ("resume", 3)],
            1: [("latency", 1), ("stall", 2), ("resume", 3)],
        }
        for entry in log:
            at = schedule.steps[entry["step"] - 1].at
            assert entry["t"] - opened[entry["connection"]] == pytest.approx(at, abs=0.15)
        first.close()
        second.close()
    await upstream.close()
    assert FaultProxy(address, schedule=schedule, seed=9).seed == 9


@pytest.mark.asyncio
async def test_an_unreachable_upstream_is_logged_and_the_client_dropped() -> None:
    upstream = Upstream()
    address = await upstream.start()
    await upstream.close()
    log: list[dict[str, Any]] = []
    async with FaultProxy(address, log=log.append) as proxy:
        client = await Client.open(proxy.address)
        assert await client.wait_until(lambda: client.lost, 2)
        assert log[0]["fault"] == "error"
        assert log[0]["where"] == "connect upstream"


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.com", "::"])
def test_only_loopback_listen_hosts(host: str) -> None:
    with pytest.raises(UsageError, match="loopback only"):
        FaultProxy(("127.0.0.1", 1), listen_host=host)


def test_upstream_urls() -> None:
    assert parse_upstream("ws://127.0.0.1:6001/app") == ("127.0.0.1", 6001, False)
    assert parse_upstream("http://localhost") == ("localhost", 80, False)
    assert parse_upstream("wss://example.com") == ("example.com", 443, True)
    assert parse_upstream("https://127.0.0.1:6001") == ("127.0.0.1", 6001, True)
    with pytest.raises(UsageError, match="ws://, wss://, http:// or https://"):
        parse_upstream("127.0.0.1:80")
    with pytest.raises(UsageError, match="invalid port"):
        parse_upstream("wss://127.0.0.1:99999")


@pytest.mark.asyncio
async def test_the_jitter_each_chunk_gets_is_the_seeds_draw() -> None:
    """Replayable: the delays a seeded proxy adds are exactly the seeded draws, chunk by chunk."""
    upstream = Upstream()
    address = await upstream.start()
    latency = Latency(60, jitter_ms=50, direction="down")
    rng = seeded_rng(42, 0, "down")
    expected = [latency.draw(rng) for _ in range(4)]
    async with FaultProxy(address, seed=42) as proxy:
        client = await Client.open(proxy.address)
        await _round_trip(client, b"-")
        proxy.inject(latency)
        measured = [await _round_trip(client, bytes([i])) for i in range(4)]
        client.close()
    await upstream.close()
    for got, drawn in zip(measured, expected, strict=True):
        assert drawn - 0.002 <= got <= drawn + 0.04


@pytest.mark.asyncio
async def test_a_bug_in_a_connection_task_is_logged_and_ends_the_connection(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, _, log = setup

    async def broken(self: Pipe, stamp: float, data: bytes) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Pipe, "_forward", broken)
    client = await Client.open(proxy.address)
    client.send(b"x")
    assert await client.wait_until(lambda: client.lost, 1)
    assert log == [{"t": log[0]["t"], "wall": log[0]["wall"], "connection": 0,
                    "fault": "error", "where": "write upstream",
                    "error": "RuntimeError('boom')"}]  # fmt: skip
