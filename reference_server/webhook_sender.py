"""aiohttp adapter for webhooks: a bounded queue and one sender task.

``submit`` never waits: events go through the core's schedule (delays, cancellations,
de-duplication), become signed requests and are put on a bounded queue; when it is full the
request is dropped with a ``webhook_dropped`` log line. A single task POSTs them in order, each
with a timeout, and parks failed ones for a retry with back-off instead of blocking the queue.
So a slow or dead receiver costs webhooks, never WebSocket traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

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
        clock: the loop's clock, for delays and back-off; ``wall_clock`` gives ``time_ms``.
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

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))
        self._tasks = [
            asyncio.create_task(self._send_loop()),
            asyncio.create_task(self._timer_loop()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    def submit(self, events: Iterable[WebhookEvent]) -> None:
        """Take the events one input caused; never blocks."""
        batch = list(events)
        if not batch:
            return
        now = asyncio.get_running_loop().time()
        self._enqueue(self._schedule.add(batch, now))
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
                _log(
                    logging.WARNING,
                    "webhook_dropped",
                    reason="queue full",
                    queue_size=self._queue_size,
                    events=[e.name for e in request.events],
                    channels=[e.channel for e in request.events],
                )

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
                    _log(logging.WARNING, "webhook_dropped", reason="queue full on retry")

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            attempt = await self._queue.get()
            now = loop.time()
            if attempt.first_at is None:
                attempt.first_at = now
            attempt.attempts += 1
            status, error = await self._post(attempt.request)
            if status is not None and is_success(status):
                serves("WH-01")
                self.delivered += 1
                continue
            delay = self._retry.next_delay(attempt.attempts, loop.time() - attempt.first_at)
            _log(
                logging.INFO,
                "webhook_failed",
                status=status,
                error=error,
                attempts=attempt.attempts,
                retry_in=delay,
                events=[e.name for e in attempt.request.events],
            )
            if delay is not None:
                serves("WH-04")
                heapq.heappush(
                    self._retries, _Retry(loop.time() + delay, next(self._order), attempt)
                )
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
