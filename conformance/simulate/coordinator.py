"""Runs a simulation: plans who opens which tab when (and, against a cluster, through which
node), starts the worker processes, publishes, restarts the server or stops a node when the
scenario says so, stops everyone, and tallies what they saw.

The timeline, in wall-clock time (every process reads the same clock):

    start ── ramp (tabs open, evenly spread) ── measured phase (publishing, incidents) ── settle

Workers get their whole plan up front, incidents included, so the coordinator's only live
duties are publishing, restarting and reporting progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ..errors import HarnessError
from ..restart import Restarter, restart
from ..target import Target
from .cluster import StoppedNode, first_node, publish_nodes, stopped_node_figures
from .ledger import Figures, Life, Publication, tally
from .node_stop import NodeStopper
from .publisher import Publisher
from .scenario import SimScenario
from .verdict import Generator, Readiness, judge
from .worker import WorkerIncident, WorkerPlan, worker_main

__all__ = [
    "Progress",
    "SimulationResult",
    "default_workers",
    "plan_workers",
    "run_channels",
    "simulate",
    "socket_path",
]

#: Seconds the workers get to start (``spawn`` imports the suite afresh) before the first tab.
STARTUP_SECONDS = 2.0
#: Seconds a worker may take, after ``stop``, to close its tabs and send what it saw.
COLLECT_SECONDS = 60.0
#: Tabs below which another worker process is not worth its start-up.
TABS_PER_WORKER = 250


@dataclass
class Progress:
    """What the live display shows, refreshed as workers report."""

    phase: str = "starting"
    elapsed: float = 0.0
    tabs: int = 0
    ready: dict[int, int] = field(default_factory=dict)
    received: dict[int, int] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)
    lag_ms: dict[int, float] = field(default_factory=dict)
    published: int = 0
    publish_failed: int = 0
    events: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SimulationResult:
    scenario: SimScenario
    target: Target
    seed: int
    figures: Figures
    generator: Generator
    readiness: Readiness
    injections: dict[str, int]
    publish_failures: dict[str, int]
    timeline: tuple[str, ...]
    started_at: float
    seconds: float
    #: The evidence behind the figures: every connection and every publish.
    lives: tuple[Life, ...] = ()
    publications: tuple[Publication, ...] = ()
    #: Against a cluster: what the tabs of each node the scenario stopped went through.
    stopped: tuple[StoppedNode, ...] = ()


def default_workers(tabs: int) -> int:
    """One process per core, but no more than the tabs need."""
    return max(1, min(os.cpu_count() or 1, math.ceil(tabs / TABS_PER_WORKER), 8))


def run_channels(scenario: SimScenario, seed: int) -> dict[str, str]:
    """Channel slot -> the run's channel name (the seed appended, so runs never share one)."""
    return {slot: f"{name}.{seed:x}" for slot, name in scenario.channels.items()}


def socket_path(key: str) -> str:
    """The WebSocket path a virtual tab connects to, as pusher-js builds it."""
    return f"/app/{key}?protocol=7&client=pusher-conformance-simulate&version=1.0&flash=false"


def plan_workers(
    scenario: SimScenario, *, workers: int, seed: int, start: float, target: Target
) -> list[WorkerPlan]:
    """Every worker's part: tabs spread evenly over the ramp, over the workers (tab ``i`` to
    worker ``i mod W``) and over a cluster's nodes (tab ``i`` first to node ``i mod N``), and
    each fault incident's seeded choice of tabs."""
    measure_from = start + scenario.ramp_seconds
    tabs = [
        (f"u{u:05d}.t{k}", f"u{u:05d}") for u in range(scenario.users) for k in range(scenario.tabs)
    ]
    step = scenario.ramp_seconds / len(tabs)
    channels = run_channels(scenario, seed)
    upstreams = [node.ws_url for node in target.nodes] or [target.ws_url]
    plans: list[WorkerPlan] = []
    for w in range(workers):
        plans.append(
            WorkerPlan(
                index=w,
                tabs=[
                    (t, u, start + i * step, first_node(i, len(upstreams)))
                    for i, (t, u) in enumerate(tabs)
                    if i % workers == w
                ],
                upstreams=upstreams,
                ca_file=target.ca_file,
                insecure=target.insecure,
                path=socket_path(target.key),
                key=target.key,
                secret=target.secret,
                channels=channels,
                behaviour={
                    "activity_timeout": scenario.client.activity_timeout,
                    "pong_timeout": scenario.client.pong_timeout,
                    "retry_jitter_seconds": scenario.client.retry_jitter_seconds,
                },
                latency_ms=scenario.latency_ms,
                jitter_ms=scenario.jitter_ms,
                bytes_per_second=scenario.bytes_per_second,
                incidents=[],
                seed=seed,
                measure_from=measure_from,
                measure_to=measure_from + scenario.duration_seconds,
            )
        )
    owner = {t: i % workers for i, (t, _) in enumerate(tabs)}
    for n, incident in enumerate(scenario.incidents):
        if incident.fault is None:
            continue
        rng = random.Random(f"{seed}/incident/{n}")
        chosen = rng.sample([t for t, _ in tabs], max(1, round(incident.share * len(tabs))))
        lift = incident.lift()
        for w in range(workers):
            mine = [t for t in chosen if owner[t] == w]
            if mine:
                plans[w]["incidents"].append(
                    WorkerIncident(
                        at=measure_from + incident.at,
                        fault=incident.fault.name,
                        params=incident.fault.params(),
                        lift_at=(
                            measure_from + incident.at + (incident.lasts or 0.0)
                            if lift is not None
                            else None
                        ),
                        tabs=mine,
                    )
                )
    return plans


async def simulate(
    target: Target,
    scenario: SimScenario,
    *,
    workers: int,
    seed: int,
    restarter: Restarter | None,
    node_stopper: NodeStopper | None = None,
    on_progress: Callable[[Progress], None] = lambda _: None,
) -> SimulationResult:
    if scenario.restarts and restarter is None:
        raise HarnessError("this scenario restarts the server, but no restart was provided")
    if scenario.stopped_nodes and node_stopper is None:
        raise HarnessError("this scenario stops a node, but no way to stop one was provided")
    started_at = time.time()
    start = started_at + STARTUP_SECONDS
    measure_from = start + scenario.ramp_seconds
    measure_to = measure_from + scenario.duration_seconds
    stop_at = measure_to + scenario.settle_seconds
    plans = plan_workers(scenario, workers=workers, seed=seed, start=start, target=target)
    progress = Progress(tabs=sum(len(p["tabs"]) for p in plans))
    context = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    processes = []
    for plan in plans:
        mine, theirs = context.Pipe()
        process = context.Process(target=worker_main, args=(theirs, plan), daemon=True)
        process.start()
        theirs.close()
        pipes.append(mine)
        processes.append(process)
    finished: dict[int, dict[str, Any]] = {}
    all_done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def readable(index: int) -> None:
        try:
            kind, body = pipes[index].recv()
        except (EOFError, OSError):
            loop.remove_reader(pipes[index].fileno())
            finished.setdefault(index, {})
            if len(finished) == len(pipes):
                all_done.set()
            return
        if kind == "progress":
            progress.ready[index] = body["ready"]
            progress.received[index] = body["received"]
            progress.cpu[index] = body["cpu"]
            progress.lag_ms[index] = body["lag_ms"]
        elif kind == "done":
            finished[index] = body
            loop.remove_reader(pipes[index].fileno())
            if len(finished) == len(pipes):
                all_done.set()

    for index, pipe in enumerate(pipes):
        loop.add_reader(pipe.fileno(), readable, index)
    via = (
        [target.nodes[n].http_url for n in publish_nodes(len(target.nodes), scenario.stopped_nodes)]
        if target.nodes
        else []
    )
    publisher = Publisher(
        target, plans[0]["channels"], scenario.alerts, scenario.publish_per_second, via=via
    )
    #: Node -> when it was told to stop, and when it was down.
    stopped_at: dict[int, float] = {}
    down_at: dict[int, float] = {}
    timeline: list[str] = []
    #: What went wrong on the harness's side during the run: the verdict cannot be trusted.
    problems: list[str] = []

    def note(text: str) -> None:
        line = f"t+{time.time() - measure_from:6.1f}s {text}"
        timeline.append(line)
        progress.events.append(line)

    async def restart_at(at: float) -> None:
        assert restarter is not None
        await asyncio.sleep(max(0.0, measure_from + at - time.time()))
        note("server restart begins")
        try:
            await restart(restarter)
        except HarnessError as exc:
            # Whether the server or the command failed, the run goes on to its end and is
            # reported: what the users went through is still worth seeing.
            problems.append(f"the restart failed: {exc}")
            note(f"the restart failed: {exc}")
            return
        note("server back")

    async def stop_node_at(at: float, node: int) -> None:
        assert node_stopper is not None
        await asyncio.sleep(max(0.0, measure_from + at - time.time()))
        note(f"node {node} told to stop")
        stopped_at[node] = time.time()
        try:
            await node_stopper.stop(node)
        except HarnessError as exc:
            problems.append(f"stopping node {node} failed: {exc}")
            note(f"stopping node {node} failed: {exc}")
            return
        down_at[node] = time.time()
        note(f"node {node} down")

    async def incident_notes() -> None:
        for incident in sorted(scenario.incidents, key=lambda i: i.at):
            if not incident.restart and incident.stop_node is None:
                await asyncio.sleep(max(0.0, measure_from + incident.at - time.time()))
                note(incident.describe().split(" ", 1)[1])

    background = [
        asyncio.ensure_future(publisher.run(measure_from, measure_to)),
        asyncio.ensure_future(incident_notes()),
        *(asyncio.ensure_future(restart_at(i.at)) for i in scenario.incidents if i.restart),
        *(
            asyncio.ensure_future(stop_node_at(i.at, i.stop_node))
            for i in scenario.incidents
            if i.stop_node is not None
        ),
    ]
    try:
        while time.time() < stop_at:
            now = time.time()
            progress.elapsed = now - started_at
            progress.phase = (
                "starting" if now < start else "ramp" if now < measure_from
                else "measuring" if now < measure_to else "settling"
            )  # fmt: skip
            progress.published = len(publisher.publications)
            progress.publish_failed = sum(publisher.failures.values())
            on_progress(progress)
            dead = [p for p in processes if p.exitcode not in (None, 0)]
            if dead:
                raise HarnessError(f"a load-generator process exited with {dead[0].exitcode}")
            for task in background:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            await asyncio.sleep(0.25)
        progress.phase = "collecting"
        on_progress(progress)
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send("stop")
        try:
            async with asyncio.timeout(COLLECT_SECONDS):
                await all_done.wait()
        except TimeoutError:
            raise HarnessError(
                f"the load generator did not report within {COLLECT_SECONDS:g}s of the end"
            ) from None
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        for pipe in pipes:
            with contextlib.suppress(Exception):
                loop.remove_reader(pipe.fileno())
            pipe.close()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    missing = [i for i in range(len(pipes)) if "lives" not in finished.get(i, {})]
    if missing:
        raise HarnessError(f"load-generator process(es) {missing} ended without reporting")
    lives = [Life.from_dict(d) for body in finished.values() for d in body["lives"]]
    latency = [ms for body in finished.values() for ms in body["latency_ms"]]
    figures = tally(
        lives,
        publisher.publications,
        slots=list(scenario.channels),
        run_end=stop_at,
        window=(measure_from, measure_to),
        grace=scenario.delivery_grace_seconds,
        latency_ms=latency,
    )
    slots = list(scenario.channels)
    stopped = tuple(
        stopped_node_figures(
            lives, node=node, stopped_at=at, down_at=down_at.get(node), slots=slots
        )
        for node, at in sorted(stopped_at.items())
    )
    generator = Generator.from_samples(
        len(plans),
        [body["cpu_shares"] for body in finished.values()],
        [lag for body in finished.values() for lag in body["lag_ms"]],
    )
    injections: dict[str, int] = {}
    for body in finished.values():
        for name, count in body["injections"].items():
            injections[name] = injections.get(name, 0) + count
    return SimulationResult(
        scenario=scenario,
        target=target,
        seed=seed,
        figures=figures,
        generator=generator,
        readiness=judge(
            figures,
            scenario.thresholds,
            generator,
            offered_per_second=scenario.offered_per_second,
            problems=problems,
            stopped=stopped,
        ),
        injections=injections,
        publish_failures=dict(publisher.failures),
        timeline=tuple(timeline),
        started_at=started_at,
        seconds=time.time() - started_at,
        lives=tuple(lives),
        publications=tuple(publisher.publications),
        stopped=stopped,
    )
