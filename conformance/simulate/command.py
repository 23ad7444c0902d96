"""``conformance simulate``: virtual users against a server, through the fault proxy, with a
production-readiness verdict of its own (docs/simulate.md).

Exit status: 0 ready, 1 not ready, 2 a usage mistake (one line naming it), 3 undecided (the
target is unreachable, the harness failed, or the load generator was the bottleneck).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..bundled import BundledServer, start_bundled
from ..bundled_cluster import MAX_BUNDLED_NODES, BundledCluster, start_bundled_cluster
from ..errors import UsageError
from ..options import positive_float, positive_int
from ..report.simulation_section import HTML_FILE, MARKDOWN_FILE, attach
from ..restart import BundledRestarter, CommandRestarter, Restarter
from ..target import Target, check_reachable, load_target_file, with_trust
from ..tls import insecure_warning, refuse_both_trust_choices
from .cluster import check_stops
from .coordinator import Progress, SimulationResult, default_workers, simulate
from .node_stop import BundledNodeStopper, CommandNodeStopper, NodeStopper
from .report import evidence_lines, figure_rows, to_html, to_json, to_markdown
from .scenario import SimScenario, load_sim_scenario

__all__ = ["add_simulate_arguments", "simulate_command"]


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario", required=True, metavar="NAME|FILE",
        help="a bundled scenario (admin-alerts, restart-under-load, flaky-network,"
        " node-sigterm) or a file",
    )  # fmt: skip
    parser.add_argument(
        "--target-file", metavar="FILE", help="the server to load (default: the bundled server)"
    )
    parser.add_argument(
        "--bundled-nodes", type=positive_int, metavar="N",
        help="start redis-server and N bundled reference-server nodes sharing it, and load them"
        " as one cluster (2 to 5; PUSHER_REF_FAULTS then breaks node 1 only)",
    )  # fmt: skip
    parser.add_argument(
        "--ca-file", metavar="PEM",
        help="trust this CA for a wss:// target, on top of the system store"
        " (default: the target file's ca_file)",
    )  # fmt: skip
    parser.add_argument(
        "--insecure", action="store_true",
        help="do not verify the target's TLS certificate at all (warned about); not with --ca-file",
    )  # fmt: skip
    parser.add_argument(
        "--users", type=positive_int, metavar="N", help="virtual users (default: the scenario's)"
    )
    parser.add_argument(
        "--tabs", type=positive_int, metavar="N", help="tabs per user (default: the scenario's)"
    )
    parser.add_argument(
        "--duration", type=positive_float, metavar="SECONDS",
        help="length of the measured phase (default: the scenario's)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=positive_int, metavar="N",
        help="load-generator processes (default: one per core, as the tabs need)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, metavar="N", help="replay a run's choices (default: random)"
    )
    parser.add_argument(
        "--report-dir", metavar="DIR", default="simulation-report",
        help="where simulation.json, .md and .html go (default: simulation-report)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the JSON result to stdout")
    parser.add_argument("--no-progress", action="store_true", help="no live display")


def simulate_command(args: argparse.Namespace) -> int:
    scenario = load_sim_scenario(args.scenario).resized(args.users, args.tabs, args.duration)
    target = _target(args.target_file, args.ca_file, args.insecure)
    stop_commands = _check_cluster(scenario, target, args.bundled_nodes)
    if target is not None:
        if scenario.restarts and not target.restart_command:
            raise UsageError(
                f"scenario {scenario.name!r} restarts the server: the target file must give"
                " restart: {command: ..., within: SECONDS} (docs/simulate.md)"
            )
        for number in range(max(1, len(target.nodes))):
            check_reachable(target.on_node(number) if target.nodes else target)
    report_dir = Path(args.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    _raise_file_limit()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    total_tabs = scenario.users * scenario.tabs
    workers = args.workers or default_workers(total_tabs)
    console = Console(stderr=True)
    bundled: BundledServer | None = None
    cluster: BundledCluster | None = None
    try:
        if target is None and args.bundled_nodes:
            # The nodes' and Redis's logs are part of the evidence: they go with the report.
            cluster = start_bundled_cluster(args.bundled_nodes, report_dir)
            target = cluster.target
        elif target is None:
            # The server's log is part of the evidence: it goes with the report.
            bundled = start_bundled(report_dir / "reference-server.log")
            target = bundled.target
        node_stopper: NodeStopper | None = (
            BundledNodeStopper(cluster.nodes)
            if cluster is not None
            else CommandNodeStopper(stop_commands)
            if stop_commands
            else None
        )
        restarter: Restarter | None = (
            BundledRestarter(bundled)
            if bundled is not None
            else CommandRestarter(target.restart_command, target.restart_within)
            if target.restart_command
            else None
        )
        where = ", ".join(node.ws_url for node in target.nodes) if target.nodes else target.ws_url
        console.print(
            f"simulate: {scenario.title} against {target.name} ({where}):"
            f" {scenario.users:,} users x {scenario.tabs} tabs, {workers} worker(s), seed {seed}"
        )
        result = _run(
            target, scenario, workers, seed, restarter, node_stopper, console, not args.no_progress
        )
    finally:
        if bundled is not None:
            bundled.stop()
        if cluster is not None:
            cluster.stop()
    (report_dir / "simulation.json").write_text(json.dumps(to_json(result), indent=2) + "\n")
    (report_dir / MARKDOWN_FILE).write_text(to_markdown(result), encoding="utf-8")
    (report_dir / HTML_FILE).write_text(to_html(result), encoding="utf-8")
    attach(report_dir)  # into a run's summaries kept in the same directory
    with (report_dir / "simulation-evidence.jsonl").open("w", encoding="utf-8") as evidence:
        evidence.writelines(line + "\n" for line in evidence_lines(result))
    if args.json:
        print(json.dumps(to_json(result), indent=2))
    _final_table(result, console)
    console.print(
        f"simulate: report written to {report_dir}/simulation.{{json,md,html}}"
        " and the evidence to simulation-evidence.jsonl"
    )
    return result.readiness.exit_code


def _check_cluster(
    scenario: SimScenario, target: Target | None, bundled_nodes: int | None
) -> dict[int, str]:
    """Refuse, before anything starts, a cluster the scenario cannot run on; return the target
    file's stop commands by node (none for the bundled nodes: the suite stops its own)."""
    if bundled_nodes is not None:
        if target is not None:
            raise UsageError(
                "--bundled-nodes starts a cluster of its own: give it without --target-file"
            )
        if not 2 <= bundled_nodes <= MAX_BUNDLED_NODES:
            raise UsageError(
                f"--bundled-nodes must be 2 to {MAX_BUNDLED_NODES}, got {bundled_nodes}"
            )
    nodes = bundled_nodes or (len(target.nodes) if target is not None else 1)
    if scenario.restarts and nodes > 1:
        raise UsageError(
            f"scenario {scenario.name!r} restarts the server, which a cluster does not have"
            " one of: stop a node instead (stop_node: N; docs/simulate.md)"
        )
    stops = (
        {n: node.stop for n, node in enumerate(target.nodes) if node.stop}
        if target is not None
        else {}
    )
    check_stops(scenario.name, scenario.stopped_nodes, nodes, stops if target is not None else None)
    return stops


def _target(target_file: str | None, ca_file: str | None, insecure: bool) -> Target | None:
    """The target file's server, trusting ``--ca-file`` over the file's own ``ca_file`` (or
    nothing, ``--insecure``); ``None`` for the bundled server, which speaks plain ws:// (a
    trust option is a mistake then)."""
    refuse_both_trust_choices(ca_file, insecure)
    if target_file is None:
        if ca_file or insecure:
            flag = "--ca-file" if ca_file else "--insecure"
            raise UsageError(f"{flag} is for a wss:// target file; the bundled server speaks ws://")
        return None
    target = with_trust(load_target_file(target_file), ca_file, insecure)
    if target.insecure:
        print(f"simulate: {insecure_warning(target.ws_url)}", file=sys.stderr, flush=True)
    return target


def _run(
    target: Target,
    scenario: SimScenario,
    workers: int,
    seed: int,
    restarter: Restarter | None,
    node_stopper: NodeStopper | None,
    console: Console,
    live: bool,
) -> SimulationResult:
    def run(on_progress: Callable[[Progress], None]) -> SimulationResult:
        return asyncio.run(
            simulate(
                target,
                scenario,
                workers=workers,
                seed=seed,
                restarter=restarter,
                node_stopper=node_stopper,
                on_progress=on_progress,
            )
        )

    if live and console.is_terminal:
        with Live(console=console, refresh_per_second=4, transient=True) as display:
            return run(lambda p: display.update(_progress_table(p)))
    last = [0.0]

    def plain(progress: Progress) -> None:  # a log, not a terminal: a line every 5 s
        if live and time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            console.print(_progress_line(progress), highlight=False)

    return run(plain)


def _progress_line(p: Progress) -> str:
    cpu = " ".join(f"{c:.0%}" for _, c in sorted(p.cpu.items()))
    return (
        f"[{p.elapsed:5.0f}s {p.phase}] tabs ready {sum(p.ready.values()):,}/{p.tabs:,},"
        f" received {sum(p.received.values()):,}, published {p.published:,}"
        f" (failed {p.publish_failed:,}), workers CPU {cpu or '-'}"
        f", lag {max(p.lag_ms.values(), default=0):.0f} ms"
    )


def _progress_table(p: Progress) -> Table:
    table = Table(title=f"simulate — {p.phase}, {p.elapsed:.0f} s", show_header=False)
    table.add_row("tabs ready", f"{sum(p.ready.values()):,} / {p.tabs:,}")
    table.add_row("events received", f"{sum(p.received.values()):,}")
    table.add_row("published (failed)", f"{p.published:,} ({p.publish_failed:,})")
    workers = [
        f"#{w} {c:.0%} CPU, lag {p.lag_ms.get(w, 0):.0f} ms" for w, c in sorted(p.cpu.items())
    ]
    table.add_row("workers", ", ".join(workers) or "starting")
    for line in p.events[-4:]:
        table.add_row("", line)
    return table


def _final_table(result: SimulationResult, console: Console) -> None:
    figures = Table(title=f"{result.scenario.title}: what the users felt", show_header=False)
    for name, value in figure_rows(result):
        figures.add_row(name, value)
    console.print(figures)
    r = result.readiness
    verdict = Table(title=f"production readiness: {r.verdict.upper()} ({r.note})")
    for column in ("criterion", "measured", "bar", "met"):
        verdict.add_column(column)
    for c in r.criteria:
        verdict.add_row(c.name, c.measured, c.bar, "[bold red]no[/]" if c.met is False else c.shown)
    console.print(verdict)


def _raise_file_limit() -> None:
    """Thousands of tabs, each with a proxied pair of sockets, need more descriptors than a
    shell's usual soft limit; the hard limit is ours to take (workers inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(
            resource.RLIMIT_NOFILE,
            (hard if hard != resource.RLIM_INFINITY else max(soft, 65536), hard),
        )
