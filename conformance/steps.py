"""The step kinds a spec's ``exchange:`` is written in.

Each step is an async function registered under the name used in YAML, with a role:
``assertion`` steps test the rule (failure fails the check), ``precondition`` steps set the scene
(failure makes the check inconclusive), ``action`` steps just act.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .connections import own_loopback_address
from .context import CheckContext
from .errors import CheckFailed, PreconditionFailed
from .httpclient import NOT_JSON_BODY
from .patterns import match
from .wsclient import NOT_JSON, CloseInfo, Frame, RawConnection

__all__ = ["STEPS", "StepKind", "run_exchange"]

Role = Literal["action", "precondition", "assertion"]
StepFn = Callable[[CheckContext, Mapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class StepKind:
    name: str
    role: Role
    run: StepFn


STEPS: dict[str, StepKind] = {}


def step(name: str, role: Role) -> Callable[[StepFn], StepFn]:
    def register(fn: StepFn) -> StepFn:
        STEPS[name] = StepKind(name, role, fn)
        return fn

    return register


async def run_exchange(ctx: CheckContext, exchange: tuple[Mapping[str, Any], ...]) -> None:
    ctx.define(ctx.check.let)
    for number, raw_step in enumerate(exchange, start=1):
        ((kind, raw_args),) = raw_step.items()
        spec = STEPS[kind]
        args = ctx.render(raw_args)
        ctx.transcript.record("step", number=number, step=kind)
        try:
            await spec.run(ctx, args)
        except CheckFailed as exc:
            where = f"step {number} ({kind})"
            if spec.role == "precondition":
                raise PreconditionFailed(f"{where}: {exc}") from None
            if (failed_restart := _failed_restart(ctx)) is not None:
                # The server never went down: what the step missed says nothing of its drain.
                raise PreconditionFailed(f"{where}: {exc}; {failed_restart}") from None
            raise CheckFailed(f"{where}: {exc}") from None
        except PreconditionFailed as exc:
            raise PreconditionFailed(f"step {number} ({kind}): {exc}") from None


# -- helpers --------------------------------------------------------------------------------


def _failed_restart(ctx: CheckContext) -> str | None:
    """Why the check's restart (``restart_target``) failed, if it has."""
    task = ctx.restarting
    if task is None or not task.done() or task.cancelled() or task.exception() is None:
        return None
    return f"the restart failed: {task.exception()}"


def _frame_matches(pattern: Any) -> Callable[[Frame], bool]:
    def predicate(frame: Frame) -> bool:
        return frame.parsed is not NOT_JSON and not match(pattern, frame.parsed)

    return predicate


def _is_server_ping(conn: RawConnection) -> Callable[[Frame], bool]:
    return lambda frame: conn.auto_pong and frame.event == "pusher:ping"


def _explain_missing(conn: RawConnection, pattern: Any, seconds: float) -> str:
    lines = [f"no frame matching {json.dumps(pattern, ensure_ascii=False)} within {seconds:g}s"]
    candidates = [f for f in conn.unconsumed() if not (conn.auto_pong and f.event == "pusher:ping")]
    if candidates:
        lines.append(f"unconsumed frames on {conn.name}:")
        for frame in candidates[-6:]:
            why = "" if frame.parsed is NOT_JSON else "; ".join(match(pattern, frame.parsed)[:3])
            lines.append(f"  {frame.describe()}" + (f"  <- {why}" if why else ""))
    else:
        lines.append(f"{conn.name} received no other frame")
    if conn.closed is not None:
        lines.append(f"{conn.name} is {conn.closed.describe()}")
    return "\n".join(lines)


def value_at(value: Any, dotted: str) -> Any:
    """Follow a dotted path, decoding JSON strings on the way (for double-encoded data)."""
    for part in dotted.split("."):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise CheckFailed(f"cannot follow {dotted!r}: {value!r} is not JSON") from None
        if not isinstance(value, Mapping) or part not in value:
            raise CheckFailed(f"cannot follow {dotted!r}: {part!r} is missing")
        value = value[part]
    return value


async def _after_barrier(ctx: CheckContext, args: Mapping[str, Any]) -> RawConnection:
    """Run the step's barrier (``ping`` or ``{marker: CHANNEL}``) and return its connection."""
    conn = ctx.connection(args["on"])
    barrier = args.get("barrier", "ping")
    if isinstance(barrier, Mapping):
        await ctx.barrier(conn.name, barrier.get("marker"), node=barrier.get("node"))
    else:
        await ctx.barrier(conn.name)
    return conn


# -- steps ----------------------------------------------------------------------------------


@step("connect", "action")
async def _connect(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    await ctx.connect(
        args["as"],
        key=args.get("key"),
        path=args.get("path"),
        query=args.get("query"),
        auto_pong=args.get("auto_pong", True),
        via_proxy=args.get("via") == "proxy",
        local_address=_source(ctx, args),
        app=args.get("app"),
        node=args.get("node"),
    )


def _source(ctx: CheckContext, args: Mapping[str, Any]) -> str | None:
    """``from: own``: connect from a loopback address of the check's own (see
    ``own_loopback_address``), for a step that sends what a server may punish its sender for."""
    if args.get("from") != "own":
        return None
    return own_loopback_address(ctx.target.ws_url, ctx.check.full_id)


@step("open", "precondition")
async def _open(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    await ctx.open(
        args["as"],
        auto_pong=args.get("auto_pong", True),
        via_proxy=args.get("via") == "proxy",
        local_address=_source(ctx, args),
        app=args.get("app"),
        node=args.get("node"),
    )


@step("send", "action")
async def _send(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    conn = ctx.connection(args["on"])
    if "frame" in args:
        await conn.send_json(args["frame"])
    elif "text" in args:
        await conn.send_text(args["text"])
    else:
        await conn.send_binary(bytes.fromhex(args["binary_hex"]))


@step("expect", "assertion")
async def _expect(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    conn = ctx.connection(args["on"])
    pattern = args["frame"]
    seconds = ctx.duration(args.get("within"))
    frame = await conn.wait_for(
        _frame_matches(pattern),
        seconds,
        next_only=bool(args.get("next", False)),
        skip=_is_server_ping(conn),
    )
    if frame is None:
        raise CheckFailed(_explain_missing(conn, pattern, seconds))
    for name, dotted in (args.get("save") or {}).items():
        ctx.variables[name] = value_at(frame.parsed, dotted)


@step("expect_close", "assertion")
async def _expect_close(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    conn = ctx.connection(args["on"])
    seconds = ctx.duration(args.get("within"))
    closed = await conn.wait_closed(seconds)
    codes = list(args.get("codes") or [])
    if closed is None:
        wanted = f"close {codes}" if codes else "it to be closed"
        raise CheckFailed(f"{conn.name} is still open after {seconds:g}s; expected {wanted}")
    if not (codes or "code" in args or "reason" in args):
        return
    if closed.rejected_status is not None or not closed.clean:
        raise CheckFailed(f"{conn.name} was {closed.describe()}; expected a close frame")
    if codes and closed.code not in codes:
        raise CheckFailed(f"{conn.name} was {closed.describe()}; expected close code in {codes}")
    problems = [
        f"{what} {problem}"
        for what, value in (("code", closed.code), ("reason", closed.reason))
        if what in args
        for problem in match(args[what], value)
    ]
    if problems:
        raise CheckFailed(f"{conn.name} was {closed.describe()}: " + "; ".join(problems))


@step("await_close", "precondition")
async def _await_close(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    """The server closes the connection (any way): it only sets the scene for another rule."""
    conn = ctx.connection(args["on"])
    seconds = ctx.duration(args.get("within"))
    if await conn.wait_closed(seconds) is None:
        raise CheckFailed(f"{conn.name} is still open after {seconds:g}s")


@step("stay_open", "assertion")
async def _stay_open(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    conn = ctx.connection(args["on"])
    seconds = ctx.duration(args["for"])
    if args.get("active"):
        closed = await _stay_active(conn, seconds)
    else:
        closed = await conn.wait_closed(seconds)
    if closed is not None:
        raise CheckFailed(f"{conn.name} was {closed.describe()} within {seconds:g}s")


async def _stay_active(conn: RawConnection, seconds: float) -> CloseInfo | None:
    """Wait, sending ``pusher:ping`` every second: a client that talks but never answers."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (remaining := deadline - loop.time()) > 0:
        if conn.has_closed():
            return conn.closed
        await conn.send_json({"event": "pusher:ping", "data": {}})
        closed = await conn.wait_closed(min(1.0, remaining))
        if closed is not None:
            return closed
    return None


@step("expect_silence", "assertion")
async def _expect_silence(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    conn = await _after_barrier(ctx, args)
    pattern = args["frame"]
    # ``consumed: true``: frames an earlier step already matched count too.
    frames = conn.frames if args.get("consumed") else conn.unconsumed()
    unwanted = [f for f in frames if _frame_matches(pattern)(f)]
    if unwanted:
        shown = "\n".join(f"  {f.describe()}" for f in unwanted[:5])
        raise CheckFailed(
            f"{conn.name} received {len(unwanted)} frame(s) matching "
            f"{json.dumps(pattern, ensure_ascii=False)} that should not arrive:\n{shown}"
        )


@step("expect_every_frame", "assertion")
async def _expect_every_frame(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    conn = await _after_barrier(ctx, args)
    pattern = args["frame"]
    bad = []
    for frame in conn.frames:
        if frame.parsed is NOT_JSON:
            bad.append(f"  {frame.describe()}  <- not a JSON text frame")
        else:
            problems = match(pattern, frame.parsed)
            if problems:
                bad.append(f"  {frame.describe()}  <- {'; '.join(problems[:2])}")
    if bad:
        raise CheckFailed(
            f"{len(bad)} of the {len(conn.frames)} frames {conn.name} received do not match "
            f"{json.dumps(pattern, ensure_ascii=False)}:\n" + "\n".join(bad[:5])
        )


@step("subscribe", "precondition")
async def _subscribe(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    await ctx.subscribe(
        args["on"], args["channel"], auth=args.get("auth"), channel_data=args.get("channel_data")
    )


@step("sign_channel", "action")
async def _sign_channel(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    ctx.variables[args["as"]] = ctx.sign_channel(
        args["on"], args["channel"], args.get("channel_data")
    )


@step("sign_user", "action")
async def _sign_user(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    ctx.variables[args["as"]] = ctx.sign_user(args["on"], args["user_data"])


@step("signin", "precondition")
async def _signin(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    await ctx.signin(args["on"], args["user_data"])


@step("unsubscribe", "action")
async def _unsubscribe(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    conn = ctx.connection(args["on"])
    await conn.send_json({"event": "pusher:unsubscribe", "data": {"channel": args["channel"]}})


@step("trigger", "precondition")
async def _trigger(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    await ctx.trigger(
        args["name"],
        args["data"],
        channel=args.get("channel"),
        channels=args.get("channels"),
        socket_id=args.get("socket_id"),
        app=args.get("app"),
        node=args.get("node"),
    )


@step("http", "assertion")
async def _http(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    """With ``within``, the request is repeated (every 0.25 s) until the answer is as expected
    or the time is up: for state the server changes on its own, such as a dead connection's."""
    if "within" not in args:
        await _http_once(ctx, args)
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.duration(args["within"])
    while True:
        try:
            await _http_once(ctx, args)
            return
        except CheckFailed:
            if loop.time() + 0.25 > deadline:
                raise
        await asyncio.sleep(0.25)


async def _http_once(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    if "json" in args:
        body = json.dumps(args["json"], ensure_ascii=False, separators=(",", ":")).encode()
    else:
        body = str(args.get("body", "")).encode()
    query = {k: str(v) for k, v in (args.get("query") or {}).items()}
    auth = {k: (None if v is None else str(v)) for k, v in (args.get("auth") or {}).items()}
    response = await ctx.api_via(args.get("app"), args.get("node")).request(
        args["method"],
        args["path"],
        body=body,
        query=query,
        auth=auth,
        sign=args.get("sign", True),
    )
    expect = args["expect"]
    statuses = expect["status"] if isinstance(expect["status"], list) else [expect["status"]]
    problems = []
    if response.status not in statuses:
        problems.append(f"status {response.status}, expected {' or '.join(map(str, statuses))}")
    if (
        "content_type" in expect
        and re.search(expect["content_type"], response.content_type) is None
    ):
        problems.append(
            f"Content-Type {response.content_type!r} does not match {expect['content_type']!r}"
        )
    if "json" in expect:
        if response.json is NOT_JSON_BODY:
            problems.append(f"body is not JSON: {response.text[:200]!r}")
        else:
            problems.extend(f"body {p}" for p in match(expect["json"], response.json))
    if problems:
        raise CheckFailed(
            f"{args['method']} {args['path']}: "
            + "; ".join(problems)
            + f" (body: {response.text[:200]!r})"
        )


@step("close", "action")
async def _close(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    await ctx.connection(args["on"]).close()


@step("await_frame", "precondition")
async def _await_frame(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    """``expect`` as a precondition: the frame sets the scene for another rule."""
    await _expect(ctx, args)


# The steps of other modules register themselves here.
from . import cluster_steps, proxy_steps, restart_steps, webhook_steps  # noqa: E402, F401
