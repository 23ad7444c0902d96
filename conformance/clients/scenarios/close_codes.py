"""What a client does when the server ends its connection: the protocol's close-code classes
(4000-4099 stay away, 4100-4199 back off, 4200-4299 come back at once), 4000's switch to TLS,
a TCP drop without a close frame, a fatal pusher:error before the handshake completes, and
whether the close code reaches the application.

Delays are measured on the server: from the moment the close was sent (or TCP dropped) to the
client's next WebSocket handshake, so they include the client's whole reaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ...errors import PreconditionFailed
from ..kit import Kit, ensure, report_is
from ..protocol import error_frame
from ..scripted_server import Link
from ..timeline import Entry, kind_is
from .registry import scenario

#: How long a client gets to come back when it should (and is watched when it should not).
WATCH_S = 3.0


async def _end(link: Link, how: str, code: int | None, reason: str) -> None:
    if how == "drop":
        link.drop()
    else:
        await link.close(code, reason)


async def _next_handshake(kit: Kit, since: int, within: float) -> Entry | None:
    return await kit.wait(kind_is("handshake"), within, since)


def _ended_at(kit: Kit, since: int) -> float:
    entry = kit.timeline.find(lambda e: e.get("kind") in ("server_close", "server_drop"), since)
    assert entry is not None
    return float(entry["t"])


@scenario("close_stays_away", "code", "watch_s")
async def close_stays_away(kit: Kit, params: Mapping[str, Any]) -> None:
    """4000-4099: "SHOULD NOT be re-established unchanged": no new handshake while watched."""
    code = int(params.get("code", 4009))
    watch = float(params.get("watch_s", WATCH_S))
    link = await kit.connect()
    since = kit.timeline.mark()
    await link.close(code, f"scripted close {code}")
    again = await _next_handshake(kit, since, watch)
    states = [e.get("current") for e in kit.timeline.find_all(report_is("state"), since)]
    kit.summary(
        f"after close {code}",
        reconnected=again is not None,
        states=" > ".join(str(s) for s in states) or "none reported",
    )
    if again is not None:
        delay = float(again["t"]) - _ended_at(kit, since)
        ensure(
            False,
            f"the client reconnected {delay:.2f} s after close {code} "
            f"(4000-4099: not to be re-established unchanged)",
        )


@scenario("close_tls_only", needs=("tls",))
async def close_tls_only(kit: Kit, params: Mapping[str, Any]) -> None:
    """4000: reconnect using wss://."""
    link = await kit.connect(tls=False)
    if link.tls:
        raise PreconditionFailed("the client connected over TLS although told tls: false")
    since = kit.timeline.mark()
    await link.close(4000, "Application only accepts SSL connections, reconnect using wss://")
    again = await _next_handshake(kit, since, WATCH_S)
    ensure(again is not None, f"no reconnection within {WATCH_S:.0f} s after close 4000")
    assert again is not None
    delay = float(again["t"]) - _ended_at(kit, since)
    kit.summary("after close 4000", delay_s=round(delay, 3), tls=bool(again["tls"]))
    ensure(
        bool(again["tls"]),
        f"the client came back over plain ws:// {delay:.2f} s after close 4000 instead of wss://",
    )
    await kit.expect(
        report_is("state", current="connected"),
        WATCH_S,
        since,
        "the client did not report connected over wss://",
    )


async def closes_in_a_row(kit: Kit, code: int, rounds: int, within: float) -> list[float]:
    """Close with ``code`` ``rounds`` times, each time after the client is back; the delays
    from each close to the next handshake (fewer when the client stopped coming back)."""
    link = await kit.connect()
    delays: list[float] = []
    for number in range(rounds):
        since = kit.timeline.mark()
        await link.close(code, f"scripted close {code} ({number + 1})")
        again = await _next_handshake(kit, since, within)
        if again is None:
            break
        delays.append(float(again["t"]) - _ended_at(kit, since))
        nxt = await kit.next_link(since, within)
        connected = await kit.wait(report_is("state", current="connected"), within, since)
        if nxt is None or connected is None:
            break
        link = nxt
    kit.summary(f"reconnections after close {code}", closes=rounds, came_back=len(delays))
    kit.table(
        ["close", "seconds to the next handshake"],
        [[n + 1, round(d, 3)] for n, d in enumerate(delays)],
    )
    return delays


@scenario("close_backs_off", "code", "rounds", "min_delay_s", "within_s", budget_s=30.0)
async def close_backs_off(kit: Kit, params: Mapping[str, Any]) -> None:
    """4100-4199: re-established after backing off at least 1 s, every time."""
    code = int(params.get("code", 4100))
    rounds = int(params.get("rounds", 2))
    least = float(params.get("min_delay_s", 1.0))
    within = float(params.get("within_s", 6.0))
    delays = await closes_in_a_row(kit, code, rounds, within)
    for number, delay in enumerate(delays, 1):
        # 20 ms for the two clocks' reading of one instant: the close leaves before it is noted.
        ensure(
            delay >= least - 0.02,
            f"close {number}: the client came back {delay:.3f} s "
            f"after {code}, before backing off {least:.0f} s",
        )
    ensure(
        len(delays) == rounds,
        f"close {len(delays) + 1}: the client did not come back within "
        f"{within:.0f} s of {code} (to be re-established after backing "
        "off)",
    )


@scenario("close_returns_promptly", "code", "within_s")
async def close_returns_promptly(kit: Kit, params: Mapping[str, Any]) -> None:
    """4200-4299: re-established immediately (within ``within_s``, 1.5 s by default)."""
    code = int(params.get("code", 4200))
    within = float(params.get("within_s", 1.5))
    link = await kit.connect()
    since = kit.timeline.mark()
    await link.close(code, f"scripted close {code}")
    again = await _next_handshake(kit, since, within + WATCH_S)
    delay = None if again is None else float(again["t"]) - _ended_at(kit, since)
    kit.summary(f"after close {code}", delay_s=None if delay is None else round(delay, 3))
    ensure(delay is not None, f"no reconnection within {within + WATCH_S:.1f} s of close {code}")
    assert delay is not None
    ensure(
        delay <= within,
        f"the client came back {delay:.2f} s after close {code}, not "
        f"immediately (allowed {within:.1f} s)",
    )


@scenario("abnormal_closure_returns", "how", "code", "within_s")
async def abnormal_closure_returns(kit: Kit, params: Mapping[str, Any]) -> None:
    """A connection lost without a Pusher close code (TCP drop: 1006; or e.g. 1001) is
    re-established."""
    how = str(params.get("how", "drop"))
    code = params.get("code")
    within = float(params.get("within_s", 5.0))
    link = await kit.connect()
    since = kit.timeline.mark()
    await _end(link, how, None if code is None else int(code), "going away")
    again = await _next_handshake(kit, since, within)
    what = "a TCP drop without a close frame" if how == "drop" else f"close {code}"
    delay = None if again is None else float(again["t"]) - _ended_at(kit, since)
    kit.summary(f"after {what}", delay_s=None if delay is None else round(delay, 3))
    ensure(again is not None, f"no reconnection within {within:.0f} s of {what}")
    await kit.expect(
        report_is("state", current="connected"),
        within,
        since,
        f"the client reconnected after {what} but never reported connected",
    )


@scenario("fatal_error_before_established", "code", "then", "watch_s")
async def fatal_error_before_established(kit: Kit, params: Mapping[str, Any]) -> None:
    """A pusher:error with a 4000-4099 code instead of connection_established, then a close
    that carries no Pusher code: the error's code decides, the client stays away."""
    code = int(params.get("code", 4001))
    then = str(params.get("then", "no_status"))
    watch = float(params.get("watch_s", WATCH_S))
    kit.server.script.greet = False
    link = await kit.connect(wait_connected=False)
    # Watched from the error on: a client may come back on the error alone, before the close.
    errored = kit.timeline.mark()
    await link.send(error_frame(code, "Application does not exist"))
    await asyncio.sleep(0.3)  # the error travels alone before the close
    await _end(link, "drop" if then == "drop" else "close", None, "")
    again = await _next_handshake(kit, errored, watch)
    ended = "a TCP drop" if then == "drop" else "a close frame without a code"
    kit.summary(f"after pusher:error {code} and {ended}", reconnected=again is not None)
    if again is not None:
        delay = float(again["t"]) - float(kit.timeline.entries[errored]["t"])
        ensure(
            False,
            f"the client reconnected {delay:.2f} s after pusher:error {code} (followed by "
            f"{ended}; the error's 4000-4099 code says: not unchanged)",
        )


@scenario("close_code_reported", "code")
async def close_code_reported(kit: Kit, params: Mapping[str, Any]) -> None:
    """The close code (and reason) reach the application as a connection error."""
    code = int(params.get("code", 4200))
    reason = f"scripted reason {code}"
    link = await kit.connect()
    since = kit.timeline.mark()
    await link.close(code, reason)
    error = await kit.wait(report_is("error", code=code), 2.0, since)
    reported = kit.timeline.find_all(report_is("error"), since)
    kit.summary(
        f"after close {code}",
        errors_reported=len(reported),
        reason_shown=error is not None and reason in str(error.get("message")),
    )
    ensure(
        error is not None,
        f"no error report with code {code} within 2 s of the close "
        f"(reported: {[e.get('code') for e in reported] or 'none'})",
    )
