"""The raw client against tiny scripted WebSocket servers: what it records for each way a server
can answer, close or misbehave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from conformance.errors import CheckFailed, TargetError
from conformance.transcript import Transcript
from conformance.wsclient import NOT_JSON, RawConnection

Handler = Callable[[ServerConnection], Awaitable[None]]


async def _url_of(handler: Handler, **kwargs: object) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, **kwargs) as server:  # type: ignore[arg-type]
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/app/k"


async def _open(
    handler: Handler, auto_pong: bool = True, **kwargs: object
) -> tuple[RawConnection, Transcript, AsyncIterator[str]]:
    transcript = Transcript("T-01/x")
    urls = _url_of(handler, **kwargs)
    url = await anext(urls)
    conn = await RawConnection.open("c1", url, transcript, auto_pong=auto_pong, timeout=2)
    return conn, transcript, urls


@pytest.mark.asyncio
async def test_frames_are_logged_parsed_and_consumed_in_order() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send('{"event":"a","data":"1"}')
        await ws.send("not json")
        await ws.send(b"\x00\x01")
        await ws.send('{"event":"b"}')
        await ws.wait_closed()

    conn, transcript, urls = await _open(handler)
    frame = await conn.wait_for(lambda f: f.event == "b", 2)
    assert frame is not None
    assert frame.index == 3
    assert [f.parsed for f in conn.frames][1:3] == [NOT_JSON, NOT_JSON]
    assert conn.frames[2].binary
    assert await conn.wait_for(lambda f: f.event == "a", 2, next_only=True) is not None
    assert await conn.wait_for(lambda f: f.event == "zzz", 0.2) is None
    kinds = [e["kind"] for e in transcript.entries]
    assert kinds[:2] == ["ws_connect", "ws_open"]
    assert "ws_recv_binary" in kinds
    await conn.close()
    await urls.aclose()


@pytest.mark.asyncio
async def test_close_code_and_tcp_drop_are_told_apart() -> None:
    async def closes(ws: ServerConnection) -> None:
        await ws.close(4001, "no such app")

    conn, _, urls = await _open(closes)
    closed = await conn.wait_closed(2)
    assert closed is not None
    assert (closed.code, closed.clean) == (4001, True)
    with pytest.raises(CheckFailed, match="closed with code 4001"):
        await conn.send_json({"event": "x"})
    await urls.aclose()

    async def drops(ws: ServerConnection) -> None:
        ws.transport.abort()

    conn, _, urls = await _open(drops)
    closed = await conn.wait_closed(2)
    assert closed is not None
    assert (closed.code, closed.clean) == (1006, False)
    assert "without a close frame" in closed.describe()
    await urls.aclose()


@pytest.mark.asyncio
async def test_auto_pong_answers_server_pings() -> None:
    received: list[str | bytes] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send('{"event":"pusher:ping","data":"{}"}')
        received.append(await ws.recv())
        await ws.wait_closed()

    conn, _, urls = await _open(handler)
    for _ in range(50):
        if received:
            break
        await asyncio.sleep(0.02)
    assert received == ['{"event": "pusher:pong", "data": {}}']
    await conn.close()
    await urls.aclose()


@pytest.mark.asyncio
async def test_a_refused_upgrade_is_recorded_not_raised() -> None:
    def refuse(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(404, "nope\n")

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    conn, transcript, urls = await _open(handler, process_request=refuse)
    assert conn.closed is not None
    assert conn.closed.rejected_status == 404
    assert "HTTP 404" in conn.closed.describe()
    assert transcript.entries[-1]["kind"] == "ws_rejected"
    await urls.aclose()


@pytest.mark.asyncio
async def test_nothing_listening_is_a_target_error() -> None:
    with pytest.raises(TargetError, match="could not open a WebSocket"):
        await RawConnection.open(
            "c1", "ws://127.0.0.1:9/app/k", Transcript("x"), auto_pong=True, timeout=2
        )


def test_frame_data_decodes_double_encoding() -> None:
    from conformance.wsclient import Frame

    def frame(data: object) -> Frame:
        return Frame(0, 0.0, False, "", {"event": "e", "data": data})

    assert frame('{"code":4301}').data_field("code") == 4301
    assert frame({"code": 4301}).data_field("code") == 4301
    assert frame("[1]").data_field("code") is None
    assert frame("not json").data() is None
    assert frame(None).data_field("code") is None


@pytest.mark.asyncio
async def test_keep_alive_consumes_its_pong_and_any_stale_one() -> None:
    async def answers_pings(ws: ServerConnection) -> None:
        await ws.send('{"event":"pusher:pong","data":{}}')  # stale: nobody asked for it
        async for message in ws:
            if "pusher:ping" in str(message):
                await ws.send('{"event":"news","data":"x"}')
                await ws.send('{"event":"pusher:pong","data":{}}')

    conn, transcript, urls = await _open(answers_pings)
    assert await conn.wait_until(lambda: len(conn.frames) == 1, 2)
    before = conn.last_sent
    assert await conn.keep_alive(2)
    assert conn.last_sent > before
    assert [f.event for f in conn.unconsumed()] == ["news"]
    assert any(e.get("auto") and "pusher:ping" in e.get("text", "") for e in transcript.entries)
    await conn.close()
    assert not await conn.keep_alive(2)
    await urls.aclose()


@pytest.mark.asyncio
async def test_keep_alive_reports_a_ping_nobody_answers() -> None:
    async def mute(ws: ServerConnection) -> None:
        await ws.wait_closed()

    conn, _, urls = await _open(mute)
    assert not await conn.keep_alive(0.3)
    await conn.close()
    await urls.aclose()
