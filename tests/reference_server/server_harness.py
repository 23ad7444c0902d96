"""A running reference server on 127.0.0.1 port 0 and the client-side helpers that drive it,
for the adapter's tests and the fault switches that live in the adapter."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from reference_server.app import RunningServer, run_server
from reference_server.config import ServerConfig
from reference_server.faults import Fault
from reference_server.protocol.signing import body_md5, sign_channel, sign_http_request

TIMEOUT = 2.0


@contextlib.asynccontextmanager
async def serving(*faults: Fault, **settings: Any) -> AsyncIterator[RunningServer]:
    config = ServerConfig(host="127.0.0.1", port=0, faults=frozenset(faults), **settings)
    async with run_server(config) as running:
        yield running


@contextlib.asynccontextmanager
async def client(server: RunningServer, key: str = "app-key") -> AsyncIterator[ClientConnection]:
    # No client keepalive pings: they would count as activity in heartbeat tests.
    async with connect(
        f"{server.ws_url}/app/{key}?protocol=7&client=test&version=0", ping_interval=None
    ) as ws:
        yield ws


async def recv(ws: ClientConnection, timeout: float = TIMEOUT) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def established(ws: ClientConnection) -> str:
    frame = await recv(ws)
    assert frame["event"] == "pusher:connection_established"
    socket_id: str = json.loads(frame["data"])["socket_id"]
    return socket_id


async def subscribe(ws: ClientConnection, channel: str) -> None:
    await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
    assert (await recv(ws))["event"] == "pusher_internal:subscription_succeeded"


async def closed_with(ws: ClientConnection, timeout: float = TIMEOUT) -> int | None:
    """Drain until the server closes; return its close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def trigger(
    server: RunningServer,
    body: dict[str, Any],
    *,
    secret: str = "app-secret",
    app_id: str = "app-id",
    key: str = "app-key",
    endpoint: str = "events",
) -> tuple[int, Any]:
    """``POST /apps/{app_id}/events`` (or ``batch_events`` with ``endpoint``), signed."""
    raw = json.dumps(body).encode()
    path = f"/apps/{app_id}/{endpoint}"
    params = {
        "auth_key": key,
        "auth_timestamp": str(int(time.time())),
        "auth_version": "1.0",
        "body_md5": body_md5(raw),
    }
    params["auth_signature"] = sign_http_request(secret, "POST", path, params.items())
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.http_url}{path}", params=params, data=raw) as response,
    ):
        return response.status, await response.json()


SECRET = "app-secret"


async def subscribe_authorised(
    ws: ClientConnection, socket_id: str, channel: str, channel_data: str | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"channel": channel}
    if channel.startswith(("private-", "presence-")):
        data["auth"] = f"app-key:{sign_channel(SECRET, socket_id, channel, channel_data)}"
    if channel_data is not None:
        data["channel_data"] = channel_data
    await ws.send(json.dumps({"event": "pusher:subscribe", "data": data}))
    frame: dict[str, Any] = await recv(ws)
    assert frame["event"] == "pusher_internal:subscription_succeeded", frame
    return frame


async def api(
    server: RunningServer,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    key: str = "app-key",
    secret: str = SECRET,
    **params: str,
) -> tuple[int, Any]:
    query = {
        "auth_key": key,
        "auth_timestamp": str(int(time.time())),
        "auth_version": "1.0",
        **params,
    }
    if body:
        query["body_md5"] = body_md5(body)
    query["auth_signature"] = sign_http_request(secret, method, path, query.items())
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{server.http_url}{path}", params=query, data=body) as response,
    ):
        return response.status, await response.json()


def logged(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    """The ``event`` records logged so far: each one's fields, plus its ``level``."""
    return [
        {"level": record.levelname.lower(), **getattr(record, "fields", {})}
        for record in caplog.records
        if record.getMessage() == event
    ]


async def silent(ws: ClientConnection, timeout: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        await recv(ws, timeout=timeout)


async def two_requests_on_one_connection(http_url: str) -> list[bytes]:
    """Send two signed GET /channels requests on one TCP connection; return what came back
    before the server closed it (or both responses)."""
    host, port = http_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    path = "/apps/app-id/channels"
    answers = []
    try:
        for _ in range(2):
            query = {"auth_key": "app-key", "auth_timestamp": str(int(time.time())),
                     "auth_version": "1.0"}  # fmt: skip
            query["auth_signature"] = sign_http_request(SECRET, "GET", path, query.items())
            writer.write(f"GET {path}?{urlencode(query)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            await writer.drain()
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            answers.append(head + await reader.readexactly(length))
    finally:
        writer.close()
    return answers


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback webhook endpoint; yields its URL and the events it has received."""
    events: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        events.extend((await request.json())["events"])
        return web.Response()

    app = web.Application()
    app.router.add_post("/hooks", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(runner, sock)
        await site.start()
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}/hooks", events
        finally:
            await runner.cleanup()
