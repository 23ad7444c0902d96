"""The phases that publish through the HTTP API and count deliveries: ``fanout-*``,
``latency-*`` and ``stalled``.

Deliveries per second run from the first publish request to the last delivery in any worker
(``time.monotonic()`` is one clock for every process on Linux), so a server that queues
events and delivers them late is not flattered by a fast acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from . import procstat
from .orders import Open, Report, Resume, StallReport, Track
from .phases import PhaseContext, PhaseFailure, PhaseRecord, PhaseSpec, round_or_none
from .publisher import Publisher, PublishOutcome, publish_at_rate, publish_sequence
from .tally import TallySummary, percentile

__all__ = ["describe_stall", "run_fanout", "run_latency", "run_stalled"]

#: SO_RCVBUF of the subscriber that stops reading: small, so the server meets a full socket
#: at once rather than after the kernel has soaked up megabytes.
STALLED_RECEIVE_BUFFER = 4096
#: SO_RCVBUF of the subscribers that keep reading: large from the start, so that a moment in
#: which a worker does not get the CPU is absorbed by the kernel rather than showing up as a
#: reader the server must cut off (new connections otherwise start at 128 KB).
OTHERS_RECEIVE_BUFFER = 4 * 1024 * 1024
#: Seconds the stalled subscriber, reading again, is given to show how the server ended it.
STALLED_RESUME_WAIT = 5.0


def _rate(summary: TallySummary, outcome: PublishOutcome) -> float | None:
    if outcome.first_sent is None or summary.last_at is None:
        return None
    span = summary.last_at - outcome.first_sent
    return round(summary.distinct / span, 1) if span > 0 else None


def _published(ctx: PhaseContext, outcome: PublishOutcome) -> None:
    if outcome.error is not None:
        raise PhaseFailure(
            f"publishing stopped after {outcome.acknowledged} events: {outcome.error}"
        )


async def _deliver(
    ctx: PhaseContext,
    channel: str,
    group: str,
    subscribers: int,
    events: int,
    *,
    batch_size: int = 1,
    rate: float | None = None,
    payload_bytes: int = 0,
    label: str = "delivered",
) -> tuple[TallySummary, PublishOutcome]:
    """Publish events ``0 .. events-1`` to ``channel`` and count them at ``group``: as fast as
    the publisher goes, ``batch_size`` a request, or with ``rate`` one request every
    ``1 / rate`` s, each receipt then timed against its publish."""
    await ctx.track(group, events, latency=rate is not None)
    async with Publisher(ctx.target, ctx.settings.publish_concurrency) as publisher:
        if rate is None:
            publishing = publish_sequence(
                publisher,
                channel,
                events,
                batch_size=batch_size,
                payload_bytes=payload_bytes,
                deadline=ctx.deadline,
            )
        else:
            publishing = publish_at_rate(
                publisher,
                channel,
                events,
                rate=rate,
                deadline=ctx.deadline,
                payload_bytes=payload_bytes,
            )
        outcome: PublishOutcome = await ctx.wait_deliveries(subscribers * events, publishing, label)
    summary = await ctx.collect(group, outcome.unacknowledged)
    ctx.record.count(summary)
    return summary, outcome


async def run_fanout(ctx: PhaseContext, spec: PhaseSpec) -> None:
    """One channel, ``N`` subscribers, events through ``/events`` or ``/batch_events``."""
    settings = ctx.settings
    n = spec.subscribers
    events = max(settings.fanout_min_events, settings.fanout_deliveries // n)
    events = min(events, settings.fanout_max_events)
    channel = ctx.channel_prefix
    ctx.record.figures.update(deliveries_per_s=None, events=events, subscribers=n)
    await ctx.require_open("fanout", [channel] * n, settings.connect_concurrency)
    ctx.measuring()
    summary, outcome = await _deliver(
        ctx,
        channel,
        "fanout",
        n,
        events,
        batch_size=settings.batch_size if spec.via == "batch" else 1,
    )
    ctx.measured()
    ctx.record.figures["deliveries_per_s"] = _rate(summary, outcome)
    _published(ctx, outcome)


async def run_latency(ctx: PhaseContext, spec: PhaseSpec) -> None:
    """Publish at a fixed rate; time each receipt against its publish request's start."""
    settings = ctx.settings
    n = spec.subscribers
    events = max(1, int(settings.latency_rate * settings.latency_seconds))
    channel = ctx.channel_prefix
    ctx.record.figures.update(p50_ms=None, p99_ms=None, rate=None)
    await ctx.require_open("latency", [channel] * n, settings.connect_concurrency)
    await ctx.track("latency", events, latency=True)
    ctx.measuring()
    async with Publisher(ctx.target, ctx.settings.publish_concurrency) as publisher:
        publishing = publish_at_rate(
            publisher, channel, events, rate=settings.latency_rate, deadline=ctx.deadline
        )
        outcome: PublishOutcome = await ctx.wait_deliveries(n * events, publishing, "received")
    ctx.measured()
    summary = await ctx.collect("latency", outcome.unacknowledged)
    ctx.record.count(summary)
    figures = ctx.record.figures
    figures["p50_ms"] = round_or_none(percentile(summary.latencies_ms, 50))
    figures["p99_ms"] = round_or_none(percentile(summary.latencies_ms, 99))
    if outcome.first_sent is not None and outcome.acknowledged > 1 and summary.last_at:
        # Events over the span of their sending: event i starts at i / rate.
        span = (outcome.last_acknowledged or summary.last_at) - outcome.first_sent
        figures["rate"] = round(outcome.acknowledged / span, 1) if span > 0 else None
        if figures["rate"] is not None and figures["rate"] < 0.9 * settings.latency_rate:
            ctx.record.note(
                f"published {figures['rate']:g}/s of the {settings.latency_rate:g}/s asked:"
                " the publisher or the server's HTTP API could not keep up"
            )
    _published(ctx, outcome)


async def _watch_rss(pid: int | None, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        value = procstat.rss_kb(pid) if pid is not None else None
        if value is not None and (not peak or value > peak[0]):
            peak[:] = [value]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def run_stalled(ctx: PhaseContext, spec: PhaseSpec) -> None:
    """Does one subscriber that stops reading slow down the others, or grow the server?

    Events go out at ``stalled_rate`` per second, a pace the others read comfortably, so
    that what is compared is the others' latency with and without the stalled one; run flat
    out, the phase would measure the load generator's readers instead, and a server that
    bounds what it buffers for a connection would cut them off as well.
    """
    settings = ctx.settings
    n = settings.stalled_subscribers
    events = settings.stalled_events
    size = settings.stalled_payload_bytes
    rate = settings.stalled_rate
    channel = ctx.channel_prefix
    figures = ctx.record.figures
    figures.update(
        others_p99_ms=None,
        baseline_p99_ms=None,
        p99_ratio=None,
        others_per_s=None,
        baseline_per_s=None,
        ratio=None,
        stalled_close_code=None,
        stalled_closed_after_s=None,
        server_rss_growth_mb=None,
        stalled_received=None,
    )
    await ctx.require_open(
        "stalled-others",
        [channel] * n,
        settings.connect_concurrency,
        receive_buffer=OTHERS_RECEIVE_BUFFER,
    )
    ctx.progress("baseline", 0.0)
    baseline, outcome = await _deliver(
        ctx,
        channel,
        "stalled-others",
        n,
        events,
        rate=rate,
        payload_bytes=size,
        label="baseline",
    )
    figures["baseline_per_s"] = _rate(baseline, outcome)
    figures["baseline_p99_ms"] = round_or_none(percentile(baseline.latencies_ms, 99))
    if baseline.loss:
        ctx.record.note(f"the others lost {baseline.loss} deliveries in the baseline run")
    _published(ctx, outcome)

    ctx.progress("stalling one subscriber", 0.0)
    stalled_open = Open(
        ctx.target,
        "stalled-one",
        (channel,),
        1,
        ctx.deadline,
        receive_buffer=STALLED_RECEIVE_BUFFER,
        stall=True,
    )
    opened = await ctx.pool.call(0, stalled_open, ctx.remaining())
    if opened.failed:
        raise PhaseFailure(
            "the stalled subscriber could not subscribe: " + "; ".join(opened.reasons)
        )
    await ctx.pool.call(0, Track("stalled-one", events), ctx.remaining())
    pid = ctx.target.server_pid
    rss_before = procstat.rss_kb(pid) if pid is not None else None
    peak: list[int] = []
    stop = asyncio.Event()
    watcher = asyncio.ensure_future(_watch_rss(pid, peak, stop))
    ctx.measuring()
    try:
        beside, outcome = await _deliver(
            ctx,
            channel,
            "stalled-others",
            n,
            events,
            rate=rate,
            payload_bytes=size,
            label="beside the stalled one",
        )
    finally:
        ctx.measured()
        stop.set()
        await watcher
    figures["others_per_s"] = _rate(beside, outcome)
    figures["others_p99_ms"] = round_or_none(percentile(beside.latencies_ms, 99))
    if beside.loss:
        ctx.record.note(f"the others lost {beside.loss} deliveries beside the stalled one")
    if figures["others_per_s"] and figures["baseline_per_s"]:
        figures["ratio"] = round(figures["others_per_s"] / figures["baseline_per_s"], 3)
    if figures["others_p99_ms"] and figures["baseline_p99_ms"]:
        figures["p99_ratio"] = round(figures["others_p99_ms"] / figures["baseline_p99_ms"], 2)
    if rss_before is not None and peak:
        figures["server_rss_growth_mb"] = round(max(0, peak[0] - rss_before) / 1024, 1)
    _published(ctx, outcome)

    ctx.progress("reading the stalled one again", 0.9)
    resume = Resume("stalled-one", time.monotonic() + min(STALLED_RESUME_WAIT, ctx.remaining()))
    stall: StallReport = await ctx.pool.call(0, resume, ctx.remaining())
    received: TallySummary = await ctx.pool.call(0, Report("stalled-one"), ctx.remaining())
    figures["stalled_received"] = received.distinct
    describe_stall(ctx.record, stall, received.distinct, events)


def describe_stall(record: PhaseRecord, stall: StallReport, received: int, events: int) -> None:
    """The stalled subscriber's figures and a note on how the server dealt with it."""
    figures = record.figures
    if stall.ended_by is None:
        if received >= events:
            kept = "it held every event for it (its buffer grew with the backlog)"
        else:
            kept = f"it dropped {events - received} of the {events} events it could not send"
        record.note(f"the server kept the stalled subscriber open; {kept}")
        return
    figures["stalled_close_code"] = stall.close_code
    if stall.stalled_at is not None:
        ended = stall.tcp_left_at or stall.closed_at
        if ended is not None:
            figures["stalled_closed_after_s"] = round(ended - stall.stalled_at, 2)
    how = {
        "close-frame": f"a close frame ({stall.close_code})",
        "eof": "a TCP close without a close frame",
        "reset": "a TCP reset",
    }.get(stall.ended_by, stall.ended_by)
    when = (
        "while it was not reading"
        if stall.tcp_left_at is not None
        else "once it read again (so the time is an upper bound)"
    )
    record.note(f"the server ended the stalled subscriber with {how}, seen {when}")
