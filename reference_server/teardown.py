"""Bounds on the stop after the drain, so that nothing the server waits on can keep it alive.

Once the drain is over (every client has had its 4200) the process only tears down: aiohttp
closes its connections, each app's cleanup steps run (the cluster link's Goodbye and Redis
disconnection, the webhook sender), then the tasks still running are cancelled. Each of those
waits on code that is not ours (redis-py, aiohttp) and on peers that may not answer, so each
gets a bound of its own, within ``--shutdown-timeout`` (``cli.serve``); and as a backstop,
should the event loop not get to that bound or ``asyncio.run``'s end hang, the process exits
anyway ``BACKSTOP_MARGIN`` seconds after it. Whatever a bound cuts short is logged at
warning, with the stack of what was still waiting, so a hang shows where it came from
instead of just taking longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import io
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable

from .logs import log

__all__ = [
    "BACKSTOP_MARGIN",
    "LEFTOVER_LIMIT",
    "STEP_LIMIT",
    "arm_exit_deadline",
    "bounded",
    "end_leftover_tasks",
]

#: Seconds one cleanup step (one app's cluster stop, one webhook sender's stop) may take.
STEP_LIMIT = 3.0
#: Seconds the tasks still running once the server is closed get to end after a cancel.
LEFTOVER_LIMIT = 1.0
#: Seconds past ``--shutdown-timeout`` after which the process exits anyway: the leftover
#: tasks' ``LEFTOVER_LIMIT`` and a margin. A stop that runs as it should never gets there.
BACKSTOP_MARGIN = LEFTOVER_LIMIT + 1.0
#: Seconds a cancelled step gets to unwind before it is left behind.
_UNWIND = 0.5


def _stack(task: asyncio.Task[object]) -> str:
    """Where ``task`` is waiting, innermost frame last (for the log)."""
    out = io.StringIO()
    task.print_stack(limit=12, file=out)
    return out.getvalue()


async def bounded(step: Awaitable[object], seconds: float, what: str) -> bool:
    """Run ``step`` for at most ``seconds``; return whether it finished.

    A step still running then is cancelled and given a moment to unwind; one that does not
    even then (it swallowed the cancel, or waits on something it shields) is left behind,
    its stack logged, rather than awaited: awaiting it is what would hang the exit.
    """
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait([task], timeout=seconds)
    if done:
        if not task.cancelled() and task.exception() is not None:
            log(logging.WARNING, "shutdown_step_failed", step=what, error=repr(task.exception()))
        return True
    stack = _stack(task)
    task.cancel()
    await asyncio.wait([task], timeout=_UNWIND)
    log(
        logging.WARNING,
        "shutdown_step_cut_short",
        step=what,
        seconds=seconds,
        unwound=task.done(),
        stack=stack,
    )
    return False


async def end_leftover_tasks(seconds: float = LEFTOVER_LIMIT) -> list[asyncio.Task[object]]:
    """Cancel every task but the caller and wait at most ``seconds`` for them; return (and
    log) those still running.

    ``asyncio.run`` would do the same at its end but wait for them without a bound.
    """
    current = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not current]
    for task in others:
        task.cancel()
    if not others:
        return []
    _, pending = await asyncio.wait(others, timeout=seconds)
    stuck = sorted(pending, key=lambda task: task.get_name())
    for task in stuck:
        log(
            logging.WARNING,
            "shutdown_task_left_running",
            task=task.get_name(),
            coroutine=repr(task.get_coro()),
            stack=_stack(task),
        )
    return stuck


def arm_exit_deadline(
    seconds: float, *, before_exit: Callable[[], None] | None = None
) -> threading.Timer:
    """Make sure the process is gone ``seconds`` from now.

    A thread, not a task, because what it guards against is the event loop (or the
    interpreter's own teardown, which joins executor threads) never getting there. On
    expiry it logs ``shutdown_overran`` with every thread's stack, runs ``before_exit`` and
    ends the process with status 0: the drain, what the clients and the other nodes needed,
    is over, and a supervisor that restarts failed services must not restart a node that
    was stopped on purpose.
    """

    def overrun() -> None:
        log(logging.WARNING, "shutdown_overran", seconds=seconds)
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            sys.stderr.flush()
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        if before_exit is not None:
            before_exit()
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os._exit(0)

    timer = threading.Timer(seconds, overrun)
    timer.daemon = True
    timer.start()
    return timer
