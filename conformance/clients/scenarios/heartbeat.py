"""Heartbeats: answering the server's pings, pinging an idle connection after the activity
timeout (the smaller of the client's own and the server's), and giving up on a silent link
after the pong timeout, neither before it nor long after.

The test server advertises a short activity timeout (1 s by default) and the driver is asked
for a short pong timeout, so each check takes a few seconds; what the driver says it configured
(``Settings``) sets the expected times, and a client whose timers cannot be shortened is
reported inconclusive rather than waited on for minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import PreconditionFailed
from ..kit import Kit, ensure
from ..protocol import ping_frame
from ..timeline import Entry, kind_is
from .registry import scenario

#: The longest timer a check waits out (seconds).
LONGEST_TIMER_S = 10.0


def _is_ping(conn: str) -> Any:
    def match(entry: Entry) -> bool:
        if entry.get("conn") != conn:
            return False
        return entry.get("kind") == "recv_ws_ping" or (
            entry.get("kind") == "recv" and entry.get("action") == "ping"
        )

    return match


@scenario("answers_pusher_ping")
async def answers_pusher_ping(kit: Kit, params: Mapping[str, Any]) -> None:
    link = await kit.connect()
    since = kit.timeline.mark()
    await link.send(ping_frame())
    pong = await kit.wait(kind_is("recv", conn=link.name, action="pong"), 2.0, since)
    kit.summary(
        "pusher:ping",
        answered_s=None
        if pong is None
        else round(float(pong["t"]) - kit.timeline.entries[since]["t"], 3),
    )
    ensure(pong is not None, "no pusher:pong within 2 s of the server's pusher:ping")


@scenario("answers_ws_ping")
async def answers_ws_ping(kit: Kit, params: Mapping[str, Any]) -> None:
    link = await kit.connect()
    latency = await link.ws_ping(2.0)
    kit.summary("WebSocket ping", latency_s=None if latency is None else round(latency, 4))
    ensure(latency is not None, "no pong frame within 2 s of a WebSocket ping frame")


def _expected_idle(kit: Kit, server_s: int) -> float:
    client = kit.settings.activity_timeout_ms
    expected = min(server_s, client / 1000.0) if client is not None else float(server_s)
    if expected > LONGEST_TIMER_S:
        raise PreconditionFailed(
            f"the client's activity timeout ({expected:.0f} s) is longer than this check waits;"
            " the driver did not take the activity_timeout_ms it was given"
        )
    return expected


@scenario("pings_when_idle", "server_s", "client_ms", "judge")
async def pings_when_idle(kit: Kit, params: Mapping[str, Any]) -> None:
    """judge ``pings``: a ping comes on an idle connection; ``timing``: it comes after about
    min(the client's activity timeout, the server's), not much earlier nor later."""
    server_s = int(params.get("server_s", 1))
    client_ms = params.get("client_ms")
    judge = str(params.get("judge", "pings"))
    kit.server.script.activity_timeout = server_s
    link = await kit.connect(
        activity_timeout_ms=None if client_ms is None else int(client_ms), pong_timeout_ms=5000
    )
    expected = _expected_idle(kit, server_s)
    late = expected + 0.5 + 0.25 * expected
    early = 0.75 * expected - 0.1
    ping = await kit.wait(_is_ping(link.name), late + 2.0, link_start(kit, link))
    if ping is None:
        kit.summary("idle ping", expected_s=expected, ping="none")
        ensure(
            False,
            f"no ping within {late + 2.0:.1f} s of silence (activity timeout {expected:.1f} s)",
        )
    assert ping is not None
    quiet_from = _last_server_frame_before(kit, link.name, float(ping["t"]))
    idle = float(ping["t"]) - quiet_from
    kit.summary(
        "idle ping",
        expected_s=expected,
        idle_before_ping_s=round(idle, 3),
        allowed=f"{max(early, 0):.2f}-{late:.2f} s",
        server_s=server_s,
        client_ms=kit.settings.activity_timeout_ms,
    )
    if judge == "pings":
        ensure(idle <= late + 2.0, f"the first ping came after {idle:.2f} s of silence")
        return
    ensure(
        idle >= early,
        f"the client pinged after {idle:.2f} s of silence, well before its "
        f"activity timeout of {expected:.2f} s",
    )
    ensure(
        idle <= late,
        f"the client pinged after {idle:.2f} s of silence; its activity timeout "
        f"is {expected:.2f} s (min of its own and the server's)",
    )


def link_start(kit: Kit, link: Any) -> int:
    """The index of the link's ``open`` entry: what happened on it from the start."""
    for index, entry in enumerate(kit.timeline.entries):
        if entry.get("kind") == "open" and entry.get("conn") == link.name:
            return index
    return 0


def _last_server_frame_before(kit: Kit, conn: str, t: float) -> float:
    last = 0.0
    for entry in kit.timeline.entries:
        if entry["t"] > t:
            break
        if entry.get("conn") == conn and entry.get("kind") in ("send", "open"):
            last = float(entry["t"])
    return last


@scenario("silent_link", "server_s", "pong_ms", "judge", budget_s=25.0)
async def silent_link(kit: Kit, params: Mapping[str, Any]) -> None:
    """The server withholds every pong. judge ``waits``: the client does not give up before its
    pong timeout; ``reconnects``: it gives up and reconnects soon after it."""
    server_s = int(params.get("server_s", 1))
    pong_ms = int(params.get("pong_ms", 1500))
    judge = str(params.get("judge", "waits"))
    kit.server.script.activity_timeout = server_s
    kit.server.script.answer_pings = False
    link = await kit.connect(pong_timeout_ms=pong_ms)
    declared = kit.settings.pong_timeout_ms
    if declared is None:
        raise PreconditionFailed("the driver declared no pong timeout (settings or defaults)")
    pong_s = declared / 1000.0
    if pong_s > LONGEST_TIMER_S:
        raise PreconditionFailed(
            f"the client's pong timeout ({pong_s:.0f} s) is longer than this "
            "check waits; the driver did not take pong_timeout_ms"
        )
    idle = _expected_idle(kit, server_s)
    ping = await kit.wait(_is_ping(link.name), idle * 1.5 + 2.0, link_start(kit, link))
    if ping is None:
        raise PreconditionFailed(
            "the client never pinged the silent connection (see the idle ping requirement)"
        )
    pinged = float(ping["t"])
    gave_up = await kit.wait(
        lambda e: (
            (e.get("kind") == "closed" and e.get("conn") == link.name)
            or e.get("kind") == "handshake"
        ),
        pong_s + 2.5,
        link_start(kit, link),
    )
    after = None if gave_up is None else float(gave_up["t"]) - pinged
    kit.summary(
        "silent link",
        pong_timeout_s=pong_s,
        gave_up_after_ping_s=None if after is None else round(after, 3),
    )
    if judge == "waits":
        ensure(
            after is None or after >= 0.9 * pong_s - 0.1,
            f"the client gave up {after or 0:.2f} s after its ping; its pong timeout is "
            f"{pong_s:.2f} s",
        )
        return
    ensure(
        after is not None,
        f"the client was still on the silent connection {pong_s + 2.5:.1f} s "
        f"after its ping (pong timeout {pong_s:.2f} s)",
    )
    again = await kit.wait(kind_is("handshake"), 3.0, link_start(kit, link))
    ensure(
        again is not None,
        "the client closed the silent connection but did not reconnect within 3 s",
    )
