"""Virtual tabs driven by a load engine that is not asyncio: Locust (``locustfile.py``).

Locust runs its users as gevent greenlets in a monkey-patched process, and a ``Tab`` is
asyncio. So each engine process runs one asyncio event loop on a real OS thread
(``LoopThread``), and the engine's side only ever *hands work over*
(``call_soon_threadsafe``) and *polls* (a plain flag, a deque), never waits on the loop
thread: a greenlet blocked on a lock that another OS thread releases (``Future.result()``)
stops gevent's hub, which nothing in its own thread will wake (gevent raises ``LoopExit``).

``Swarm`` is one process's part of a run: its users' tabs, the publisher if it runs there,
the samples for the engine's live statistics (``drain``) and, at the end, everything the
ledger needs (``payload``, sent in ``chunks``). ``Gathering`` puts every process's payload
together in one place and tallies it with the ledger and the verdict of ``conformance
simulate``, so a distributed run ends with the same figures.

Nothing here imports Locust or gevent: this module is typed and tested without them.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import dataclasses
import math
import random
import selectors
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..target import Target
from .coordinator import SimulationResult, run_channels, socket_path
from .ledger import Life, Publication, tally
from .publisher import Publisher
from .scenario import SimScenario
from .tab import Tab, TabCounters
from .verdict import Generator, judge

__all__ = [
    "CONNECT",
    "CONNECTION",
    "DELIVER",
    "RECONNECT",
    "Gathering",
    "Job",
    "LoopThread",
    "RunPlan",
    "Sample",
    "Swarm",
    "UserTabs",
    "chunks",
]

#: The names samples are reported under (Locust's request type is "WS").
CONNECT = "connect"
RECONNECT = "reconnect"
DELIVER = "deliver"
CONNECTION = "connection"

#: (name, milliseconds, why it failed or None): one entry of the engine's live statistics.
Sample = tuple[str, float, str | None]

#: How often the loop thread samples its own lag and its process's CPU share.
LAG_PROBE_EVERY = 0.1
CPU_PROBE_EVERY = 0.5
#: Lives per message to the master (a message stays a few hundred kilobytes).
LIVES_PER_CHUNK = 1000


class Job:
    """A coroutine handed to the loop thread. ``done`` turns true when it ends (a plain
    attribute: polling it takes no lock, from any thread)."""

    def __init__(self) -> None:
        self.done = False
        self.error: BaseException | None = None

    def _finished(self, task: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            self.error = task.exception()
        self.done = True


class LoopThread:
    """One asyncio event loop on a real OS thread.

    ``start_thread`` and ``selector`` are the unpatched ``_thread.start_new_thread`` and
    ``selectors.DefaultSelector`` (under gevent: ``gevent.monkey.get_original``), so the loop
    is a plain epoll loop on its own thread, not a greenlet sharing gevent's hub.
    """

    def __init__(
        self,
        *,
        start_thread: Callable[[Callable[[], None], tuple[()]], object] = _thread.start_new_thread,
        selector: Callable[[], selectors.BaseSelector] = selectors.DefaultSelector,
    ) -> None:
        self.loop = asyncio.SelectorEventLoop(selector())
        self._start_thread = start_thread
        self.running = False

    def start(self) -> None:
        self.running = True
        self._start_thread(self._run, ())

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.running = False

    def call(self, function: Callable[..., object], *args: Any) -> None:
        """Run ``function(*args)`` on the loop thread, soon."""
        self.loop.call_soon_threadsafe(function, *args)

    def submit(self, coroutine: Callable[[], Coroutine[Any, Any, Any]]) -> Job:
        """Start ``coroutine()`` on the loop thread (it is created there, too)."""
        job = Job()

        def begin() -> None:
            asyncio.ensure_future(coroutine()).add_done_callback(job._finished)

        self.call(begin)
        return job

    def stop(self) -> None:
        self.call(self.loop.stop)


@dataclass(frozen=True)
class RunPlan:
    """What every process of a run agrees on (each reads the same scenario and target)."""

    scenario: SimScenario
    target: Target
    seed: int
    tabs: int

    @property
    def channels(self) -> dict[str, str]:
        return run_channels(self.scenario, self.seed)


@dataclass
class UserTabs:
    """One virtual user's tabs on the loop thread, and what ends them."""

    user: str
    stop: asyncio.Event
    jobs: list[Job]

    @property
    def done(self) -> bool:
        return all(job.done for job in self.jobs)


class _Watcher:
    """The ``TabWatcher`` that turns connections into samples, with the ledger's rules: a
    reconnect runs from the end of a connection that was established and lost to the moment
    the tab is subscribed to every channel again."""

    def __init__(self, samples: deque[Sample]) -> None:
        self.samples = samples
        self.down_since: dict[str, float] = {}

    def established(self, tab: Tab, opened: float, at: float) -> None:
        self.samples.append((CONNECT, (at - opened) * 1000, None))

    def ready(self, tab: Tab, at: float) -> None:
        since = self.down_since.pop(tab.tab_id, None)
        if since is not None:
            self.samples.append((RECONNECT, (at - since) * 1000, None))

    def ended(self, tab: Tab, life: Life) -> None:
        ended = life.ended if life.ended is not None else time.time()
        if life.how in ("", "end of run"):
            if life.established is not None:
                self.samples.append((CONNECTION, (ended - life.established) * 1000, None))
        elif life.established is None:
            self.samples.append((CONNECT, (ended - life.opened) * 1000, life.how))
        else:
            self.samples.append((CONNECTION, (ended - life.established) * 1000, life.how))
            self.down_since.setdefault(tab.tab_id, ended)


class Swarm:
    """One engine process's part of a run (users come and go as the engine says)."""

    def __init__(self, loop: LoopThread, plan: RunPlan) -> None:
        self.loop = loop
        self.plan = plan
        self.channels = plan.channels
        self.url = plan.target.ws_url + socket_path(plan.target.key)
        self.counters = TabCounters()
        self.samples: deque[Sample] = deque()
        self._watcher = _Watcher(self.samples)
        self.tabs: list[Tab] = []
        self.users: list[UserTabs] = []
        self.publisher: Publisher | None = None
        self._publisher_job: Job | None = None
        self._publisher_stop = asyncio.Event()
        self._probe_stop = asyncio.Event()
        self.latency_ms: list[float] = []
        self.cpu_shares: list[float] = []
        self.lag_ms: list[float] = []
        self._probe_job = loop.submit(self._probe)

    def open_user(self, user: str) -> UserTabs:
        stop = asyncio.Event()
        behaviour = self.plan.scenario.client
        tabs = [
            Tab(
                f"{user}.t{k}", user, url=self.url, key=self.plan.target.key,
                secret=self.plan.target.secret, channels=self.channels, behaviour=behaviour,
                counters=self.counters, rng=random.Random(f"{self.plan.seed}/{user}.t{k}"),
                watcher=self._watcher, tls=self.plan.target.client_tls(),
            )
            for k in range(self.plan.tabs)
        ]  # fmt: skip
        self.tabs += tabs
        handle = UserTabs(user, stop, [self.loop.submit(_runner(tab, stop)) for tab in tabs])
        self.users.append(handle)
        return handle

    def close_user(self, handle: UserTabs) -> None:
        self.loop.call(handle.stop.set)

    def start_publisher(self) -> Job:
        scenario = self.plan.scenario
        self.publisher = Publisher(
            self.plan.target, self.channels, scenario.alerts, scenario.publish_per_second
        )
        self._publisher_job = self.loop.submit(self._publish)
        return self._publisher_job

    def stop_publisher(self) -> None:
        self.loop.call(self._publisher_stop.set)

    def stop(self) -> None:
        """End everything this process runs: the publisher, every tab, the probes."""
        for event in (self._publisher_stop, *(u.stop for u in self.users), self._probe_stop):
            self.loop.call(event.set)

    @property
    def finished(self) -> bool:
        jobs = [self._probe_job, *(j for u in self.users for j in u.jobs)]
        if self._publisher_job is not None:
            jobs.append(self._publisher_job)
        return all(job.done for job in jobs)

    def drain(self) -> list[Sample]:
        """The samples since the last call (the deque is appended on the loop thread)."""
        taken: list[Sample] = []
        with contextlib.suppress(IndexError):
            while True:
                taken.append(self.samples.popleft())
        return taken

    def payload(self) -> dict[str, Any]:
        """Everything the ledger needs from this process; call once ``finished``."""
        self._take_latencies()
        publisher = self.publisher
        return {
            "lives": [life.to_dict() for tab in self.tabs for life in tab.lives],
            "publications": (
                [[p.seq, p.slot, p.sent, p.acked] for p in publisher.publications]
                if publisher is not None
                else []
            ),
            "publish_failures": dict(publisher.failures) if publisher is not None else {},
            "latency_ms": self.latency_ms,
            "cpu_shares": self.cpu_shares,
            "lag_ms": self.lag_ms,
        }

    def _take_latencies(self) -> None:
        taken, self.counters.latency_ms = self.counters.latency_ms, []
        self.latency_ms += taken
        self.samples.extend((DELIVER, ms, None) for ms in taken)

    async def _publish(self) -> None:
        assert self.publisher is not None
        publishing = asyncio.ensure_future(self.publisher.run(time.time(), math.inf))
        stopped = asyncio.ensure_future(self._publisher_stop.wait())
        await asyncio.wait({publishing, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (publishing, stopped):
            task.cancel()
        await asyncio.gather(publishing, stopped, return_exceptions=True)

    async def _probe(self) -> None:
        """Event-loop lag, the process's CPU share, and the delivery latencies into samples,
        all on the loop thread (where the tabs append them)."""
        last_wall, last_cpu = time.monotonic(), time.process_time()
        while not self._probe_stop.is_set():
            started = time.monotonic()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LAG_PROBE_EVERY):
                    await self._probe_stop.wait()
            now = time.monotonic()
            if not self._probe_stop.is_set():
                self.lag_ms.append(max(0.0, (now - started - LAG_PROBE_EVERY) * 1000))
            self._take_latencies()
            if now - last_wall >= CPU_PROBE_EVERY:
                cpu = time.process_time()
                self.cpu_shares.append((cpu - last_cpu) / (now - last_wall))
                last_wall, last_cpu = now, cpu


def _runner(tab: Tab, stop: asyncio.Event) -> Callable[[], Coroutine[Any, Any, None]]:
    return lambda: tab.run(stop)


def chunks(payload: Mapping[str, Any], size: int = LIVES_PER_CHUNK) -> Iterator[dict[str, Any]]:
    """A payload as messages: the first carries everything but the lives beyond ``size``,
    the rest carry lives, and the last says so (``last: True``)."""
    lives = list(payload["lives"])
    first = {**payload, "lives": lives[:size], "last": len(lives) <= size}
    yield first
    for start in range(size, len(lives), size):
        yield {"lives": lives[start : start + size], "last": start + size >= len(lives)}


@dataclass
class _Part:
    lives: list[dict[str, Any]] = field(default_factory=list)
    publications: list[list[Any]] = field(default_factory=list)
    publish_failures: dict[str, int] = field(default_factory=dict)
    latency_ms: list[float] = field(default_factory=list)
    cpu_shares: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    complete: bool = False


class Gathering:
    """Every process's payload, in one place: the master's (or a lone process's) ledger."""

    def __init__(self) -> None:
        self.parts: dict[str, _Part] = {}

    def add(self, source: str, chunk: Mapping[str, Any]) -> None:
        part = self.parts.setdefault(source, _Part())
        part.lives += chunk.get("lives", [])
        part.publications += chunk.get("publications", [])
        for why, count in chunk.get("publish_failures", {}).items():
            part.publish_failures[why] = part.publish_failures.get(why, 0) + count
        part.latency_ms += chunk.get("latency_ms", [])
        part.cpu_shares += chunk.get("cpu_shares", [])
        part.lag_ms += chunk.get("lag_ms", [])
        part.complete = part.complete or bool(chunk.get("last"))

    def complete(self, sources: set[str]) -> bool:
        return all(s in self.parts and self.parts[s].complete for s in sources)

    def result(self, plan: RunPlan, *, started_at: float, ended_at: float) -> SimulationResult:
        parts = list(self.parts.values())
        lives = [Life.from_dict(d) for part in parts for d in part.lives]
        publications = sorted(
            (Publication(int(p[0]), str(p[1]), float(p[2]), p[3]) for part in parts
             for p in part.publications),
            key=lambda p: p.seq,
        )  # fmt: skip
        sent = [p.sent for p in publications]
        window = (min(sent), max(sent)) if sent else (started_at, ended_at)
        figures = tally(
            lives,
            publications,
            slots=list(plan.scenario.channels),
            run_end=ended_at,
            window=window,
            grace=plan.scenario.delivery_grace_seconds,
            latency_ms=[ms for part in parts for ms in part.latency_ms],
        )
        generator = Generator.from_samples(
            len(parts), [part.cpu_shares for part in parts], [x for p in parts for x in p.lag_ms]
        )
        # What this run was: the engine chose the users; incidents and network shaping are the
        # embedded simulation's (its fault proxy), not applied here.
        scenario = dataclasses.replace(
            plan.scenario,
            users=figures.users,
            tabs=plan.tabs,
            duration_seconds=round(window[1] - window[0], 1),
            incidents=(),
        )
        failures: dict[str, int] = {}
        for part in parts:
            for why, count in part.publish_failures.items():
                failures[why] = failures.get(why, 0) + count
        return SimulationResult(
            scenario=scenario,
            target=plan.target,
            seed=plan.seed,
            figures=figures,
            generator=generator,
            readiness=judge(
                figures,
                plan.scenario.thresholds,
                generator,
                offered_per_second=plan.scenario.publish_per_second * figures.tabs,
            ),
            injections={},
            publish_failures=failures,
            timeline=(),
            started_at=started_at,
            seconds=ended_at - started_at,
        )
