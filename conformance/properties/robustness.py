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

The inputs come from ``malformed_ws_inputs`` and ``malformed_http_inputs``. Every input
actually sent is counted in ``ctx.stats["malformed_inputs"]``, which lands in ``results.json``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import secrets
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..context import CheckContext
from ..errors import CheckFailed, PreconditionFailed, TargetError, UsageError
from ..httpclient import ApiClient, ApiResponse
from ..templates import nonce, unique_channel
from ..wsclient import Frame, RawConnection
from .malformed_http_inputs import http_input_strategy
from .malformed_inputs import (
    HTTP_KINDS,
    WS_FRAME_KINDS,
    WS_TEXT_KINDS,
    HttpInput,
    WsInput,
    at_least_one,
)
from .malformed_ws_inputs import ws_input_strategy
from .registry import explore, prop

__all__ = ["http_malformed_request", "ws_malformed_input"]

#: Close codes RFC 6455 7.4.1 gives for data an endpoint will not take: unsupported data,
#: invalid payload, policy violation, message too big.
FRAME_CLOSE_CODES = frozenset({1003, 1007, 1008, 1009})
#: What a sender may receive besides its markers: the error report, pongs, heartbeat pings.
SENDER_ALLOWED_EVENTS = frozenset({"pusher:error", "pusher:pong", "pusher:ping"})


def _count(ctx: CheckContext, sent: int) -> None:
    ctx.stats["malformed_inputs"] = ctx.stats.get("malformed_inputs", 0) + sent


def _source_address(ctx: CheckContext) -> str | None:
    """A loopback source address of this check's own, when the target is on 127.0.0.1: a
    server that blocks the address a malformed frame came from then blocks this check only."""
    host = urlsplit(ctx.target.ws_url).hostname or ""
    try:
        if not ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).version != 4:
            return None
    except ValueError:
        return None
    return f"127.0.{zlib.crc32(ctx.check.full_id.encode()) % 250 + 2}.{secrets.randbelow(250) + 2}"


def _describe(frames: Sequence[Frame]) -> str:
    return "; ".join(f.describe() for f in frames[:3]) + (
        f" (and {len(frames) - 3} more)" if len(frames) > 3 else ""
    )


def _is_marker(frame: Frame, token: str) -> bool:
    return frame.event == "robustness-marker" and frame.parsed.get("data") == token


async def _publish_marker(ctx: CheckContext, marker: str, channels: Sequence[str]) -> None:
    """One trigger per channel, so the robustness checks do not also test multi-channel
    publishing (HTTP-EVT-01 does)."""
    for channel in channels:
        await ctx.trigger("robustness-marker", marker, channel=channel)


async def _await_markers(
    ctx: CheckContext, conn: RawConnection, channels: Sequence[str], token: str
) -> list[str]:
    """Wait (one response timeout in all) for the marker on each channel; return the channels
    it did not arrive on."""
    deadline = time.monotonic() + ctx.response_timeout
    missing = []
    for channel in channels:

        def wanted(frame: Frame, channel: str = channel) -> bool:
            return _is_marker(frame, token) and frame.parsed.get("channel") == channel

        if await conn.wait_for(wanted, max(0.0, deadline - time.monotonic())) is None:
            missing.append(channel)
    return missing


def _is_pong(frame: Frame) -> bool:
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


async def _answers_ping(ctx: CheckContext, conn: RawConnection, *, at_once: bool = True) -> bool:
    """Whether the connection answers a ``pusher:ping`` or a WebSocket ping (False when
    closed). Either proves the server alive and done with what came before; how it answers
    each is PROTO-PING-01's and PROTO-PING-07's business, not robustness'.

    ``at_once=False`` sends the WebSocket ping only if the ``pusher:ping`` went unanswered and
    the connection is still open: for a sender the server may be closing, extra writes racing
    its close can turn a clean close into a TCP reset (1006) on the client side.
    """
    if conn.has_closed():
        return False
    try:
        await conn.send_json({"event": "pusher:ping", "data": {}})
    except CheckFailed:
        return False
    if not at_once:
        if await conn.wait_for(_is_pong, ctx.response_timeout) is not None:
            return True
        if conn.has_closed():
            return False
        return await conn.ws_ping(secrets.token_bytes(8), ctx.response_timeout)
    pong = asyncio.ensure_future(conn.wait_for(_is_pong, ctx.response_timeout))
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
class _Stage:
    """The per-run fixtures: bystanders and their channels."""

    public: str
    private: str
    token: str
    source: str | None


async def _open_bystanders(ctx: CheckContext, stage: _Stage) -> None:
    await ctx.open("bystander")
    await ctx.subscribe("bystander", stage.public)
    await ctx.subscribe("bystander", stage.private, auth="signed")
    await ctx.open("idle")


async def _check_bystanders(ctx: CheckContext, stage: _Stage, token: str) -> None:
    """Each marker exactly once on the subscribed bystander; nothing else on either."""
    watcher, idle = ctx.connection("bystander"), ctx.connection("idle")
    for name, conn in (("bystander", watcher), ("idle", idle)):
        if conn.closed is not None:
            raise CheckFailed(f"the {name} connection was closed: {conn.closed.describe()}")
    missing = await _await_markers(ctx, watcher, [stage.public, stage.private], token)
    if missing:
        raise CheckFailed(
            f"the bystander's subscription to {', '.join(missing)} stopped delivering: "
            "the marker published after the malformed input never arrived"
        )
    for name, conn in (("bystander", watcher), ("idle", idle)):
        if not await _answers_ping(ctx, conn):
            raise CheckFailed(f"the {name} connection stopped answering pings")
        # Heartbeat pings and late answers to the check's own pings are not strays.
        stray = [f for f in conn.unconsumed() if f.event != "pusher:ping" and not _is_pong(f)]
        if stray:
            raise CheckFailed(
                f"the {name} connection received frames it should never see: {_describe(stray)}"
            )
        conn.consumed.update(f.index for f in conn.frames)


async def _probe(ctx: CheckContext, stage: _Stage) -> None:
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
        if not await _answers_ping(ctx, conn):
            raise CheckFailed(
                "after the malformed input, a new connection answered neither pusher:ping nor a "
                "WebSocket ping"
            )
    finally:
        await conn.close()
        ctx.connections.forget("probe")


async def _drain(ctx: CheckContext) -> None:
    """Start an example clean: whatever an earlier (perhaps failed) example left in flight to
    the bystanders has arrived after a ping round trip, and is set aside."""
    for name in ("bystander", "idle"):
        conn = ctx.connection(name)
        if not conn.has_closed():
            await _answers_ping(ctx, conn)
        conn.consumed.update(f.index for f in conn.frames)


def _retoken(item: Any, placeholder: str, token: str) -> Any:
    """The input with this example's token in place of the run's placeholder (same length),
    so that what leaks can be told apart from what an earlier example left behind."""
    if isinstance(item, WsInput):
        if isinstance(item.payload, str):
            return dataclasses.replace(item, payload=item.payload.replace(placeholder, token))
        return item
    return dataclasses.replace(item, body=item.body.replace(placeholder.encode(), token.encode()))


def _asserts(params: Mapping[str, Any], known: Sequence[str]) -> frozenset[str]:
    chosen = params.get("assert", list(known))
    if isinstance(chosen, str):
        chosen = [chosen]
    unknown = set(chosen) - set(known)
    if unknown or not chosen:
        raise UsageError(f"assert takes {', '.join(known)} (got {chosen!r})")
    return frozenset(chosen)


def _kinds(params: Mapping[str, Any], known: Sequence[str]) -> list[str]:
    kinds = list(params.get("kinds", list(known)))
    unknown = set(kinds) - set(known)
    if unknown or not kinds:
        raise UsageError(f"kinds takes {', '.join(known)} (got {kinds!r})")
    return kinds


@prop("ws_malformed_input", "kinds", "assert", "examples")
def ws_malformed_input(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    asserts = _asserts(params, ("sender", "liveness", "isolation"))
    kinds = _kinds(params, WS_TEXT_KINDS + WS_FRAME_KINDS)
    stage = _Stage(
        public=unique_channel("robustness-"),
        private=unique_channel("private-robustness-"),
        token="robustness-" + nonce(),
        source=_source_address(ctx),
    )
    ctx.run(_open_bystanders(ctx, stage))
    channels = [stage.public, stage.private]
    strategy = at_least_one([ws_input_strategy(k, channels, stage.token) for k in kinds])

    async def go(inputs: tuple[WsInput | None, ...]) -> None:
        await _drain(ctx)
        token = "robustness-" + nonce()
        chosen = [_retoken(i, stage.token, token) for i in inputs if i is not None]
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
                    await _answers_ping(ctx, sender, at_once=False)
        finally:
            _count(ctx, sent)
        # The server has read everything once the sender's ping is answered (or it closed).
        answered = await _answers_ping(ctx, sender, at_once=False)
        if not answered and not sender.has_closed():
            await sender.wait_closed(0.2)
        if "sender" in asserts:
            await _check_sender(sender, closed_by, answered)
        if "liveness" in asserts:
            await _probe(ctx, stage)
        marker = nonce()
        await _publish_marker(ctx, marker, channels)
        if "isolation" in asserts:
            await _check_bystanders(ctx, stage, marker)
        if "sender" in asserts and not sender.has_closed():
            missing = await _await_markers(ctx, sender, [stage.public], marker)
            if missing and not sender.has_closed():
                raise CheckFailed(
                    "the sender's own subscription stopped delivering after the malformed input"
                )
            await _answers_ping(ctx, sender, at_once=False)
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
        f for f in sender.unconsumed() if f.event not in SENDER_ALLOWED_EVENTS and not _is_pong(f)
    ]
    if stray:
        raise CheckFailed(
            "the sender received something other than pusher:error in answer to malformed "
            f"input: {_describe(stray)}"
        )


# -- HTTP ------------------------------------------------------------------------------------


def _request(
    ctx: CheckContext, api: ApiClient, item: HttpInput
) -> tuple[list[tuple[str, str]], bytes]:
    """Sign the request, then apply the input's overrides (an ``auth_signature`` override
    replaces the correct signature; any other override is signed along)."""
    pairs = api.signed_query("POST", api.events_path(), item.body, auth=dict(item.auth))
    return pairs, item.body


@prop("http_malformed_request", "kinds", "assert", "examples")
def http_malformed_request(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    asserts = _asserts(params, ("status", "service"))
    kinds = _kinds(params, HTTP_KINDS)
    stage = _Stage(
        public=unique_channel("robustness-"),
        private=unique_channel("private-robustness-"),
        token="robustness-" + nonce(),
        source=None,
    )
    ctx.run(_open_bystanders(ctx, stage))
    channels = [stage.public, stage.private]
    strategy = at_least_one([http_input_strategy(k, channels, stage.token) for k in kinds])
    # The malformed requests go over a session of their own, so that the markers (on the
    # check's usual session) do not share its keep-alive connection; ``service`` then probes
    # the malformed requests' own connection.
    attacker = ApiClient(ctx.target, ctx.transcript, ctx.response_timeout)

    async def send(item: HttpInput) -> ApiResponse | None:
        """The answer; None (``status`` fails on it) when none came in time."""
        pairs, body = _request(ctx, attacker, item)
        try:
            return await attacker.send(
                "POST", attacker.events_path(), pairs, body, content_type=item.content_type
            )
        except TargetError as exc:
            if "status" in asserts:
                raise CheckFailed(f"{item!r}: no HTTP answer ({exc})") from None
            return None

    async def go(inputs: tuple[HttpInput | None, ...]) -> None:
        await _drain(ctx)
        token = "robustness-" + nonce()
        chosen = [_retoken(i, stage.token, token) for i in inputs if i is not None]
        accepted = 0
        sent = 0
        try:
            for item in chosen:
                response = await send(item)
                sent += 1
                if response is None:
                    continue
                ok = 400 <= response.status < 500 or (
                    item.may_accept and 200 <= response.status < 300
                )
                if "status" in asserts and not ok:
                    legal = "a 4xx" + (" or a 2xx" if item.may_accept else "")
                    raise CheckFailed(
                        f"{item!r} was answered HTTP {response.status} "
                        f"(body {response.text[:120]!r}); expected {legal}"
                    )
                if 200 <= response.status < 300:
                    accepted += 1
        finally:
            _count(ctx, sent)
        watcher = ctx.connection("bystander")
        if "status" in asserts:
            marker = nonce()
            await _publish_marker(ctx, marker, channels)
            if await _await_markers(ctx, watcher, channels, marker):
                raise PreconditionFailed("the marker after the malformed requests never arrived")
            await ctx.ping_barrier("bystander")
            leaked = [f for f in watcher.unconsumed() if token in str(f.raw)[:200_000]]
            if len(leaked) > accepted:
                raise CheckFailed(
                    f"a refused request was delivered anyway: {_describe(leaked)}"
                    if accepted == 0
                    else f"{len(leaked)} events arrived for {accepted} accepted requests: "
                    f"{_describe(leaked)}"
                )
        if "service" in asserts:
            probe = nonce()
            # One channel: this asserts the connection still serves, not multi-channel fan-out.
            body = attacker.event_body("robustness-marker", probe, channels=channels[:1])
            try:
                response = await attacker.request("POST", attacker.events_path(), body=body)
            except TargetError as exc:
                raise CheckFailed(
                    "after the malformed requests, a correctly signed trigger got no answer "
                    f"({exc})"
                ) from None
            if response.status != 200:
                raise CheckFailed(
                    "after the malformed requests, a correctly signed trigger on the same "
                    f"connection was answered HTTP {response.status}: {response.text[:120]!r}"
                )
            missing = await _await_markers(ctx, watcher, channels[:1], probe)
            if missing:
                raise CheckFailed(
                    "after the malformed requests, a correctly signed trigger was answered 200 "
                    f"but never reached the subscriber of {', '.join(missing)}"
                )
            await ctx.ping_barrier("bystander")
            again = [f for f in watcher.unconsumed() if _is_marker(f, probe)]
            if again:
                raise CheckFailed(f"the trigger was delivered more than once: {_describe(again)}")
            await _probe(ctx, stage)
        watcher.consumed.update(f.index for f in watcher.frames)
        idle = ctx.connection("idle")
        idle.consumed.update(f.index for f in idle.frames)

    def body(inputs: tuple[HttpInput | None, ...]) -> None:
        ctx.run(go(inputs))

    try:
        explore(ctx, strategy, body, params)
    finally:
        ctx.run(attacker.aclose())
