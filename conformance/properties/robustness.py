"""Robustness: malformed WebSocket and HTTP input is refused or ignored, the server stays alive,
and nobody else notices.

Each example sends a handful of malformed inputs (at most one per selected category, so that
every category is exercised in every run and a failure shrinks to the one input that matters),
then checks what the requirement asserts:

- ``sender``: the sending connection only got ``pusher:error`` (or nothing, or pongs), still
  answers ``pusher:ping`` and its own subscription still delivers; for frame-level input
  (binary, huge, very deep) a clean close with 1003/1007/1008/1009 is also legal;
- ``liveness``: a fresh connection is greeted and its ``pusher:ping`` answered;
- ``isolation``: bystanders opened once per run (one subscribed to a public and a private
  channel, one subscribed to nothing) get each marker exactly once and nothing else;
- ``status`` (HTTP): each request is answered with a 4xx within the response timeout, and what it
  asked to publish reaches nobody;
- ``service`` (HTTP): afterwards a correctly signed trigger on the same keep-alive connection is
  answered 200 and delivered exactly once, and a fresh connection is greeted.

The WebSocket property is in ``robustness_ws``, the HTTP one in ``robustness_http``; this module
holds the stage both set up and judge the same way (the bystanders, the markers published to
them, the pings that prove a connection alive). The inputs come from ``malformed_ws_inputs``
and ``malformed_http_inputs``. Every input actually sent is counted in
``ctx.stats["malformed_inputs"]``, which lands in ``results.json``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..context import CheckContext
from ..errors import CheckFailed, TargetError, UsageError
from ..templates import nonce, unique_channel
from ..wsclient import Frame, RawConnection
from .malformed_inputs import WsInput

__all__ = [
    "Stage",
    "answers_ping",
    "await_markers",
    "check_bystanders",
    "chosen_asserts",
    "chosen_kinds",
    "count_sent",
    "describe_frames",
    "drain_bystanders",
    "is_marker",
    "is_pong",
    "open_bystanders",
    "probe_fresh_connection",
    "publish_markers",
    "retoken",
]


def count_sent(ctx: CheckContext, sent: int) -> None:
    """Add to the check's ``malformed_inputs`` count: the inputs it set out to send, not all
    it drew (an example stops sending once the server has closed its connection)."""
    ctx.stats["malformed_inputs"] = ctx.stats.get("malformed_inputs", 0) + sent


def describe_frames(frames: Sequence[Frame]) -> str:
    return "; ".join(f.describe() for f in frames[:3]) + (
        f" (and {len(frames) - 3} more)" if len(frames) > 3 else ""
    )


def is_marker(frame: Frame, token: str) -> bool:
    return frame.event == "robustness-marker" and frame.parsed.get("data") == token


async def publish_markers(ctx: CheckContext, marker: str, channels: Sequence[str]) -> None:
    """One trigger per channel, so the robustness checks do not also test multi-channel
    publishing (HTTP-EVT-01 does)."""
    for channel in channels:
        await ctx.trigger("robustness-marker", marker, channel=channel)


async def await_markers(
    ctx: CheckContext, conn: RawConnection, channels: Sequence[str], token: str
) -> list[str]:
    """Wait (one response timeout in all) for the marker on each channel; return the channels
    it did not arrive on."""
    deadline = time.monotonic() + ctx.response_timeout
    missing = []
    for channel in channels:

        def wanted(frame: Frame, channel: str = channel) -> bool:
            return is_marker(frame, token) and frame.parsed.get("channel") == channel

        if await conn.wait_for(wanted, max(0.0, deadline - time.monotonic())) is None:
            missing.append(channel)
    return missing


def is_pong(frame: Frame) -> bool:
    """A ``pusher:pong``, even one sent in a binary frame: the answer to the check's own ping
    proves the server alive here; its framing is PROTO-CONN-04's and PROTO-PING-01's business."""
    if frame.event == "pusher:pong":
        return True
    if not frame.binary or not isinstance(frame.raw, bytes):
        return False
    try:
        parsed = json.loads(frame.raw)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("event") == "pusher:pong"


#: Seconds a sender's connection is given to close before a WebSocket ping is sent on it, when
#: the target ignores ``pusher:ping`` (a loopback close takes milliseconds).
CLOSE_GRACE = 0.25


async def answers_ping(ctx: CheckContext, conn: RawConnection, *, at_once: bool = True) -> bool:
    """Whether the connection answers a ``pusher:ping`` or a WebSocket ping (False when
    closed). Either proves the server alive and done with what came before; how it answers
    each is PROTO-PING-01's and PROTO-PING-07's business, not robustness'.

    ``at_once=False`` sends the WebSocket ping only if the ``pusher:ping`` went unanswered and
    the connection is still open: for a sender the server may be closing, extra writes racing
    its close can turn a clean close into a TCP reset (1006) on the client side.
    """
    if conn.has_closed():
        return False
    if not at_once and not ctx.settings.answers_pusher_ping:
        # A target that ignores pusher:ping (the pre-flight probe saw it): waiting for its
        # pong would cost a response timeout per example. A close already on its way comes
        # within a round trip; after that, a WebSocket ping no longer races it.
        if await conn.wait_closed(CLOSE_GRACE * ctx.settings.timeout_multiplier) is not None:
            return False
        return await conn.ws_ping(secrets.token_bytes(8), ctx.response_timeout)
    try:
        await conn.send_json({"event": "pusher:ping", "data": {}})
    except CheckFailed:
        return False
    if not at_once:
        if await conn.wait_for(is_pong, ctx.response_timeout) is not None:
            return True
        if conn.has_closed():
            return False
        return await conn.ws_ping(secrets.token_bytes(8), ctx.response_timeout)
    pong = asyncio.ensure_future(conn.wait_for(is_pong, ctx.response_timeout))
    ws_pong = asyncio.ensure_future(conn.ws_ping(secrets.token_bytes(8), ctx.response_timeout))
    pending: set[asyncio.Future[Any]] = {pong, ws_pong}
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(task.result() for task in done):
                return True
        return False
    finally:
        for task in pending:
            task.cancel()


@dataclass
class Stage:
    """The per-run fixtures: bystanders and their channels."""

    public: str
    private: str
    token: str
    source: str | None

    @classmethod
    def fresh(cls, source: str | None = None) -> Stage:
        """Channels and a placeholder token no other run uses; ``source``: the address the
        check's own connections come from (None: the system's choice)."""
        return cls(
            public=unique_channel("robustness-"),
            private=unique_channel("private-robustness-"),
            token="robustness-" + nonce(),
            source=source,
        )

    @property
    def channels(self) -> list[str]:
        """The bystanders' channels, public first, as the input strategies take them."""
        return [self.public, self.private]


async def open_bystanders(ctx: CheckContext, stage: Stage) -> None:
    await ctx.open("bystander")
    await ctx.subscribe("bystander", stage.public)
    await ctx.subscribe("bystander", stage.private, auth="signed")
    await ctx.open("idle")


async def check_bystanders(ctx: CheckContext, stage: Stage, token: str) -> None:
    """Each marker exactly once on the subscribed bystander; nothing else on either."""
    watcher, idle = ctx.connection("bystander"), ctx.connection("idle")
    for name, conn in (("bystander", watcher), ("idle", idle)):
        if conn.closed is not None:
            raise CheckFailed(f"the {name} connection was closed: {conn.closed.describe()}")
    missing = await await_markers(ctx, watcher, [stage.public, stage.private], token)
    if missing:
        raise CheckFailed(
            f"the bystander's subscription to {', '.join(missing)} stopped delivering: "
            "the marker published after the malformed input never arrived"
        )
    for name, conn in (("bystander", watcher), ("idle", idle)):
        if not await answers_ping(ctx, conn):
            raise CheckFailed(f"the {name} connection stopped answering pings")
        # Heartbeat pings and late answers to the check's own pings are not strays.
        stray = [f for f in conn.unconsumed() if f.event != "pusher:ping" and not is_pong(f)]
        if stray:
            raise CheckFailed(
                f"the {name} connection received frames it should never see: "
                + describe_frames(stray)
            )
        conn.consumed.update(f.index for f in conn.frames)


async def probe_fresh_connection(ctx: CheckContext, stage: Stage) -> None:
    """A fresh connection is greeted and answers a ping."""
    try:
        conn = await ctx.connect("probe", local_address=stage.source)
    except TargetError as exc:
        raise CheckFailed(f"after the malformed input, a new connection failed: {exc}") from None
    try:
        if conn.closed is not None:
            raise CheckFailed(
                f"after the malformed input, a new connection was refused: {conn.closed.describe()}"
            )
        greeted = await conn.wait_for(
            lambda f: f.event == "pusher:connection_established", ctx.response_timeout
        )
        if greeted is None:
            raise CheckFailed(
                "after the malformed input, a new connection got no pusher:connection_established"
                + (f" ({conn.closed.describe()})" if conn.closed else "")
            )
        if not await answers_ping(ctx, conn):
            raise CheckFailed(
                "after the malformed input, a new connection answered neither pusher:ping nor a "
                "WebSocket ping"
            )
    finally:
        await conn.close()
        ctx.connections.forget("probe")


async def drain_bystanders(ctx: CheckContext) -> None:
    """Start an example clean: whatever an earlier (perhaps failed) example left in flight to
    the bystanders has arrived after a ping round trip, and is set aside."""
    for name in ("bystander", "idle"):
        conn = ctx.connection(name)
        if not conn.has_closed():
            await answers_ping(ctx, conn)
        conn.consumed.update(f.index for f in conn.frames)


def retoken(item: Any, placeholder: str, token: str) -> Any:
    """The input with this example's token in place of the run's placeholder (same length),
    so that what leaks can be told apart from what an earlier example left behind."""
    if isinstance(item, WsInput):
        if isinstance(item.payload, str):
            return dataclasses.replace(item, payload=item.payload.replace(placeholder, token))
        return item
    return dataclasses.replace(item, body=item.body.replace(placeholder.encode(), token.encode()))


def chosen_asserts(params: Mapping[str, Any], known: Sequence[str]) -> frozenset[str]:
    chosen = params.get("assert", list(known))
    if isinstance(chosen, str):
        chosen = [chosen]
    unknown = set(chosen) - set(known)
    if unknown or not chosen:
        raise UsageError(f"assert takes {', '.join(known)} (got {chosen!r})")
    return frozenset(chosen)


def chosen_kinds(params: Mapping[str, Any], known: Sequence[str]) -> list[str]:
    kinds = list(params.get("kinds", list(known)))
    unknown = set(kinds) - set(known)
    if unknown or not kinds:
        raise UsageError(f"kinds takes {', '.join(known)} (got {kinds!r})")
    return kinds
