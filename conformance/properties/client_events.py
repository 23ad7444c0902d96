"""Client events: for every channel type, subscribed or not, a client event goes exactly where
the rules say, unchanged, never back to its sender; and the rate limit holds.

Senders pace themselves below the documented 10 events per second, as a well-behaved client
does, so that only the rate-limit property ever meets the limit.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from ..context import CheckContext
from ..errors import CheckFailed, PreconditionFailed, UsageError
from ..templates import nonce, unique_channel
from ..wsclient import Frame
from .registry import explore, prop

CHANNEL_PREFIXES = {
    "public": "conformance-",
    "private": "private-conformance-",
    "presence": "presence-conformance-",
    "private-encrypted": "private-encrypted-conformance-",
}
ALLOWED_TYPES = ("private", "presence")
ASPECTS = ("delivered", "refused", "not_echoed", "user_id", "unchanged")

#: Below the documented limit of 10 per second, with room for timer jitter.
PACE_PER_SECOND = 8


class Pacer:
    """Waits just long enough to keep a sender under ``rate`` events in any rolling second."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.sent: deque[float] = deque()

    async def wait(self) -> None:
        now = time.monotonic()
        while self.sent and now - self.sent[0] >= 1.0:
            self.sent.popleft()
        if len(self.sent) >= self.rate:
            await asyncio.sleep(1.0 - (now - self.sent[0]) + 0.01)
            self.sent.popleft()
        self.sent.append(time.monotonic())


def _channel_data(user: str) -> dict[str, Any]:
    return {"user_id": user, "user_info": {"role": "conformance"}}


async def _join(ctx: CheckContext, name: str, channel: str, kind: str, user: str) -> None:
    if kind == "public":
        await ctx.subscribe(name, channel)
    elif kind == "presence":
        await ctx.subscribe(name, channel, auth="signed", channel_data=_channel_data(user))
    else:
        await ctx.subscribe(name, channel, auth="signed")


def _payloads() -> st.SearchStrategy[Any]:
    text = st.text(max_size=60)
    objects = st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4)
    return st.one_of(text, objects)


@prop("client_event_matrix", "channel_types", "sender_subscribed", "assert", "examples")
def client_event_matrix(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    types = list(params.get("channel_types", list(CHANNEL_PREFIXES)))
    subscribed = [bool(s) for s in params.get("sender_subscribed", [True, False])]
    aspects = set(params.get("assert", ASPECTS))
    if not set(types) <= set(CHANNEL_PREFIXES) or not aspects <= set(ASPECTS):
        raise UsageError(
            f"client_event_matrix takes channel_types from {', '.join(CHANNEL_PREFIXES)} "
            f"and assert from {', '.join(ASPECTS)}"
        )
    sender_user, receiver_user = f"sender-{nonce()}", f"receiver-{nonce()}"
    pacer = Pacer(PACE_PER_SECOND)
    examples = st.tuples(
        st.sampled_from(types),
        st.sampled_from(subscribed),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20),
        _payloads(),
    )

    async def setup() -> None:
        await ctx.open("sender")
        await ctx.open("receiver")

    ctx.run(setup())

    def body(example: tuple[str, bool, str, Any]) -> None:
        kind, sender_in, suffix, data = example
        ctx.run(
            _one_event(
                ctx, pacer, kind, sender_in, f"client-{suffix}", data, aspects,
                sender_user, receiver_user,
            )
        )  # fmt: skip

    explore(ctx, examples, body, params)


async def _one_event(
    ctx: CheckContext,
    pacer: Pacer,
    kind: str,
    sender_in: bool,
    event: str,
    data: Any,
    aspects: set[str],
    sender_user: str,
    receiver_user: str,
) -> None:
    channel = unique_channel(CHANNEL_PREFIXES[kind])
    await _join(ctx, "receiver", channel, kind, receiver_user)
    if sender_in:
        await _join(ctx, "sender", channel, kind, sender_user)
    sender, receiver = ctx.connection("sender"), ctx.connection("receiver")
    await pacer.wait()
    message = {"event": event, "channel": channel, "data": data}
    await sender.send_json(message)
    allowed = kind in ALLOWED_TYPES and sender_in

    def is_it(frame: Frame) -> bool:
        return frame.event == event and frame.parsed.get("channel") == channel

    if allowed and aspects & {"delivered", "unchanged", "user_id"}:
        frame = await receiver.wait_for(is_it, ctx.response_timeout)
        if frame is None:
            if "delivered" in aspects:
                raise CheckFailed(
                    f"{event} on {kind} channel {channel!r} never reached the receiver"
                )
            raise PreconditionFailed(f"{event} on {kind} channel was not delivered")
        got = frame.parsed
        if "unchanged" in aspects and (
            got.get("event") != event
            or got.get("data") != data
            or type(got.get("data")) is not type(data)
        ):
            raise CheckFailed(
                f"client event arrived changed: sent {json.dumps(message)[:200]}, "
                f"received {frame.describe()}"
            )
        if "user_id" in aspects and kind == "presence" and got.get("user_id") != sender_user:
            raise CheckFailed(
                f"client event on a presence channel arrived with user_id "
                f"{got.get('user_id')!r}, expected the sender's {sender_user!r}"
            )
    await ctx.ping_barrier("sender")
    await ctx.ping_barrier("receiver")
    if not allowed and "refused" in aspects:
        leaked = [f for f in receiver.unconsumed() if is_it(f)]
        if leaked:
            why = "public" if kind == "public" else kind
            if not sender_in:
                why += " (sender not subscribed)"
            raise CheckFailed(
                f"a client event on a {why} channel was relayed: {leaked[0].describe()}"
            )
    if "not_echoed" in aspects:
        echoed = [f for f in sender.unconsumed() if is_it(f)]
        if echoed:
            raise CheckFailed(
                f"the sender received its own client event back: {echoed[0].describe()}"
            )
    for name in ("sender", "receiver"):
        await ctx.connection(name).send_json(
            {"event": "pusher:unsubscribe", "data": {"channel": channel}}
        )


#: Tries at sending the burst fast enough before the check gives up as inconclusive.
BURST_TRIES = 3


@prop("client_event_rate_limit", "burst", "limit")
def client_event_rate_limit(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    burst, limit = int(params.get("burst", 20)), int(params.get("limit", 10))

    async def send_burst(attempt: int) -> tuple[str, str, str] | None:
        """Fresh connections and channel; the burst, or None when this machine was too busy
        to send it within half a second (then the rate window proves nothing)."""
        channel = unique_channel("private-conformance-rate-")
        sender, receiver = f"sender{attempt}", f"receiver{attempt}"
        await ctx.open(sender)
        await ctx.open(receiver)
        await ctx.subscribe(sender, channel, auth="signed")
        await ctx.subscribe(receiver, channel, auth="signed")
        started = time.monotonic()
        for number in range(burst):
            await ctx.connection(sender).send_json(
                {"event": f"client-burst-{number}", "channel": channel, "data": "x"}
            )
        if time.monotonic() - started > 0.5:
            for name in (sender, receiver):
                await ctx.connection(name).close()
            return None
        return sender, receiver, channel

    async def go() -> None:
        for attempt in range(BURST_TRIES):
            sent = await send_burst(attempt)
            if sent is not None:
                break
        else:
            raise PreconditionFailed(
                f"could not send the burst within half a second ({BURST_TRIES} tries)"
            )
        sender_name, receiver_name, channel = sent
        await ctx.ping_barrier(sender_name)
        await ctx.ping_barrier(receiver_name)
        sender, receiver = ctx.connection(sender_name), ctx.connection(receiver_name)
        delivered = [
            f for f in receiver.unconsumed()
            if (f.event or "").startswith("client-burst-") and f.parsed.get("channel") == channel
        ]  # fmt: skip
        rejected = [
            f for f in sender.unconsumed()
            if f.event == "pusher:error" and f.data_field("code") == 4301
        ]  # fmt: skip
        if len(delivered) > limit:
            raise CheckFailed(
                f"{len(delivered)} of a burst of {burst} client events sent within a second were "
                f"relayed; at most {limit} may be"
            )
        if len(rejected) != burst - len(delivered):
            raise CheckFailed(
                f"{burst - len(delivered)} client events were dropped but the sender got "
                f"{len(rejected)} pusher:error with code 4301"
            )

    ctx.run(go())
