"""The step kinds a spec's ``exchange:`` is written in.

Each step is an async function registered under the name used in YAML, with a role:
``assertion`` steps test the rule (failure fails the check), ``precondition`` steps set the scene
(failure makes the check inconclusive), ``action`` steps just act.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .context import CheckContext
from .errors import CheckFailed, PreconditionFailed
from .httpclient import NOT_JSON_BODY
from .patterns import match
from .webhooks import NOT_JSON as NOT_JSON_WEBHOOK
from .webhooks import WebhookRecord, near_misses, signature_problems
from .wsclient import NOT_JSON, Frame, RawConnection

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
            raise CheckFailed(f"{where}: {exc}") from None
        except PreconditionFailed as exc:
            raise PreconditionFailed(f"step {number} ({kind}): {exc}") from None


# -- helpers --------------------------------------------------------------------------------


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


def _path_value(value: Any, dotted: str) -> Any:
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
    await ctx.barrier(conn.name, barrier.get("marker") if isinstance(barrier, Mapping) else None)
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
    )


@step("open", "precondition")
async def _open(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    await ctx.open(args["as"], auto_pong=args.get("auto_pong", True))


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
        ctx.variables[name] = _path_value(frame.parsed, dotted)


@step("expect_close", "assertion")
async def _expect_close(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    conn = ctx.connection(args["on"])
    seconds = ctx.duration(args.get("within"))
    closed = await conn.wait_closed(seconds)
    codes = list(args.get("codes") or [])
    if closed is None:
        wanted = f"close {codes}" if codes else "it to be closed"
        raise CheckFailed(f"{conn.name} is still open after {seconds:g}s; expected {wanted}")
    if not codes:
        return
    if closed.rejected_status is not None or not closed.clean or closed.code not in codes:
        raise CheckFailed(f"{conn.name} was {closed.describe()}; expected close code in {codes}")


@step("stay_open", "assertion")
async def _stay_open(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    conn = ctx.connection(args["on"])
    seconds = ctx.duration(args["for"])
    closed = await conn.wait_closed(seconds)
    if closed is not None:
        raise CheckFailed(f"{conn.name} was {closed.describe()} within {seconds:g}s")


@step("expect_silence", "assertion")
async def _expect_silence(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    conn = await _after_barrier(ctx, args)
    pattern = args["frame"]
    unwanted = [f for f in conn.unconsumed() if _frame_matches(pattern)(f)]
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
    )


@step("http", "assertion")
async def _http(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    if "json" in args:
        body = json.dumps(args["json"], ensure_ascii=False, separators=(",", ":")).encode()
    else:
        body = str(args.get("body", "")).encode()
    query = {k: str(v) for k, v in (args.get("query") or {}).items()}
    auth = {k: (None if v is None else str(v)) for k, v in (args.get("auth") or {}).items()}
    response = await ctx.api.request(
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


# -- webhooks (issue 4) ---------------------------------------------------------------------

#: Pusher holds channel_vacated and member_removed back "up to 3 s"; an expect_webhook waits
#: that much longer than the response timeout unless told otherwise.
WEBHOOK_MAX_DELAY = 3.0


@step("await_frame", "precondition")
async def _await_frame(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    """``expect`` as a precondition: the frame sets the scene for another rule."""
    await _expect(ctx, args)


def _webhook_problems(
    ctx: CheckContext, record: WebhookRecord, args: Mapping[str, Any]
) -> list[str]:
    problems = []
    if "method" in args and record.method != args["method"]:
        problems.append(f"method {record.method}, expected {args['method']}")
    if args.get("signed"):
        problems.extend(signature_problems(record, ctx.target.key, ctx.target.secret))
    for name, pattern in (args.get("headers") or {}).items():
        value = record.header(name)
        if value is None:
            problems.append(f"header {name} is missing")
        else:
            problems.extend(f"header {name} {p}" for p in match(pattern, value))
    if "body" in args:
        body = record.json()
        if body is NOT_JSON_WEBHOOK:
            problems.append("body is not JSON")
        else:
            problems.extend(f"body {p}" for p in match(args["body"], body))
    if args.get("single") and len(record.events()) != 1:
        problems.append(f"the request carries {len(record.events())} events, expected exactly 1")
    return problems


@step("expect_webhook", "assertion")
async def _expect_webhook(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    client = ctx.webhooks()
    pattern = args["event"]
    within = args.get("within")
    seconds = (
        ctx.duration(within)
        if within is not None
        else ctx.duration(ctx.settings.response_timeout + WEBHOOK_MAX_DELAY)
    )
    found = await client.wait_for(pattern, seconds)
    if found is None:
        channel = pattern.get("channel") if isinstance(pattern, Mapping) else None
        lines = near_misses(
            client.records,
            lambda e: channel is None or (isinstance(e, Mapping) and e.get("channel") == channel),
        )
        raise CheckFailed(
            f"no webhook event matching {json.dumps(pattern, ensure_ascii=False)} within "
            f"{seconds:g}s"
            + ("; received for this channel:\n" + "\n".join(lines[-6:]) if lines else "")
        )
    record, _, event = found
    problems = _webhook_problems(ctx, record, args)
    if problems:
        raise CheckFailed(
            f"webhook #{record.seq} ({event.get('name') if isinstance(event, Mapping) else '?'}): "
            + "; ".join(problems)
            + f"\n  {record.describe()}"
        )
    for name, dotted in (args.get("save") or {}).items():
        ctx.variables[name] = _path_value(event, dotted)


async def _count_webhooks(ctx: CheckContext, args: Mapping[str, Any], count: int) -> None:
    """Every event received so far, consumed or not, is counted: the step is ordered after an
    ``expect_webhook`` for a *later* event (see docs/spec-format.md)."""
    client = ctx.webhooks()
    await client.poll()
    found = client.matches(args["event"], unconsumed=False)
    if len(found) != count:
        shown = "\n".join(f"  {record.describe()}" for record, _, _ in found[:5])
        raise CheckFailed(
            f"{len(found)} webhook event(s) matching "
            f"{json.dumps(args['event'], ensure_ascii=False)} arrived, expected {count}"
            + (f":\n{shown}" if shown else "")
        )


@step("expect_no_webhook", "assertion")
async def _expect_no_webhook(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    await _count_webhooks(ctx, args, 0)


@step("expect_webhook_count", "assertion")
async def _expect_webhook_count(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    await _count_webhooks(ctx, args, int(args["count"]))


@step("webhook_reply", "action")
async def _webhook_reply(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    await ctx.webhooks().add_rule(args["event"], int(args["status"]), int(args.get("times", 1)))
