"""The options of ``conformance bench``, checked before anything starts: which phases (a
family such as ``fanout-events`` stands for one phase per subscriber count), how big, against
what, and whether the open-file limit lets the phases hold their connections. Every mistake is
one line (``UsageError``, exit status 2).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import resource
from collections.abc import Sequence

from ..errors import UsageError
from ..options import positive_float, positive_int
from .model import ALL_PHASES, BenchSettings
from .servers import pid_is_running

__all__ = [
    "FD_MARGIN",
    "QUICK_SETTINGS",
    "QUICK_SUBSCRIBERS",
    "SIZED_FAMILIES",
    "add_bench_arguments",
    "check_combinations",
    "expand_phases",
    "fit_file_limit",
    "parse_subscribers",
    "raise_file_limit",
    "settings_from_args",
]

#: The phases whose size is a subscriber count, named ``{family}-{subscribers}``.
SIZED_FAMILIES: tuple[str, ...] = ("fanout-events", "fanout-batch", "latency")
#: The order a run takes its phases in (``idle`` first: later phases grow the server's memory).
_ORDER: tuple[str, ...] = (
    "idle", "connect", "fanout-events", "fanout-batch", "relay", "latency", "stalled",
)  # fmt: skip

#: Small sizes for a smoke of the bench itself: the whole run in seconds.
QUICK_SETTINGS = BenchSettings(
    connections=50,
    connect_concurrency=10,
    fanout_deliveries=2_000,
    fanout_min_events=20,
    relay_pairs=10,
    relay_seconds=1.0,
    latency_rate=50.0,
    latency_seconds=0.5,
    idle_connections=200,
    stalled_subscribers=10,
    stalled_events=200,
    stalled_rate=400.0,
    phase_timeout=15.0,
)
QUICK_SUBSCRIBERS: tuple[int, ...] = (1, 10)

#: Descriptors kept free beside the connections a phase holds (logs, pipes, the HTTP API).
FD_MARGIN = 512
#: Fewer idle connections than this says nothing about memory per connection.
MIN_IDLE = 100


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group(
        "what to measure (default: the reference server, started here)"
    )
    where.add_argument(
        "--target", metavar="URL|FILE",
        help="a running server: its ws:// or wss:// URL (with --app-id, --key, --secret) or a"
        " target file",
    )  # fmt: skip
    where.add_argument("--http-url", metavar="URL", help="with a URL target: the HTTP API base")
    where.add_argument("--app-id", help="with a URL target: the app id")
    where.add_argument("--key", help="with a URL target: the app key")
    where.add_argument("--secret", help="with a URL target: the app secret")
    where.add_argument("--ca-file", metavar="PEM", help="trust this CA too (wss:// target)")
    where.add_argument(
        "--insecure", action="store_true",
        help="do not verify a wss:// target's certificate (warned about); not with --ca-file",
    )  # fmt: skip
    where.add_argument(
        "--server-pid", type=positive_int, metavar="PID",
        help="with --target: the server's process on this machine, whose CPU and memory to read",
    )  # fmt: skip
    where.add_argument(
        "--compare", action="store_true",
        help="the same phases against the reference server and Soketi 1.6.1, with ratios",
    )  # fmt: skip
    where.add_argument(
        "--soketi-peers", metavar="DIR",
        help="with --compare: Soketi's package.json and soketi.json (default: $SOKETI_PEERS or"
        " ../shared/peers/soketi beside the checkout)",
    )  # fmt: skip
    where.add_argument(
        "--server-arg", action="append", default=[], metavar="ARG",
        help="pass ARG to the reference server this command starts (repeatable; write"
        " --server-arg=--flag=value)",
    )  # fmt: skip
    sizes = parser.add_argument_group("phases and sizes")
    sizes.add_argument(
        "--phases", metavar="A,B,...",
        help=f"the phases to run (default: all): {', '.join(_ORDER)}, or a sized one such as"
        " fanout-events-100",
    )  # fmt: skip
    sizes.add_argument(
        "--subscribers", metavar="N,N,...",
        help="subscriber counts of the fan-out and latency phases (default 1,100,1000 and 1,100)",
    )  # fmt: skip
    sizes.add_argument("--connections", type=positive_int, metavar="N",
                       help="connections the connect phase opens (default 1000)")  # fmt: skip
    sizes.add_argument("--connect-concurrency", type=positive_int, metavar="N",
                       help="connects in flight at once (default 100)")  # fmt: skip
    sizes.add_argument("--idle-connections", type=positive_int, metavar="N",
                       help="connections the idle phase holds (default 10000)")  # fmt: skip
    sizes.add_argument("--workers", type=positive_int, metavar="N",
                       help="load-generator processes (default 2)")  # fmt: skip
    sizes.add_argument("--phase-timeout", type=positive_float, metavar="SECONDS",
                       help="the longest one phase may take (default 60)")  # fmt: skip
    sizes.add_argument(
        "--quick", action="store_true",
        help="small sizes, to check the bench itself in seconds (figures not comparable)",
    )  # fmt: skip
    out = parser.add_argument_group("output")
    out.add_argument("--out", default="bench-report", metavar="DIR",
                     help="where bench.json, bench.md and the servers' logs go")  # fmt: skip
    out.add_argument("--json", action="store_true", help="print the JSON only")
    out.add_argument("--no-progress", action="store_true", help="no progress display")


# --- the arguments, checked ---------------------------------------------------------------------


def parse_subscribers(text: str) -> tuple[int, ...]:
    """``1,100,1000`` as sorted distinct positive counts."""
    counts: set[int] = set()
    for part in text.split(","):
        try:
            count = int(part.strip())
        except ValueError:
            count = 0
        if count <= 0:
            raise UsageError(f"bench: --subscribers {text!r}: {part.strip()!r} is not a count")
        counts.add(count)
    return tuple(sorted(counts))


def _sized(name: str) -> tuple[str, int] | None:
    family, _, size = name.rpartition("-")
    if family in SIZED_FAMILIES and size.isdigit() and int(size) > 0:
        return family, int(size)
    return None


def _default_sizes(family: str) -> list[int]:
    return [sized[1] for p in ALL_PHASES if (sized := _sized(p)) and sized[0] == family]


def expand_phases(
    requested: Sequence[str] | None, subscribers: Sequence[int] | None
) -> tuple[str, ...]:
    """The phase names a run takes, in run order: a family (``fanout-events``, ``latency``)
    stands for one phase per subscriber count; a sized name (``latency-100``) for itself."""
    names = list(requested) if requested is not None else list(_ORDER)
    chosen: set[tuple[str, int]] = set()
    for name in names:
        if name in SIZED_FAMILIES:
            sizes = subscribers or _default_sizes(name)
            chosen.update((name, size) for size in sizes)
        elif name in _ORDER:
            chosen.add((name, 0))
        elif (sized := _sized(name)) is not None:
            chosen.add(sized)
        else:
            raise UsageError(
                f"bench: unknown phase {name!r} (known: {', '.join(_ORDER)};"
                " sized: fanout-events-N, fanout-batch-N, latency-N)"
            )
    ordered = sorted(chosen, key=lambda pair: (_ORDER.index(pair[0]), pair[1]))
    return tuple(name if size == 0 else f"{name}-{size}" for name, size in ordered)


def settings_from_args(args: argparse.Namespace) -> BenchSettings:
    phases_text: str | None = args.phases
    requested = None
    if phases_text is not None:
        requested = [p.strip() for p in phases_text.split(",") if p.strip()]
        if not requested:
            raise UsageError("bench: --phases names no phase")
    subscribers = parse_subscribers(args.subscribers) if args.subscribers else None
    if args.quick and subscribers is None:
        subscribers = QUICK_SUBSCRIBERS
    base = QUICK_SETTINGS if args.quick else BenchSettings()

    def given(name: str, default: int) -> int:
        value = getattr(args, name)
        return default if value is None else int(value)

    return dataclasses.replace(
        base,
        connections=given("connections", base.connections),
        connect_concurrency=given("connect_concurrency", base.connect_concurrency),
        idle_connections=given("idle_connections", base.idle_connections),
        workers=given("workers", base.workers),
        phase_timeout=args.phase_timeout or base.phase_timeout,
        phases=expand_phases(requested, subscribers),
    )


def check_combinations(args: argparse.Namespace) -> None:
    if args.compare and args.target:
        raise UsageError(
            "bench: --compare starts the reference server and Soketi itself; give it without"
            " --target"
        )
    if args.server_pid is not None and not args.target:
        raise UsageError("bench: --server-pid goes with --target (a server started here is known)")
    if args.server_arg and args.target:
        raise UsageError(
            "bench: --server-arg is for the reference server started here, not --target"
        )
    if args.soketi_peers and not args.compare:
        raise UsageError("bench: --soketi-peers goes with --compare")
    if not args.target:
        flags = [
            f"--{flag}"
            for flag in ("http-url", "app-id", "key", "secret", "ca-file", "insecure")
            if getattr(args, flag.replace("-", "_"))
        ]
        if flags:
            raise UsageError(
                f"bench: {', '.join(flags)} go with --target; the servers started here"
                " have their own"
            )
    if args.server_pid is not None and not pid_is_running(args.server_pid):
        raise UsageError(f"bench: --server-pid {args.server_pid}: no such process is running")


# --- descriptors ----------------------------------------------------------------------------


def raise_file_limit() -> int:
    """Take the hard limit of open files as the soft one (the servers started here and the
    load generator's workers inherit it); return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(soft, 65536) if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fit_file_limit(settings: BenchSettings, limit: int) -> tuple[BenchSettings, str | None]:
    """Settings whose phases fit in ``limit`` open files (one process holds every connection
    of a phase: the server), and the line that says what was lowered.

    Raises:
        UsageError: not even a meaningful idle phase fits.
    """
    if limit < 0 or limit == resource.RLIM_INFINITY:
        return settings, None
    room = limit - FD_MARGIN
    if settings.connections > room and "connect" in settings.phases:
        raise UsageError(
            f"bench: the open-file limit ({limit:,}) is too low for {settings.connections:,}"
            " connections; lower --connections or raise the limit (ulimit -n)"
        )
    if "idle" not in settings.phases or settings.idle_connections <= room:
        return settings, None
    if room < MIN_IDLE:
        raise UsageError(
            f"bench: the open-file limit ({limit:,}) leaves no room for the idle phase; raise"
            " it (ulimit -n) or leave idle out of --phases"
        )
    note = (
        f"the open-file limit ({limit:,}) holds {room:,} idle connections, not"
        f" {settings.idle_connections:,}: the idle phase holds {room:,}"
    )
    return dataclasses.replace(settings, idle_connections=room), note
