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
