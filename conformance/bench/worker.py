"""A load-generator worker process: it holds connections and counts what they receive.

The parent (``loadgen``) sends orders over a pipe as ``(call id, order)`` and gets back
``(call id, ok, result or error text)``. Each order runs as a task of its own, so that the
parent can ask for progress while a long order (a relay run, a stall) is under way, and can
cancel everything with ``Abort``. Every order carries an absolute deadline in
``time.monotonic()``, which is system-wide on Linux and so comparable across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import resource
import time
from multiprocessing.connection import Connection
from typing import Any

from .client import BenchConnection, Endpoint, open_connection, resolve
from .model import BenchTarget
from .orders import (
    Abort,
    Close,
    CloseReport,
    Open,
    OpenReport,
    Progress,
    Relay,
    RelayReport,
    Report,
    Resume,
    StallReport,
    Track,
)
from .tally import DeliveryTally, event_data

__all__ = ["WorkerState", "main", "raise_file_limit"]

#: How many distinct failure reasons an order reports (the rest are counted only).
MAX_REASONS = 3
#: Seconds a single connection may take to be established and subscribed.
CONNECT_TIMEOUT = 10.0
#: Seconds without a new event after which the stalled subscriber, reading again, has had
#: everything the server kept for it.
STALL_QUIET_SECONDS = 1.0


# --- the worker's state ----------------------------------------------------------------------


class WorkerState:
    def __init__(self) -> None:
        self.groups: dict[str, list[BenchConnection]] = {}
        self.tallies: dict[str, DeliveryTally] = {}
        self._endpoints: dict[BenchTarget, Endpoint] = {}
        self._stall_watch: dict[str, tuple[float, list[float]]] = {}

    async def endpoint(self, target: BenchTarget) -> Endpoint:
        if target not in self._endpoints:
            self._endpoints[target] = await resolve(target)
        return self._endpoints[target]

    async def handle(self, order: object) -> object:
        if isinstance(order, Open):
            return await self.open(order)
        if isinstance(order, Track):
            self.track(order)
            return None
        if isinstance(order, Progress):
            received = sum(t.received for t in self.tallies.values())
            lasts = [t.last_at for t in self.tallies.values() if t.last_at is not None]
            return received, max(lasts) if lasts else None
        if isinstance(order, Report):
            tally = self.tallies.get(order.group)
            if tally is None:
                return DeliveryTally(0).summary()
            return tally.summary(order.unacknowledged)
        if isinstance(order, Relay):
            return await self.relay(order)
        if isinstance(order, Resume):
            return await self.resume(order)
        if isinstance(order, Close):
            return await self.close(order)
        raise ValueError(f"unknown order {order!r}")

    async def open(self, order: Open) -> OpenReport:
        endpoint = await self.endpoint(order.target)
        group = self.groups.setdefault(order.group, [])
        indexes = iter(range(len(order.channels)))
        connect_ms: list[float] = []
        reasons: dict[str, int] = {}
        bounds: list[float] = []

        async def one(index: int) -> None:
            started = time.monotonic()
            bounds.append(started)
            conn = await open_connection(endpoint, receive_buffer=order.receive_buffer)
            group.append(conn)
            await conn.established
            done = time.monotonic()
            connect_ms.append((done - started) * 1000.0)
            bounds.append(done)
            channel = order.channels[index]
            if channel is not None:
                await conn.subscribe(channel, private=order.private)
            if order.stall:
                conn.pause_reading()
                self._watch_stall(order.group, conn)

        async def runner() -> None:
            for index in indexes:
                limit = min(CONNECT_TIMEOUT, order.deadline - time.monotonic())
                try:
                    if limit <= 0:
                        raise TimeoutError
                    async with asyncio.timeout(limit):
                        await one(index)
                except TimeoutError:
                    _count(reasons, "no answer in time")
                except (OSError, ValueError) as exc:
                    _count(reasons, _reason(exc))

        runners = max(1, min(order.concurrency, len(order.channels)))
        await asyncio.gather(*(runner() for _ in range(runners)))
        established = len(connect_ms)
        return OpenReport(
            established=established,
            failed=len(order.channels) - established,
            reasons=tuple(f"{r} (x{n})" if n > 1 else r for r, n in reasons.items())[:MAX_REASONS],
            connect_ms=tuple(connect_ms),
            first_start=min(bounds) if bounds else None,
            last_done=max(bounds) if bounds else None,
        )

    def track(self, order: Track) -> None:
        tally = DeliveryTally(order.events, latency=order.latency)
        self.tallies[order.group] = tally
        for conn in self.groups.get(order.group, []):
            # Those that never connected were reported by Open; they are not lost deliveries.
            if conn.socket_id is not None and not conn.closed.done():
                conn.on_event = functools.partial(tally.record, tally.track())

    async def relay(self, order: Relay) -> RelayReport:
        senders = self.groups.get(order.group, [])
        interval = 1.0 / order.rate
        sent_times: list[float] = []

        async def send(conn: BenchConnection, channel: str, offset: float) -> None:
            for seq in range(order.count):
                due = order.start + offset + seq * interval
                delay = due - time.monotonic()
                if due > order.deadline or conn.closed.done():
                    return
                if delay > 0:
                    await asyncio.sleep(delay)
                now = time.monotonic()
                conn.send_client_event(channel, "client-ping", event_data(seq, now))
                sent_times.append(now)

        ready = [c for c in senders if c.channel is not None and not c.closed.done()]
        await asyncio.gather(
            *(
                send(c, c.channel, interval * i / len(ready))
                for i, c in enumerate(ready)
                if c.channel
            )
        )
        errors: dict[str, int] = {}
        for conn in senders:
            for label, n in conn.pusher_errors.items():
                errors[label] = errors.get(label, 0) + n
        return RelayReport(
            sent=len(sent_times),
            first_sent=min(sent_times) if sent_times else None,
            last_sent=max(sent_times) if sent_times else None,
            errors=errors,
        )

    def _watch_stall(self, group: str, conn: BenchConnection) -> None:
        """Poll the stalled socket's TCP state while reading is paused: the only way to see
        the server drop it before we read again."""
        stalled_at = time.monotonic()
        left: list[float] = []
        self._stall_watch[group] = (stalled_at, left)

        async def watch() -> None:
            while not left and not conn.closed.done():
                if not conn.tcp_established():
                    left.append(time.monotonic())
                    return
                await asyncio.sleep(0.05)

        task = asyncio.get_running_loop().create_task(watch())
        conn.closed.add_done_callback(lambda _: task.cancel())

    async def resume(self, order: Resume) -> StallReport:
        stalled_at, left = self._stall_watch.get(order.group, (None, []))
        conns = self.groups.get(order.group, [])
        for conn in conns:
            conn.resume_reading()
        stalled = conns[0] if conns else None
        tally = self.tallies.get(order.group)
        # Until the server ends it, or it has read everything it was sent, or nothing more
        # comes (a server that dropped what it could not send), or the deadline.
        received, quiet_since = -1, time.monotonic()
        while (
            stalled is not None and not stalled.closed.done() and time.monotonic() < order.deadline
        ):
            now = time.monotonic()
            count = tally.received if tally is not None else 0
            if tally is not None and count >= tally.events:
                break
            if count != received:
                received, quiet_since = count, now
            elif now - quiet_since > STALL_QUIET_SECONDS:
                break
            await asyncio.sleep(0.05)
        return StallReport(
            stalled_at=stalled_at,
            tcp_left_at=left[0] if left else None,
            ended_by=stalled.ended_by if stalled is not None else None,
            close_code=stalled.close_code if stalled is not None else None,
            closed_at=stalled.closed_at if stalled is not None else None,
        )

    async def close(self, order: Close) -> CloseReport:
        names = [order.group] if order.group is not None else list(self.groups)
        conns = [c for name in names for c in self.groups.pop(name, [])]
        for name in names:
            self.tallies.pop(name, None)
            self._stall_watch.pop(name, None)
        ended_early: dict[str, int] = {}
        for conn in conns:
            if conn.ended_by is not None:
                label = conn.ended_by
                if conn.close_code is not None:
                    label += f" {conn.close_code}"
                _count(ended_early, label)
            conn.resume_reading()
            conn.close()
        pending = [c.closed for c in conns if not c.closed.done()]
        if pending:
            await asyncio.wait(pending, timeout=max(0.0, order.deadline - time.monotonic()))
        aborted = 0
        for conn in conns:
            if not conn.closed.done():
                conn.abort()
                aborted += 1
        if aborted:
            # Let the aborts reach connection_lost before the next order.
            await asyncio.sleep(0)
        return CloseReport(closed=len(conns) - aborted, aborted=aborted, ended_early=ended_early)


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _reason(exc: BaseException) -> str:
    # A failed connect's text is "Connect call failed (address)"; its errno says why.
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


# --- the process -----------------------------------------------------------------------------


def raise_file_limit() -> int:
    """Raise the soft limit on open files to the hard one (10,000 connections need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


def _loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(pipe: Connection) -> None:
    """The worker process: serve orders until the pipe closes or says ``None``."""
    raise_file_limit()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(pipe))


async def _serve(pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    state = WorkerState()
    inbox: asyncio.Queue[tuple[int, object] | None] = asyncio.Queue()
    running: set[asyncio.Task[None]] = set()

    def readable() -> None:
        try:
            inbox.put_nowait(pipe.recv())
        except (EOFError, OSError):
            loop.remove_reader(pipe.fileno())
            inbox.put_nowait(None)

    async def execute(call: int, order: object) -> None:
        try:
            result = await state.handle(order)
        except asyncio.CancelledError:
            _answer(pipe, (call, False, "cancelled"))
            raise
        except Exception as exc:  # reported to the parent, which names it in the phase
            _answer(pipe, (call, False, f"{type(exc).__name__}: {exc}"))
        else:
            _answer(pipe, (call, True, result))

    loop.add_reader(pipe.fileno(), readable)
    # uvloop makes a watched descriptor non-blocking; a pipe message must go through whole.
    os.set_blocking(pipe.fileno(), True)
    while True:
        message = await inbox.get()
        if message is None:
            break
        call, order = message
        if isinstance(order, Abort):
            for task in list(running):
                task.cancel()
            _answer(pipe, (call, True, None))
            continue
        task = loop.create_task(execute(call, order))
        running.add(task)
        task.add_done_callback(running.discard)
    for task in list(running):
        task.cancel()
    with contextlib.suppress(Exception):
        await state.close(Close(deadline=time.monotonic() + 2.0))


def _answer(pipe: Connection, message: tuple[int, bool, object]) -> None:
    with contextlib.suppress(OSError):
        pipe.send(message)
