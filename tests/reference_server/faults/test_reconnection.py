"""The reconnection fault switches: each changes its one behaviour, and the clean server (or
connection) does not. Protocol-level where the rule lives in the connection, over real
sockets where only the endpoint can tell how a connection ended."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from reference_server.faults import Fault
from reference_server.protocol import frames
from reference_server.protocol.connection import Close, SendText
from reference_server.protocol.signing import sign_channel

from ..harness import ACTIVITY, KEY, PONG, App, join, opened, sent, subscribe
from ..raw_client import raw_client, upgrade
from ..reconnect_harness import ROOM, next_event, no_event, raw_join, users, watcher_in_room
from ..server_harness import (
    SECRET,
    client,
    established,
    recv,
    serving,
    subscribe_authorised,
    trigger,
)
from ..test_webhook_sender import Receiver, receiving

# Protocol level.


@pytest.mark.parametrize("faulty", [False, True])
def test_fault_close_without_reason(faulty: bool) -> None:
    connection = opened([Fault.CLOSE_WITHOUT_REASON] if faulty else [])
    connection.receive_binary(b"x", 1.0)
    [close] = connection.data_to_send()
    assert isinstance(close, Close)
    assert close.code == 1003
    assert (close.reason == "") is faulty


@pytest.mark.parametrize(("faulty", "code"), [(False, 4201), (True, 4009)])
def test_fault_pong_timeout_closes_4009(faulty: bool, code: int) -> None:
    connection = opened([Fault.PONG_TIMEOUT_CLOSES_4009] if faulty else [])
    connection.tick(ACTIVITY)
    assert connection.data_to_send() == [SendText(frames.PING)]
    connection.tick(ACTIVITY + PONG)
    error, close = connection.data_to_send()
    assert isinstance(error, SendText)
    assert json.loads(error.text)["data"]["code"] == code
    assert isinstance(close, Close)
    assert close.code == code


@pytest.mark.parametrize(("faulty", "code"), [(False, None), (True, 4200)])
def test_fault_nonclosing_error_code_4200(faulty: bool, code: int | None) -> None:
    connection = opened([Fault.NONCLOSING_ERROR_CODE_4200] if faulty else [])
    for text in ("not json", '{"event":"pusher:nonsense","data":{}}'):
        connection.receive_text(text, 1.0)
        [error] = sent(connection)
        assert error["event"] == "pusher:error"
        assert error["data"]["code"] == code
    # The errors that other rules pin keep code null, and nothing closed.
    subscribe(connection, "a")
    [duplicate] = subscribe(connection, "a")
    assert duplicate["data"]["code"] is None
    assert connection.close_code is None


@pytest.mark.parametrize(("faulty", "advertised"), [(False, 120), (True, 0)])
def test_fault_activity_timeout_zero(faulty: bool, advertised: int) -> None:
    connection = App([Fault.ACTIVITY_TIMEOUT_ZERO] if faulty else []).new()
    connection.open(KEY, 0.0)
    [frame] = sent(connection)
    assert json.loads(frame["data"])["activity_timeout"] == advertised
    assert connection.next_deadline() == ACTIVITY  # The server's own timer is unchanged.


def test_fault_dead_link_not_detected() -> None:
    connection = opened([Fault.DEAD_LINK_NOT_DETECTED])
    for round_ in range(1, 4):
        connection.tick(round_ * ACTIVITY)
        assert connection.data_to_send() == [SendText(frames.PING)]
        assert connection.next_deadline() == (round_ + 1) * ACTIVITY
        connection.tick(round_ * ACTIVITY + PONG)
        assert connection.data_to_send() == []
    clean = opened()
    clean.tick(ACTIVITY)
    clean.tick(ACTIVITY + PONG)
    assert clean.data_to_send()[-1] == Close(4201, "Pong reply not received")


@pytest.mark.parametrize("faulty", [False, True])
def test_fault_presence_kept_after_dead_link(faulty: bool) -> None:
    app = App([Fault.PRESENCE_KEPT_AFTER_DEAD_LINK] if faulty else [])
    ghost, watcher = app.connect(), app.connect()
    join(ghost, ROOM, "ghost")
    subscribe(ghost, "news")
    join(watcher, ROOM, "watcher")
    watcher.deliveries_to_send()
    ghost.deliveries_to_send()
    ghost.tick(1 + ACTIVITY)  # Quiet since the last subscribe, at 1.0.
    ghost.tick(1 + ACTIVITY + PONG)
    assert ghost.close_code == 4201
    removed = [d for d in ghost.deliveries_to_send() if "member_removed" in d.text]
    members = app.registry.presence.get(ROOM).members
    assert ("ghost" in members) is faulty
    assert (removed == []) is faulty
    # Its subscriptions are dropped either way.
    assert app.registry.subscribers("news") == []
    assert ghost.socket_id not in app.registry.subscribers(ROOM)


def test_fault_presence_kept_after_dead_link_only_for_dead_links() -> None:
    app = App([Fault.PRESENCE_KEPT_AFTER_DEAD_LINK])
    leaver = app.connect()
    join(leaver, ROOM, "leaver")
    leaver.receive_eof()
    assert "leaver" not in app.registry.presence.get(ROOM).members


@pytest.mark.parametrize("faulty", [False, True])
def test_fault_only_pong_counts_as_life(faulty: bool) -> None:
    connection = opened([Fault.ONLY_PONG_COUNTS_AS_LIFE] if faulty else [])
    sent(connection)
    # The client talks every second and never answers: only the faulty server pings it.
    for second in range(1, int(ACTIVITY) + 2):
        connection.receive_text('{"event":"pusher:ping","data":{}}', float(second))
        connection.tick(float(second))
    events = [f["event"] for f in sent(connection)]
    assert ("pusher:ping" in events) is faulty


# Over real sockets.


@pytest.mark.asyncio
async def test_fault_close_without_reason_covers_aiohttp_closes() -> None:
    async with serving(Fault.CLOSE_WITHOUT_REASON) as server:
        raw = await raw_client(server)
        await raw.send_text("{}", first_byte=0xC1)  # RSV1 without an extension: 1002
        assert await raw.read_close() == (1002, "")
        raw.drop()


@pytest.mark.asyncio
@pytest.mark.parametrize(("faulty", "times"), [(False, 1), (True, 2)])
async def test_fault_cleanup_twice_on_abrupt_close(faulty: bool, times: int) -> None:
    faults = [Fault.CLEANUP_TWICE_ON_ABRUPT_CLOSE] if faulty else []
    async with serving(*faults) as server, client(server) as watcher:
        await watcher_in_room(server, watcher)
        leaver = await raw_client(server)
        await raw_join(leaver, "leaver")
        leaver.drop()
        for _ in range(times):
            await next_event(watcher, "pusher_internal:member_removed", 1.0)
        await no_event(watcher, "pusher_internal:member_removed", 0.5)


@pytest.mark.asyncio
async def test_fault_cleanup_twice_not_on_a_close_frame() -> None:
    async with serving(Fault.CLEANUP_TWICE_ON_ABRUPT_CLOSE) as server, client(server) as watcher:
        await watcher_in_room(server, watcher)
        async with client(server) as leaver:
            socket_id = await established(leaver)
            await subscribe_member(leaver, socket_id, "leaver")
        await next_event(watcher, "pusher_internal:member_removed", 1.0)
        await no_event(watcher, "pusher_internal:member_removed", 0.5)


async def subscribe_member(ws: ClientConnection, socket_id: str, user_id: str) -> None:
    await subscribe_authorised(ws, socket_id, ROOM, json.dumps({"user_id": user_id}))


async def read_until_closed(ws: ClientConnection) -> None:
    while True:
        await recv(ws)


@pytest.mark.asyncio
@pytest.mark.parametrize("faulty", [False, True])
async def test_fault_abrupt_close_drops_user(faulty: bool) -> None:
    faults = [Fault.ABRUPT_CLOSE_DROPS_USER] if faulty else []
    async with serving(*faults) as server, client(server) as watcher:
        await watcher_in_room(server, watcher)
        async with client(server) as second_tab:
            await subscribe_member(second_tab, await established(second_tab), "u")
            first_tab = await raw_client(server)
            await raw_join(first_tab, "u")
            first_tab.drop()
            if faulty:
                await next_event(watcher, "pusher_internal:member_removed", 1.0)
            else:
                await no_event(watcher, "pusher_internal:member_removed", 0.5)
            assert ("u" in await users(server)) is not faulty


@pytest.mark.asyncio
@pytest.mark.parametrize("faulty", [False, True])
async def test_fault_dropped_connection_resumed(faulty: bool) -> None:
    async with serving(*([Fault.DROPPED_CONNECTION_RESUMED] if faulty else [])) as server:
        dropped = await raw_client(server)
        for channel in ("news", "sport"):
            await dropped.send_json({"event": "pusher:subscribe", "data": {"channel": channel}})
            await dropped.read_json()
        dropped.drop()
        await asyncio.sleep(0.2)
        async with client(server) as bystander:
            await established(bystander)  # a connection that joins nothing claims nothing
            async with client(server) as ws:
                await established(ws)
                await ws.send(
                    json.dumps({"event": "pusher:subscribe", "data": {"channel": "news"}})
                )
                assert (await recv(ws))["event"] == "pusher_internal:subscription_succeeded"
                assert await trigger(server, {"name": "e", "channel": "sport", "data": "x"}) == (
                    200,
                    {},
                )
                if faulty:
                    assert (await recv(ws))["channel"] == "sport"
                else:
                    with pytest.raises(TimeoutError):
                        await recv(ws, timeout=0.3)
                with pytest.raises(TimeoutError):
                    await recv(bystander, timeout=0.1)


@pytest.mark.asyncio
@pytest.mark.parametrize(("faulty", "copies"), [(False, 1), (True, 2)])
async def test_fault_resubscriber_gets_events_twice(faulty: bool, copies: int) -> None:
    async with serving(*([Fault.RESUBSCRIBER_GETS_EVENTS_TWICE] if faulty else [])) as server:
        dropped = await raw_client(server)
        await dropped.send_json({"event": "pusher:subscribe", "data": {"channel": "news"}})
        await dropped.read_json()
        dropped.drop()
        await asyncio.sleep(0.2)
        async with client(server) as ws:
            await established(ws)
            await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "news"}}))
            assert (await recv(ws))["event"] == "pusher_internal:subscription_succeeded"
            assert await trigger(server, {"name": "e", "channel": "news", "data": "x"}) == (200, {})
            for _ in range(copies):
                assert (await recv(ws))["event"] == "e"
            with pytest.raises(TimeoutError):
                await recv(ws, timeout=0.3)


@pytest.mark.asyncio
@pytest.mark.parametrize("faulty", [False, True])
async def test_fault_auth_for_recent_socket_id_accepted(faulty: bool) -> None:
    faults = [Fault.AUTH_FOR_RECENT_SOCKET_ID_ACCEPTED] if faulty else []
    async with serving(*faults) as server:
        async with client(server) as gone:
            old_id = await established(gone)
        await asyncio.sleep(0.2)
        async with client(server) as ws:
            await established(ws)
            auth = f"{KEY}:{sign_channel(SECRET, old_id, 'private-x')}"
            subscribe_frame = {"channel": "private-x", "auth": auth}
            await ws.send(json.dumps({"event": "pusher:subscribe", "data": subscribe_frame}))
            answer = (await recv(ws))["event"]
            expected = "pusher_internal:subscription_succeeded" if faulty else "pusher:error"
            assert answer == expected


@pytest.mark.asyncio
@pytest.mark.parametrize("faulty", [False, True])
async def test_fault_webhook_grace_ignored_on_abrupt_close(faulty: bool) -> None:
    faults = [Fault.WEBHOOK_GRACE_IGNORED_ON_ABRUPT_CLOSE] if faulty else []
    async with (
        receiving(Receiver()) as receiver,
        serving(*faults, webhook_url=receiver.url, webhook_delay=1.0) as server,
    ):
        dropped = await raw_client(server)
        await dropped.send_json({"event": "pusher:subscribe", "data": {"channel": "news"}})
        await dropped.read_json()
        await receiver.next(1)  # channel_occupied
        dropped.drop()
        await asyncio.sleep(0.5)
        names = [json.loads(body)["events"][0]["name"] for _, body in receiver.requests]
        assert names == (
            ["channel_occupied", "channel_vacated"] if faulty else ["channel_occupied"]
        )


@pytest.mark.asyncio
@pytest.mark.parametrize("faulty", [False, True])
async def test_fault_shutdown_drops_tcp(faulty: bool) -> None:
    faults = [Fault.SHUTDOWN_DROPS_TCP] if faulty else []
    async with serving(*faults) as server, client(server) as ws:
        await established(ws)
        drain = asyncio.create_task(server.server.drain(timeout=1.0))
        with pytest.raises(ConnectionClosed) as closed:
            await read_until_closed(ws)
        await asyncio.wait_for(drain, 2.0)
    rcvd = closed.value.rcvd
    assert (rcvd is None) is faulty
    if not faulty:
        assert rcvd is not None
        assert rcvd.code == 4200


@pytest.mark.asyncio
@pytest.mark.parametrize(("faulty", "status"), [(False, 503), (True, 101)])
async def test_fault_shutdown_accepts_new_handshakes(faulty: bool, status: int) -> None:
    faults = [Fault.SHUTDOWN_ACCEPTS_NEW_HANDSHAKES] if faulty else []
    async with serving(*faults) as server:
        stalled = await raw_client(server)  # Holds the drain open until its timeout.
        drain = asyncio.create_task(server.server.drain(timeout=1.0))
        await stalled.read_close()
        answer, head, late = await upgrade(server)
        assert answer == status, head
        if faulty:
            greeting = await late.read_json()
            assert greeting["event"] == "pusher:connection_established"
        late.drop()
        await asyncio.wait_for(drain, 2.0)
