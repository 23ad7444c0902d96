"""Fault switches that live in the adapter, and connection faults seen over a real socket."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from websockets.asyncio.client import connect

from reference_server.faults import Fault
from reference_server.protocol.signing import body_md5, sign_http_request

from ..server_harness import (
    TIMEOUT,
    api,
    client,
    closed_with,
    established,
    recv,
    serving,
    subscribe,
    two_requests_on_one_connection,
)


@pytest.mark.asyncio
async def test_fault_pong_as_binary_sends_a_binary_frame() -> None:
    async with serving(Fault.PONG_AS_BINARY) as server, client(server) as ws:
        await established(ws)
        await ws.send('{"event":"pusher:ping","data":{}}')
        frame = await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert frame == b'{"event":"pusher:pong","data":"{}"}'


@pytest.mark.asyncio
async def test_fault_ws_ping_ignored() -> None:
    async with serving(Fault.WS_PING_IGNORED) as server, client(server) as ws:
        await established(ws)
        pong = await ws.ping()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pong, 0.3)


@pytest.mark.asyncio
async def test_fault_no_idle_ping_still_closes_4201() -> None:
    async with (
        serving(Fault.NO_IDLE_PING, activity_timeout=0.2, pong_timeout=0.2) as server,
        client(server) as ws,
    ):
        await established(ws)
        frame = await recv(ws)
        assert frame["event"] == "pusher:error"
        assert await closed_with(ws) == 4201


@pytest.mark.asyncio
async def test_fault_no_keep_alive() -> None:
    async with serving(Fault.NO_KEEP_ALIVE) as server:
        answers = await two_requests_on_one_connection(server.http_url)
        assert len(answers) == 1
        assert b"connection: close" in answers[0].lower()


async def unsigned_terminate(http_url: str) -> int:
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
        session.post(f"{http_url}{path}", params=query, data=b"{}") as response,
    ):
        return response.status


@pytest.mark.asyncio
async def test_fault_terminate_unauthenticated() -> None:
    async with serving(Fault.TERMINATE_UNAUTHENTICATED) as server:
        assert await unsigned_terminate(server.http_url) == 200
        status, _ = await api(server, "POST", "/apps/other/users/u/terminate_connections", b"{}")
        assert status == 404


@pytest.mark.asyncio
async def test_fault_malformed_sender_address_blocked() -> None:
    async with serving(Fault.MALFORMED_SENDER_ADDRESS_BLOCKED) as server:
        async with client(server) as ws:
            await established(ws)
            async with client(server) as good:
                await established(good)
            await ws.send("not json")
            assert (await recv(ws))["event"] == "pusher:error"
            with pytest.raises(Exception, match="403"):
                async with client(server):
                    pass
        # Once the offender has gone, the address may connect again.
        await asyncio.sleep(0.1)
        async with client(server) as again:
            await established(again)


@pytest.mark.asyncio
async def test_fault_wrong_content_type_desync() -> None:
    async with serving(Fault.WRONG_CONTENT_TYPE_DESYNC) as server, client(server) as ws:
        await established(ws)
        await subscribe(ws, "c")
        body = json.dumps({"name": "e", "channel": "c", "data": "d"}).encode()
        path = "/apps/app-id/events"

        def signed_query() -> dict[str, str]:
            query = {
                "auth_key": "app-key",
                "auth_timestamp": str(int(time.time())),
                "auth_version": "1.0",
                "body_md5": body_md5(body),
            }
            query["auth_signature"] = sign_http_request("app-secret", "POST", path, query.items())
            return query

        async with aiohttp.ClientSession() as session:
            plain = {"Content-Type": "text/plain"}
            json_type = {"Content-Type": "application/json"}
            for headers in (plain, json_type, json_type):
                async with session.post(
                    f"{server.http_url}{path}", params=signed_query(), data=body, headers=headers
                ) as response:
                    assert response.status == 200
        # The first (text/plain) and third arrive; the second was answered but lost.
        assert (await recv(ws))["event"] == "e"
        assert (await recv(ws))["event"] == "e"
        with pytest.raises(TimeoutError):
            await recv(ws, timeout=0.3)


@pytest.mark.asyncio
async def test_fault_any_path_upgrades() -> None:
    async with serving(Fault.ANY_PATH_UPGRADES) as server:
        async with connect(f"{server.ws_url}/apps/app-key?protocol=7") as ws:
            await established(ws)
        async with connect(f"{server.ws_url}/nope?protocol=7") as ws:
            assert (await recv(ws))["data"]["code"] == 4001  # "nope" taken as the key
        # Plain HTTP on an unknown path is still a 404.
        assert (await api(server, "GET", "/nowhere"))[0] == 404
