"""Webhook delivery over real sockets: a receiver on 127.0.0.1 port 0, the sender, the server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from websockets.asyncio.client import connect

from reference_server.app import run_server
from reference_server.config import ConfigError, ServerConfig, load_config
from reference_server.protocol.webhooks import (
    RetryPolicy,
    channel_occupied,
    channel_vacated,
    sign_body,
)
from reference_server.webhook_sender import WebhookSender

TIMEOUT = 5.0


@dataclass
class Receiver:
    """Records POSTs; answers ``statuses`` in turn (then 200), optionally slowly."""

    statuses: list[int] = field(default_factory=list)
    stall: float = 0.0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    #: Requests whose stall is over; lets tests order their own work against a stall.
    answered: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        self.arrived.set()
        if self.stall:
            await asyncio.sleep(self.stall)
        self.answered += 1
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status)

    async def next(self, count: int) -> None:
        async def enough() -> None:
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), TIMEOUT)


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hooks"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def sender(url: str, **kwargs: Any) -> WebhookSender:
    settings: dict[str, Any] = {
        "key": "app-key",
        "secret": "app-secret",
        "delay": 0.2,
        "retry_for": 10.0,
        "queue_size": 10,
    }
    settings.update(kwargs)
    return WebhookSender(url, **settings)


@pytest.mark.asyncio
async def test_signed_post_per_event() -> None:
    async with receiving(Receiver()) as receiver:
        hooks = sender(receiver.url)
        await hooks.start()
        try:
            hooks.submit([channel_occupied("a"), channel_occupied("b")])
            await receiver.next(2)
        finally:
            await hooks.stop()
    for headers, body in receiver.requests:
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Pusher-Key"] == "app-key"
        assert headers["X-Pusher-Signature"] == sign_body("app-secret", body)
        assert len(json.loads(body)["events"]) == 1
    names = [json.loads(b)["events"][0]["channel"] for _, b in receiver.requests]
    assert names == ["a", "b"]


@pytest.mark.asyncio
async def test_vacated_waits_for_the_delay() -> None:
    async with receiving(Receiver()) as receiver:
        hooks = sender(receiver.url, delay=0.3)
        await hooks.start()
        try:
            started = time.monotonic()
            hooks.submit([channel_vacated("a")])
            await receiver.next(1)
            assert time.monotonic() - started >= 0.25
        finally:
            await hooks.stop()


@pytest.mark.asyncio
async def test_retried_with_the_same_bytes_after_a_500() -> None:
    async with receiving(Receiver(statuses=[500, 503])) as receiver:
        hooks = sender(receiver.url, retry=RetryPolicy(first_delay=0.05, retry_for=5.0))
        await hooks.start()
        try:
            hooks.submit([channel_occupied("a")])
            await receiver.next(3)
        finally:
            await hooks.stop()
    bodies = {body for _, body in receiver.requests}
    assert len(bodies) == 1
    assert hooks.delivered == 1


@pytest.mark.asyncio
async def test_no_retry_when_the_bound_is_zero() -> None:
    async with receiving(Receiver(statuses=[500])) as receiver:
        hooks = sender(receiver.url, retry_for=0.0)
        await hooks.start()
        try:
            hooks.submit([channel_occupied("a")])
            await receiver.next(1)
            await asyncio.sleep(0.3)
        finally:
            await hooks.stop()
    assert len(receiver.requests) == 1


@pytest.mark.asyncio
async def test_full_queue_drops_without_blocking(caplog: pytest.LogCaptureFixture) -> None:
    async with receiving(Receiver(stall=1.0)) as receiver:
        hooks = sender(receiver.url, queue_size=2)
        await hooks.start()
        try:
            for number in range(10):
                hooks.submit([channel_occupied(f"c{number}")])
            # submit() is synchronous: reaching here without awaiting means it never waited
            # for the stalled receiver; the overflow was dropped, not queued.
            assert receiver.answered == 0
            await receiver.next(1)
        finally:
            await hooks.stop()
    drops = [r for r in caplog.records if r.getMessage() == "webhook_dropped"]
    assert len(drops) >= 10 - 2 - 1  # queue of 2, at most one taken by the sender


@pytest.mark.asyncio
async def test_a_stalled_receiver_does_not_delay_websocket_traffic() -> None:
    async with receiving(Receiver(stall=3.0)) as receiver:
        config = ServerConfig(host="127.0.0.1", port=0, webhook_url=receiver.url)
        async with (
            run_server(config) as server,
            connect(f"{server.ws_url}/app/app-key", ping_interval=None) as ws,
        ):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
            for number in range(5):
                channel = f"ch{number}"
                await ws.send(
                    json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}})
                )
                reply = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                assert reply["event"] == "pusher_internal:subscription_succeeded"
            # Every reply came while the receiver was still stalled on the first webhook.
            await receiver.next(1)
            assert receiver.answered == 0
    first = json.loads(receiver.requests[0][1])
    assert first["events"] == [{"name": "channel_occupied", "channel": "ch0"}]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--webhook-url", "ftp://x/y"], "--webhook-url"),
        (["--webhook-url", "http://"], "--webhook-url"),
        (["--webhook-url", "http://h:99999/"], "--webhook-url"),
        (["--webhook-delay", "-1"], "--webhook-delay"),
        (["--webhook-retry-for", "soon"], "--webhook-retry-for"),
        (["--webhook-queue-size", "0"], "--webhook-queue-size"),
    ],
)
def test_bad_webhook_settings_are_named(argv: list[str], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(argv, {})
    assert named in str(info.value)
    assert "\n" not in str(info.value)


def test_webhook_settings_from_the_environment() -> None:
    config = load_config(
        [],
        {
            "PUSHER_REF_WEBHOOK_URL": "http://127.0.0.1:9/hooks",
            "PUSHER_REF_WEBHOOK_DELAY": "0",
            "PUSHER_REF_WEBHOOK_RETRY_FOR": "60",
            "PUSHER_REF_WEBHOOK_QUEUE_SIZE": "5",
        },
    )
    assert config.webhook_url == "http://127.0.0.1:9/hooks"
    assert (config.webhook_delay, config.webhook_retry_for, config.webhook_queue_size) == (
        0.0,
        60.0,
        5,
    )
    assert ServerConfig().webhook_url is None


def test_cli_exits_2_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reference_server", "--webhook-delay", "x"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--webhook-delay" in result.stderr
