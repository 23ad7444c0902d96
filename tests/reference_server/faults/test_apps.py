"""The faults of a server with several apps, each switched on alone."""

from __future__ import annotations

import pytest

from reference_server.apps_file import AppEntry
from reference_server.faults import Fault

from ..server_harness import client, closed_with, established, recv, serving, subscribe, trigger

APPS = (
    AppEntry("app-id", "app-key", "app-secret"),
    AppEntry("other-id", "other-key", "other-secret"),
    AppEntry("off-id", "off-key", "off-secret", enabled=False),
    AppEntry("small-id", "small-key", "small-secret", max_connections=1),
)


@pytest.mark.asyncio
async def test_apps_share_channels_leaks_an_event_into_the_other_app() -> None:
    async with (
        serving(Fault.APPS_SHARE_CHANNELS, apps=APPS) as server,
        client(server) as mine,
        client(server, key="other-key") as theirs,
    ):
        await established(mine)
        await established(theirs)
        await subscribe(mine, "news")
        await subscribe(theirs, "news")
        status, _ = await trigger(server, {"name": "e", "channel": "news", "data": "x"})
        assert status == 200
        assert (await recv(mine))["data"] == "x"
        assert (await recv(theirs))["data"] == "x"


@pytest.mark.asyncio
async def test_disabled_app_accepted_greets_a_disabled_app() -> None:
    async with (
        serving(Fault.DISABLED_APP_ACCEPTED, apps=APPS) as server,
        client(server, key="off-key") as ws,
    ):
        await established(ws)


@pytest.mark.asyncio
async def test_quota_ignored_greets_past_the_quota_while_the_real_server_refuses() -> None:
    async with (
        serving(Fault.QUOTA_IGNORED, apps=APPS) as server,
        client(server, key="small-key") as first,
        client(server, key="small-key") as second,
    ):
        await established(first)
        await established(second)
    async with (
        serving(apps=APPS) as server,
        client(server, key="small-key") as first,
        client(server, key="small-key") as second,
    ):
        await established(first)
        assert (await recv(second))["data"]["code"] == 4004
        assert await closed_with(second) == 4004


@pytest.mark.asyncio
async def test_apps_share_channels_still_counts_each_apps_quota_on_its_own() -> None:
    """The fault breaks isolation alone: PROTO-CONN-11 must keep its outcome under it."""
    async with (
        serving(Fault.APPS_SHARE_CHANNELS, apps=APPS) as server,
        client(server) as elsewhere,
        client(server, key="small-key") as first,
        client(server, key="small-key") as second,
    ):
        await established(elsewhere)
        await established(first)
        assert (await recv(second))["data"]["code"] == 4004
