"""A look at the target before any check runs: how long a WebSocket handshake takes, and
whether it answers ``pusher:ping``.

Both change how the run should go rather than any verdict. Handshakes far slower than a
loopback server's mean every check that opens connections will be slow: the run says so at
once, with the times, instead of letting checks run into their budgets one by one. A target
that never answers ``pusher:ping`` fails PROTO-PING-01, and every other check that waits on a
``pusher:pong`` as a sign of life would wait out its timeout, example after example; knowing
it up front, they use a WebSocket ping alone.
"""

from __future__ import annotations

import asyncio
import ssl
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from .errors import TargetError
from .transcript import Transcript
from .wsclient import Frame, RawConnection

__all__ = ["SLOW_HANDSHAKE_MS", "TargetProbe", "greets", "probe_target"]

#: A handshake slower than this (times the multiplier) makes the run warn: loopback takes ms.
SLOW_HANDSHAKE_MS = 1000
#: Handshakes measured.
HANDSHAKES = 3


@dataclass(frozen=True)
class TargetProbe:
    handshake_ms: tuple[int, ...]
    answers_pusher_ping: bool

    @property
    def median_handshake_ms(self) -> float | None:
        return statistics.median(self.handshake_ms) if self.handshake_ms else None

    def warnings(self, timeout_multiplier: float) -> list[str]:
        """Lines for the console: what about the target will make this run slow or partial."""
        lines = []
        median = self.median_handshake_ms
        if median is not None and median > SLOW_HANDSHAKE_MS * timeout_multiplier:
            needed = max(2, int(median / SLOW_HANDSHAKE_MS) + 1)
            took = ", ".join(map(str, self.handshake_ms))
            lines.append(
                f"the target is slow: WebSocket handshakes took {took} ms; checks are "
                "budgeted for a nearby server, so those opening many connections may run "
                f"out of time. Consider --timeout-multiplier {needed}."
            )
        if not self.answers_pusher_ping:
            lines.append(
                "the target does not answer pusher:ping (PROTO-PING-01 will say more): checks "
                "use WebSocket pings as their sign of life instead."
            )
        return lines


def _app_url(ws_url: str, key: str) -> str:
    return f"{ws_url}/app/{key}?{urlencode({'protocol': '7', 'client': 'pusher-conformance'})}"


def _established(frame: Frame) -> bool:
    return frame.event == "pusher:connection_established"


async def greets(
    ws_url: str, key: str, timeout: float, *, tls: ssl.SSLContext | None = None
) -> bool:
    """Whether a new connection is greeted with ``pusher:connection_established``: the sign
    of life a run asks for after a check fails (a server that still takes TCP but closes
    every newcomer, as one stuck shutting down does, is not alive)."""
    try:
        conn = await RawConnection.open(
            "alive",
            _app_url(ws_url, key),
            Transcript("alive"),
            auto_pong=True,
            timeout=timeout,
            ssl_context=tls,
        )
    except (TargetError, OSError):
        return False
    try:
        return await conn.wait_for(_established, timeout) is not None
    finally:
        await conn.close()


async def probe_target(
    ws_url: str, key: str, timeout: float, *, tls: ssl.SSLContext | None = None
) -> TargetProbe:
    """Open ``HANDSHAKES`` connections one after another (timing each), ping on the first."""
    transcript = Transcript("preflight")
    url = _app_url(ws_url, key)
    times: list[int] = []
    answers = True
    for number in range(HANDSHAKES):
        began = time.monotonic()
        try:
            conn = await RawConnection.open(
                f"probe{number}",
                url,
                transcript,
                auto_pong=True,
                timeout=timeout,
                ssl_context=tls,
            )
        except TargetError:
            break
        try:
            if conn.closed is not None:
                break
            times.append(round((time.monotonic() - began) * 1000))
            if number == 0:
                await conn.wait_for(_established, timeout)
                answers = await _answers_pusher_ping(conn, timeout)
        finally:
            await conn.close()
    return TargetProbe(tuple(times), answers)


async def _answers_pusher_ping(conn: RawConnection, timeout: float) -> bool:
    await conn.send_json({"event": "pusher:ping", "data": {}})
    try:
        frame = await asyncio.wait_for(
            conn.wait_for(lambda f: f.event == "pusher:pong", timeout), timeout + 1
        )
    except TimeoutError:
        return False
    return frame is not None
