"""Webhook delivery over real sockets: a receiver on 127.0.0.1 port 0, the sender, the server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect

from reference_server.app import run_server
from reference_server.config import ConfigError, ServerConfig, load_config
from reference_server.metrics import AppMetrics
from reference_server.protocol.webhooks import (
    RetryPolicy,
    channel_occupied,
    channel_vacated,
    sign_body,
)
from reference_server.webhook_sender import WebhookSender

from .server_harness import logged
from .webhook_harness import TIMEOUT, Receiver, receiving


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


@pytest.mark.asyncio
async def test_shut_down_sends_what_was_held_back_at_once() -> None:
    """channel_vacated is held back for 30 s; a shutdown sends it, and any later leave, now."""
    async with receiving(Receiver()) as receiver:
        hooks = sender(receiver.url, delay=30.0)
        await hooks.start()
        try:
            hooks.submit([channel_vacated("a")])
            assert hooks.waiting() == {"queued": 0, "retrying": 0, "held": 1}
            loop = asyncio.get_running_loop()
            started = loop.time()
            hooks.shut_down(started + 5.0)
            hooks.submit([channel_vacated("b")])  # e.g. a connection the drain closed
            await asyncio.wait_for(hooks.wait_sent(), TIMEOUT)
            assert loop.time() - started < 1.0
        finally:
            await hooks.stop()
    assert [event["channel"] for event in receiver.events()] == ["a", "b"]
    assert hooks.waiting() == {"queued": 0, "retrying": 0, "held": 0}


@pytest.mark.asyncio
async def test_shut_down_plans_no_retry_after_its_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing request is retried while its next attempt falls before the deadline, then
    dropped and logged; ``wait_sent`` does not wait out the rest of the bound."""
    metrics = AppMetrics("app")
    async with receiving(Receiver(statuses=[500] * 10)) as receiver:
        hooks = sender(
            receiver.url,
            retry=RetryPolicy(first_delay=0.2, retry_for=60.0),
            metrics=metrics,
        )
        await hooks.start()
        try:
            loop = asyncio.get_running_loop()
            hooks.shut_down(loop.time() + 0.5)  # attempts at 0 and 0.2; the next at 0.6
            hooks.submit([channel_occupied("a")])
            await asyncio.wait_for(hooks.wait_sent(), TIMEOUT)
        finally:
            await hooks.stop()
    assert len(receiver.requests) == 2
    assert metrics.webhook_failures == 2
    assert metrics.webhooks_dropped == {"shutdown": 1}
    drops = logged(caplog, "webhook_dropped")
    assert [(r["level"], r["reason"], r["channels"]) for r in drops] == [
        ("warning", "shutdown", ["a"])
    ]


@pytest.mark.asyncio
async def test_stop_drops_and_logs_whatever_waits(caplog: pytest.LogCaptureFixture) -> None:
    metrics = AppMetrics("app")
    async with receiving(Receiver(stall=0.5)) as receiver:
        hooks = sender(receiver.url, metrics=metrics, delay=30.0)
        await hooks.start()
        hooks.submit([channel_occupied("sending"), channel_occupied("queued")])
        hooks.submit([channel_vacated("held")])
        await receiver.next(1)
        assert metrics.webhooks_waiting() == {"queued": 2, "retrying": 0, "held": 1}
        await hooks.stop()
        hooks.submit([channel_occupied("late"), channel_vacated("late-leave")])
    channels = [r["channels"][0] for r in logged(caplog, "webhook_dropped")]
    assert channels == ["sending", "queued", "held", "late", "late-leave"]
    assert metrics.webhooks_dropped == {"shutdown": 5}
    assert hooks.waiting() == {"queued": 0, "retrying": 0, "held": 0}


@pytest.mark.asyncio
async def test_failures_and_drops_are_counted() -> None:
    metrics = AppMetrics("app")
    async with receiving(Receiver(statuses=[500])) as receiver:
        hooks = sender(receiver.url, retry_for=0.0, metrics=metrics, queue_size=1)
        await hooks.start()
        try:
            hooks.submit([channel_occupied("a")])
            await receiver.next(1)
            hooks.submit([channel_occupied(f"b{n}") for n in range(3)])  # one fits the queue
            await receiver.next(2)
        finally:
            await hooks.stop()
    assert metrics.webhook_failures == 1
    assert metrics.webhooks_dropped == {"retries_over": 1, "queue_full": 2}


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
