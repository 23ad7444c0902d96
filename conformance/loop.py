"""An asyncio event loop on a thread of its own, for the life of one check.

Properties are synchronous (hypothesis drives them) and reach the network through ``run``.
With the loop on its own thread, connections keep reading frames and answering the server's
pings while hypothesis generates or shrinks examples; otherwise a slow moment would look to
the server like a dead client.

The loop is also where a check's time budget is enforced: every wait on the network passes
through ``run``, so a check that has spent its budget stops at its next wait instead of
crawling on against a target too slow for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from .errors import CheckOverBudget

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    def __init__(self, *, budget: float | None = None) -> None:
        """``budget``: seconds this check may spend from now on; ``None`` for no bound."""
        self.loop = asyncio.new_event_loop()
        self.budget = budget
        self.deadline = None if budget is None else time.monotonic() + budget
        #: Set by ``abort``: the run was interrupted, every wait ends at once.
        self.aborted = False
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="conformance-check-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result (or its exception).

        Past the deadline the coroutine is cancelled and ``CheckOverBudget`` raised: a
        ``BaseException``, so that hypothesis stops at once rather than shrinking a timeout
        as if it were a counterexample."""
        if self.aborted:
            coro.close()
            raise KeyboardInterrupt
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            if self.deadline is None:
                return future.result()
            return future.result(timeout=max(0.0, self.deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise CheckOverBudget(self.budget or 0.0) from None
        except concurrent.futures.CancelledError:
            if self.aborted:
                raise KeyboardInterrupt from None
            raise

    def abort(self) -> None:
        """Stop the check from any thread (the run was interrupted): what runs on the loop is
        cancelled, and the wait in ``run``, like every later one, raises ``KeyboardInterrupt``
        at once, which hypothesis lets through instead of shrinking."""
        self.aborted = True
        if not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(_cancel_pending, self.loop)

    def close(self) -> None:
        """Cancel what is still running, stop the loop and join its thread."""
        if self.loop.is_closed():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_all(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _cancel_all() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()
