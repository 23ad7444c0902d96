"""The phases that are about connections: ``idle``, ``connect`` and ``relay``; and what every
phase shares (its name's parsing, the record it fills, the context it runs in).

A phase fills a ``PhaseRecord`` as it goes rather than returning figures at the end, so that a
phase cut short (the server stopped answering, the time budget ran out) still hands back what
it measured. The CPU of each side is taken over the phase's measuring window (``measuring`` /
``measured``: the publishing and delivering, not the setting up), which is when the question
"which side was saturated" has an answer.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import procstat
from .model import BenchSettings, BenchTarget, PhaseResult
from .orders import Open, OpenReport, Progress, Relay, RelayReport, Report, Track, iter_split
from .tally import TallySummary, merge_summaries, percentile

__all__ = [
    "PhaseContext",
    "PhaseFailure",
    "PhaseRecord",
    "PhaseSpec",
    "cpu_split",
    "parse_phase",
    "round_or_none",
    "run_connect",
    "run_idle",
    "run_relay",
]

#: Seconds without a new delivery, once publishing is over, after which the rest is lost.
QUIET_SECONDS = 2.0
#: How often the parent asks the workers how many deliveries arrived: the phase's CPU window
#: ends at most this long after its last delivery.
POLL_SECONDS = 0.025
#: Seconds the idle phase holds its connections before reading the server's memory again.
IDLE_SETTLE_SECONDS = 2.0
IDLE_CONCURRENCY = 200
#: A load-generator process using this much of a core is taken to be saturated.
SATURATED_PERCENT = 90.0

_PHASE = re.compile(r"(idle|connect|relay|stalled)|(fanout)-(events|batch)-(\d+)|(latency)-(\d+)")


class PhaseFailure(Exception):
    """The phase cannot go on (the server refused connections, publishes, ...)."""


@dataclass(frozen=True)
class PhaseSpec:
    kind: str
    #: ``events`` or ``batch`` for a fan-out phase.
    via: str | None = None
    subscribers: int = 0


def parse_phase(name: str) -> PhaseSpec:
    """Raises ValueError, naming the phases there are, for a name that is none of them."""
    match = _PHASE.fullmatch(name)
    if match is None:
        raise ValueError(
            f"unknown bench phase {name!r}: expected idle, connect, fanout-events-N,"
            " fanout-batch-N, relay, latency-N or stalled (N subscribers, at least 1)"
        )
    if match[1]:
        return PhaseSpec(match[1])
    kind, via, count = (match[2], match[3], match[4]) if match[2] else (match[5], None, match[6])
    if int(count) < 1:
        raise ValueError(f"bench phase {name!r} needs at least 1 subscriber")
    return PhaseSpec(kind, via, int(count))


@dataclass
class PhaseRecord:
    """What a phase has measured so far."""

    figures: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    loss: int = 0
    duplicates: int = 0
    error: str | None = None
    window_start: dict[str, procstat.CpuSample] | None = None
    window_end: dict[str, procstat.CpuSample] | None = None

    def fail(self, reason: str) -> None:
        if self.error is None:
            self.error = reason

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def count(self, summary: TallySummary) -> None:
        self.loss += summary.loss
        self.duplicates += summary.duplicates
        if summary.strays:
            self.note(f"{summary.strays} events with an unexpected sequence number")

    def result(self, phase: str, seconds: float) -> PhaseResult:
        server, by_process = cpu_split(self.window_start or {}, self.window_end or {})
        for name, share in by_process.items():
            if share >= SATURATED_PERCENT:
                self.note(
                    f"the load generator's {name} used {share:.0f}% of a core: this phase may"
                    " measure the load generator rather than the server"
                )
        return PhaseResult(
            phase=phase,
            figures=dict(self.figures),
            loss=self.loss,
            duplicates=self.duplicates,
            server_cpu_percent=server,
            loadgen_cpu_percent=round(sum(by_process.values()), 1),
            seconds=round(seconds, 3),
            notes=tuple(self.notes),
            error=self.error,
            loadgen_cpu_by_process=by_process,
        )


def cpu_split(
    start: dict[str, procstat.CpuSample], end: dict[str, procstat.CpuSample]
) -> tuple[float | None, dict[str, float]]:
    """The server's CPU percent (``None`` unmeasured) and each load-generator process's."""
    server = None
    by_process: dict[str, float] = {}
    for name, before in start.items():
        after = end.get(name)
        share = procstat.cpu_percent(before, after) if after is not None else None
        if name == "server":
            server = None if share is None else round(share, 1)
        elif share is not None:
            by_process[name] = round(share, 1)
    return server, by_process


class Pool(Protocol):
    """The workers, as ``loadgen.WorkerPool`` offers them."""

    @property
    def size(self) -> int: ...

    async def call(self, index: int, order: object, timeout: float) -> Any: ...

    async def call_each(self, orders: list[object], timeout: float) -> list[Any]: ...

    async def call_all(self, order: object, timeout: float) -> list[Any]: ...


@dataclass
class PhaseContext:
    target: BenchTarget
    settings: BenchSettings
    pool: Pool
    #: Monotonic time the phase must be over by.
    deadline: float
    progress: Callable[[str, float], None]
    #: Every channel a phase makes starts with it: unique to the run and the phase.
    channel_prefix: str
    record: PhaseRecord
    sample_cpu: Callable[[BenchTarget], dict[str, procstat.CpuSample]]

    def remaining(self) -> float:
        return max(0.1, self.deadline - time.monotonic())

    def measuring(self) -> None:
        self.record.window_start = self.sample_cpu(self.target)

    def measured(self) -> None:
        self.record.window_end = self.sample_cpu(self.target)

    async def open_split(
        self,
        group: str,
        channels: Sequence[str | None],
        concurrency: int,
        *,
        private: bool = False,
        receive_buffer: int | None = None,
    ) -> OpenReport:
        """Open one connection per channel, spread evenly over the workers (in order: the
        ``i``-th of two equal lists lands in the same worker)."""
        workers = self.pool.size
        orders: list[object] = []
        for start, count in iter_split(len(channels), workers):
            share = tuple(channels[start : start + count])
            orders.append(
                Open(
                    self.target,
                    group,
                    share,
                    max(1, concurrency // workers),
                    self.deadline,
                    private=private,
                    receive_buffer=receive_buffer,
                )
                if share
                else None
            )
        reports = [r for r in await self.pool.call_each(orders, self.remaining()) if r is not None]
        return merge_open_reports(reports)

    async def require_open(
        self,
        group: str,
        channels: Sequence[str | None],
        concurrency: int,
        *,
        private: bool = False,
        receive_buffer: int | None = None,
    ) -> OpenReport:
        """``open_split``, failing the phase unless every connection was made."""
        self.progress(f"opening {len(channels)} connections", 0.0)
        report = await self.open_split(
            group, channels, concurrency, private=private, receive_buffer=receive_buffer
        )
        if report.failed:
            raise PhaseFailure(
                f"{report.failed} of {len(channels)} connections failed: "
                + "; ".join(report.reasons)
            )
        return report

    async def track(self, group: str, events: int, *, latency: bool = False) -> None:
        await self.pool.call_all(Track(group, events, latency), self.remaining())

    async def collect(self, group: str, unacknowledged: Sequence[int] = ()) -> TallySummary:
        order = Report(group, tuple(unacknowledged))
        return merge_summaries(await self.pool.call_all(order, self.remaining()))

    async def wait_deliveries(
        self, expected: int, publishing: Awaitable[Any] | None, label: str
    ) -> Any:
        """Wait for ``publishing`` (if any) and then until ``expected`` receipts arrived, or
        none came for ``QUIET_SECONDS``; report progress on the way. Returns what
        ``publishing`` returned."""
        task = asyncio.ensure_future(publishing) if publishing is not None else None
        last_count = -1
        last_change = time.monotonic()
        try:
            while True:
                answers = await self.pool.call_all(Progress(), self.remaining())
                received = sum(a[0] for a in answers)
                now = time.monotonic()
                if received != last_count:
                    last_count, last_change = received, now
                self.progress(
                    f"{label} {received}/{expected}", min(1.0, received / max(1, expected))
                )
                publishing_done = task is None or task.done()
                if publishing_done and (received >= expected or now - last_change > QUIET_SECONDS):
                    break
                await asyncio.sleep(POLL_SECONDS)
            return await task if task is not None else None
        finally:
            if task is not None and not task.done():
                task.cancel()


def merge_open_reports(reports: Sequence[OpenReport]) -> OpenReport:
    starts = [r.first_start for r in reports if r.first_start is not None]
    dones = [r.last_done for r in reports if r.last_done is not None]
    reasons: list[str] = []
    for r in reports:
        reasons.extend(x for x in r.reasons if x not in reasons)
    return OpenReport(
        established=sum(r.established for r in reports),
        failed=sum(r.failed for r in reports),
        reasons=tuple(reasons),
        connect_ms=tuple(x for r in reports for x in r.connect_ms),
        first_start=min(starts) if starts else None,
        last_done=max(dones) if dones else None,
    )


def round_or_none(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# --- the phases ------------------------------------------------------------------------------


async def run_idle(ctx: PhaseContext, spec: PhaseSpec) -> None:
    """Server memory per idle, subscribed connection."""
    wanted = ctx.settings.idle_connections
    pid = ctx.target.server_pid
    before = procstat.rss_kb(pid) if pid is not None else None
    ctx.record.figures.update(connections=0, rss_kb_per_connection=None, rss_mb=None)
    ctx.progress(f"opening {wanted} idle connections", 0.0)
    ctx.measuring()
    channels = [f"idle-{i % 100}" for i in range(wanted)]
    report = await ctx.open_split("idle", channels, IDLE_CONCURRENCY)
    ctx.measured()
    ctx.record.figures["connections"] = report.established
    if report.failed:
        ctx.record.note(
            f"{report.failed} of {wanted} connections not established: " + "; ".join(report.reasons)
        )
    if report.established == 0:
        raise PhaseFailure("no connection could be established: " + "; ".join(report.reasons))
    ctx.progress(f"holding {report.established} connections", 0.9)
    await asyncio.sleep(min(IDLE_SETTLE_SECONDS, ctx.remaining()))
    after = procstat.rss_kb(pid) if pid is not None else None
    if before is None or after is None:
        ctx.record.note("server memory not measured: no local server PID")
        return
    ctx.record.figures["rss_kb_per_connection"] = round((after - before) / report.established, 2)
    ctx.record.figures["rss_mb"] = round(after / 1024, 1)


async def run_connect(ctx: PhaseContext, spec: PhaseSpec) -> None:
    """Time from TCP connect to ``connection_established``, many at once."""
    settings = ctx.settings
    wanted = settings.connections
    ctx.record.figures.update(p50_ms=None, p99_ms=None, per_s=None, failed=None)
    ctx.progress(f"connecting {wanted}", 0.0)
    ctx.measuring()
    report = await ctx.open_split("connect", [None] * wanted, settings.connect_concurrency)
    ctx.measured()
    figures = ctx.record.figures
    figures["failed"] = report.failed
    figures["p50_ms"] = round_or_none(percentile(report.connect_ms, 50))
    figures["p99_ms"] = round_or_none(percentile(report.connect_ms, 99))
    if report.first_start is not None and report.last_done is not None and report.established:
        span = report.last_done - report.first_start
        figures["per_s"] = round(report.established / span, 1) if span > 0 else None
    if report.failed:
        ctx.record.note(f"{report.failed} of {wanted} failed: " + "; ".join(report.reasons))
    if not report.established:
        raise PhaseFailure("no connection could be established: " + "; ".join(report.reasons))


async def run_relay(ctx: PhaseContext, spec: PhaseSpec) -> None:
    """Client events between pairs on private channels, each sender within the documented
    limit of 10 a second, so the figure is the server's relaying and not its rate limit."""
    settings = ctx.settings
    pairs = settings.relay_pairs
    count = max(1, int(settings.relay_rate * settings.relay_seconds))
    ctx.record.figures.update(relayed_per_s=None, pairs=pairs, p50_ms=None, p99_ms=None)
    channels = [f"private-{ctx.channel_prefix}-relay-{i}" for i in range(pairs)]
    await ctx.require_open("relay-receivers", channels, 100, private=True)
    await ctx.require_open("relay-senders", channels, 100, private=True)
    await ctx.track("relay-receivers", count, latency=True)
    start = time.monotonic() + 0.2
    # Each worker's senders send on their own channels, whose receivers it holds too.
    orders: list[object] = [
        Relay("relay-senders", count, settings.relay_rate, start, ctx.deadline) if share else None
        for _, share in iter_split(pairs, ctx.pool.size)
    ]
    ctx.measuring()
    sending = ctx.pool.call_each(orders, ctx.remaining())
    reports: list[RelayReport | None] = await ctx.wait_deliveries(pairs * count, sending, "relayed")
    ctx.measured()
    summary = await ctx.collect("relay-receivers")
    ctx.record.count(summary)
    sent = [r for r in reports if r is not None]
    firsts = [r.first_sent for r in sent if r.first_sent is not None]
    errors: dict[str, int] = {}
    for r in sent:
        for label, n in r.errors.items():
            errors[label] = errors.get(label, 0) + n
    if errors:
        described = "; ".join(f"{label} (x{n})" for label, n in sorted(errors.items()))
        ctx.record.note(f"the server refused client events: {described}")
    figures = ctx.record.figures
    if firsts and summary.last_at is not None and summary.last_at > min(firsts):
        figures["relayed_per_s"] = round(summary.distinct / (summary.last_at - min(firsts)), 1)
    figures["p50_ms"] = round_or_none(percentile(summary.latencies_ms, 50))
    figures["p99_ms"] = round_or_none(percentile(summary.latencies_ms, 99))
