"""``explore``: a property's connections outlive the server's activity timeout while hypothesis
works between examples, whatever the server's idle pings do, so only the heartbeat checks judge
those pings."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import strategies as st

from conformance.bundled import BUNDLED_ACTIVITY_TIMEOUT, BUNDLED_PONG_TIMEOUT, start_bundled
from conformance.context import CheckContext, RunSettings
from conformance.loop import LoopThread
from conformance.properties.registry import expect_event, explore
from conformance.spec import Check
from conformance.templates import unique_channel

# Long enough that a connection silent throughout would pass the activity and pong timeouts.
PAUSE = BUNDLED_ACTIVITY_TIMEOUT + BUNDLED_PONG_TIMEOUT + 1.0


@pytest.mark.parametrize("faults", ["", "no_idle_ping"])
def test_a_receive_only_connection_survives_a_long_exploration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faults: str
) -> None:
    """With ``no_idle_ping`` the server never pings, yet still closes a connection that has
    said nothing for activity + pong timeout: only the suite's own keep-alive saves c1 while
    hypothesis stalls before its first example (as it did in CI, building its character
    tables for ``st.text`` on a loaded machine)."""
    monkeypatch.setenv("PUSHER_REF_FAULTS", faults)
    server = start_bundled(tmp_path / "server.log")
    try:
        with LoopThread() as runner:
            check = Check("T-01", "t", "t", "property", {}, property_name="x", params={})
            ctx = CheckContext(server.target, RunSettings(), check, runner)
            channel = unique_channel("conformance-keepalive-")
            try:
                ctx.run(ctx.open("c1"))
                ctx.run(ctx.subscribe("c1", channel))
                # A silent control connection, opened the way the heartbeat checks open theirs.
                ctx.run(ctx.open("quiet", auto_pong=False))

                stalled: list[int] = []

                def stall_once(n: int) -> int:
                    if not stalled:
                        stalled.append(n)
                        time.sleep(PAUSE)
                    return n

                def body(n: int) -> None:
                    async def go() -> None:
                        await ctx.trigger("keepalive-event", str(n), channel=channel)
                        await expect_event(ctx, "c1", channel, "keepalive-event", str(n))

                    ctx.run(go())

                explore(ctx, st.integers(0, 10**6).map(stall_once), body, {"examples": 4})
                c1, quiet = ctx.connection("c1"), ctx.connection("quiet")
                assert c1.is_open, c1.closed
                # The keep-alive left no pong behind for a later pong wait to mistake.
                assert not [f for f in c1.unconsumed() if f.event == "pusher:pong"]
                # The keep-alive never speaks for a connection opened without auto_pong.
                assert quiet.closed is not None
                assert quiet.closed.code == 4201
            finally:
                runner.run(ctx.aclose())
    finally:
        server.stop()
