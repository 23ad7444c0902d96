"""Publishing benchmark events through a target's HTTP API, signed (``conformance.signing``).

Runs in the load generator's parent process while the workers hold the subscribers. Each
event's data is made just before its request starts (``tally.event_data``), so the send time
it carries is when the publish began: latency is measured publish-request-start to receipt.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp

from ..signing import api_auth_params, sign_api_request
from ..tls import client_context
from .model import BenchTarget
from .tally import event_data

__all__ = [
    "EVENT_NAME",
    "PublishOutcome",
    "Publisher",
    "publish_at_rate",
    "publish_sequence",
]

#: The name every published benchmark event has.
EVENT_NAME = "bench"
#: Seconds one HTTP request may take.
REQUEST_TIMEOUT = 10.0


class PublishError(Exception):
    """The target refused a publish or did not answer it."""


@dataclass(frozen=True)
class PublishOutcome:
    #: Monotonic time the first request started, and the last acknowledgement came.
    first_sent: float | None
    last_acknowledged: float | None
    #: Events whose request was answered 2xx, and those that were not (or never sent).
    acknowledged: int
    unacknowledged: tuple[int, ...]
    requests: int
    #: The first refusal or failure, in one line; publishing stopped there.
    error: str | None


class Publisher:
    """One HTTP session to a target; use as ``async with``."""

    def __init__(self, target: BenchTarget, concurrency: int) -> None:
        self.target = target
        self.concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Publisher:
        context: ssl.SSLContext | bool = (
            client_context(self.target.ca_file, insecure=self.target.insecure) or True
        )
        connector = aiohttp.TCPConnector(limit=self.concurrency, ssl=context)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def publish(self, channel: str, datas: list[str]) -> None:
        """One event through ``/events``, or several through ``/batch_events``.

        Raises:
            PublishError: an answer other than 2xx, or none.
        """
        app = self.target.app_id
        if len(datas) == 1:
            path = f"/apps/{app}/events"
            document: object = {"name": EVENT_NAME, "channels": [channel], "data": datas[0]}
        else:
            path = f"/apps/{app}/batch_events"
            document = {
                "batch": [{"name": EVENT_NAME, "channel": channel, "data": d} for d in datas]
            }
        body = json.dumps(document, separators=(",", ":")).encode()
        params = api_auth_params(self.target.key, body, int(time.time()))
        params["auth_signature"] = sign_api_request(self.target.secret, "POST", path, params)
        url = f"{self.target.http_url.rstrip('/')}{path}?{urlencode(params)}"
        assert self._session is not None, "use the Publisher as 'async with'"
        try:
            async with self._session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                if response.status >= 300:
                    text = (await response.text(errors="replace")).strip().replace("\n", " ")
                    raise PublishError(f"POST {path}: HTTP {response.status} {text[:120]}")
                await response.read()
        except (aiohttp.ClientError, OSError) as exc:
            raise PublishError(f"POST {path} failed: {_describe(exc)}") from None
        except TimeoutError:
            raise PublishError(f"POST {path}: no answer within {REQUEST_TIMEOUT:g} s") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error.strerror:
        return f"{exc.host}:{exc.port}: {exc.os_error.strerror}"
    return str(exc) or type(exc).__name__


class _Ledger:
    """Which events were acknowledged; shared by the publishing tasks."""

    def __init__(self, events: int) -> None:
        self.acknowledged = bytearray(events)
        self.count = 0
        self.requests = 0
        self.first_sent: float | None = None
        self.last_acknowledged: float | None = None
        self.error: str | None = None

    def sent(self, now: float) -> None:
        if self.first_sent is None:
            self.first_sent = now
        self.requests += 1

    def done(self, seqs: range) -> None:
        for seq in seqs:
            self.acknowledged[seq] = 1
        self.count += len(seqs)
        self.last_acknowledged = time.monotonic()

    def outcome(self) -> PublishOutcome:
        missing = tuple(i for i, ok in enumerate(self.acknowledged) if not ok)
        return PublishOutcome(
            self.first_sent,
            self.last_acknowledged,
            self.count,
            missing,
            self.requests,
            self.error,
        )


async def publish_sequence(
    publisher: Publisher,
    channel: str,
    events: int,
    *,
    batch_size: int,
    payload_bytes: int = 0,
    deadline: float,
    on_acknowledged: Callable[[int], None] | None = None,
) -> PublishOutcome:
    """Events ``0 .. events-1`` as fast as ``publisher.concurrency`` requests in flight allow;
    ``batch_size`` 1 posts to ``/events``, more to ``/batch_events``. Stops at the first
    refusal or at ``deadline``."""
    ledger = _Ledger(events)
    cursor = iter(range(0, events, batch_size))

    async def publishing() -> None:
        for start in cursor:
            if ledger.error is not None or time.monotonic() > deadline:
                return
            seqs = range(start, min(start + batch_size, events))
            now = time.monotonic()
            ledger.sent(now)
            datas = [event_data(seq, now, payload_bytes) for seq in seqs]
            try:
                await publisher.publish(channel, datas)
            except PublishError as exc:
                ledger.error = ledger.error or str(exc)
                return
            ledger.done(seqs)
            if on_acknowledged is not None:
                on_acknowledged(ledger.count)

    await asyncio.gather(*(publishing() for _ in range(max(1, publisher.concurrency))))
    if ledger.error is None and ledger.count < events:
        ledger.error = "publishing did not finish before the phase's deadline"
    return ledger.outcome()


async def publish_at_rate(
    publisher: Publisher,
    channel: str,
    events: int,
    *,
    rate: float,
    deadline: float,
    payload_bytes: int = 0,
) -> PublishOutcome:
    """Event ``i`` starts at ``i / rate`` s, whatever the previous ones are doing (up to the
    connector's limit of requests in flight, beyond which they queue and the rate falls);
    ``payload_bytes`` pads each event's data to that size."""
    ledger = _Ledger(events)
    start = time.monotonic() + 0.05
    tasks: list[asyncio.Task[None]] = []

    async def one(seq: int) -> None:
        if ledger.error is not None:
            return
        now = time.monotonic()
        ledger.sent(now)
        try:
            await publisher.publish(channel, [event_data(seq, now, payload_bytes)])
        except PublishError as exc:
            ledger.error = ledger.error or str(exc)
            return
        ledger.done(range(seq, seq + 1))

    try:
        for seq in range(events):
            due = start + seq / rate
            if due > deadline or ledger.error is not None:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.get_running_loop().create_task(one(seq)))
        if tasks:
            await asyncio.wait(tasks)
    finally:
        for task in tasks:
            task.cancel()
    if ledger.error is None and ledger.count < events:
        ledger.error = "publishing did not finish before the phase's deadline"
    return ledger.outcome()
