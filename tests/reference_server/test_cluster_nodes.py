"""Several nodes in one process sharing a real Redis: to clients and to the HTTP API they
are one server (marker ``cluster``; the ``redis_server`` fixture starts the Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from reference_server.app import RunningServer
from reference_server.apps_file import AppEntry
from reference_server.faults import ClusterFault
from reference_server.protocol.signing import sign_user
from reference_server.redis_adapter import SYNC_WAIT

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
    webhook_receiver,
)
from .server_harness import subscribe_authorised as subscribe

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio]

#: Seconds within which cluster-wide answers (counts, rosters) must agree.
SETTLE = 2.0


@contextlib.asynccontextmanager
async def nodes(
    redis_url: str, count: int, *faulty: ClusterFault, **settings: Any
) -> AsyncIterator[list[RunningServer]]:
    """``count`` nodes on ``redis_url``; the last one gets the ``faulty`` cluster faults."""
    async with contextlib.AsyncExitStack() as stack:
        started = []
        for index in range(count):
            faults = frozenset(faulty) if index == count - 1 else frozenset()
            started.append(
                await stack.enter_async_context(
                    serving(
                        redis_url=redis_url,
                        node_id=f"node-{index}",
                        client_events=True,
                        cluster_faults=faults,
                        **settings,
                    )
                )
            )
        yield started


async def frames_until_quiet(ws: Any, quiet: float = 0.3) -> list[dict[str, Any]]:
    """Every frame until none comes for ``quiet`` seconds (bounded: 10,000 frames)."""
    received = []
    for _ in range(10_000):
        try:
            received.append(await recv(ws, timeout=quiet))
        except TimeoutError:
            break
    return received


async def eventually(check: Any, timeout: float = SETTLE) -> Any:
    """Poll the coroutine function ``check`` until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result or loop.time() > deadline:
            return result
        await asyncio.sleep(0.05)


async def test_an_event_published_on_one_node_reaches_every_node_once_in_order(
    redis_server: str,
) -> None:
    async with nodes(redis_server, 3) as (a, b, c), client(b) as on_b, client(c) as on_c:
        for ws in (on_b, on_c):
            await subscribe(ws, await established(ws), "orders")
        for number in range(200):
            status, _ = await trigger(a, {"name": "n", "channels": ["orders"], "data": str(number)})
            assert status == 200
        for ws in (on_b, on_c):
            got = [f["data"] for f in await frames_until_quiet(ws) if f["event"] == "n"]
            assert got == [str(n) for n in range(200)]


async def test_presence_is_one_roster_across_nodes(redis_server: str) -> None:
    async with nodes(redis_server, 2) as (a, b), client(a) as alice, client(b) as bob:
        alice_id, bob_id = await established(alice), await established(bob)
        await subscribe(alice, alice_id, "presence-room", '{"user_id":"alice"}')
        await asyncio.sleep(0.2)
        frame = await subscribe(bob, bob_id, "presence-room", '{"user_id":"bob"}')
        assert json.loads(frame["data"])["presence"]["ids"] == ["bob", "alice"]
        added = await recv(alice)
        assert added["event"] == "pusher_internal:member_added"
        assert json.loads(added["data"]) == {"user_id": "bob"}
        async with client(a) as alice_again:
            await subscribe(
                alice_again, await established(alice_again), "presence-room", '{"user_id":"alice"}'
            )
            await silent(bob, 0.5)  # alice's second connection: not a new member
        await silent(bob, 0.5)  # her first connection is still there
        await alice.close()
        removed = await recv(bob)
        assert removed["event"] == "pusher_internal:member_removed"
        assert json.loads(removed["data"]) == {"user_id": "alice"}


async def test_channel_queries_answer_for_the_whole_cluster(redis_server: str) -> None:
    async with nodes(redis_server, 2) as (a, b), client(a) as on_a, client(b) as on_b:
        await subscribe(on_a, await established(on_a), "news")
        await subscribe(on_b, await established(on_b), "news")

        async def counted() -> bool:
            path = "/apps/app-id/channels/news"
            status, body = await api(a, "GET", path, info="subscription_count")
            return status == 200 and body == {"occupied": True, "subscription_count": 2}

        assert await eventually(counted)
        status, listed = await api(b, "GET", "/apps/app-id/channels")
        assert (status, listed) == (200, {"channels": {"news": {}}})
        await on_a.close()

        async def one_left() -> bool:
            _, body = await api(b, "GET", "/apps/app-id/channels/news", info="subscription_count")
            return bool(body == {"occupied": True, "subscription_count": 1})

        assert await eventually(one_left)


async def test_presence_users_and_counts_agree_on_every_node(redis_server: str) -> None:
    async with nodes(redis_server, 2) as (a, b), client(a) as alice, client(b) as bob:
        await subscribe(alice, await established(alice), "presence-p", '{"user_id":"alice"}')
        await subscribe(bob, await established(bob), "presence-p", '{"user_id":"bob"}')

        async def agreed() -> bool:
            answers = []
            for node in (a, b):
                _, users = await api(node, "GET", "/apps/app-id/channels/presence-p/users")
                path = "/apps/app-id/channels/presence-p"
                _, info = await api(node, "GET", path, info="user_count")
                answers.append((sorted(u["id"] for u in users["users"]), info))
            expected = (["alice", "bob"], {"occupied": True, "user_count": 2})
            return answers == [expected, expected]

        assert await eventually(agreed)


async def test_client_events_cross_nodes(redis_server: str) -> None:
    async with nodes(redis_server, 2) as (a, b), client(a) as sender, client(b) as receiver:
        sender_id = await established(sender)
        await subscribe(receiver, await established(receiver), "private-chat")
        await subscribe(sender, sender_id, "private-chat")
        await asyncio.sleep(0.2)
        for number in range(10):  # the client-event rate limit allows 10 a second
            event = {"event": "client-typing", "channel": "private-chat", "data": {"n": number}}
            await sender.send(json.dumps(event))
        got = [f["data"] for f in await frames_until_quiet(receiver)]
        assert got == [{"n": n} for n in range(10)]
        await silent(sender)  # a sender never gets its own client event


async def signed_in(ws: Any, user_id: str) -> None:
    socket_id = await established(ws)
    user_data = json.dumps({"id": user_id})
    auth = f"app-key:{sign_user(SECRET, socket_id, user_data)}"
    data = {"auth": auth, "user_data": user_data}
    await ws.send(json.dumps({"event": "pusher:signin", "data": data}))
    assert (await recv(ws))["event"] == "pusher:signin_success"


async def test_send_to_user_and_terminate_reach_every_node(redis_server: str) -> None:
    async with nodes(redis_server, 3) as (a, b, c), client(b) as on_b, client(c) as on_c:
        await signed_in(on_b, "u1")
        await signed_in(on_c, "u1")
        body = {"name": "hi", "channel": "#server-to-user-u1", "data": "d"}
        assert await trigger(a, body) == (200, {})
        for ws in (on_b, on_c):
            assert await recv(ws) == {"event": "hi", "channel": "#server-to-user-u1", "data": "d"}
        status, _ = await api(a, "POST", "/apps/app-id/users/u1/terminate_connections", b"{}")
        assert status == 200
        for ws in (on_b, on_c):
            assert await closed_with(ws) == 4009


async def test_a_cache_channel_replays_what_another_node_published(redis_server: str) -> None:
    async with nodes(redis_server, 2) as (a, b):
        await trigger(a, {"name": "last", "channels": ["cache-news"], "data": "v1"})
        await asyncio.sleep(0.2)
        async with client(b) as late:
            await subscribe(late, await established(late), "cache-news")
            assert await recv(late) == {"event": "last", "channel": "cache-news", "data": "v1"}
        # A node that joins later still gets the cached event from the others.
        async with serving(redis_url=redis_server, node_id="late") as c, client(c) as later:
            await subscribe(later, await established(later), "cache-news")
            assert await recv(later) == {"event": "last", "channel": "cache-news", "data": "v1"}


async def test_a_node_that_joins_later_sees_the_roster(redis_server: str) -> None:
    async with nodes(redis_server, 1) as (a,), client(a) as alice:
        await subscribe(alice, await established(alice), "presence-r", '{"user_id":"alice"}')
        async with serving(redis_url=redis_server, node_id="late") as b, client(b) as bob:
            frame = await subscribe(bob, await established(bob), "presence-r", '{"user_id":"bob"}')
            assert json.loads(frame["data"])["presence"]["ids"] == ["bob", "alice"]


async def test_a_node_that_does_not_forward_is_caught(redis_server: str) -> None:
    fault = ClusterFault.CLUSTER_NO_FORWARD
    async with nodes(redis_server, 2, fault) as (good, bad), client(good) as on_good:
        await subscribe(on_good, await established(on_good), "news")
        await asyncio.sleep(0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert (await trigger(bad, {"name": "e", "channels": ["news"], "data": "x"}))[0] == 200
        assert loop.time() - started < SYNC_WAIT / 2  # its marker to itself still goes
        await silent(on_good, 0.5)


async def test_a_node_that_double_forwards_is_caught(redis_server: str) -> None:
    fault = ClusterFault.CLUSTER_DOUBLE_FORWARD
    async with nodes(redis_server, 2, fault) as (good, bad), client(good) as on_good:
        await subscribe(on_good, await established(on_good), "news")
        await asyncio.sleep(0.2)
        assert (await trigger(bad, {"name": "e", "channels": ["news"], "data": "x"}))[0] == 200
        frames = await frames_until_quiet(on_good)
        assert [f["data"] for f in frames] == ["x", "x"]


async def test_a_node_without_redis_is_not_ready_and_catches_up_after_reconnecting(
    redis_server: str,
) -> None:
    async with nodes(redis_server, 2) as (a, b), client(b) as on_b:
        await subscribe(on_b, await established(on_b), "news")
        assert (a.server.ready(), b.server.ready()) == ([], [])
        # Redis drops b's subscription: b notices, is not ready, reconnects and says Hello.
        admin = aioredis.from_url(redis_server)
        try:
            assert await admin.client_kill_filter(_type="pubsub") == 2
        finally:
            await admin.aclose()

        async def recovered() -> bool:
            return not a.server.ready() and not b.server.ready()

        assert await eventually(recovered, timeout=5)
        await asyncio.sleep(0.3)
        assert (await trigger(a, {"name": "e", "channels": ["news"], "data": "x"}))[0] == 200
        assert await recv(on_b) == {"event": "e", "channel": "news", "data": "x"}


async def test_a_node_whose_redis_is_unreachable_says_so() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # Nothing listens there once the probe is closed.
    async with serving(redis_url=f"redis://127.0.0.1:{port}/0") as lonely:
        assert lonely.server.ready() == ["redis not connected"]
        assert lonely.ready_line()["node_id"] == lonely.server.node_id


async def test_simultaneous_changes_on_two_nodes_give_one_webhook_each(redis_server: str) -> None:
    channels = [f"race-{number}" for number in range(10)]
    async with webhook_receiver() as (url, events):
        hooks = {"webhook_url": url, "webhook_delay": 0.0}
        async with nodes(redis_server, 2, **hooks) as (a, b), client(a) as on_a, client(b) as on_b:
            await established(on_a)
            await established(on_b)
            subscribes = [
                json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}})
                for channel in channels
            ]
            unsubscribes = [s.replace("pusher:subscribe", "pusher:unsubscribe") for s in subscribes]
            for batch in (subscribes, unsubscribes):
                # Both nodes change every channel at the same moment.
                await asyncio.gather(*(ws.send(text) for text in batch for ws in (on_a, on_b)))
                await asyncio.sleep(0.5)
            names = sorted((e["name"], e["channel"]) for e in events)
    assert names == sorted(
        [("channel_occupied", c) for c in channels] + [("channel_vacated", c) for c in channels]
    )


async def test_each_app_of_an_apps_file_is_its_own_cluster(redis_server: str) -> None:
    apps = (AppEntry("app-id", "app-key", "app-secret"), AppEntry("other", "other-key", "s2"))
    async with (
        nodes(redis_server, 2, apps=apps) as (a, b),
        client(b) as first,
        client(b, key="other-key") as second,
    ):
        await subscribe(first, await established(first), "news")
        await established(second)
        await second.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "news"}}))
        assert (await recv(second))["event"] == "pusher_internal:subscription_succeeded"
        assert (a.node_id, b.node_id) == ("node-0", "node-1")
        # Published to the first app on node a: only the first app's subscriber on b.
        assert (await trigger(a, {"name": "e", "channels": ["news"], "data": "x"}))[0] == 200
        assert await recv(first) == {"event": "e", "channel": "news", "data": "x"}
        await silent(second, 0.5)
