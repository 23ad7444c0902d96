"""Properties of public channels: any valid name, any data, delivered unchanged."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from ..context import CheckContext
from ..errors import CheckFailed, UsageError
from ..templates import nonce, unique_channel
from .registry import expect_event, explore, prop


@prop("channel_name_roundtrip", "alphabet", "min_length", "max_length", "examples")
def channel_name_roundtrip(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    alphabet = str(params["alphabet"])
    names = st.text(
        alphabet=alphabet,
        min_size=int(params.get("min_length", 1)),
        max_size=int(params.get("max_length", 164)),
    )
    ctx.run(ctx.open("c1"))

    def body(channel: str) -> None:
        async def go() -> None:
            conn = ctx.connection("c1")
            if await ctx.send_subscribe("c1", {"channel": channel}) is None:
                raise CheckFailed(f"subscribing to the valid channel name {channel!r} failed")
            token = nonce()
            await ctx.trigger("conformance-event", token, channel=channel)
            await expect_event(ctx, "c1", channel, "conformance-event", token)
            await conn.send_json({"event": "pusher:unsubscribe", "data": {"channel": channel}})

        ctx.run(go())

    explore(ctx, names, body, params)


def _json_text() -> st.SearchStrategy[str]:
    scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    values = st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )
    return values.map(lambda v: json.dumps(v, ensure_ascii=False))


@prop("data_roundtrip", "kinds", "max_length", "examples")
def data_roundtrip(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    kinds = list(params.get("kinds", ["text", "json"]))
    max_length = int(params.get("max_length", 2000))
    strategies = []
    if "text" in kinds:
        strategies.append(st.text(min_size=1, max_size=max_length))
    if "json" in kinds:
        strategies.append(_json_text().filter(lambda s: len(s) <= max_length))
    if not strategies:
        raise UsageError(f"{ctx.check.full_id}: data_roundtrip needs kinds text and/or json")
    channel = unique_channel("conformance-data-")

    async def setup() -> None:
        await ctx.open("c1")
        await ctx.subscribe("c1", channel)

    ctx.run(setup())

    def body(data: str) -> None:
        async def go() -> None:
            await ctx.trigger("conformance-event", data, channel=channel)
            await expect_event(ctx, "c1", channel, "conformance-event", data)

        ctx.run(go())

    explore(ctx, st.one_of(*strategies), body, params)
