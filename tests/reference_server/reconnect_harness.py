"""Helpers for the reconnection tests: a presence room watched by one client that stays
alive (it answers the server's pings) while others join it, stall or vanish."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from reference_server.app import RunningServer
from reference_server.protocol.signing import sign_channel

from .raw_client import RawClient
from .server_harness import SECRET, api, established, subscribe_authorised

ROOM = "presence-room"


async def next_event(ws: ClientConnection, event: str, timeout: float) -> dict[str, Any]:
    """Read until ``event`` arrives, answering the server's pings so that ``ws`` stays alive."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), deadline - loop.time()))
        if frame["event"] == "pusher:ping":
            await ws.send('{"event":"pusher:pong","data":{}}')
        elif frame["event"] == event:
            return dict(frame)


async def no_event(ws: ClientConnection, event: str, timeout: float) -> None:
    with pytest.raises(TimeoutError):
        await next_event(ws, event, timeout)


async def watcher_in_room(server: RunningServer, ws: ClientConnection) -> None:
    socket_id = await established(ws)
    await subscribe_authorised(ws, socket_id, ROOM, json.dumps({"user_id": "watcher"}))


async def raw_join(raw: RawClient, user_id: str, channel: str = ROOM) -> None:
    channel_data = json.dumps({"user_id": user_id})
    auth = f"app-key:{sign_channel(SECRET, raw.socket_id, channel, channel_data)}"
    await raw.send_json(
        {
            "event": "pusher:subscribe",
            "data": {"channel": channel, "auth": auth, "channel_data": channel_data},
        }
    )
    frame = await raw.read_json()
    assert frame["event"] == "pusher_internal:subscription_succeeded", frame


async def users(server: RunningServer, channel: str = ROOM) -> list[str]:
    status, body = await api(server, "GET", f"/apps/app-id/channels/{channel}/users")
    assert status == 200, body
    return [user["id"] for user in body["users"]]
