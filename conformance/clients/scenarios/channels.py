"""Channels from the client's side: the handshake it opens, the auth requests it makes and what
it sends with their answers, what it resubscribes (and re-signs) after a reconnection, the
presence roster it rebuilds, and the client events it puts on the wire.

A reconnection is always caused the same way (a 4200 close, or a TCP drop), and what the client
does on the *new* connection is judged from the server's side of it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from ...errors import PreconditionFailed
from ..kit import Kit, ensure, report_is
from ..protocol import channel_auth, channel_event, member_added
from ..scripted_server import Link
from ..timeline import Entry, kind_is
from .registry import scenario

SETTLE_S = 3.0


def _needs_for(kit: Kit, channels: list[str]) -> None:
    if any(c.startswith("private-") for c in channels):
        kit.need("private")
    if any(c.startswith("presence-") for c in channels):
        kit.need("presence")


async def subscribe(kit: Kit, channel: str) -> Entry:
    """Subscribe and wait for the driver's ``subscribed`` report (a precondition)."""
    since = kit.timeline.mark()
    await kit.command("subscribe", channel=channel)
    return await kit.expect(
        report_is("subscribed", channel=channel),
        SETTLE_S,
        since,
        f"the client never reported {channel} subscribed",
        precondition=True,
    )


async def reconnect(kit: Kit, link: Link, how: str = "close") -> tuple[Link, int]:
    """End ``link`` (4200 close or TCP drop); the client's next connection, once connected,
    and the timeline index from which it is judged."""
    since = kit.timeline.mark()
    if how == "drop":
        link.drop()
    else:
        await link.close(4200, "scripted reconnect")
    again = await kit.next_link(since, 6.0)
    if again is None:
        raise PreconditionFailed("the client did not reconnect (see the close-code requirements)")
    await kit.expect(
        report_is("state", current="connected"),
        6.0,
        since,
        "the client did not report connected again",
        precondition=True,
    )
    return again, since


@scenario("handshake_identifies", budget_s=10.0)
async def handshake_identifies(kit: Kit, params: Mapping[str, Any]) -> None:
    await kit.connect()
    shake = kit.handshakes()[0]
    query = shake.get("query") or {}
    kit.summary(
        "handshake",
        path=shake.get("path"),
        protocol=query.get("protocol"),
        client=query.get("client"),
        version=query.get("version"),
    )
    ensure(
        shake.get("path") == f"/app/{kit.server.app.key}",
        f"the handshake path is {shake.get('path')!r}, not /app/{kit.server.app.key}",
    )
    ensure(query.get("protocol") == "7", f"protocol={query.get('protocol')!r}, not 7")
    missing = [name for name in ("client", "version") if not query.get(name)]
    ensure(not missing, f"the handshake query lacks {', '.join(missing)}")


@scenario("subscribe_waits_for_established", "delay_s")
async def subscribe_waits_for_established(kit: Kit, params: Mapping[str, Any]) -> None:
    delay = float(params.get("delay_s", 1.0))
    kit.server.script.establish_delay = delay
    link = await kit.connect(wait_connected=False)
    await kit.command("subscribe", channel="early-channel")
    sub = await kit.wait(kind_is("recv", conn=link.name, action="subscribe"), delay + SETTLE_S)
    greeting = kit.timeline.find(
        lambda e: (
            e.get("kind") == "send"
            and e.get("conn") == link.name
            and "pusher:connection_established" in str(e.get("text"))
        )
    )
    ensure(sub is not None, "the subscription made before connection_established was never sent")
    assert sub is not None
    ensure(
        greeting is not None and sub["t"] >= greeting["t"],
        "pusher:subscribe was sent before pusher:connection_established",
    )


@scenario("resubscribes", "channels", "unsubscribe", "how", "judge", budget_s=25.0)
async def resubscribes(kit: Kit, params: Mapping[str, Any]) -> None:
    """judge ``set``: exactly the still-subscribed channels, once each; ``fresh_auth``: signed
    for the new socket id; ``events``: their events reach the app again."""
    channels = [str(c) for c in params.get("channels", ["my-channel"])]
    dropped = [str(c) for c in params.get("unsubscribe", [])]
    judge = str(params.get("judge", "set"))
    _needs_for(kit, channels)
    link = await kit.connect()
    for channel in channels:
        await subscribe(kit, channel)
    for channel in dropped:
        since = kit.timeline.mark()
        await kit.command("unsubscribe", channel=channel)
        await kit.expect(
            kind_is("recv", action="unsubscribe", channel=channel),
            SETTLE_S,
            since,
            f"the client never sent pusher:unsubscribe for {channel}",
            precondition=True,
        )
    new, since = await reconnect(kit, link, str(params.get("how", "close")))
    wanted = [c for c in channels if c not in dropped]
    await _settle(kit, new, since, set(wanted))
    frames = kit.frames(new.name, since, action="subscribe")
    names = [str(f.get("channel")) for f in frames]
    kit.summary("resubscription", expected=", ".join(wanted), sent=", ".join(names))
    if judge == "set":
        missing = [c for c in wanted if c not in names]
        extra = [c for c in names if c not in wanted]
        twice = sorted({c for c in names if names.count(c) > 1})
        ensure(not missing, f"not resubscribed after the reconnection: {', '.join(missing)}")
        ensure(not extra, f"resubscribed to channels the app had left: {', '.join(extra)}")
        ensure(not twice, f"subscribed more than once: {', '.join(twice)}")
    elif judge == "fresh_auth":
        _judge_fresh_auth(kit, link, new, frames)
    else:
        await _judge_events(kit, new, wanted)


async def _settle(kit: Kit, link: Link, since: int, wanted: set[str]) -> None:
    """Wait until every wanted channel was subscribed on ``link``, then a little longer for
    anything extra (at most SETTLE_S in all)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_S
    while loop.time() < deadline:
        seen = {str(f.get("channel")) for f in kit.frames(link.name, since, action="subscribe")}
        if wanted <= seen:
            await asyncio.sleep(0.5)
            return
        await kit.wait(kind_is("recv", conn=link.name), deadline - loop.time(), kit.timeline.mark())


def _judge_fresh_auth(kit: Kit, old: Link, new: Link, frames: list[Entry]) -> None:
    authorized = [f for f in frames if str(f.get("channel")).startswith(("private-", "presence-"))]
    if not authorized:
        raise PreconditionFailed("no private or presence channel was resubscribed")
    for frame in authorized:
        if frame.get("auth_valid"):
            continue
        channel = str(frame["channel"])
        stale = frame.get("auth") == channel_auth(
            kit.server.app, old.socket_id, channel, _channel_data(frame)
        )
        ensure(
            False,
            f"{channel} was resubscribed with auth "
            + (
                f"signed for the old socket id {old.socket_id}"
                if stale
                else f"that is not valid for the new socket id {new.socket_id}"
            ),
        )


def _channel_data(frame: Entry) -> str | None:
    """The presence channel_data a recorded pusher:subscribe carried (None for private)."""
    try:
        data = json.loads(str(frame.get("text"))).get("data")
        data = json.loads(data) if isinstance(data, str) else data
    except (ValueError, AttributeError):
        return None
    value = data.get("channel_data") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


async def _judge_events(kit: Kit, link: Link, channels: list[str]) -> None:
    for number, channel in enumerate(channels):
        since = kit.timeline.mark()
        await link.send(channel_event(channel, "after-reconnect", {"n": number}))
        got = await kit.wait(
            report_is("event", channel=channel, event="after-reconnect"), 2.0, since
        )
        ensure(
            got is not None, f"an event on {channel} after the reconnection never reached the app"
        )


@scenario("presence_roster_rebuilt", needs=("presence",), budget_s=20.0)
async def presence_roster_rebuilt(kit: Kit, params: Mapping[str, Any]) -> None:
    channel = "presence-room"
    me = kit.server.app.user_id
    kit.server.script.others = {channel: {"alice": {"name": "A"}, "bob": {"name": "B"}}}
    link = await kit.connect()
    first = await subscribe(kit, channel)
    before = set(map(str, first.get("members") or []))
    if not {"alice", "bob"} <= before:
        raise PreconditionFailed(f"the first roster was reported as {sorted(before)}")
    kit.server.script.others = {channel: {"carol": {"name": "C"}}}
    new, since = await reconnect(kit, link)
    # The roster can only be judged once the server has sent the new one: resubscribing, and
    # with fresh auth, are other requirements' (CLIENT-RESUB-01, -02).
    sub = await kit.wait(
        kind_is("recv", conn=new.name, action="subscribe", channel=channel), SETTLE_S, since
    )
    if sub is None:
        raise PreconditionFailed(f"the client did not resubscribe {channel} after reconnecting")
    if not sub.get("auth_valid"):
        raise PreconditionFailed(
            f"the server refused the resubscription to {channel}: its auth is not valid for "
            f"the new socket id {new.socket_id}"
        )
    again = await kit.expect(
        report_is("subscribed", channel=channel),
        SETTLE_S,
        since,
        f"no subscribed report for {channel} after the reconnection",
    )
    after = set(map(str, again.get("members") or []))
    wanted = {"carol", me}
    kit.summary(
        "presence roster",
        before=", ".join(sorted(before)),
        after_reconnect=", ".join(sorted(after)),
    )
    ensure(
        after == wanted,
        f"after the reconnection the roster is {sorted(after)}, the server "
        f"said {sorted(wanted)}"
        + (f" (stale: {', '.join(sorted(after - wanted))})" if after - wanted else ""),
    )
    mark = kit.timeline.mark()
    await new.send(member_added(channel, "dave", {"name": "D"}))
    grown = await kit.expect(
        report_is("members", channel=channel), 2.0, mark, "no members report after member_added"
    )
    now = set(map(str, grown.get("members") or []))
    ensure(
        now == wanted | {"dave"},
        f"after member_added the roster is {sorted(now)}, not {sorted(wanted | {'dave'})}",
    )


@scenario("signin_repeated", "how", needs=("signin",))
async def signin_repeated(kit: Kit, params: Mapping[str, Any]) -> None:
    link = await kit.connect()
    since = kit.timeline.mark()
    await kit.command("signin")
    await kit.expect(
        report_is("signed_in"),
        SETTLE_S,
        since,
        "the first sign-in never succeeded",
        precondition=True,
    )
    new, since = await reconnect(kit, link, str(params.get("how", "close")))
    again = await kit.wait(kind_is("recv", conn=new.name, action="signin"), SETTLE_S, since)
    kit.summary(
        "sign-in after reconnecting",
        repeated=again is not None,
        valid=None if again is None else bool(again.get("auth_valid")),
    )
    ensure(again is not None, "no pusher:signin on the new connection")
    assert again is not None
    ensure(
        bool(again.get("auth_valid")),
        f"the repeated pusher:signin is not signed for the new socket id {new.socket_id}",
    )


@scenario("channel_auth_request", "channel")
async def channel_auth_request(kit: Kit, params: Mapping[str, Any]) -> None:
    channel = str(params.get("channel", "private-orders"))
    _needs_for(kit, [channel])
    link = await kit.connect()
    since = kit.timeline.mark()
    await kit.command("subscribe", channel=channel)
    request = await kit.expect(
        kind_is("http", endpoint="channel_auth"),
        SETTLE_S,
        since,
        f"no request to the channel-auth endpoint for {channel}",
    )
    form = request.get("form") or {}
    kit.summary(
        "channel-auth request",
        method=request.get("method"),
        content_type=request.get("content_type"),
        fields=", ".join(sorted(form)),
    )
    ensure(request.get("method") == "POST", f"the request is a {request.get('method')}")
    ensure(
        request.get("content_type") == "application/x-www-form-urlencoded",
        f"the request body is {request.get('content_type')}, not form-encoded",
    )
    ensure(
        form.get("socket_id") == link.socket_id,
        f"socket_id={form.get('socket_id')!r}, the connection's is {link.socket_id}",
    )
    ensure(form.get("channel_name") == channel, f"channel_name={form.get('channel_name')!r}")


@scenario("subscribe_carries_auth", "channel")
async def subscribe_carries_auth(kit: Kit, params: Mapping[str, Any]) -> None:
    channel = str(params.get("channel", "private-orders"))
    _needs_for(kit, [channel])
    link = await kit.connect()
    since = kit.timeline.mark()
    await kit.command("subscribe", channel=channel)
    answer = await kit.expect(
        kind_is("http", endpoint="channel_auth"),
        SETTLE_S,
        since,
        "no channel-auth request",
        precondition=True,
    )
    sent = await kit.expect(
        kind_is("recv", conn=link.name, action="subscribe", channel=channel),
        SETTLE_S,
        since,
        f"no pusher:subscribe for {channel}",
    )
    returned = answer.get("answer") or {}
    ensure(
        sent.get("auth") == returned.get("auth"),
        f"the subscribe carries auth {sent.get('auth')!r}, the endpoint returned "
        f"{returned.get('auth')!r}",
    )
    ensure(
        bool(sent.get("auth_valid")),
        "the subscription's auth (or channel_data) is not the endpoint's, unchanged",
    )


@scenario("signin_request", needs=("signin",))
async def signin_request(kit: Kit, params: Mapping[str, Any]) -> None:
    link = await kit.connect()
    since = kit.timeline.mark()
    await kit.command("signin")
    request = await kit.expect(
        kind_is("http", endpoint="user_auth"),
        SETTLE_S,
        since,
        "no request to the user-authentication endpoint",
    )
    form = request.get("form") or {}
    ensure(request.get("method") == "POST", f"the request is a {request.get('method')}")
    ensure(
        form.get("socket_id") == link.socket_id,
        f"socket_id={form.get('socket_id')!r}, the connection's is {link.socket_id}",
    )
    sent = await kit.expect(
        kind_is("recv", conn=link.name, action="signin"),
        SETTLE_S,
        since,
        "no pusher:signin after the endpoint answered",
    )
    ensure(
        bool(sent.get("auth_valid")),
        "pusher:signin does not carry the endpoint's auth and user_data unchanged",
    )


@scenario("auth_refusal_reported", needs=("private",))
async def auth_refusal_reported(kit: Kit, params: Mapping[str, Any]) -> None:
    channel = "private-forbidden"
    kit.server.script.refuse_channels = frozenset({channel})
    link = await kit.connect()
    since = kit.timeline.mark()
    await kit.command("subscribe", channel=channel)
    error = await kit.wait(report_is("subscription_error", channel=channel), SETTLE_S, since)
    sent = kit.frames(link.name, since, action="subscribe", channel=channel)
    kit.summary(
        "refused channel auth",
        reported=error is not None,
        status=None if error is None else error.get("status"),
        subscribe_sent=bool(sent),
    )
    ensure(error is not None, f"no subscription_error for {channel} after the endpoint's 403")
    ensure(not sent, f"pusher:subscribe for {channel} was sent although its auth was refused")
