"""``ws_malformed_input``: malformed WebSocket messages, sent on a connection of their own
while the bystanders watch (see ``robustness`` for what each assertion means).

What sets the WebSocket property apart is its sender: a server may close it, but only after a
frame-level input and only with a close code RFC 6455 gives for refused data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..connections import own_loopback_address
from ..context import CheckContext
from ..errors import CheckFailed, PreconditionFailed
from ..templates import nonce
from ..wsclient import RawConnection
from .malformed_inputs import WS_FRAME_KINDS, WS_TEXT_KINDS, WsInput, at_least_one
from .malformed_ws_inputs import ws_input_strategy
from .registry import explore, prop
from .robustness import (
    Stage,
    answers_ping,
    await_markers,
    check_bystanders,
    chosen_asserts,
    chosen_kinds,
    count_sent,
    describe_frames,
    drain_bystanders,
    is_pong,
    open_bystanders,
    probe_fresh_connection,
    publish_markers,
    retoken,
)

__all__ = ["FRAME_CLOSE_CODES", "SENDER_ALLOWED_EVENTS", "ws_malformed_input"]

#: Close codes RFC 6455 7.4.1 gives for data an endpoint will not take: unsupported data,
#: invalid payload, policy violation, message too big.
FRAME_CLOSE_CODES = frozenset({1003, 1007, 1008, 1009})
#: What a sender may receive besides its markers: the error report, pongs, heartbeat pings.
SENDER_ALLOWED_EVENTS = frozenset({"pusher:error", "pusher:pong", "pusher:ping"})


def _source_address(ctx: CheckContext) -> str | None:
    return own_loopback_address(ctx.target.ws_url, ctx.check.full_id)


@prop("ws_malformed_input", "kinds", "assert", "examples")
def ws_malformed_input(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    asserts = chosen_asserts(params, ("sender", "liveness", "isolation"))
    kinds = chosen_kinds(params, WS_TEXT_KINDS + WS_FRAME_KINDS)
    stage = Stage.fresh(_source_address(ctx))
    ctx.run(open_bystanders(ctx, stage))
    channels = stage.channels
    strategy = at_least_one([ws_input_strategy(k, channels, stage.token) for k in kinds])

    async def go(inputs: tuple[WsInput | None, ...]) -> None:
        await drain_bystanders(ctx)
        token = "robustness-" + nonce()
        chosen = [retoken(i, stage.token, token) for i in inputs if i is not None]
        sender = await ctx.connect("sender", local_address=stage.source)
        if (
            sender.has_closed()
            or await sender.wait_for(
                lambda f: f.event == "pusher:connection_established", ctx.response_timeout
            )
            is None
        ):
            raise PreconditionFailed("could not open the sending connection")
        await ctx.subscribe("sender", stage.public)
        sent = 0
        closed_by = None
        try:
            for item in chosen:
                if sender.has_closed():
                    break
                if item.frame_level:
                    closed_by = item
                sent += 1
                try:
                    if isinstance(item.payload, bytes):
                        await sender.send_binary(item.payload)
                    else:
                        await sender.send_text(item.payload)
                except CheckFailed:
                    break  # closed while this one was being written (e.g. 1009 on a huge one)
                if item.frame_level:
                    # One frame-level input at a time: a close it causes is seen before anything
                    # else is sent (no data races the close frame), and it is the suspect.
                    await answers_ping(ctx, sender, at_once=False)
        finally:
            count_sent(ctx, sent)
        # The server has read everything once the sender's ping is answered (or it closed).
        answered = await answers_ping(ctx, sender, at_once=False)
        if not answered and not sender.has_closed():
            await sender.wait_closed(0.2)
        if "sender" in asserts:
            await _check_sender(sender, closed_by, answered)
        if "liveness" in asserts:
            await probe_fresh_connection(ctx, stage)
        marker = nonce()
        await publish_markers(ctx, marker, channels)
        if "isolation" in asserts:
            await check_bystanders(ctx, stage, marker)
        if "sender" in asserts and not sender.has_closed():
            missing = await await_markers(ctx, sender, [stage.public], marker)
            if missing and not sender.has_closed():
                raise CheckFailed(
                    "the sender's own subscription stopped delivering after the malformed input"
                )
            await answers_ping(ctx, sender, at_once=False)
            await _check_sender_frames(sender)
        for name in ("bystander", "idle"):
            conn = ctx.connection(name)
            conn.consumed.update(f.index for f in conn.frames)
        await sender.close()

    def body(inputs: tuple[WsInput | None, ...]) -> None:
        ctx.run(go(inputs))

    explore(ctx, strategy, body, params)


async def _check_sender(sender: RawConnection, closed_by: WsInput | None, answered: bool) -> None:
    """``closed_by``: the last frame-level input sent (a close is legal only after one)."""
    if sender.has_closed():
        closed = sender.closed
        assert closed is not None
        if closed_by is None:
            raise CheckFailed(
                f"the server closed the connection after a malformed text message "
                f"({closed.describe()}); it should answer pusher:error or ignore it"
            )
        if not closed.clean or closed.code not in FRAME_CLOSE_CODES:
            raise CheckFailed(
                f"after {closed_by!r} the connection ended with {closed.describe()}; "
                f"legal: stay open, or a close frame with "
                f"{', '.join(map(str, sorted(FRAME_CLOSE_CODES)))}"
            )
        return
    if not answered:
        raise CheckFailed(
            "after the malformed input the connection stayed open but stopped answering pusher:ping"
        )
    await _check_sender_frames(sender)


async def _check_sender_frames(sender: RawConnection) -> None:
    """Everything left unconsumed (the markers were consumed once each) must be an error
    report, a pong or a heartbeat ping; a second marker shows up here too."""
    stray = [
        f for f in sender.unconsumed() if f.event not in SENDER_ALLOWED_EVENTS and not is_pong(f)
    ]
    if stray:
        raise CheckFailed(
            "the sender received something other than pusher:error in answer to malformed "
            f"input: {describe_frames(stray)}"
        )
