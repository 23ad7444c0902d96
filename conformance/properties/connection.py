"""Properties of the WebSocket connection itself."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from ..context import CheckContext
from ..errors import CheckFailed
from .registry import explore, prop


@prop("socket_ids_unique", "connections")
def socket_ids_unique(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    count = int(params.get("connections", 10))

    async def go() -> None:
        names = [f"u{i}" for i in range(count)]
        await asyncio.gather(*(ctx.open(n) for n in names))
        ids = [ctx.variables[n]["socket_id"] for n in names]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise CheckFailed(f"{count} connections got duplicate socket ids: {duplicates}")

    ctx.run(go())


@prop("websocket_ping_answered", "pings", "examples")
def websocket_ping_answered(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    pings = int(params.get("pings", 3))
    ctx.run(ctx.open("c1"))

    def body(payloads: list[bytes]) -> None:
        for payload in payloads:
            if not ctx.run(ctx.connection("c1").ws_ping(payload, ctx.response_timeout)):
                raise CheckFailed(f"no pong frame answered a ping frame with payload {payload!r}")

    explore(ctx, st.lists(st.binary(max_size=125), min_size=1, max_size=pings), body, params)


@prop("connection_quota")
def connection_quota(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    """The target's ``quota_app`` admits ``max_connections`` open connections; the next one is
    closed with 4004 (a ``pusher:error`` before the close, if any, says 4004 too); once one of
    them has closed, a new one is admitted again: the quota counts open connections, not every
    connection ever made."""
    quota = ctx.other_app("quota")
    limit = quota.max_connections or 1

    async def refused_with_4004(name: str) -> None:
        conn = await ctx.connect(name, app="quota")
        greeted = await conn.wait_for(
            lambda f: f.event in ("pusher:connection_established", "pusher:error"),
            ctx.response_timeout,
        )
        if greeted is not None and greeted.event == "pusher:connection_established":
            raise CheckFailed(
                f"connection number {limit + 1} to an app with a quota of {limit} was greeted"
            )
        closed = await conn.wait_closed(ctx.response_timeout)
        if closed is None or closed.code != 4004 or not closed.clean:
            shown = "still open" if closed is None else closed.describe()
            raise CheckFailed(
                f"connection number {limit + 1} (quota {limit}) was {shown}; expected a close "
                "with 4004"
            )
        code = greeted.data_field("code") if greeted is not None else 4004
        if code != 4004:
            raise CheckFailed(
                f"the over-quota connection got pusher:error code {code!r} before its close, "
                "expected 4004"
            )

    async def admitted_again() -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ctx.response_timeout
        attempt = 0
        while True:
            attempt += 1
            conn = await ctx.connect(f"again{attempt}", app="quota")
            frame = await conn.wait_for(
                lambda f: f.event in ("pusher:connection_established", "pusher:error"),
                ctx.response_timeout,
            )
            if frame is not None and frame.event == "pusher:connection_established":
                return True
            await conn.close()
            if loop.time() + 0.25 > deadline or attempt >= 20:
                return False
            await asyncio.sleep(0.25)

    async def go() -> None:
        names = [f"q{i}" for i in range(limit)]
        for name in names:
            await ctx.open(name, app="quota")
        await refused_with_4004("over")
        await ctx.connection(names[0]).close()
        if not await admitted_again():
            raise CheckFailed(
                f"after one of the {limit} connections closed, a new one was still refused: "
                "the quota should count open connections"
            )

    ctx.run(go())
