"""``conformance proxy``: the fault proxy on its own, so a user can put their own app behind it.

Everything the user typed is checked before the proxy listens (one line and status 2 for a
mistake); then it prints where it listens and one JSON line per injection, until Ctrl-C,
SIGTERM or ``--duration`` ends it with status 0. A ``wss://`` upstream is reached over TLS,
trusting ``--ca-file`` (or the target file's ``ca_file``) on top of the system store, so a
TLS-only staging server can sit behind it; the app connects to the proxy with plain ``ws://``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from ..errors import UsageError
from ..options import positive_float
from ..target import load_target_file
from ..tls import check_ca_file, insecure_warning, refuse_both_trust_choices
from .schedule import Schedule, load_schedule
from .server import FaultProxy, Upstream, parse_upstream, require_loopback

__all__ = ["add_proxy_arguments", "parse_listen", "proxy_command"]


def add_proxy_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--target", metavar="FILE", help="forward to the target file's ws_url")
    source.add_argument(
        "--upstream", metavar="URL", help="forward to this ws://, wss://, http:// or https:// URL"
    )
    parser.add_argument(
        "--ca-file",
        metavar="PEM",
        help="trust this CA for a wss:// upstream, on top of the system store"
        " (default: the target file's ca_file)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify a wss:// upstream's certificate at all (warned about); not with"
        " --ca-file",
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="127.0.0.1:0",
        help="loopback address to listen on (default 127.0.0.1:0, a free port)",
    )
    parser.add_argument("--schedule", metavar="FILE", help="faults to inject (YAML, docs/proxy.md)")
    parser.add_argument("--seed", type=int, metavar="N", help="override the schedule's seed")
    parser.add_argument(
        "--duration", type=positive_float, metavar="SECONDS", help="stop after this long"
    )


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6), loopback only."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"--listen must be HOST:PORT (e.g. 127.0.0.1:8000), got {text!r}")
    return require_loopback(host), int(port_text)


def proxy_command(args: argparse.Namespace) -> int:
    target = load_target_file(args.target) if args.target else None
    upstream_url: str = target.ws_url if target is not None else args.upstream
    upstream = parse_upstream(upstream_url)
    refuse_both_trust_choices(args.ca_file, args.insecure)
    if (args.ca_file or args.insecure) and not upstream.tls:
        flag = "--ca-file" if args.ca_file else "--insecure"
        raise UsageError(f"{flag} is for a wss:// upstream, not {upstream_url}")
    ca_file = check_ca_file(args.ca_file) if args.ca_file else target.ca_file if target else None
    if args.insecure:
        ca_file = None
        print(f"proxy: {insecure_warning(upstream_url)}", file=sys.stderr, flush=True)
    host, port = parse_listen(args.listen)
    schedule = load_schedule(args.schedule, seed=args.seed) if args.schedule else None
    return asyncio.run(_serve(upstream, upstream_url, host, port, schedule, ca_file, args))


def _emit(entry: dict[str, Any]) -> None:
    print(json.dumps(entry, ensure_ascii=False, separators=(",", ":")), flush=True)


async def _serve(
    upstream: Upstream,
    upstream_url: str,
    host: str,
    port: int,
    schedule: Schedule | None,
    ca_file: str | None,
    args: argparse.Namespace,
) -> int:
    proxy = FaultProxy(
        upstream,
        listen_host=host,
        listen_port=port,
        ca_file=ca_file,
        insecure=args.insecure,
        schedule=schedule,
        seed=args.seed,
        log=_emit,
    )
    await proxy.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        print(f"listening on {proxy.url} -> {upstream_url}", flush=True)
        try:
            async with asyncio.timeout(args.duration):
                await stop.wait()
        except TimeoutError:
            pass
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await proxy.aclose()
    print("proxy stopped", file=sys.stderr, flush=True)
    return 0
