"""A load-generator process: its share of the tabs, behind its own fault proxy (one per node
of a cluster), on its own event loop, so the generator spreads over the machine's cores
instead of being the bottleneck.

It talks to the coordinator over a pipe: ``progress`` every half second (tabs ready, events
received, its CPU share and event-loop lag, which say whether it kept up), then ``done`` with
every connection's ``Life``. The coordinator sends ``stop`` when the run is over.

Everything it needs arrives as one plain mapping (``WorkerPlan``), so it starts under the
``spawn`` method and could as well run on another machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from multiprocessing.connection import Connection
from typing import Any, TypedDict

from ..proxy.faults import Bandwidth, Fault, Latency, Resume, fault_from_params
from ..proxy.schedule import Schedule, Step
from ..proxy.server import FaultProxy
from .cluster import node_turn
from .scenario import ClientBehaviour
from .tab import Tab, TabCounters, pause

__all__ = ["WorkerIncident", "WorkerPlan", "worker_main"]

PROGRESS_EVERY = 0.5
#: How often the loop-lag probe wakes; its overshoot is the lag a tab's message waits.
LAG_PROBE_EVERY = 0.1


class WorkerIncident(TypedDict):
    at: float
    fault: str
    params: dict[str, Any]
    lift_at: float | None
    tabs: list[str]


class WorkerPlan(TypedDict):
    index: int
    #: (tab id, user id, wall time to open it, the node it connects to first)
    tabs: list[tuple[str, str, float, int]]
    #: The server's WebSocket URL, or each node's of a cluster (node ``n`` at ``n``): the
    #: worker puts a fault proxy in front of each.
    upstreams: list[str]
    #: The CA to trust for a wss:// upstream (the worker's proxy speaks TLS to it).
    ca_file: str | None
    #: ``--insecure``: the upstream's certificate is not verified.
    insecure: bool
    path: str
    key: str
    secret: str
    channels: dict[str, str]
    behaviour: dict[str, float]
    latency_ms: float
    jitter_ms: float
    bytes_per_second: int
    incidents: list[WorkerIncident]
    seed: int
    #: Wall times of the measured phase, for the lag and CPU figures.
    measure_from: float
    measure_to: float


def worker_main(pipe: Connection, plan: WorkerPlan) -> None:
    """The process's entry point (under ``spawn``: importable, arguments picklable)."""
    # The coordinator gone (interrupted, or ended by a harness error) leaves nobody to report
    # to: the worker ends quietly, its sockets closed by the exit.
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError, ConnectionResetError, EOFError):
        asyncio.run(_Worker(pipe, plan).run())


def _network_schedule(plan: WorkerPlan) -> Schedule | None:
    steps: list[Step] = []
    if plan["latency_ms"] or plan["jitter_ms"]:
        fault: Fault = Latency(ms=plan["latency_ms"], jitter_ms=plan["jitter_ms"])
        steps.append(Step(number=1, at=0.0, fault=fault))
    if plan["bytes_per_second"]:
        steps.append(Step(number=len(steps) + 1, at=0.0, fault=Bandwidth(plan["bytes_per_second"])))
    return (
        Schedule(name="simulation network", steps=tuple(steps), seed=plan["seed"])
        if steps
        else None
    )


class _Worker:
    def __init__(self, pipe: Connection, plan: WorkerPlan) -> None:
        self.pipe = pipe
        self.plan = plan
        self.counters = TabCounters()
        self.stop = asyncio.Event()
        self.injections: dict[str, int] = {}
        self.lags: list[float] = []
        self.recent_lag = 0.0
        self.cpu_shares: list[float] = []
        self.tabs: dict[str, Tab] = {}

    def _logged(self, entry: dict[str, Any]) -> None:
        name = str(entry.get("fault"))
        if name == "error":  # not an injection: the proxy could not reach the server
            name = f"error: {entry.get('where', 'proxy')}"
        self.injections[name] = self.injections.get(name, 0) + 1

    async def run(self) -> None:
        plan = self.plan
        loop = asyncio.get_running_loop()
        loop.add_reader(self.pipe.fileno(), self._command)
        proxies = [
            FaultProxy(
                upstream,
                ca_file=plan["ca_file"],
                insecure=plan["insecure"],
                schedule=_network_schedule(plan),
                seed=plan["seed"],
                log=self._logged,
            )
            for upstream in plan["upstreams"]
        ]
        for proxy in proxies:
            await proxy.start()
        behaviour = ClientBehaviour(**plan["behaviour"])
        urls = [proxy.url + plan["path"] for proxy in proxies]
        cluster = len(urls) > 1
        for tab_id, user, _, first in plan["tabs"]:
            route = [(n, urls[n]) for n in node_turn(first, len(urls))] if cluster else []
            self.tabs[tab_id] = Tab(
                tab_id, user, url=urls[first], key=plan["key"], secret=plan["secret"],
                channels=plan["channels"], behaviour=behaviour, counters=self.counters,
                rng=random.Random(f"{plan['seed']}/{tab_id}"), route=route,
            )  # fmt: skip
        tasks = [asyncio.ensure_future(self._tab(self.tabs[t], at)) for t, _, at, _ in plan["tabs"]]
        helpers = [
            asyncio.ensure_future(self._progress()),
            asyncio.ensure_future(self._probe_lag()),
            *(asyncio.ensure_future(self._incident(proxies, i)) for i in plan["incidents"]),
        ]
        await self.stop.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.gather(*tasks, return_exceptions=True)
        for task in [*tasks, *helpers]:
            task.cancel()
        await asyncio.gather(*tasks, *helpers, return_exceptions=True)
        for proxy in proxies:
            await proxy.aclose(timeout=2)
        loop.remove_reader(self.pipe.fileno())
        lives = [life.to_dict() for tab in self.tabs.values() for life in tab.lives]
        self.pipe.send(
            (
                "done",
                {
                    "worker": plan["index"],
                    "lives": lives,
                    "latency_ms": self.counters.latency_ms,
                    "injections": self.injections,
                    "lag_ms": self.lags,
                    "cpu_shares": self.cpu_shares,
                },
            )
        )

    def _send(self, message: tuple[str, dict[str, Any]]) -> None:
        """A progress report; if the coordinator is gone, the run is over."""
        try:
            self.pipe.send(message)
        except OSError:  # BrokenPipeError, ConnectionResetError
            self.stop.set()

    def _command(self) -> None:
        try:
            message = self.pipe.recv()
        except (EOFError, OSError):  # the coordinator is gone: end the run
            message = "stop"
        if message == "stop":
            self.stop.set()

    async def _tab(self, tab: Tab, at: float) -> None:
        if await self._sleep_until(at):
            await tab.run(self.stop)

    async def _sleep_until(self, wall: float) -> bool:
        """Sleep until ``wall``; False if the run stopped first."""
        return await pause(self.stop, wall - time.time())

    async def _incident(self, proxies: list[FaultProxy], incident: WorkerIncident) -> None:
        if not await self._sleep_until(incident["at"]):
            return
        fault = fault_from_params(incident["fault"], incident["params"])
        hit: list[tuple[FaultProxy, int]] = []
        for tab_id in incident["tabs"]:
            tab = self.tabs[tab_id]
            proxy = proxies[tab.node or 0]  # the proxy in front of the tab's current node
            index = proxy.index_of_client(tab.local_port) if tab.local_port else None
            if index is not None:
                proxy.inject(fault, index)
                tab.mark_faulted()
                hit.append((proxy, index))
        lift_at = incident["lift_at"]
        if lift_at is not None and hit and await self._sleep_until(lift_at):
            for proxy, index in hit:
                proxy.inject(Resume(), index)

    async def _progress(self) -> None:
        last_wall, last_cpu = time.time(), time.process_time()
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            wall, cpu = time.time(), time.process_time()
            share = (cpu - last_cpu) / max(1e-6, wall - last_wall)
            if self.plan["measure_from"] <= wall <= self.plan["measure_to"]:
                self.cpu_shares.append(share)
            last_wall, last_cpu = wall, cpu
            self._send(
                (
                    "progress",
                    {
                        "worker": self.plan["index"],
                        "ready": self.counters.ready,
                        "received": self.counters.received,
                        "lives_ended": self.counters.lives_ended,
                        "cpu": share,
                        "lag_ms": self.recent_lag,
                    },
                )
            )

    async def _probe_lag(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(LAG_PROBE_EVERY)
            lag = (time.monotonic() - started - LAG_PROBE_EVERY) * 1000
            self.recent_lag = max(lag, self.recent_lag * 0.8)
            if self.plan["measure_from"] <= time.time() <= self.plan["measure_to"]:
                self.lags.append(max(0.0, lag))
