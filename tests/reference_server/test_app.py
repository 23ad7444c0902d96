"""The aiohttp adapter, over real sockets on 127.0.0.1 port 0, driven by websockets/aiohttp."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from websockets.asyncio.client import connect

from reference_server.peers import Peer

from .server_harness import (
    TIMEOUT,
    client,
    closed_with,
    established,
    recv,
    serving,
    subscribe,
    trigger,
)


@pytest.mark.asyncio
async def test_unknown_key_gets_error_then_close_4001() -> None:
    async with serving() as server, client(server, key="nope") as ws:
        frame = await recv(ws)
        assert frame["event"] == "pusher:error"
        assert frame["data"]["code"] == 4001
        assert await closed_with(ws) == 4001


@pytest.mark.asyncio
async def test_connection_established_and_pings() -> None:
    async with serving() as server, client(server) as ws:
        frame = await recv(ws)
        assert json.loads(frame["data"])["activity_timeout"] == 120
        await ws.send('{"event":"pusher:ping","data":{}}')
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == '{"event":"pusher:pong","data":"{}"}'
        pong = await ws.ping(b"hello")
        await asyncio.wait_for(pong, TIMEOUT)


@pytest.mark.asyncio
async def test_socket_ids_are_unique() -> None:
    async with serving() as server, client(server) as a, client(server) as b:
        assert await established(a) != await established(b)


@pytest.mark.asyncio
async def test_bad_frames() -> None:
    async with serving() as server, client(server) as ws:
        await established(ws)
        await ws.send("not json")
        assert (await recv(ws))["data"]["code"] is None
        await ws.send(b"\x00binary")
        assert await closed_with(ws) == 1003


@pytest.mark.asyncio
async def test_idle_connection_is_pinged_then_closed_4201() -> None:
    async with (
        serving(activity_timeout=0.3, pong_timeout=0.3) as server,
        client(server) as ws,
    ):
        await established(ws)
        start = time.monotonic()
        assert (await recv(ws)) == {"event": "pusher:ping", "data": "{}"}
        assert 0.25 < time.monotonic() - start < 1.0
        frame = await recv(ws)
        assert frame["data"]["code"] == 4201
        assert await closed_with(ws) == 4201


@pytest.mark.asyncio
async def test_pong_keeps_the_connection_open() -> None:
    async with (
        serving(activity_timeout=0.3, pong_timeout=0.3) as server,
        client(server) as ws,
    ):
        await established(ws)
        for _ in range(2):
            assert (await recv(ws))["event"] == "pusher:ping"
            await ws.send('{"event":"pusher:pong","data":{}}')
        assert ws.close_code is None


@pytest.mark.asyncio
async def test_subscribe_trigger_and_socket_id_exclusion() -> None:
    async with serving() as server, client(server) as a, client(server) as b:
        socket_a = await established(a)
        await established(b)
        await subscribe(a, "room")
        await subscribe(b, "room")
        await subscribe(b, "other")
        body = {"name": "msg", "channels": ["room", "other"], "data": '{"x":1}'}
        assert await trigger(server, {**body, "socket_id": socket_a}) == (200, {})
        assert await recv(b) == {"event": "msg", "channel": "room", "data": '{"x":1}'}
        assert await recv(b) == {"event": "msg", "channel": "other", "data": '{"x":1}'}
        with pytest.raises(TimeoutError):
            await recv(a, timeout=0.2)
        # Unsubscribed clients get nothing more.
        await b.send('{"event":"pusher:unsubscribe","data":{"channel":"room"}}')
        await trigger(server, {"name": "msg", "channel": "room", "data": "2"})
        assert (await recv(a))["data"] == "2"
        with pytest.raises(TimeoutError):
            await recv(b, timeout=0.2)


@pytest.mark.asyncio
async def test_fan_out_serialises_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """One broadcast frame is encoded once: every subscriber's transport gets the same bytes."""
    sent: list[bytes] = []
    original = Peer.write

    def recording(self: Peer, frame: bytes) -> None:
        sent.append(frame)
        original(self, frame)

    monkeypatch.setattr(Peer, "write", recording)
    async with serving() as server, client(server) as a, client(server) as b:
        for ws in (a, b):
            await established(ws)
            await subscribe(ws, "room")
        sent.clear()
        await trigger(server, {"name": "e", "channel": "room", "data": "d"})
        await recv(a)
        await recv(b)
        assert len(sent) == 2
        assert sent[0] is sent[1]
        assert sent[0][0] == 0x81  # FIN + text


@pytest.mark.asyncio
async def test_a_dead_subscriber_does_not_stop_the_others() -> None:
    async with serving() as server, client(server) as alive, client(server) as dead:
        for ws in (alive, dead):
            await established(ws)
            await subscribe(ws, "room")
        dead.transport.abort()
        for n in range(3):
            status, _ = await trigger(server, {"name": "e", "channel": "room", "data": str(n)})
            assert status == 200
            assert (await recv(alive))["data"] == str(n)


@pytest.mark.asyncio
async def test_bad_signature_is_401() -> None:
    async with serving() as server:
        status, body = await trigger(server, {"name": "e", "channel": "a", "data": "d"}, secret="x")
        assert status == 401
        assert "signature" in body["error"]


@pytest.mark.asyncio
async def test_unknown_app_is_404() -> None:
    async with serving() as server:
        status, body = await trigger(server, {"name": "e", "channel": "a", "data": "d"}, app_id="x")
        assert (status, list(body)) == (404, ["error"])


@pytest.mark.asyncio
async def test_http_routes() -> None:
    async with serving() as server, aiohttp.ClientSession() as session:
        async with session.get(f"{server.http_url}/health") as response:
            assert (response.status, await response.json()) == (200, {"status": "ok"})
        for method, path, status in [
            ("GET", "/nowhere", 404),
            ("GET", "/app/app-key/extra", 404),
            ("GET", "/apps/app-id/events", 405),
            ("POST", "/health", 405),
            ("GET", "/app/app-key", 426),  # Not an upgrade request.
        ]:
            async with session.request(method, f"{server.http_url}{path}") as response:
                assert response.status == status, path
                assert response.content_type == "application/json"
                assert "error" in await response.json()


@pytest.mark.asyncio
async def test_shutdown_closes_clients_with_4200() -> None:
    async with serving() as server:
        ws = await connect(f"{server.ws_url}/app/app-key", ping_interval=None)
        await established(ws)
    assert await closed_with(ws) == 4200
    assert ws.close_reason


def test_a_single_server_never_loads_redis() -> None:
    """Without --redis-url the server is one process and redis-py is not even imported."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from reference_server.app import build_server\n"
        "from reference_server.config import ServerConfig\n"
        "server = build_server(ServerConfig())\n"
        "assert server.cluster is None and server.ready() == []\n"
        "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
