"""What the load generator's parent and its workers say to each other: the orders (frozen, so
they pickle as they are) and their answers.

Every order that waits carries an absolute deadline in ``time.monotonic()``, which is one
clock for every process on Linux, so a worker never outlives the phase that asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .model import BenchTarget

__all__ = [
    "Abort",
    "Close",
    "CloseReport",
    "Open",
    "OpenReport",
    "Progress",
    "Relay",
    "RelayReport",
    "Report",
    "Resume",
    "StallReport",
    "Track",
    "iter_split",
]


@dataclass(frozen=True)
class Open:
    """Open ``len(channels)`` connections into ``group``, ``concurrency`` at a time; subscribe
    each to its channel unless it is ``None``."""

    target: BenchTarget
    group: str
    channels: tuple[str | None, ...]
    concurrency: int
    deadline: float
    private: bool = False
    receive_buffer: int | None = None
    #: Stop reading right after subscribing (the stalled subscriber).
    stall: bool = False


@dataclass(frozen=True)
class OpenReport:
    established: int
    failed: int
    reasons: tuple[str, ...]
    #: Milliseconds from the TCP connect to ``connection_established``, per connection.
    connect_ms: tuple[float, ...]
    first_start: float | None
    last_done: float | None


@dataclass(frozen=True)
class Track:
    """Count events ``0 .. events-1`` on every connection of ``group`` from now on."""

    group: str
    events: int
    latency: bool = False


@dataclass(frozen=True)
class Progress:
    """Receipts so far over every tracked group: ``(received, last receipt time)``."""


@dataclass(frozen=True)
class Report:
    group: str
    unacknowledged: tuple[int, ...] = ()


@dataclass(frozen=True)
class Relay:
    """Each connection of ``group`` sends ``count`` client events on its channel, ``rate`` a
    second, starting at ``start`` (staggered over one interval so the sends spread out)."""

    group: str
    count: int
    rate: float
    start: float
    deadline: float


@dataclass(frozen=True)
class RelayReport:
    sent: int
    first_sent: float | None
    last_sent: float | None
    #: ``pusher:error``s the senders got back (``"4301 ..."``: over the rate limit), counted.
    errors: dict[str, int]


@dataclass(frozen=True)
class Resume:
    """Resume reading the stalled connection of ``group``; wait until ``deadline`` for it to
    end."""

    group: str
    deadline: float


@dataclass(frozen=True)
class StallReport:
    stalled_at: float | None
    #: When the kernel first saw the TCP connection leave ESTABLISHED while reading was paused
    #: (a FIN or a reset from the server), if it did.
    tcp_left_at: float | None
    ended_by: str | None
    close_code: int | None
    closed_at: float | None


@dataclass(frozen=True)
class Close:
    """Close every connection (of ``group``, or all); abort what is still open at ``deadline``."""

    deadline: float
    group: str | None = None


@dataclass(frozen=True)
class CloseReport:
    closed: int
    aborted: int
    #: How the connections that the server ended before we closed them ended, with counts
    #: (``"close-frame 4100"``, ``"eof"``, ...).
    ended_early: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Abort:
    """Cancel every order still running."""


def iter_split(total: int, parts: int) -> Iterator[tuple[int, int]]:
    """``(start, count)`` of each of ``parts`` near-equal shares of ``range(total)``."""
    start = 0
    for part in range(parts):
        count = total // parts + (1 if part < total % parts else 0)
        yield start, count
        start += count
