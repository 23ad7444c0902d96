"""What ``conformance bench`` measures and what it hands back: plain frozen records shared by
the load generator (``loadgen``/``phases``), the servers it starts (``servers``) and the report.

A phase is one measurement (``connect``, ``fanout-events-100``, ``latency-1``, ...). Every phase
reports the loss and duplicates it saw and the CPU each side used, so that a reader can tell a
server's limit from the load generator's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ALL_PHASES",
    "BenchSettings",
    "BenchTarget",
    "PhaseResult",
]

#: Every phase, in the order a run takes them. ``fanout-{via}-{n}`` and ``latency-{n}`` are
#: expanded from ``BenchSettings``; these are the defaults.
#: ``idle`` comes first: it reads the server's memory, which later phases would have grown.
ALL_PHASES: tuple[str, ...] = (
    "idle",
    "connect",
    "fanout-events-1",
    "fanout-events-100",
    "fanout-events-1000",
    "fanout-batch-1",
    "fanout-batch-100",
    "fanout-batch-1000",
    "relay",
    "latency-1",
    "latency-100",
    "stalled",
)


@dataclass(frozen=True)
class BenchTarget:
    """One server to measure."""

    #: What the report calls it: ``reference-server``, ``soketi 1.6.1``, or the URL's host.
    name: str
    #: ``ws://host:port`` or ``wss://host:port``, without the ``/app/{key}`` path.
    ws_url: str
    #: ``http(s)://host:port``: the HTTP API base.
    http_url: str
    app_id: str
    key: str
    secret: str
    #: A local process whose CPU and RSS are read from ``/proc``; ``None`` when the server is
    #: not a process on this machine (its CPU and memory are then not reported).
    server_pid: int | None = None
    ca_file: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class BenchSettings:
    """How big each phase is; every loop is bounded by these counts and by ``phase_timeout``."""

    connections: int = 1000
    connect_concurrency: int = 100
    #: Events each fan-out phase publishes is ``fanout_deliveries // subscribers`` (at least
    #: ``fanout_min_events``), so every fan-out phase moves about as many frames.
    #: (A million: against a server that delivers a million a second, fewer would be over
    #: before the clocks that time it, and /proc's CPU ticks, could tell.)
    fanout_deliveries: int = 1_000_000
    fanout_min_events: int = 200
    #: ... and at most this many: one subscriber would otherwise need a million publishes, which
    #: measures the HTTP API (and takes minutes) rather than the fan-out.
    fanout_max_events: int = 10_000
    #: Events per ``batch_events`` call (the documented maximum is 10).
    batch_size: int = 10
    #: Publishing requests in flight at once.
    publish_concurrency: int = 8
    relay_pairs: int = 200
    #: Client events each sender sends per second: under the documented 10 per second, so that
    #: the limit is not what is measured.
    relay_rate: float = 8.0
    relay_seconds: float = 5.0
    latency_rate: float = 200.0
    latency_seconds: float = 5.0
    idle_connections: int = 10_000
    #: Subscribers beside the one that stops reading, and the events published to them.
    stalled_subscribers: int = 100
    stalled_events: int = 2000
    stalled_payload_bytes: int = 8000
    #: Events per second in the stalled phase: a pace the others read with room to spare.
    stalled_rate: float = 400.0
    #: Load-generator processes (the publisher runs in the parent).
    workers: int = 2
    phase_timeout: float = 60.0
    phases: tuple[str, ...] = ALL_PHASES


@dataclass(frozen=True)
class PhaseResult:
    """One phase's figures against one target.

    ``figures`` holds the numbers the phase is about, by name (``None`` when not measured):

    - ``connect``: ``p50_ms``, ``p99_ms``, ``per_s`` (connections per second), ``failed``
    - ``fanout-*``: ``deliveries_per_s``, ``events``, ``subscribers``
    - ``relay``: ``relayed_per_s``, ``pairs``, ``p50_ms``/``p99_ms`` (send to receipt)
    - ``latency-*``: ``p50_ms``, ``p99_ms``, ``rate``
    - ``stalled``: ``others_p99_ms`` and ``baseline_p99_ms`` (the others' publish-to-receive
      p99 with and without a subscriber that stopped reading), ``p99_ratio``, ``others_per_s``
      (the others' deliveries/s beside it), ``baseline_per_s`` (the same publish without it),
      ``ratio``,
      ``stalled_close_code`` and ``stalled_closed_after_s`` (``None`` while it stayed open),
      ``server_rss_growth_mb``, ``stalled_received`` (events the stalled one got in the end)
    - ``idle``: ``connections``, ``rss_kb_per_connection``, ``rss_mb``
    """

    phase: str
    figures: dict[str, float | None]
    #: Deliveries expected but never received, and received more than once.
    loss: int = 0
    duplicates: int = 0
    #: Percent of one core over the phase; ``None`` without a local server PID.
    server_cpu_percent: float | None = None
    #: Percent of one core, summed over every load-generator process.
    loadgen_cpu_percent: float = 0.0
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())
    #: Why the phase could not be measured; its figures are then partial or empty.
    error: str | None = None
    #: ``loadgen_cpu_percent`` by process (``publisher``, ``worker-0``, ...): one process near
    #: 100 % is a limit even while the sum is far from the cores there are.
    loadgen_cpu_by_process: dict[str, float] = field(default_factory=dict)
