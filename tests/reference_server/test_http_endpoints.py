"""The HTTP API adapter end to end: batch_events, GET channels, trigger info, query-string
triggers, authenticated terminate and keep-alive."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from reference_server.protocol.signing import body_md5

from .server_harness import (
    api,
    client,
    established,
    recv,
    serving,
    silent,
    subscribe,
    two_requests_on_one_connection,
)


@pytest.mark.asyncio
async def test_batch_events_deliver_and_reply() -> None:
    async with serving() as server, client(server) as ws:
        await established(ws)
        await subscribe(ws, "b1")
        first = {"name": "e1", "channel": "b1", "data": "1", "info": "subscription_count"}
        body = {"batch": [first, {"name": "e2", "channel": "b2", "data": "2"}]}
        status, reply = await api(
            server, "POST", "/apps/app-id/batch_events", json.dumps(body).encode()
        )
        assert (status, reply) == (200, {"batch": [{"subscription_count": 1}, {}]})
        assert await recv(ws) == {"event": "e1", "channel": "b1", "data": "1"}


@pytest.mark.asyncio
async def test_refused_batch_delivers_nothing() -> None:
    async with serving() as server, client(server) as ws:
        await established(ws)
        await subscribe(ws, "b1")
        body = {"batch": [{"name": "e1", "channel": "b1", "data": "1"}, {"channel": "b1"}]}
        status, reply = await api(
            server, "POST", "/apps/app-id/batch_events", json.dumps(body).encode()
        )
        assert status == 400
        assert reply["error"].startswith("batch[1]")
        await silent(ws)


@pytest.mark.asyncio
async def test_get_channels_and_trigger_info() -> None:
    async with serving() as server, client(server) as ws:
        await established(ws)
        await subscribe(ws, "pre-a")
        await subscribe(ws, "other")
        assert await api(server, "GET", "/apps/app-id/channels", filter_by_prefix="pre-") == (
            200,
            {"channels": {"pre-a": {}}},
        )
        status, _ = await api(server, "GET", "/apps/app-id/channels", info="user_count")
        assert status == 400
        body = {"name": "e", "channels": ["pre-a", "none"], "data": "d",
                "info": "subscription_count"}  # fmt: skip
        assert await api(server, "POST", "/apps/app-id/events", json.dumps(body).encode()) == (
            200,
            {"channels": {"pre-a": {"subscription_count": 1}, "none": {"subscription_count": 0}}},
        )


@pytest.mark.asyncio
async def test_trigger_parameters_in_the_query_string() -> None:
    async with serving() as server, client(server) as ws:
        await established(ws)
        await subscribe(ws, "q")
        status, reply = await api(
            server, "POST", "/apps/app-id/events", name="e", data="d", channel="q"
        )
        assert (status, reply) == (200, {})
        assert await recv(ws) == {"event": "e", "channel": "q", "data": "d"}


@pytest.mark.asyncio
async def test_terminate_needs_a_signature() -> None:
    async with serving() as server, client(server) as ws:
        await established(ws)
        path = "/apps/app-id/users/u/terminate_connections"
        query = {
            "auth_key": "app-key",
            "auth_timestamp": str(int(time.time())),
            "auth_version": "1.0",
            "body_md5": body_md5(b"{}"),
            "auth_signature": "0" * 64,
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{server.http_url}{path}", params=query, data=b"{}") as response,
        ):
            assert response.status == 401
        assert await api(server, "POST", path, b"{}") == (200, {})


@pytest.mark.asyncio
async def test_keep_alive() -> None:
    async with serving() as server:
        answers = await two_requests_on_one_connection(server.http_url)
        assert len(answers) == 2
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
