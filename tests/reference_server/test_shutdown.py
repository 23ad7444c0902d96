"""Graceful shutdown: the drain, the webhooks it flushes, and the bound on the whole of it;
in process (``shut_down``), and once end to end through SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from reference_server.apps import AppsServer
from reference_server.apps_file import AppEntry
from reference_server.config import ConfigError, ServerConfig, load_config
from reference_server.shutdown import exit_reserve, shut_down

from .server_harness import client, closed_with, established, logged, serving, subscribe
from .webhook_harness import Receiver, black_hole, receiving

#: channel_vacated waits this long unless a shutdown sends it at once.
LONG_DELAY = 30.0


@pytest.mark.asyncio
async def test_held_back_webhooks_are_sent_before_shut_down_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="reference_server")
    async with (
        receiving(Receiver()) as receiver,
        serving(webhook_url=receiver.url, webhook_delay=LONG_DELAY) as server,
        client(server) as ws,
    ):
        await established(ws)
        await subscribe(ws, "room")
        await receiver.next(1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await shut_down([server.server], timeout=5.0, spread=0.0, drain_timeout=1.0)
        elapsed = loop.time() - started
        assert await closed_with(ws) == 4200
    assert [(e["name"], e["channel"]) for e in receiver.events()] == [
        ("channel_occupied", "room"),
        ("channel_vacated", "room"),
    ]
    assert elapsed < 1.5
    [flushed] = logged(caplog, "webhooks_flushed")
    assert (flushed["sent"], flushed["dropped"]) == (1, 0)
    assert not logged(caplog, "webhook_dropped")
    assert not logged(caplog, "shutdown_timeout")


@pytest.mark.asyncio
async def test_every_app_of_the_process_drains_and_sends_its_webhooks() -> None:
    apps = (AppEntry("a", "a-key", "a-secret"), AppEntry("b", "b-key", "b-secret"))
    async with (
        receiving(Receiver()) as receiver,
        serving(apps=apps, webhook_url=receiver.url, webhook_delay=LONG_DELAY) as server,
        client(server, key="a-key") as a,
        client(server, key="b-key") as b,
    ):
        assert isinstance(server.server, AppsServer)
        for ws in (a, b):
            await established(ws)
            await subscribe(ws, "room")
        await receiver.next(2)
        await shut_down(server.server.servers, timeout=5.0, spread=0.0, drain_timeout=1.0)
        assert [await closed_with(ws) for ws in (a, b)] == [4200, 4200]
    keys = sorted(headers["X-Pusher-Key"] for headers, _ in receiver.requests)
    assert keys == ["a-key", "a-key", "b-key", "b-key"]
    assert [e["name"] for e in receiver.events()].count("channel_vacated") == 2


@pytest.mark.asyncio
async def test_the_bound_holds_against_a_receiver_that_never_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What is unsent at the bound is dropped, one line each, and shut_down returns."""
    async with (
        black_hole() as url,
        serving(webhook_url=url, webhook_delay=LONG_DELAY) as server,
        client(server) as ws,
    ):
        await established(ws)
        await subscribe(ws, "room")  # channel_occupied: sent, never answered
        loop = asyncio.get_running_loop()
        started = loop.time()
        await shut_down([server.server], timeout=1.0, spread=0.0, drain_timeout=1.0)
        elapsed = loop.time() - started
    assert 1.0 - exit_reserve(1.0) - 0.1 < elapsed < 1.0
    [timeout] = logged(caplog, "shutdown_timeout")
    assert (timeout["level"], timeout["phase"], timeout["webhooks_waiting"]) == (
        "warning",
        "webhooks",
        2,
    )
    dropped = logged(caplog, "webhook_dropped")
    assert [(r["events"], r["reason"]) for r in dropped] == [
        (["channel_occupied"], "shutdown"),
        (["channel_vacated"], "shutdown"),
    ]


def test_the_bound_is_configurable() -> None:
    assert ServerConfig().shutdown_timeout == 10.0
    assert load_config([], {"PUSHER_REF_SHUTDOWN_TIMEOUT": "2.5"}).shutdown_timeout == 2.5
    assert load_config(["--shutdown-timeout", "1"], {}).shutdown_timeout == 1.0
    with pytest.raises(ConfigError, match="--shutdown-timeout"):
        load_config(["--shutdown-timeout", "0"], {})


# End to end.


@contextlib.asynccontextmanager
async def server_process(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, Any]]:
    """``python -m reference_server --port 0 ARGS``, and its ready line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reference_server",
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(await asyncio.wait_for(process.stdout.readline(), 20))
        yield process, ready
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def stop(process: asyncio.subprocess.Process) -> tuple[float, list[dict[str, Any]]]:
    """SIGTERM; return the seconds until the process exited, and its log records."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), 20)
    elapsed = loop.time() - started
    assert process.stderr is not None
    return elapsed, [json.loads(line) for line in (await process.stderr.read()).splitlines()]


@pytest.mark.asyncio
async def test_sigterm_closes_4200_sends_the_vacated_webhook_then_exits_0() -> None:
    async with (
        receiving(Receiver()) as receiver,
        server_process(
            "--webhook-url",
            receiver.url,
            "--webhook-delay",
            str(LONG_DELAY),
            "--shutdown-timeout",
            "5",
        ) as (process, ready),
    ):
        async with connect(f"{ready['ws_url']}/app/app-key", ping_interval=None) as ws:
            await established(ws)
            await subscribe(ws, "room")
            await receiver.next(1)
            process.send_signal(signal.SIGTERM)
            assert await closed_with(ws) == 4200
        await asyncio.wait_for(process.wait(), 10)
        exited_at = asyncio.get_running_loop().time()
    assert process.returncode == 0
    assert [event["name"] for event in receiver.events()] == ["channel_occupied", "channel_vacated"]
    assert receiver.arrival_times[1] < exited_at


@pytest.mark.asyncio
async def test_sigterm_exits_0_within_the_bound_when_webhooks_hang() -> None:
    async with (
        black_hole() as url,
        server_process(
            "--webhook-url", url, "--webhook-delay", str(LONG_DELAY), "--shutdown-timeout", "1.5"
        ) as (process, ready),
    ):
        async with connect(f"{ready['ws_url']}/app/app-key", ping_interval=None) as ws:
            await established(ws)
            await subscribe(ws, "room")
        elapsed, records = await stop(process)
    assert process.returncode == 0
    # The bound, plus what Python takes to exit after the loop has closed.
    assert elapsed < 1.5 + 0.5
    events = [record["event"] for record in records]
    assert events.count("webhook_dropped") == 2
    assert {"shutdown_timeout", "webhooks_flushed", "stopping"} <= set(events)
