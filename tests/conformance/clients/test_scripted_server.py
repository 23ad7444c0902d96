"""The scripted server on real sockets: the greeting, the scripted actions (refuse, drop,
close with a code, withhold pongs) and the auth endpoints, each in the timeline."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conformance.clients.protocol import channel_auth
from conformance.clients.runner import Tls, make_tls
from conformance.clients.scripted_server import ScriptedServer
from conformance.clients.timeline import Timeline, kind_is


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("ca"))


def test_greeting_refusal_close_and_drop(tls: Tls) -> None:
    async def scenario() -> Timeline:
        timeline = Timeline("t")
        server = ScriptedServer(timeline, tls=tls.server_context)
        server.script.activity_timeout = 3
        server.script.refuse_handshakes = 1
        await server.start()
        url = f"ws://127.0.0.1:{server.ws_port}/app/{server.app.key}?protocol=7"
        try:
            with pytest.raises(InvalidStatus):
                await connect(url)
            async with connect(url) as ws:
                greeting = json.loads(await ws.recv())
                assert greeting["event"] == "pusher:connection_established"
                assert json.loads(greeting["data"])["activity_timeout"] == 3
                await server.links[0].close(4009, "go away")
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                assert ws.close_code == 4009
            context = ssl.create_default_context(cafile=str(tls.ca_file))
            wss = f"wss://127.0.0.1:{server.wss_port}/app/{server.app.key}"
            async with connect(wss, ssl=context) as ws:
                await ws.recv()
                server.links[1].drop()
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                assert ws.close_code == 1006
        finally:
            await server.stop()
        return timeline

    timeline = asyncio.run(scenario())
    shakes = timeline.find_all(kind_is("handshake"))
    assert [(s["tls"], s["refused"]) for s in shakes] == [
        (False, True),
        (False, False),
        (True, False),
    ]
    assert shakes[1]["query"] == {"protocol": "7"}
    assert timeline.find(kind_is("server_close", conn="c1", code=4009)) is not None
    assert timeline.find(kind_is("server_drop", conn="c2")) is not None


def test_withheld_pongs_and_auth_endpoints(tls: Tls) -> None:
    async def scenario() -> Timeline:
        timeline = Timeline("t")
        server = ScriptedServer(timeline, tls=tls.server_context)
        server.script.answer_pings = False
        await server.start()
        url = f"ws://127.0.0.1:{server.ws_port}/app/{server.app.key}"
        try:
            async with connect(url, ping_interval=None) as ws:
                socket_id = json.loads(json.loads(await ws.recv())["data"])["socket_id"]
                await ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
                waiter = await ws.ping()
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.3)
                assert not waiter.done()
                async with aiohttp.ClientSession() as http:
                    form = {"socket_id": socket_id, "channel_name": "private-a"}
                    async with http.post(server.channel_auth_endpoint, data=form) as response:
                        answer = await response.json()
                assert answer == {"auth": channel_auth(server.app, socket_id, "private-a")}
                subscribe = {"channel": "private-a", "auth": answer["auth"]}
                await ws.send(json.dumps({"event": "pusher:subscribe", "data": subscribe}))
                reply = json.loads(await ws.recv())
                assert reply["event"] == "pusher_internal:subscription_succeeded"
        finally:
            await server.stop()
        return timeline

    timeline = asyncio.run(scenario())
    assert timeline.find(kind_is("recv", action="ping", answered=False)) is not None
    assert timeline.find(kind_is("recv_ws_ping")) is not None
    request = timeline.find(kind_is("http", endpoint="channel_auth"))
    assert request is not None
    assert request["content_type"] == "application/x-www-form-urlencoded"
    assert timeline.find(kind_is("recv", action="subscribe", auth_valid=True)) is not None


def test_frames_sent_before_a_delayed_greeting_are_recorded_when_they_come(tls: Tls) -> None:
    """CLIENT-CONN-02 judges a subscribe against the greeting: the server must read the
    client's frames while it holds connection_established back, not after."""

    async def scenario() -> Timeline:
        timeline = Timeline("t")
        server = ScriptedServer(timeline, tls=tls.server_context)
        server.script.establish_delay = 0.5
        await server.start()
        url = f"ws://127.0.0.1:{server.ws_port}/app/{server.app.key}"
        try:
            async with connect(url) as ws:
                await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "a"}}))
                events = [json.loads(await ws.recv())["event"] for _ in range(2)]
                assert "pusher:connection_established" in events
        finally:
            await server.stop()
        return timeline

    timeline = asyncio.run(scenario())
    sub = timeline.find(kind_is("recv", action="subscribe"))
    greeting = timeline.find(
        lambda e: e.get("kind") == "send" and "connection_established" in str(e.get("text"))
    )
    assert sub is not None
    assert greeting is not None
    assert sub["t"] < greeting["t"] - 0.3


def test_ca_file_is_pem(tls: Tls) -> None:
    assert Path(tls.ca_file).read_text().startswith("-----BEGIN CERTIFICATE-----")
