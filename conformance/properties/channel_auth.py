"""Properties of channel names and channel authorization: what must be refused is refused, and a
refused subscription leaks nothing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from ..context import CheckContext
from ..errors import CheckFailed, UsageError
from ..signing import channel_auth, hmac_sha256_hex
from ..templates import nonce, unique_channel
from .registry import explore, prop

# -- channel names and channel auth ------------------------------------------------------------

VALID_NAME_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-=@,.;"


def _invalid_names(kinds: list[str], max_length: int) -> st.SearchStrategy[str]:
    valid = st.text(alphabet=VALID_NAME_CHARACTERS, max_size=20)
    outside = st.characters(exclude_characters=VALID_NAME_CHARACTERS, exclude_categories=["Cs"])
    options: list[st.SearchStrategy[str]] = []
    for kind in kinds:
        if kind == "bad_character":
            options.append(st.tuples(valid, outside, valid).map("".join))
        elif kind == "too_long":
            options.append(
                st.text(
                    alphabet=VALID_NAME_CHARACTERS,
                    min_size=max_length + 1,
                    max_size=max_length + 60,
                )
            )
        elif kind == "empty":
            options.append(st.just(""))
        else:
            raise UsageError(f"unknown invalid-name kind {kind!r} (bad_character, too_long, empty)")
    return st.one_of(*options)


async def _no_success_for(ctx: CheckContext, conn_name: str, channel: str) -> None:
    conn = ctx.connection(conn_name)
    await ctx.ping_barrier(conn_name)
    for frame in conn.unconsumed():
        if (
            frame.event == "pusher_internal:subscription_succeeded"
            and frame.parsed.get("channel") == channel
        ):
            raise CheckFailed(
                f"the subscription to {channel!r} should have been refused, but succeeded"
            )


@prop("invalid_channel_names_refused", "kinds", "max_length", "examples")
def invalid_channel_names_refused(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    kinds = list(params.get("kinds", ["bad_character", "too_long", "empty"]))
    strategy = _invalid_names(kinds, int(params.get("max_length", 164)))
    ctx.run(ctx.open("c1"))

    def body(name: str) -> None:
        async def go() -> None:
            conn = ctx.connection("c1")
            await conn.send_json({"event": "pusher:subscribe", "data": {"channel": name}})
            await _no_success_for(ctx, "c1", name)
            after = unique_channel("conformance-after-")
            if await ctx.send_subscribe("c1", {"channel": after}) is None:
                raise CheckFailed(
                    f"after refusing {name!r} the connection could not subscribe to a valid channel"
                )

        ctx.run(go())

    explore(ctx, strategy, body, params)


CHANNEL_TAMPERS = (
    "signature_bit_flip",
    "other_socket_id",
    "other_channel",
    "changed_channel_data",
    "missing_key_prefix",
    "wrong_key_prefix",
    "upper_case_hex",
    "empty_auth",
    "missing_auth",
    "signed_without_socket_id",
    "signed_without_channel_data",
)


PRESENCE_ONLY = frozenset({"changed_channel_data", "signed_without_channel_data"})


def tampered_subscription(
    ctx: CheckContext, kind: str, detail: int, channel: str, socket_id: str, other_socket_id: str
) -> dict[str, str]:
    """The ``data`` of a subscribe whose auth is wrong in exactly the way ``kind`` names."""
    presence = channel.startswith("presence-")
    channel_data = (
        json.dumps({"user_id": f"user-{detail}"}, separators=(",", ":")) if presence else ""
    )
    key, secret = ctx.target.key, ctx.target.secret
    good = channel_auth(key, secret, socket_id, channel, channel_data).split(":", 1)[1]
    data = {"channel": channel}
    if presence:
        data["channel_data"] = channel_data
    if kind == "signature_bit_flip":
        position, bit = detail % 64, 1 << (detail % 4)
        flipped = (
            good[:position] + format(int(good[position], 16) ^ bit, "x") + good[position + 1 :]
        )
        data["auth"] = f"{key}:{flipped}"
    elif kind == "other_socket_id":
        data["auth"] = channel_auth(key, secret, other_socket_id, channel, channel_data)
    elif kind == "other_channel":
        data["auth"] = channel_auth(key, secret, socket_id, channel + "x", channel_data)
    elif kind == "changed_channel_data":
        if not presence:
            raise UsageError("changed_channel_data applies to presence channels only")
        data["auth"] = channel_auth(key, secret, socket_id, channel, channel_data)
        data["channel_data"] = json.dumps({"user_id": f"user-{detail + 1}"}, separators=(",", ":"))
    elif kind == "signed_without_socket_id":
        message = channel + (f":{channel_data}" if presence else "")
        data["auth"] = f"{key}:{hmac_sha256_hex(secret, message)}"
    elif kind == "signed_without_channel_data":
        if not presence:
            raise UsageError("signed_without_channel_data applies to presence channels only")
        data["auth"] = f"{key}:{hmac_sha256_hex(secret, f'{socket_id}:{channel}')}"
    elif kind == "missing_key_prefix":
        data["auth"] = good
    elif kind == "wrong_key_prefix":
        data["auth"] = f"{key}x:{good}"
    elif kind == "upper_case_hex":
        data["auth"] = f"{key}:{good.upper()}"
    elif kind == "empty_auth":
        data["auth"] = ""
    elif kind != "missing_auth":
        raise UsageError(f"unknown channel tamper {kind!r} (known: {', '.join(CHANNEL_TAMPERS)})")
    return data


@prop("channel_auth_tamper", "prefix", "tamper", "examples")
def channel_auth_tamper(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    prefix = str(params.get("prefix", "private-"))
    kinds = [
        k
        for k in params.get("tamper", CHANNEL_TAMPERS)
        if prefix.startswith("presence-") or k not in PRESENCE_ONLY
    ]
    control = unique_channel("conformance-control-")

    async def setup() -> None:
        await ctx.open("c1")
        await ctx.open("c2")
        await ctx.subscribe("c1", control)

    ctx.run(setup())
    other = ctx.variables["c2"]["socket_id"]

    async def reopen_if_closed() -> None:
        # A server may close the connection after refusing (CHAN-SUB-10's concern, not this
        # property's): nothing more can reach it, so each example judges a connection of its
        # own, opened afresh when the last one was closed.
        if ctx.connection("c1").has_closed():
            await ctx.open("c1")
            await ctx.subscribe("c1", control)

    def body(example: tuple[str, int]) -> None:
        kind, detail = example
        ctx.run(reopen_if_closed())
        socket_id = ctx.variables["c1"]["socket_id"]
        channel = unique_channel(f"{prefix}conformance-")
        data = tampered_subscription(ctx, kind, detail, channel, socket_id, other)

        async def go() -> None:
            await ctx.connection("c1").send_json({"event": "pusher:subscribe", "data": data})
            await _no_success_for(ctx, "c1", channel)
            token = nonce()
            await ctx.trigger("conformance-event", token, channel=channel)
            await ctx.barrier("c1", control)
            leaked = [
                f
                for f in ctx.connection("c1").unconsumed()
                if isinstance(f.parsed, dict)
                and f.parsed.get("channel") == channel
                and f.parsed.get("data") == token
            ]
            if leaked:
                raise CheckFailed(f"{kind}: an event on {channel!r} reached the refused connection")

        ctx.run(go())

    explore(ctx, st.tuples(st.sampled_from(kinds), st.integers(0, 10**6)), body, params)
