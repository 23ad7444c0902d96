"""The steps of the shutdown checks: restart the target, and look at it while it drains.

A check holding ``restart_target`` runs alone, after every other check (``items.Job``), since
the restart ends every connection the server has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from .context import CheckContext
from .errors import CheckFailed, HarnessError, PreconditionFailed, TargetError
from .patterns import match
from .steps import step
from .wsclient import CloseInfo

__all__ = ["RESTART_STEP"]

#: The step that makes a check run alone.
RESTART_STEP = "restart_target"


@step(RESTART_STEP, "action")
async def _restart_target(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    """Start a graceful restart and go on at once: the next steps watch the server drain."""
    restarter = ctx.settings.restarter
    if restarter is None:
        raise PreconditionFailed(
            "nothing can restart this target: give its file restart: {command: ...} "
            "(checks run side by side in one process only)"
        )
    try:
        await restarter.begin()
    except HarnessError as exc:
        raise PreconditionFailed(str(exc)) from None
    ctx.transcript.record("restart_started")
    ctx.restarting = asyncio.ensure_future(restarter.finish())


@step("expect_refused", "assertion")
async def _expect_refused(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    """A new handshake is not greeted: refused at TCP, answered with an HTTP error, or closed
    before ``pusher:connection_established``.

    ``key``, ``path``, ``query``: as ``connect``. ``status`` (a pattern on the HTTP status of a
    refused upgrade) and ``codes`` (the close codes of an upgrade accepted, then closed) narrow
    the refusals that count: with either, a handshake that fails at TCP or closes otherwise
    fails the step.
    """
    name = args["as"]
    strict = "status" in args or "codes" in args
    try:
        conn = await ctx.connect(
            name, key=args.get("key"), path=args.get("path"), query=args.get("query")
        )
    except TargetError as exc:  # nothing listens: refused at TCP
        if strict:
            raise CheckFailed(f"{name}: the handshake failed at TCP ({exc})") from None
        ctx.transcript.record("refused", name, how=str(exc))
        return
    if conn.closed is not None:
        if strict:
            _refusal_as_asked(name, conn.closed, args)
        return
    greeting = await conn.wait_for(
        lambda f: f.event == "pusher:connection_established", ctx.response_timeout
    )
    if greeting is not None:
        raise CheckFailed(f"{name} was greeted with connection_established")
    if "codes" in args:
        closed = await conn.wait_closed(ctx.response_timeout)
        if closed is None:
            waited = f"{ctx.response_timeout:g}s"
            raise CheckFailed(f"{name} is neither greeted nor closed after {waited}")
        _refusal_as_asked(name, closed, args)


def _refusal_as_asked(name: str, closed: CloseInfo, args: Mapping[str, Any]) -> None:
    """Whether a refusal takes one of the forms ``status`` and ``codes`` allow."""
    if closed.rejected_status is not None:
        if "status" in args and not match(args["status"], closed.rejected_status):
            return
        raise CheckFailed(f"{name}: {closed.describe()}; expected {_forms(args)}")
    if closed.clean and closed.code in (args.get("codes") or []):
        return
    raise CheckFailed(f"{name} was {closed.describe()}; expected {_forms(args)}")


def _forms(args: Mapping[str, Any]) -> str:
    forms = []
    if "status" in args:
        forms.append("an HTTP status matching the pattern")
    if "codes" in args:
        forms.append(f"close code in {list(args['codes'])}")
    return " or ".join(forms)


@step("await_target", "precondition")
async def _await_target(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    """The restart finished and the server takes handshakes again."""
    if ctx.restarting is None:
        raise PreconditionFailed("await_target without a restart_target before it")
    try:
        await ctx.restarting
    except HarnessError as exc:
        raise PreconditionFailed(str(exc)) from None
    ctx.transcript.record("restart_finished")
    conn = await ctx.connect(args.get("as", "after_restart"))
    greeting = await conn.wait_for(
        lambda f: f.event == "pusher:connection_established", ctx.response_timeout
    )
    if greeting is None:
        raise PreconditionFailed("the restarted server does not greet a new connection")
