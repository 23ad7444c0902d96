"""Events both ways: the client events a library puts on the wire (``client-`` names, on
private and presence channels only) and the server's events reaching the application."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ..kit import Kit, ensure, report_is
from ..protocol import channel_event
from ..timeline import Entry
from .channels import subscribe
from .registry import scenario

#: How long the wire is watched for a client event that should not come.
WATCH_S = 1.5


def _client_events(kit: Kit, conn: str, since: int) -> list[Entry]:
    return [
        e
        for e in kit.timeline.entries[since:]
        if e.get("kind") == "recv"
        and e.get("conn") == conn
        and e.get("action") in ("client_event", "other")
    ]


@scenario("client_event_sent", "channel", needs=("client-events",))
async def client_event_sent(kit: Kit, params: Mapping[str, Any]) -> None:
    channel = str(params.get("channel", "private-chat"))
    kit.need("presence" if channel.startswith("presence-") else "private")
    link = await kit.connect()
    await subscribe(kit, channel)
    since = kit.timeline.mark()
    payload = {"text": "hello", "n": 1}
    await kit.command("trigger", channel=channel, event="client-hello", data=payload)
    sent = await kit.wait(
        lambda e: (
            e.get("kind") == "recv"
            and e.get("conn") == link.name
            and e.get("action") == "client_event"
        ),
        2.0,
        since,
    )
    ensure(sent is not None, "no client event on the wire within 2 s of trigger")
    assert sent is not None
    kit.summary("client event", event=sent.get("event"), channel=sent.get("channel"))
    ensure(sent.get("event") == "client-hello", f"sent as {sent.get('event')!r}")
    ensure(sent.get("channel") == channel, f"sent on {sent.get('channel')!r}, not {channel}")
    ensure(sent.get("data") == payload, f"sent with data {sent.get('data')!r}, not {payload}")


@scenario("client_event_withheld", "case", needs=("client-events",))
async def client_event_withheld(kit: Kit, params: Mapping[str, Any]) -> None:
    """case ``unprefixed``: a name without ``client-`` never goes on the wire as it is (the
    library refuses it or adds the prefix); case ``public``: nothing is sent on a public
    channel."""
    case = str(params.get("case", "unprefixed"))
    channel = "public-chat" if case == "public" else "private-chat"
    if case != "public":
        kit.need("private")
    link = await kit.connect()
    await subscribe(kit, channel)
    since = kit.timeline.mark()
    event = "client-hello" if case == "public" else "hello"
    reply = await kit.driver.command("trigger", channel=channel, event=event, data={"n": 1})
    await asyncio.sleep(WATCH_S)
    sent = _client_events(kit, link.name, since)
    kit.summary(
        f"trigger {event} on {channel}",
        driver_answer=reply.type,
        on_the_wire=", ".join(str(e.get("event")) for e in sent) or "nothing",
    )
    if case == "public":
        ensure(not sent, f"a client event went out on the public channel {channel}")
    else:
        bad = [str(e.get("event")) for e in sent if not str(e.get("event")).startswith("client-")]
        ensure(
            not bad, f"an event named {bad[0] if bad else ''!r} went on the wire as a client event"
        )


@scenario("event_delivered", "channel")
async def event_delivered(kit: Kit, params: Mapping[str, Any]) -> None:
    channel = str(params.get("channel", "my-channel"))
    if channel.startswith("private-"):
        kit.need("private")
    link = await kit.connect()
    await subscribe(kit, channel)
    since = kit.timeline.mark()
    payload = {"price": 42, "symbol": "APPL"}
    await link.send(channel_event(channel, "new-price", payload))
    got = await kit.wait(report_is("event", channel=channel, event="new-price"), 2.0, since)
    ensure(got is not None, f"the event on {channel} never reached the app")
    assert got is not None
    ensure(
        got.get("data") == payload,
        f"the app got data {got.get('data')!r}, not {payload} (the data field is JSON in a string)",
    )
