"""aiohttp adapter for webhooks: a bounded queue and one sender task.

``submit`` never waits: events go through the core's schedule (delays, cancellations,
de-duplication), become signed requests and are put on a bounded queue; when it is full the
request is dropped with a ``webhook_dropped`` log line. A single task POSTs them in order, each
with a timeout, and parks failed ones for a retry with back-off instead of blocking the queue.
So a slow or dead receiver costs webhooks, never WebSocket traffic.

A stopping server calls ``shut_down`` (nothing is held back any more, no retry is planned after
its deadline), waits on ``wait_sent`` for as long as it can, then ``stop`` drops what is left,
each request with a ``webhook_dropped`` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .metrics import AppMetrics
from .protocol.webhooks import (
    RetryPolicy,
    WebhookEvent,
    WebhookRequest,
    WebhookSchedule,
    build_request,
    is_success,
    split_requests,
)
from .serves import serves

__all__ = ["REQUEST_TIMEOUT", "WebhookSender"]

logger = logging.getLogger("reference_server")

#: Seconds one POST may take (Pusher asks receivers to answer within a few seconds).
REQUEST_TIMEOUT = 5.0


def _log(level: int, event: str, **fields: Any) -> None:
    logger.log(level, event, extra={"fields": fields})


@dataclass
class _Attempt:
    """A request and how its delivery is going."""

    request: WebhookRequest
    first_at: float | None = None
    attempts: int = 0


@dataclass(order=True)
class _Retry:
    due: float
    order: int
    attempt: _Attempt = field(compare=False)


class WebhookSender:
    """Sends one app's webhooks to ``url``.

    Args:
        wall_clock: Unix time, for ``time_ms``; delays and back-off use the loop's clock.
        metrics: where failures, drops and the queue's length are counted.
    """

    def __init__(
        self,
        url: str,
        *,
        key: str,
        secret: str,
        delay: float,
        retry_for: float,
        queue_size: int,
        retry: RetryPolicy | None = None,
        schedule: WebhookSchedule | None = None,
        wall_clock: Callable[[], float] = time.time,
        metrics: AppMetrics | None = None,
    ) -> None:
        self.url = url
        self._key = key
        self._secret = secret
        self._retry = retry or RetryPolicy(retry_for=retry_for)
        self._schedule = schedule if schedule is not None else WebhookSchedule(delay=delay)
        self._queue: asyncio.Queue[_Attempt] = asyncio.Queue(maxsize=queue_size)
        self._queue_size = queue_size
        self._retries: list[_Retry] = []
        self._order = itertools.count()
        self._wall_clock = wall_clock
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        #: Requests answered 2xx, for tests and logs.
        self.delivered = 0
        #: The attempt being POSTed, if any.
        self._sending: _Attempt | None = None
        #: Set by ``shut_down``: the loop time after which no retry is planned.
        self._deadline: float | None = None
        #: Set after each attempt and each retry put back on the queue; ``wait_sent`` wakes on it.
        self._progress = asyncio.Event()
        self._stopped = False
        self._metrics = metrics if metrics is not None else AppMetrics("")
        self._metrics.webhooks_waiting = self.waiting

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))
        self._tasks = [
            asyncio.create_task(self._send_loop()),
            asyncio.create_task(self._timer_loop()),
        ]

    async def stop(self) -> None:
        """Stop sending; every request still waiting is dropped with a ``webhook_dropped``
        line (reason ``shutdown``), and so is anything submitted later. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._drop_everything_waiting()
        if self._session is not None:
            await self._session.close()

    def shut_down(self, deadline: float) -> None:
        """The server is stopping: from now on nothing is held back (what was held is queued
        at once) and no retry is planned after ``deadline`` (the loop's clock); retries
        already due after it are dropped now. ``wait_sent`` then waits for the rest."""
        self._deadline = deadline
        kept = []
        for retry in self._retries:
            if retry.due <= deadline:
                kept.append(retry)
            else:
                self._drop(retry.attempt.request, "shutdown")
        heapq.heapify(kept)
        self._retries = kept
        self._enqueue(self._schedule.due(math.inf))
        self._wake.set()
        self._progress.set()

    async def wait_sent(self) -> None:
        """Wait until no request is waiting any more (the caller bounds the wait)."""
        while any(self.waiting().values()):
            self._progress.clear()
            await self._progress.wait()

    def waiting(self) -> dict[str, int]:
        """Requests waiting, by state: ``queued`` (or being sent), ``retrying`` (parked until
        their retry), ``held`` (``channel_vacated``/``member_removed`` held back)."""
        return {
            "queued": self._queue.qsize() + (self._sending is not None),
            "retrying": len(self._retries),
            "held": len(self._schedule),
        }

    def submit(self, events: Iterable[WebhookEvent]) -> None:
        """Take the events one input caused; never blocks."""
        batch = list(events)
        if not batch:
            return
        now = asyncio.get_running_loop().time()
        ready = self._schedule.add(batch, now)
        if self._deadline is not None or self._stopped:
            ready += self._schedule.due(math.inf)  # Stopping: nothing is held back.
        if self._stopped:
            for request in self._requests(ready, int(self._wall_clock() * 1000)):
                self._drop(request, "shutdown")
            return
        self._enqueue(ready)
        self._wake.set()

    def _requests(self, events: list[WebhookEvent], time_ms: int) -> list[WebhookRequest]:
        """The signed requests that carry ``events``."""
        return [
            build_request(group, time_ms=time_ms, key=self._key, secret=self._secret)
            for group in split_requests(events)
        ]

    def _enqueue(self, events: list[WebhookEvent]) -> None:
        time_ms = int(self._wall_clock() * 1000)
        for request in self._requests(events, time_ms):
            try:
                self._queue.put_nowait(_Attempt(request))
            except asyncio.QueueFull:
                self._drop(request, "queue_full", queue_size=self._queue_size)

    def _drop(self, request: WebhookRequest, reason: str, **fields: Any) -> None:
        """Give up on ``request``: log it and count it under ``reason`` (``queue_full``,
        ``retries_over`` or ``shutdown``)."""
        self._metrics.webhooks_dropped[reason] += 1
        _log(
            logging.WARNING,
            "webhook_dropped",
            reason=reason,
            events=[e.name for e in request.events],
            channels=[e.channel for e in request.events],
            **fields,
        )

    def _drop_everything_waiting(self) -> None:
        """``stop``: whatever is queued, being sent, waiting for a retry or held back."""
        waiting = [] if self._sending is None else [self._sending.request]
        while not self._queue.empty():
            waiting.append(self._queue.get_nowait().request)
        waiting += [retry.attempt.request for retry in sorted(self._retries)]
        self._retries = []
        waiting += self._requests(self._schedule.due(math.inf), int(self._wall_clock() * 1000))
        self._sending = None
        for request in waiting:
            self._drop(request, "shutdown")

    async def _timer_loop(self) -> None:
        """Release delayed events and due retries when their time comes."""
        loop = asyncio.get_running_loop()
        while True:
            deadlines = [d for d in (self._schedule.next_deadline(),) if d is not None]
            if self._retries:
                deadlines.append(self._retries[0].due)
            self._wake.clear()
            if deadlines:
                timeout = max(0.0, min(deadlines) - loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
            else:
                await self._wake.wait()
            now = loop.time()
            self._enqueue(self._schedule.due(now))
            while self._retries and self._retries[0].due <= now:
                retry = heapq.heappop(self._retries)
                try:
                    self._queue.put_nowait(retry.attempt)
                except asyncio.QueueFull:
                    self._drop(retry.attempt.request, "queue_full")
            self._progress.set()

    async def _send_loop(self) -> None:
        while True:
            attempt = self._sending = await self._queue.get()
            # Cancelled mid-POST (``stop``), it stays ``_sending``: ``stop`` drops it with the rest.
            await self._attempt(attempt)
            self._sending = None
            self._progress.set()

    async def _attempt(self, attempt: _Attempt) -> None:
        """POST once; on failure, park it for a retry or give up on it."""
        loop = asyncio.get_running_loop()
        if attempt.first_at is None:
            attempt.first_at = loop.time()
        attempt.attempts += 1
        status, error = await self._post(attempt.request)
        if status is not None and is_success(status):
            serves("WH-01")
            self.delivered += 1
            return
        self._metrics.webhook_failures += 1
        now = loop.time()
        delay = self._retry.next_delay(attempt.attempts, now - attempt.first_at)
        past_deadline = (
            delay is not None and self._deadline is not None and now + delay > self._deadline
        )
        if past_deadline:
            delay = None
        _log(
            logging.INFO,
            "webhook_failed",
            status=status,
            error=error,
            attempts=attempt.attempts,
            retry_in=delay,
            events=[e.name for e in attempt.request.events],
        )
        if delay is None:
            self._drop(attempt.request, "shutdown" if past_deadline else "retries_over")
            return
        serves("WH-04")
        heapq.heappush(self._retries, _Retry(now + delay, next(self._order), attempt))
        self._wake.set()

    async def _post(self, request: WebhookRequest) -> tuple[int | None, str | None]:
        assert self._session is not None
        try:
            async with self._session.post(
                self.url, data=request.body, headers=dict(request.headers)
            ) as response:
                await response.read()
                return response.status, None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, repr(exc)
