"""Several apps on one server (``apps.py``), over real sockets: dispatch by key and app id,
isolation, the refusals a one-app server makes for unknown ones, 4003, 4004 and the drain."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from reference_server.apps import AppsServer
from reference_server.apps_file import AppEntry

from .server_harness import (
    api,
    client,
    closed_with,
    established,
    recv,
    serving,
    silent,
    subscribe,
    trigger,
)

APPS = (
    AppEntry("app-id", "app-key", "app-secret"),
    AppEntry("other-id", "other-key", "other-secret"),
    AppEntry("off-id", "off-key", "off-secret", enabled=False),
    AppEntry("small-id", "small-key", "small-secret", max_connections=2),
)


@pytest.mark.asyncio
async def test_each_app_gets_only_its_own_events_on_a_shared_channel_name() -> None:
    async with (
        serving(apps=APPS) as server,
        client(server) as mine,
        client(server, key="other-key") as theirs,
    ):
        assert isinstance(server.server, AppsServer)
        await established(mine)
        await established(theirs)
        await subscribe(mine, "news")
        await subscribe(theirs, "news")
        body = {"name": "e", "channel": "news", "data": "for other"}
        status, _ = await trigger(
            server, body, app_id="other-id", key="other-key", secret="other-secret"
        )
        assert status == 200
        assert (await recv(theirs))["data"] == "for other"
        await silent(mine)
        status, listed = await api(server, "GET", "/apps/app-id/channels/news")
        assert (status, listed["occupied"]) == (200, True)


@pytest.mark.asyncio
async def test_unknown_key_and_app_id_are_refused_as_a_one_app_server_refuses_them() -> None:
    async with serving(apps=APPS) as server, client(server, key="nobody") as ws:
        frame = await recv(ws)
        assert (frame["event"], frame["data"]["code"]) == ("pusher:error", 4001)
        assert await closed_with(ws) == 4001
        several = await api(server, "GET", "/apps/unknown-id/channels")
    async with serving() as one:
        alone = await api(one, "GET", "/apps/unknown-id/channels")
    assert several == alone
    assert several[0] == 404


@pytest.mark.asyncio
async def test_the_server_wide_routes_are_served_once() -> None:
    async with (
        serving(apps=APPS) as server,
        aiohttp.ClientSession() as session,
        session.get(f"{server.http_url}/health") as response,
    ):
        assert (response.status, await response.json()) == (200, {"status": "ok"})


@pytest.mark.asyncio
async def test_a_disabled_app_gets_error_then_close_4003() -> None:
    async with serving(apps=APPS) as server, client(server, key="off-key") as ws:
        frame = await recv(ws)
        assert (frame["event"], frame["data"]["code"]) == ("pusher:error", 4003)
        assert await closed_with(ws) == 4003


@pytest.mark.asyncio
async def test_the_quota_refuses_the_next_connection_with_4004_until_one_closes() -> None:
    async with serving(apps=APPS) as server, client(server, key="small-key") as first:
        await established(first)
        async with client(server, key="small-key") as second:
            await established(second)
            async with client(server, key="small-key") as third:
                frame = await recv(third)
                assert (frame["event"], frame["data"]["code"]) == ("pusher:error", 4004)
                assert await closed_with(third) == 4004
            # Another app's connections do not count against this one's quota.
            async with client(server) as elsewhere:
                await established(elsewhere)
        # ``second`` is gone: its place is free again once the server released it.
        for _ in range(40):
            async with client(server, key="small-key") as again:
                frame = await recv(again)
                if frame["event"] == "pusher:connection_established":
                    return
            await asyncio.sleep(0.05)
        pytest.fail("the quota never admitted a connection after one closed")


@pytest.mark.asyncio
async def test_drain_closes_every_apps_connections_with_4200() -> None:
    async with (
        serving(apps=APPS) as server,
        client(server) as mine,
        client(server, key="other-key") as theirs,
    ):
        await established(mine)
        await established(theirs)
        await asyncio.wait_for(server.server.drain(timeout=1.0), 5)
        for ws in (mine, theirs):
            frame = await recv(ws)
            assert frame["data"]["code"] == 4200
            assert await closed_with(ws) == 4200
