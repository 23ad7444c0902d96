"""The webhook steps of an exchange: what the receiver got, and how it answers.

Registered in ``steps.STEPS`` like every other step kind; see docs/spec-format.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .context import CheckContext
from .errors import CheckFailed
from .patterns import match
from .steps import step, value_at
from .webhooks import NOT_JSON as NOT_JSON_WEBHOOK
from .webhooks import WebhookRecord, near_misses, signature_problems

__all__: list[str] = []

#: Pusher holds channel_vacated and member_removed back "up to 3 s"; an expect_webhook waits
#: that much longer than the response timeout unless told otherwise.
WEBHOOK_MAX_DELAY = 3.0


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
        ctx.variables[name] = value_at(event, dotted)


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
