"""Counting what arrived: loss, duplicates and latency, sans I/O.

Every benchmark event carries a sequence number; each subscriber keeps a count per sequence
number it may see. Loss is then the number of zero counts and the duplicates are the receipts
beyond the distinct ones, both computed in C (``list.count``). A read's events come in one
bytes (``client.EventCallback``): one regular-expression scan finds their numbers, and the
only Python work per event is one increment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .client import MARKER

__all__ = [
    "DeliveryTally",
    "TallySummary",
    "event_data",
    "merge_summaries",
    "percentile",
]

_SEQUENCE = re.compile(re.escape(MARKER) + rb"(\d+):")
_SEQUENCE_AND_TIME = re.compile(re.escape(MARKER) + rb"(\d+):(\d+\.\d+):")


def event_data(seq: int, sent_at: float, size: int = 0) -> str:
    """The data of benchmark event ``seq``: marker, sequence number, monotonic send time, and
    padding up to ``size`` characters (when ``size`` is larger than the rest)."""
    text = f"{MARKER.decode()}{seq}:{sent_at:.6f}:"
    return text + "x" * (size - len(text)) if size > len(text) else text


@dataclass(frozen=True)
class TallySummary:
    """One worker's count for one phase (or several merged)."""

    subscribers: int
    #: Receipts of a sequence number in range, copies included.
    received: int
    #: (subscriber, sequence number) pairs seen at least once.
    distinct: int
    #: Expected pairs never seen (acknowledged events only).
    loss: int
    duplicates: int
    #: Receipts whose sequence number was out of range or unreadable.
    strays: int
    #: Monotonic times of the first and last receipt (``None`` without one).
    first_at: float | None
    last_at: float | None
    #: Milliseconds from send to receipt, when latency was asked for.
    latencies_ms: tuple[float, ...] = ()


class DeliveryTally:
    """Seen-counts of sequence numbers ``0 .. events-1`` for each subscriber that ``track`` gave
    a counter to. ``record`` is the connection's event callback (bound to one counter)."""

    def __init__(self, events: int, *, latency: bool = False) -> None:
        if events < 0:
            raise ValueError(f"events must be >= 0, not {events}")
        self.events = events
        self.latency = latency
        self._counters: list[list[int]] = []
        self.received = 0
        self.strays = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.latencies_ms: list[float] = []

    def track(self) -> list[int]:
        counter = [0] * self.events
        self._counters.append(counter)
        return counter

    def record(self, counter: list[int], events: bytes, count: int, now: float) -> None:
        """``count`` events (each with the marker once) that reached ``counter``'s subscriber
        at ``now``; one whose number is unreadable or out of range is a stray."""
        if self.latency:
            found = _SEQUENCE_AND_TIME.findall(events)
            seqs = [int(seq) for seq, _ in found]
            self.latencies_ms.extend((now - float(sent)) * 1000.0 for _, sent in found)
        else:
            seqs = list(map(int, _SEQUENCE.findall(events)))
        self.strays += count - len(seqs)
        if not seqs:
            return
        limit = self.events
        if max(seqs) < limit:
            for seq in seqs:
                counter[seq] += 1
            self.received += len(seqs)
        else:
            for seq in seqs:
                if seq < limit:
                    counter[seq] += 1
                    self.received += 1
                else:
                    self.strays += 1
        if self.first_at is None:
            self.first_at = now
        self.last_at = now

    def summary(self, unacknowledged: Iterable[int] = ()) -> TallySummary:
        """``unacknowledged``: sequence numbers whose publish was refused or never sent; not
        seeing them is no loss."""
        missing = sorted({seq for seq in unacknowledged if 0 <= seq < self.events})
        distinct = 0
        loss = 0
        for counter in self._counters:
            unseen = counter.count(0)
            distinct += self.events - unseen
            loss += unseen - sum(1 for seq in missing if counter[seq] == 0)
        return TallySummary(
            subscribers=len(self._counters),
            received=self.received,
            distinct=distinct,
            loss=loss,
            duplicates=self.received - distinct,
            strays=self.strays,
            first_at=self.first_at,
            last_at=self.last_at,
            latencies_ms=tuple(self.latencies_ms),
        )


def merge_summaries(summaries: Sequence[TallySummary]) -> TallySummary:
    firsts = [s.first_at for s in summaries if s.first_at is not None]
    lasts = [s.last_at for s in summaries if s.last_at is not None]
    return TallySummary(
        subscribers=sum(s.subscribers for s in summaries),
        received=sum(s.received for s in summaries),
        distinct=sum(s.distinct for s in summaries),
        loss=sum(s.loss for s in summaries),
        duplicates=sum(s.duplicates for s in summaries),
        strays=sum(s.strays for s in summaries),
        first_at=min(firsts) if firsts else None,
        last_at=max(lasts) if lasts else None,
        latencies_ms=tuple(x for s in summaries for x in s.latencies_ms),
    )


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile (0 < p <= 100): the smallest value with at least
    ``p`` percent of the values at or below it. ``None`` for no values."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {p}")
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
