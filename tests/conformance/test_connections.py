"""A check's named connections against a tiny scripted server: greetings, names, barriers and
the keep-alive between examples."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import ServerConnection, serve

from conformance.connections import DEFAULT_QUERY, KEEPALIVE_AFTER, Connections
from conformance.errors import PreconditionFailed, UsageError
from conformance.target import target_from_mapping
from conformance.transcript import Transcript


@dataclass
class Server:
    """What the scripted server saw, and a way to push a frame to every client."""

    greeting: dict[str, Any] | None = field(
        default_factory=lambda: {"socket_id": "1.2", "activity_timeout": 7}
    )
    paths: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    clients: list[ServerConnection] = field(default_factory=list)

    async def handle(self, ws: ServerConnection) -> None:
        self.clients.append(ws)
        assert ws.request is not None
        self.paths.append(ws.request.path)
        if self.greeting is not None:
            data = json.dumps(self.greeting)
            await ws.send(json.dumps({"event": "pusher:connection_established", "data": data}))
        async for message in ws:
            self.received.append(str(message))
            if "pusher:ping" in str(message):
                await ws.send('{"event":"pusher:pong","data":{}}')

    async def push(self, frame: dict[str, Any]) -> None:
        for ws in self.clients:
            await ws.send(json.dumps(frame))


@asynccontextmanager
async def _serving(
    server: Server, published: list[tuple[str, str]] | None = None
) -> AsyncIterator[Connections]:
    """Connections to the scripted server; a published marker is pushed to every client."""

    async def publish(token: str, channel: str) -> None:
        if published is not None:
            published.append((token, channel))
            await server.push({"event": "conformance-marker", "channel": channel, "data": token})

    async with serve(server.handle, "127.0.0.1", 0) as listening:
        port = next(iter(listening.sockets)).getsockname()[1]
        target = target_from_mapping(
            {"ws_url": f"ws://127.0.0.1:{port}", "http_url": "http://127.0.0.1:1",
             "app_id": "1", "key": "the-key", "secret": "s"}
        )  # fmt: skip
        pool = Connections(
            target, Transcript("T-01/c"), timeout=2.0, owner="T-01/c", publish_marker=publish
        )
        try:
            yield pool
        finally:
            await pool.aclose()


@pytest.mark.asyncio
async def test_open_reports_the_greeting_and_keeps_the_connection_by_name() -> None:
    server = Server()
    async with _serving(server) as pool:
        conn, greeting = await pool.open("alice")
        assert greeting == {"socket_id": "1.2", "activity_timeout": 7}
        assert pool.advertised_activity_timeout == 7.0
        assert pool.named("alice") is conn
        assert list(pool) == ["alice"]
        assert len(pool) == 1
        path = urlsplit(server.paths[0])
        assert path.path == "/app/the-key"
        assert {k: v[0] for k, v in parse_qs(path.query).items()} == DEFAULT_QUERY


@pytest.mark.asyncio
async def test_reopening_a_name_closes_the_old_connection() -> None:
    async with _serving(Server()) as pool:
        first, _ = await pool.open("alice")
        second, _ = await pool.open("alice")
        assert first.closed is not None
        assert pool["alice"] is second


@pytest.mark.asyncio
async def test_a_greeting_without_a_socket_id_is_a_precondition() -> None:
    async with _serving(Server(greeting={"activity_timeout": 7})) as pool:
        with pytest.raises(PreconditionFailed, match="carries no socket_id"):
            await pool.open("alice")


def test_an_unopened_name_is_a_usage_error_naming_the_check() -> None:
    target = target_from_mapping(
        {"ws_url": "ws://127.0.0.1:1", "http_url": "http://127.0.0.1:1", "app_id": "1",
         "key": "k", "secret": "s"}
    )  # fmt: skip

    async def never(token: str, channel: str) -> None:
        raise AssertionError("no marker expected")

    pool = Connections(target, Transcript("T-01/c"), timeout=1.0, owner="T-01/c",
                       publish_marker=never)  # fmt: skip
    with pytest.raises(UsageError, match="T-01/c: connection 'bob' is used before it is opened"):
        pool.named("bob")
    assert pool.ws_url(key="other", query="") == "ws://127.0.0.1:1/app/other"
    assert pool.ws_url(path="/x", query={"a": "1"}) == "ws://127.0.0.1:1/x?a=1"


@pytest.mark.asyncio
async def test_forget_and_adopt() -> None:
    async with _serving(Server()) as pool:
        conn, _ = await pool.open("alice")
        await conn.close()
        pool.forget("alice")
        pool.forget("alice")  # forgetting twice is harmless
        assert "alice" not in pool
        pool.adopt(conn)
        assert pool["alice"] is conn


@pytest.mark.asyncio
async def test_a_marker_barrier_publishes_waits_for_it_and_pings() -> None:
    server, published = Server(), []
    async with _serving(server, published) as pool:
        conn, _ = await pool.open("alice")
        await pool.barrier("alice", "marker-channel")
        ((token, channel),) = published
        assert channel == "marker-channel"
        marker = [f for f in conn.frames if f.event == "conformance-marker"]
        assert [f.index in conn.consumed for f in marker] == [True]
        assert marker[0].parsed["data"] == token
        assert any("pusher:ping" in text for text in server.received)


@pytest.mark.asyncio
async def test_a_barrier_on_a_connection_the_server_closed_returns() -> None:
    server = Server()
    async with _serving(server) as pool:
        conn, _ = await pool.open("alice")
        await server.clients[0].close(4009, "not authorized")
        await conn.wait_closed(2)
        await pool.ping_barrier("alice")
        await pool.barrier("alice", "some-channel")  # no marker is published either


@pytest.mark.asyncio
async def test_the_keep_alive_pings_only_quiet_connections_that_answer_pings() -> None:
    server = Server()
    async with _serving(server) as pool:
        quiet, _ = await pool.open("quiet")
        busy, _ = await pool.open("busy")
        heartbeat, _ = await pool.open("heartbeat", auto_pong=False)
        quiet.last_sent -= 2 * KEEPALIVE_AFTER
        heartbeat.last_sent -= 2 * KEEPALIVE_AFTER
        await pool.pause_keep_alive()  # catches up on what is due before an example
        auto = [
            entry["conn"]
            for entry in pool.transcript.entries
            if entry.get("auto") and "pusher:ping" in entry.get("text", "")
        ]
        assert auto == ["quiet"]
        assert not [f for f in quiet.unconsumed() if f.event == "pusher:pong"]
        assert busy.is_open


@pytest.mark.asyncio
async def test_the_keep_alive_runs_between_examples_and_stops() -> None:
    server = Server()
    async with _serving(server) as pool:
        conn, _ = await pool.open("alice")
        await pool.resume_keep_alive()
        assert await conn.wait_until(lambda: len(server.received) >= 1, 4 * KEEPALIVE_AFTER)
        await pool.stop_keep_alive()
        count = len(server.received)
        conn.last_sent -= 2 * KEEPALIVE_AFTER
        await conn.wait_until(lambda: False, KEEPALIVE_AFTER / 2)
        assert len(server.received) == count
