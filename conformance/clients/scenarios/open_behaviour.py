"""Behaviour the docs leave open, measured and reported.

``report_*`` scenarios never fail: what they saw goes into the check's figures, which every
report format shows, so a reader can compare clients where the docs give no rule (a 4300-range
close, a server that refuses every handshake). ``backoff_grows`` is the one graded MAY: the docs
allow an exponential back-off on consecutive 4100-4199 closes, so its absence is reported as
OPTIONAL_ABSENT, never as a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from ..kit import Kit, ensure, report_is
from ..timeline import kind_is
from .close_codes import closes_in_a_row
from .registry import scenario


@scenario("report_close_4300", "code", "watch_s")
async def report_close_4300(kit: Kit, params: Mapping[str, Any]) -> None:
    code = int(params.get("code", 4301))
    watch = float(params.get("watch_s", 3.0))
    link = await kit.connect()
    since = kit.timeline.mark()
    await link.close(code, f"scripted close {code}")
    again = await kit.wait(kind_is("handshake"), watch, since)
    closed = kit.timeline.find(kind_is("server_close"), since)
    states = [str(e.get("current")) for e in kit.timeline.find_all(report_is("state"), since)]
    kit.summary(
        f"after close {code} (the docs define no client action)",
        reconnected=again is not None,
        delay_s=None if again is None or closed is None else round(again["t"] - closed["t"], 3),
        states=" > ".join(states) or "none reported",
    )


@scenario("report_refused_handshakes", "watch_s")
async def report_refused_handshakes(kit: Kit, params: Mapping[str, Any]) -> None:
    """Every handshake refused with HTTP 503: how often the client tries, and what it tells
    the app."""
    watch = float(params.get("watch_s", 6.0))
    kit.server.script.refuse_handshakes = 1000
    since = kit.timeline.mark()
    await kit.command("connect", **kit.connect_fields(tls=False))
    await asyncio.sleep(watch)
    tries = [float(e["t"]) for e in kit.handshakes(since)]
    gaps = [round(b - a, 3) for a, b in pairwise(tries)]
    states = [str(e.get("current")) for e in kit.timeline.find_all(report_is("state"), since)]
    kit.summary(
        f"every handshake refused for {watch:.0f} s",
        attempts=len(tries),
        states=" > ".join(states) or "none reported",
    )
    kit.table(
        ["attempt", "seconds after the previous"],
        [[n + 1, gap] for n, gap in enumerate([0.0, *gaps][: len(tries)])],
    )


@scenario("backoff_grows", "code", "rounds", budget_s=40.0)
async def backoff_grows(kit: Kit, params: Mapping[str, Any]) -> None:
    code = int(params.get("code", 4100))
    rounds = int(params.get("rounds", 3))
    delays = await closes_in_a_row(kit, code, rounds, 10.0)
    ensure(len(delays) == rounds, f"the client came back {len(delays)} times of {rounds}")
    grows = all(b > a * 1.2 for a, b in pairwise(delays))
    ensure(
        grows,
        "the back-off does not grow on consecutive closes: "
        + ", ".join(f"{d:.2f} s" for d in delays),
    )
