"""What operators see, over real sockets: /ready, /metrics and the structured log lines."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from reference_server import observe, operations
from reference_server.app import ReferenceServer, RunningServer, run_server
from reference_server.apps import AppsServer
from reference_server.apps_file import AppEntry
from reference_server.config import ServerConfig
from reference_server.metrics import Metrics

from .server_harness import (
    api,
    client,
    closed_with,
    established,
    logged,
    recv,
    serving,
    subscribe,
    subscribe_authorised,
    trigger,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

DOC = Path(__file__).resolve().parents[2] / "docs" / "reference-server.md"


async def scrape(server: RunningServer) -> Samples:
    """``GET /metrics``, parsed: value by (sample name, labels)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.http_url}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, app_id: str = "app-id", **labels: str) -> float:
    """One sample's value; 0 for a labelled counter nothing has counted yet."""
    return samples.get((name, frozenset({"app_id": app_id, **labels}.items())), 0.0)


async def eventually(check: Callable[[], Any], timeout: float = 2.0) -> None:
    """Wait until ``check()`` (which may be async) is true: a close is accounted when the
    server's handler has run, a moment after the client sees it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result or loop.time() > deadline:
            assert result
            return
        await asyncio.sleep(0.02)


async def get(server: RunningServer, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(server.http_url + path) as response:
        return response.status, await response.json()


async def ping(ws: Any) -> None:
    """A round trip: everything sent before it has been handled."""
    await ws.send('{"event":"pusher:ping","data":{}}')
    assert (await recv(ws))["event"] == "pusher:pong"


# /ready and /health.


@pytest.mark.asyncio
async def test_ready_until_draining_while_health_stays_ok() -> None:
    async with serving() as server:
        assert await get(server, "/ready") == (200, {"ready": True})
        await server.server.drain()
        assert await get(server, "/ready") == (503, {"ready": False, "reasons": ["draining"]})
        assert await get(server, "/health") == (200, {"status": "ok"})


@pytest.mark.asyncio
async def test_a_variant_adds_its_own_reasons() -> None:
    class NeedsRedis(ReferenceServer):
        def ready(self) -> list[str]:
            return [*super().ready(), "redis: not connected"]

    server = NeedsRedis(ServerConfig())
    async with TestClient(TestServer(server.make_app())) as http:
        response = await http.get("/ready")
        assert response.status == 503
        assert await response.json() == {"ready": False, "reasons": ["redis: not connected"]}
        server.fanout.draining = True
        response = await http.get("/ready")
        assert (await response.json())["reasons"] == ["draining", "redis: not connected"]


@pytest.mark.asyncio
async def test_an_apps_server_is_ready_when_every_app_is() -> None:
    apps = (AppEntry("app-id", "app-key", "app-secret"), AppEntry("b", "b-key", "b-secret"))
    async with serving(apps=apps) as server:
        assert isinstance(server.server, AppsServer)
        assert await get(server, "/ready") == (200, {"ready": True})
        await server.server.servers[1].drain()
        assert await get(server, "/ready") == (503, {"ready": False, "reasons": ["draining"]})
        await server.server.drain()
        assert await get(server, "/ready") == (503, {"ready": False, "reasons": ["draining"]})


# /metrics.


@pytest.mark.asyncio
async def test_connection_and_subscription_metrics_follow_the_clients() -> None:
    async with serving() as server, client(server) as a, client(server) as b:
        socket_a, socket_b = await established(a), await established(b)
        samples = await scrape(server)
        assert value(samples, "pusher_connections") == 2
        assert value(samples, "pusher_connections_opened_total") == 2
        await subscribe(a, "public-room")
        await subscribe_authorised(a, socket_a, "private-room")
        await subscribe_authorised(b, socket_b, "private-room")
        await subscribe_authorised(a, socket_a, "presence-room", '{"user_id":"alice"}')
        await subscribe_authorised(a, socket_a, "private-encrypted-room")
        await subscribe(b, "cache-room")
        assert (await recv(b))["event"] == "pusher:cache_miss"
        samples = await scrape(server)
        counts = {
            kind: value(samples, "pusher_subscriptions", type=kind)
            for kind in ("public", "private", "encrypted", "presence", "cache", "server_to_user")
        }
        assert counts == {
            "public": 1,
            "private": 2,
            "encrypted": 1,
            "presence": 1,
            "cache": 1,
            "server_to_user": 0,
        }
        await a.send('{"event":"pusher:unsubscribe","data":{"channel":"public-room"}}')
        await ping(a)
        assert value(await scrape(server), "pusher_subscriptions", type="public") == 0
        await b.send(b"\x00")  # A binary frame: the server closes with 1003.
        assert await closed_with(b) == 1003
        await a.close()  # The client closes with 1000.

        async def all_closed() -> bool:
            return value(await scrape(server), "pusher_connections") == 0

        await eventually(all_closed)
        samples = await scrape(server)
    assert value(samples, "pusher_connections_closed_total", code="1000") == 1
    assert value(samples, "pusher_connections_closed_total", code="1003") == 1
    assert all(
        value(samples, "pusher_subscriptions", type=kind) == 0
        for kind in ("public", "private", "encrypted", "presence", "cache")
    )


@pytest.mark.asyncio
async def test_message_api_and_client_event_counters_move() -> None:
    async with (
        serving(client_events=True) as server,
        client(server) as a,
        client(server) as b,
        client(server) as c,
    ):
        sockets = [await established(ws) for ws in (a, b, c)]
        for ws, socket_id in zip((a, b, c), sockets, strict=True):
            await subscribe_authorised(ws, socket_id, "private-room")
        before = await scrape(server)

        # A broadcast to three subscribers: one API request, three messages out.
        assert await trigger(server, {"name": "e", "channel": "private-room", "data": "1"}) == (
            200,
            {},
        )
        for ws in (a, b, c):
            assert (await recv(ws))["event"] == "e"
        # A client event: one message in, relayed to the two others.
        await a.send(json.dumps({"event": "client-x", "channel": "private-room", "data": {}}))
        for ws in (b, c):
            assert (await recv(ws))["event"] == "client-x"
        # One message in, one out (its pong).
        await ping(a)
        # Refused, unknown and query requests are counted by their status.
        await trigger(server, {"name": "e", "channel": "x", "data": "1"}, secret="wrong")
        await api(server, "GET", "/apps/app-id/channels")
        await api(server, "GET", "/apps/app-id/channels/private-room/users")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.http_url}/apps/app-id/nowhere") as response:
                assert response.status == 404
            async with session.get(f"{server.http_url}/health") as response:
                assert response.status == 200
        after = await scrape(server)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("pusher_websocket_messages_received_total") == 2
    assert moved("pusher_websocket_messages_sent_total") == 3 + 2 + 1
    assert moved("pusher_client_events_relayed_total") == 1
    requests = {
        (dict(labels)["endpoint"], dict(labels)["status"]): count
        for (name, labels), count in after.items()
        if name == "pusher_http_api_requests_total"
    }
    assert requests == {
        ("events", "200"): 1,
        ("events", "401"): 1,
        ("channels", "200"): 1,
        ("channels/{channel}/users", "400"): 1,  # not a presence channel
        ("unknown", "404"): 1,
    }


def test_every_metric_is_documented() -> None:
    """The table in docs/reference-server.md ("Operating it") lists exactly what is exposed."""
    section = DOC.read_text(encoding="utf-8").split("### Metrics", 1)[1].split("### Logs", 1)[0]
    documented = set(re.findall(r"^\| `(pusher_[a-z_]+)` \|", section, flags=re.MULTILINE))
    metrics = Metrics(CollectorRegistry())
    app = metrics.app("app-id")
    app.connections_closed[1000] += 1
    app.api_requests[("events", 200)] += 1
    app.webhooks_dropped["queue_full"] += 1
    app.webhooks_waiting = lambda: {"queued": 0}
    exposed = {
        sample.name
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for sample in family.samples
        if not sample.name.endswith("_created")
    }
    assert exposed == documented


@pytest.mark.asyncio
async def test_apps_of_one_process_share_a_registry() -> None:
    """Each server's /metrics shows every app of the process, each under its own app_id."""
    metrics = Metrics(CollectorRegistry())
    first = ServerConfig(host="127.0.0.1", port=0, app_id="first")
    second = ServerConfig(host="127.0.0.1", port=0, app_id="second", key="second-key")
    async with (
        run_server(first, metrics=metrics) as one,
        run_server(second, metrics=metrics) as two,
        client(two, key="second-key") as ws,
    ):
        await established(ws)
        samples = await scrape(one)
    assert value(samples, "pusher_connections", app_id="first") == 0
    assert value(samples, "pusher_connections", app_id="second") == 1


@pytest.mark.asyncio
async def test_an_apps_server_counts_each_app_apart() -> None:
    """One /metrics for the process; connections and API requests go to their own app."""
    apps = (AppEntry("app-id", "app-key", "app-secret"), AppEntry("b", "b-key", "b-secret"))
    async with serving(apps=apps) as server, client(server, key="b-key") as ws:
        await established(ws)
        body = {"name": "e", "channel": "x", "data": "1"}
        await trigger(server, body, app_id="b", key="b-key", secret="b-secret")
        await trigger(server, body, app_id="nobody")  # refused by the first app: 404
        samples = await scrape(server)
    assert value(samples, "pusher_connections", app_id="b") == 1
    assert value(samples, "pusher_connections", app_id="app-id") == 0
    assert value(samples, "pusher_http_api_requests_total", "b", endpoint="events", status="200")
    assert value(
        samples, "pusher_http_api_requests_total", "app-id", endpoint="events", status="404"
    )


@pytest.mark.asyncio
async def test_webhook_queue_length_is_read_when_scraped() -> None:
    """Held back for 30 s, a channel_vacated shows as waiting; nobody listens on port 9."""
    config = {"webhook_url": "http://127.0.0.1:9/hooks", "webhook_delay": 30.0}
    async with serving(**config) as server:
        async with client(server) as ws:
            await established(ws)
            await subscribe(ws, "room")
        await eventually(lambda: server.server.metrics.webhooks_waiting()["held"] == 1)
        samples = await scrape(server)
    assert value(samples, "pusher_webhook_queue_length", state="held") == 1


# Logs.


@pytest.mark.asyncio
async def test_connection_subscription_and_api_events_are_logged_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="reference_server")
    async with serving() as server, client(server) as ws:
        socket_id = await established(ws)
        await subscribe(ws, "room")
        await ws.send('{"event":"pusher:unsubscribe","data":{"channel":"room"}}')
        await ws.send("not json")  # A non-fatal pusher:error: debug only.
        assert (await recv(ws))["event"] == "pusher:error"
        await subscribe(ws, "other")
        await api(server, "GET", "/apps/app-id/channels")
        await server.server.drain()  # A fatal one, 4200: info.
        assert await closed_with(ws) == 4200
    [opened] = logged(caplog, "connection_opened")
    assert opened == {"level": "info", "socket_id": socket_id, "remote": "127.0.0.1"}
    subscriptions = logged(caplog, "subscribed") + logged(caplog, "unsubscribed")
    assert sorted((r["channel"], r["socket_id"]) for r in subscriptions) == [
        ("other", socket_id),
        ("other", socket_id),  # released at close
        ("room", socket_id),
        ("room", socket_id),
    ]
    assert {r["level"] for r in subscriptions} == {"info"}
    [error] = logged(caplog, "error")
    assert error == {
        "level": "info",
        "socket_id": socket_id,
        "code": 4200,
        "message": "Server shutting down; please reconnect",
    }
    [closed] = logged(caplog, "connection_closed")
    assert closed["socket_id"] == socket_id
    assert closed["code"] == 4200
    assert closed["seconds"] >= 0
    assert closed["level"] == "info"
    [request] = logged(caplog, "api_request")
    assert request["level"] == "info"
    assert request["method"] == "GET"
    assert request["path"] == "/apps/app-id/channels"
    assert request["status"] == 200
    assert request["milliseconds"] >= 0


@pytest.mark.asyncio
async def test_per_message_errors_are_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="reference_server")
    async with serving() as server, client(server) as ws:
        socket_id = await established(ws)
        await ws.send("not json")
        frame = await recv(ws)
    [error] = logged(caplog, "error")
    assert error == {
        "level": "debug",
        "socket_id": socket_id,
        "code": None,
        "message": frame["data"]["message"],
    }


@pytest.mark.asyncio
async def test_nothing_is_built_for_the_log_at_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At --log-level warning no field of a connection, message or API event is built."""
    caplog.set_level(logging.WARNING, logger="reference_server")
    calls: list[str] = []

    def recording(level: int, event: str, **fields: Any) -> None:
        calls.append(event)

    for module in (observe, operations):
        monkeypatch.setattr(module, "log", recording)
    monkeypatch.setattr("reference_server.http_endpoints.log", recording)
    async with serving(client_events=True) as server, client(server) as a, client(server) as b:
        sockets = [await established(ws) for ws in (a, b)]
        for ws, socket_id in zip((a, b), sockets, strict=True):
            await subscribe_authorised(ws, socket_id, "private-room")
        await a.send("not json")
        await recv(a)
        await a.send(json.dumps({"event": "client-x", "channel": "private-room", "data": {}}))
        await recv(b)
        await trigger(server, {"name": "e", "channel": "private-room", "data": "1"})
        await recv(a)
    assert calls == []
