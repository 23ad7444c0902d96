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
from .steps import step

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
    before ``pusher:connection_established``."""
    name = args["as"]
    try:
        conn = await ctx.connect(name)
    except TargetError as exc:  # nothing listens: refused at TCP
        ctx.transcript.record("refused", name, how=str(exc))
        return
    if conn.closed is not None:
        return
    greeting = await conn.wait_for(
        lambda f: f.event == "pusher:connection_established", ctx.response_timeout
    )
    if greeting is not None:
        raise CheckFailed(
            f"{name} was greeted with connection_established while the server drained"
        )


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
