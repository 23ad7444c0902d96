"""Nodes as real processes on one Redis: one killed (SIGKILL) or stopped (SIGTERM) while
the others keep serving (marker ``cluster``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from reference_server.app import RunningServer

from .server_harness import (
    api,
    client,
    closed_with,
    established,
    recv,
    serving,
    trigger,
    webhook_receiver,
)
from .server_harness import subscribe_authorised as subscribe

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio]

#: Seconds a node not heard of counts as dead, in these tests.
NODE_TIMEOUT = 1.0
#: Seconds a node process gets to print its ready line.
START_TIMEOUT = 15.0


@contextlib.asynccontextmanager
async def node_process(
    redis_url: str, node_id: str, log: Path, *extra: str
) -> AsyncIterator[tuple[Any, str]]:
    """A node in a process of its own; yields it and its ws:// URL; killed (by PID) after."""
    with log.open("w") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reference_server",
            "--port=0",
            f"--redis-url={redis_url}",
            f"--node-id={node_id}",
            f"--node-timeout={NODE_TIMEOUT}",
            "--drain-timeout=1",
            *extra,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        ready = json.loads(line)
        assert ready["node_id"] == node_id
        yield process, ready["ws_url"]
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), 10)


@contextlib.asynccontextmanager
async def in_process_node(redis_url: str, **settings: Any) -> AsyncIterator[RunningServer]:
    async with serving(
        redis_url=redis_url, node_id="survivor", node_timeout=NODE_TIMEOUT, **settings
    ) as node:
        yield node


async def test_a_killed_node_has_its_members_removed_by_the_others(
    redis_server: str, tmp_path: Path
) -> None:
    async with (
        in_process_node(redis_server) as survivor,
        node_process(redis_server, "doomed", tmp_path / "doomed.log") as (doomed, doomed_url),
        client(survivor) as alice,
        connect(f"{doomed_url}/app/app-key?protocol=7", ping_interval=None) as bob,
    ):
        await subscribe(alice, await established(alice), "presence-r", '{"user_id":"alice"}')
        await subscribe(bob, await established(bob), "presence-r", '{"user_id":"bob"}')
        added = await recv(alice)
        assert added["event"] == "pusher_internal:member_added"
        doomed.send_signal(signal.SIGKILL)
        # Heard of last at most one heartbeat before the kill, given up a timeout later.
        removed = await recv(alice, timeout=NODE_TIMEOUT * 3 + 1)
        assert removed["event"] == "pusher_internal:member_removed"
        assert json.loads(removed["data"]) == {"user_id": "bob"}
        status, users = await api(survivor, "GET", "/apps/app-id/channels/presence-r/users")
        assert (status, users) == (200, {"users": [{"id": "alice"}]})


async def test_a_stopping_node_closes_its_clients_with_4200_and_the_others_carry_on(
    redis_server: str, tmp_path: Path
) -> None:
    async with (
        in_process_node(redis_server) as survivor,
        node_process(redis_server, "leaving", tmp_path / "leaving.log") as (leaving, leaving_url),
        client(survivor) as staying,
        connect(f"{leaving_url}/app/app-key?protocol=7", ping_interval=None) as going,
    ):
        await subscribe(staying, await established(staying), "news")
        await subscribe(going, await established(going), "news")
        await asyncio.sleep(0.2)
        sent = 60

        async def publish() -> None:
            for number in range(sent):
                await trigger(survivor, {"name": "n", "channels": ["news"], "data": str(number)})
                await asyncio.sleep(0.02)

        publishing = asyncio.create_task(publish())
        await asyncio.sleep(0.3)
        leaving.send_signal(signal.SIGTERM)
        assert await closed_with(going, timeout=5) == 4200
        await publishing
        got = []
        for _ in range(sent):
            got.append((await recv(staying))["data"])
        assert got == [str(n) for n in range(sent)]
        assert await asyncio.wait_for(leaving.wait(), 10) == 0

        async def alone() -> bool:
            path = "/apps/app-id/channels/news"
            _, body = await api(survivor, "GET", path, info="subscription_count")
            return bool(body == {"occupied": True, "subscription_count": 1})

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2
        while not await alone() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert await alone()


async def test_webhooks_go_once_for_the_cluster_even_for_a_killed_node(
    redis_server: str, tmp_path: Path
) -> None:
    async with webhook_receiver() as (url, events):
        hooks = ("--webhook-delay=0", f"--webhook-url={url}")
        async with (
            in_process_node(redis_server, webhook_url=url, webhook_delay=0.0) as survivor,
            node_process(redis_server, "doomed", tmp_path / "doomed.log", *hooks) as (doomed, ws),
            client(survivor) as alice,
            connect(f"{ws}/app/app-key?protocol=7", ping_interval=None) as bob,
        ):
            await subscribe(alice, await established(alice), "presence-w", '{"user_id":"alice"}')
            await subscribe(bob, await established(bob), "presence-w", '{"user_id":"bob"}')
            assert (await recv(alice))["event"] == "pusher_internal:member_added"
            # A killed node's webhooks still in flight are lost with it: let bob's land.
            for _ in range(100):
                if any(e.get("user_id") == "bob" for e in events):
                    break
                await asyncio.sleep(0.05)
            doomed.send_signal(signal.SIGKILL)
            assert (await recv(alice, timeout=NODE_TIMEOUT * 3 + 1))["event"].endswith("removed")
            await asyncio.sleep(0.5)  # the webhook's own trip
            names = sorted((e["name"], e.get("user_id")) for e in events)
        assert names == [
            ("channel_occupied", None),
            ("member_added", "alice"),
            ("member_added", "bob"),
            ("member_removed", "bob"),
        ]


#: Seconds a node stopped under traffic may take from SIGTERM to its exit: its drain
#: (``--drain-timeout=1``) and a teardown that runs as it should, with room for a loaded
#: machine; well under its ``--shutdown-timeout``, so an exit only a bound forced fails.
STOP_BOUND = 6.0
#: The stops under traffic the regression test makes, each with fresh nodes.
STOP_ROUNDS = 3
#: Subscribers on the node being stopped, and publishers per node.
SUBSCRIBERS = 30
PUBLISHERS = 2


async def test_a_node_stopped_under_traffic_exits_in_bounded_time_every_time(
    redis_server: str, tmp_path: Path
) -> None:
    """A node once stayed alive after its drain while publishes were pouring in: SIGTERM it
    under traffic several times; each time it must exit 0 within the bound, its clients
    having had 4200, and nothing on its way out cut short by a bound."""
    for round_ in range(STOP_ROUNDS):
        log = tmp_path / f"leaving-{round_}.log"
        async with (
            in_process_node(redis_server) as survivor,
            node_process(redis_server, f"leaving{round_}", log) as (leaving, leaving_url),
            contextlib.AsyncExitStack() as stack,
        ):
            clients = [
                await stack.enter_async_context(
                    connect(f"{leaving_url}/app/app-key?protocol=7", ping_interval=None)
                )
                for _ in range(SUBSCRIBERS)
            ]
            for number, ws in enumerate(clients):
                channel = "presence-load" if number % 2 else "load"
                data = json.dumps({"user_id": f"u{number}"}) if number % 2 else None
                await subscribe(ws, await established(ws), channel, data)
            # The leaving node as ``trigger`` takes a server: its address is what counts.
            leaving_port = int(leaving_url.rsplit(":", 1)[1])
            leaving_server = dataclasses.replace(survivor, port=leaving_port)
            stopping = asyncio.Event()

            async def hammer(target: RunningServer, stopping: asyncio.Event) -> None:
                number = 0
                while not stopping.is_set() and number < 5000:
                    body = {"name": "n", "channels": ["load", "presence-load"], "data": "x"}
                    try:
                        await trigger(target, body)
                    except (aiohttp.ClientError, OSError):
                        await asyncio.sleep(0.01)  # The stopped node is gone.
                    number += 1

            targets = [leaving_server, survivor] * PUBLISHERS
            publishers = [asyncio.create_task(hammer(target, stopping)) for target in targets]
            try:
                await asyncio.sleep(0.5)
                loop = asyncio.get_running_loop()
                signalled = loop.time()
                leaving.send_signal(signal.SIGTERM)
                codes = await asyncio.gather(*(closed_with(ws, timeout=5) for ws in clients))
                status = await asyncio.wait_for(leaving.wait(), STOP_BOUND * 2)
                took = loop.time() - signalled
            finally:
                stopping.set()
                await asyncio.gather(*publishers, return_exceptions=True)
            assert codes == [4200] * SUBSCRIBERS
            assert status == 0
            assert took < STOP_BOUND, f"round {round_}: exit {took:.1f} s after SIGTERM"
            events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
            assert "stopping" in events
            cut_short = [e for e in events if e.startswith("shutdown_")]
            assert cut_short == [], log.read_text()[-3000:]
