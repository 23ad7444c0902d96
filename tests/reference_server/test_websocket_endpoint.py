"""The adapter end to end: presence, cache, sign-in, client events, terminate, GET endpoints."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from reference_server.protocol.signing import sign_user

from .server_harness import (
    SECRET,
    api,
    client,
    closed_with,
    established,
    recv,
    serving,
    silent,
    trigger,
)
from .server_harness import subscribe_authorised as subscribe


@pytest.mark.asyncio
async def test_presence_two_users_two_connections_each() -> None:
    async with (
        serving() as server,
        client(server) as a1,
        client(server) as a2,
        client(server) as b1,
        client(server) as b2,
    ):
        ids = [await established(ws) for ws in (a1, a2, b1, b2)]
        alice = '{"user_id":"alice","user_info":{"name":"A"}}'
        bob = '{"user_id":"bob"}'
        await subscribe(a1, ids[0], "presence-r", alice)
        await subscribe(a2, ids[1], "presence-r", alice)
        frame = await subscribe(b1, ids[2], "presence-r", bob)
        assert json.loads(frame["data"])["presence"] == {
            "ids": ["alice", "bob"],
            "hash": {"alice": {"name": "A"}, "bob": None},
            "count": 2,
        }
        for ws in (a1, a2):
            added = await recv(ws)
            assert added["event"] == "pusher_internal:member_added"
            assert json.loads(added["data"]) == {"user_id": "bob"}
        await subscribe(b2, ids[3], "presence-r", bob)
        await silent(a1)  # Bob's second connection adds no member.

        status, body = await api(server, "GET", "/apps/app-id/channels/presence-r/users")
        assert (status, body) == (200, {"users": [{"id": "alice"}, {"id": "bob"}]})
        status, body = await api(
            server, "GET", "/apps/app-id/channels/presence-r", info="user_count"
        )
        assert (status, body) == (200, {"occupied": True, "user_count": 2})

        await b1.close()
        await silent(a1)
        await b2.send('{"event":"pusher:unsubscribe","data":{"channel":"presence-r"}}')
        removed = await recv(a1)
        assert removed["event"] == "pusher_internal:member_removed"
        assert json.loads(removed["data"]) == {"user_id": "bob"}


@pytest.mark.asyncio
async def test_cache_replay_and_miss() -> None:
    async with serving() as server, client(server) as ws:
        socket_id = await established(ws)
        await subscribe(ws, socket_id, "cache-a")
        assert await recv(ws) == {"event": "pusher:cache_miss", "channel": "cache-a"}
        # Cached although nobody is subscribed to it.
        assert await trigger(server, {"name": "e", "channel": "cache-b", "data": "x"}) == (200, {})
        await subscribe(ws, socket_id, "cache-b")
        assert await recv(ws) == {"event": "e", "channel": "cache-b", "data": "x"}


@pytest.mark.asyncio
async def test_signin_server_to_user_and_terminate() -> None:
    async with (
        serving() as server,
        client(server) as a,
        client(server) as b,
        client(server) as other,
    ):
        for ws in (a, b):
            socket_id = await established(ws)
            user_data = '{"id":"u1"}'
            auth = f"app-key:{sign_user(SECRET, socket_id, user_data)}"
            await ws.send(
                json.dumps(
                    {"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}
                )
            )
            assert await recv(ws) == {
                "event": "pusher:signin_success",
                "data": {"user_data": user_data},
            }
        await established(other)
        body = {"name": "hi", "channel": "#server-to-user-u1", "data": "d"}
        assert await trigger(server, body) == (200, {})
        for ws in (a, b):
            assert await recv(ws) == {"event": "hi", "channel": "#server-to-user-u1", "data": "d"}
        await silent(other)

        status, reply = await api(server, "POST", "/apps/app-id/users/u1/terminate_connections")
        assert (status, reply) == (200, {})
        for ws in (a, b):
            frame = await recv(ws)
            assert frame["event"] == "pusher:error"
            assert frame["data"]["code"] == 4009
            assert await closed_with(ws) == 4009
        await other.send('{"event":"pusher:ping"}')
        assert (await recv(other))["event"] == "pusher:pong"


@pytest.mark.asyncio
async def test_client_events_and_rate_limit() -> None:
    async with (
        serving(client_events=True) as server,
        client(server) as a,
        client(server) as b,
    ):
        ids = [await established(ws) for ws in (a, b)]
        for ws, socket_id in zip((a, b), ids, strict=True):
            await subscribe(ws, socket_id, "private-r")
        event = {"event": "client-x", "channel": "private-r", "data": {"n": 1}}
        await a.send(json.dumps(event))
        assert await recv(b) == event
        await silent(a)  # No echo.
        for _ in range(12):
            await a.send(json.dumps(event))
        errors = [await recv(a) for _ in range(2)]
        assert [e["data"]["code"] for e in errors] == [4301, 4301]
        received = [await recv(b) for _ in range(9)]
        assert all(frame == event for frame in received)
        await silent(b)
        assert a.close_code is None


@pytest.mark.asyncio
async def test_client_events_off_by_default() -> None:
    async with serving() as server, client(server) as a:
        socket_id = await established(a)
        await subscribe(a, socket_id, "private-r")
        await a.send('{"event":"client-x","channel":"private-r","data":{}}')
        frame = await recv(a)
        assert (frame["event"], frame["data"]["code"]) == ("pusher:error", None)


@pytest.mark.asyncio
async def test_channel_endpoint_and_errors() -> None:
    async with serving() as server, client(server) as ws:
        socket_id = await established(ws)
        await subscribe(ws, socket_id, "room")
        path = "/apps/app-id/channels/room"
        assert await api(server, "GET", path, info="subscription_count") == (
            200,
            {"occupied": True, "subscription_count": 1},
        )
        assert (await api(server, "GET", path, info="user_count"))[0] == 400
        assert (await api(server, "GET", f"{path}/users"))[0] == 400
        assert (await api(server, "GET", "/apps/nope/channels/room"))[0] == 404
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{server.http_url}{path}") as response,
        ):
            assert response.status == 401


@pytest.mark.asyncio
async def test_fan_out_member_removed_on_disconnect() -> None:
    async with serving() as server, client(server) as a:
        id_a = await established(a)
        await subscribe(a, id_a, "presence-r", '{"user_id":"a"}')
        async with client(server) as b:
            id_b = await established(b)
            await subscribe(b, id_b, "presence-r", '{"user_id":"b"}')
            assert (await recv(a))["event"] == "pusher_internal:member_added"
        frame = await asyncio.wait_for(recv(a), 2)
        assert frame["event"] == "pusher_internal:member_removed"


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/apps/app-key", "/app/", "/nope/app-key", "/app/app-key/x"])
async def test_an_upgrade_on_another_path_is_refused_with_404(path: str) -> None:
    async with serving() as server:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{server.ws_url}{path}?protocol=7"):
                pass
        assert refused.value.response.status_code == 404


@pytest.mark.asyncio
async def test_protocol_2_is_closed_4007_and_protocol_5_hears_the_error_first() -> None:
    async with serving() as server:
        async with connect(f"{server.ws_url}/app/app-key?protocol=2") as ws:
            frame = await recv(ws)
            assert (frame["event"], frame["data"]["code"]) == ("pusher:error", 4007)
            assert await closed_with(ws) == 4007
        async with connect(f"{server.ws_url}/app/nope?protocol=5") as ws:
            frame = await recv(ws)
            assert (frame["event"], frame["data"]["code"]) == ("pusher:error", 4001)
            assert await closed_with(ws) == 4001
