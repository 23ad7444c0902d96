"""The load generator: worker processes that hold the connections, and a parent that publishes.

One Python process cannot both read hundreds of thousands of frames a second and publish, so
the subscribers live in ``settings.workers`` processes (``worker.main``, spawned, one asyncio
loop each) and the parent publishes over the HTTP API, steering the workers through pipes.
``run_phase`` turns a phase's name into a ``PhaseResult`` and never raises for a misbehaving
server: whatever went wrong is the result's ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from . import orders, procstat, worker
from .delivery_phases import run_fanout, run_latency, run_stalled
from .model import BenchSettings, BenchTarget, PhaseResult
from .phases import (
    PhaseContext,
    PhaseFailure,
    PhaseRecord,
    parse_phase,
    run_connect,
    run_idle,
    run_relay,
)
from .publisher import PublishError

__all__ = ["LoadGenerator", "WorkerError"]

#: Seconds a worker gets to start and answer, and to stop before it is killed.
WORKER_START_TIMEOUT = 20.0
WORKER_STOP_TIMEOUT = 3.0
#: Seconds the end-of-phase close may take beyond the phase's own budget.
CLOSE_TIMEOUT = 10.0

_RUNNERS = {
    "idle": run_idle,
    "connect": run_connect,
    "fanout": run_fanout,
    "relay": run_relay,
    "latency": run_latency,
    "stalled": run_stalled,
}


class WorkerError(Exception):
    """A worker could not carry out an order (the text says why), or it is gone."""


class _Worker:
    """The parent's end of one worker process."""

    def __init__(self, context: Any, index: int) -> None:
        self.index = index
        self.pipe, child = context.Pipe()
        self.process = context.Process(
            target=worker.main, args=(child,), name=f"bench-worker-{index}", daemon=True
        )
        self.process.start()
        child.close()
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._next_call = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pid(self) -> int | None:
        pid: int | None = self.process.pid
        return pid

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self.pipe.fileno(), self._readable)
        # uvloop makes a watched descriptor non-blocking, and a pipe message read or written
        # in pieces is garbled: the whole message must go through at once.
        os.set_blocking(self.pipe.fileno(), True)

    def _readable(self) -> None:
        try:
            call, ok, result = self.pipe.recv()
        except (EOFError, OSError):
            self._gone(f"worker {self.index} exited (status {self.process.exitcode})")
            return
        waiter = self._calls.pop(call, None)
        if waiter is None or waiter.done():
            return
        if ok:
            waiter.set_result(result)
        else:
            waiter.set_exception(WorkerError(f"worker {self.index}: {result}"))

    def _gone(self, reason: str) -> None:
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self.pipe.fileno())
        for waiter in self._calls.values():
            if not waiter.done():
                waiter.set_exception(WorkerError(reason))
        self._calls.clear()

    async def call(self, order: object, timeout: float) -> Any:
        """Send an order and wait for its answer.

        Raises:
            WorkerError: the worker failed the order, did not answer in ``timeout``, or is gone.
        """
        if not self.process.is_alive():
            raise WorkerError(f"worker {self.index} is not running")
        assert self._loop is not None
        self._next_call += 1
        call = self._next_call
        waiter: asyncio.Future[Any] = self._loop.create_future()
        self._calls[call] = waiter
        try:
            self.pipe.send((call, order))
        except OSError as exc:
            self._calls.pop(call, None)
            raise WorkerError(f"worker {self.index} is gone: {exc}") from None
        try:
            async with asyncio.timeout(max(0.1, timeout)):
                return await waiter
        except TimeoutError:
            raise WorkerError(
                f"worker {self.index} did not answer {type(order).__name__} in {timeout:.0f} s"
            ) from None
        finally:
            self._calls.pop(call, None)

    def stop(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self.pipe.fileno())
        with contextlib.suppress(OSError):
            self.pipe.send(None)
        self.process.join(WORKER_STOP_TIMEOUT)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(WORKER_STOP_TIMEOUT)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(WORKER_STOP_TIMEOUT)
        self.pipe.close()


class WorkerPool:
    """The workers, as the phases see them."""

    def __init__(self, workers: list[_Worker]) -> None:
        self._workers = workers

    @property
    def size(self) -> int:
        return len(self._workers)

    @property
    def pids(self) -> list[int | None]:
        return [w.pid for w in self._workers]

    async def call(self, index: int, order: object, timeout: float) -> Any:
        return await self._workers[index].call(order, timeout)

    async def call_each(self, orders: list[object], timeout: float) -> list[Any]:
        """Order ``i`` to worker ``i``, all at once; ``None`` orders are skipped (``None``)."""

        async def nothing() -> None:
            return None

        return list(
            await asyncio.gather(
                *(
                    w.call(o, timeout) if o is not None else nothing()
                    for w, o in zip(self._workers, orders, strict=True)
                )
            )
        )

    async def call_all(self, order: object, timeout: float) -> list[Any]:
        return await self.call_each([order] * len(self._workers), timeout)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


class LoadGenerator:
    """Owns ``settings.workers`` worker processes; use as a context manager."""

    def __init__(self, settings: BenchSettings) -> None:
        if settings.workers < 1:
            raise ValueError(f"workers must be at least 1, not {settings.workers}")
        self.settings = settings
        self._workers: list[_Worker] = []
        self._runner: asyncio.Runner | None = None
        #: Keeps channel names of separate runs (and of runs against a shared server) apart.
        self._token = uuid.uuid4().hex[:8]

    def __enter__(self) -> LoadGenerator:
        context = multiprocessing.get_context("spawn")
        try:
            self._workers = [_Worker(context, i) for i in range(self.settings.workers)]
            self._runner = asyncio.Runner(loop_factory=_loop_factory())
            loop = self._runner.get_loop()
            for w in self._workers:
                w.attach(loop)
            # The first answer says the worker has imported everything and is serving.
            pool = WorkerPool(self._workers)
            self._runner.run(pool.call_all(orders.Progress(), WORKER_START_TIMEOUT))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for w in self._workers:
            w.stop()
        self._workers = []
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def run_phase(
        self, target: BenchTarget, phase: str, on_progress: Callable[[str, float], None]
    ) -> PhaseResult:
        """Measure one phase against ``target``.

        Raises:
            ValueError: ``phase`` is not a phase name.
            RuntimeError: the load generator is not started (use it as ``with``).
        """
        spec = parse_phase(phase)
        if self._runner is None:
            raise RuntimeError("LoadGenerator.run_phase outside its 'with' block")
        return self._runner.run(self._run(target, phase, spec, on_progress))

    async def _run(
        self,
        target: BenchTarget,
        phase: str,
        spec: Any,
        on_progress: Callable[[str, float], None],
    ) -> PhaseResult:
        settings = self.settings
        pool = WorkerPool(self._workers)
        started = time.monotonic()
        record = PhaseRecord()
        context = PhaseContext(
            target=target,
            settings=settings,
            pool=pool,
            deadline=started + settings.phase_timeout,
            progress=lambda text, fraction: on_progress(f"{phase}: {text}", fraction),
            channel_prefix=f"bench-{self._token}-{phase}",
            record=record,
            sample_cpu=self._sample_cpu,
        )
        record.window_start = self._sample_cpu(target)
        try:
            async with asyncio.timeout(settings.phase_timeout):
                await _RUNNERS[spec.kind](context, spec)
        except TimeoutError:
            record.fail(f"the phase did not finish within {settings.phase_timeout:g} s")
        except (PhaseFailure, WorkerError, PublishError, OSError, ValueError) as exc:
            record.fail(str(exc) or type(exc).__name__)
        finally:
            if record.window_end is None:
                record.window_end = self._sample_cpu(target)
            await self._clean_up(pool, record)
        return record.result(phase, time.monotonic() - started)

    async def _clean_up(self, pool: WorkerPool, record: PhaseRecord) -> None:
        """Cancel what is still running in the workers and close every connection, so the
        server is back to none before the next phase."""
        try:
            await pool.call_all(orders.Abort(), CLOSE_TIMEOUT)
            reports = await pool.call_all(
                orders.Close(deadline=time.monotonic() + CLOSE_TIMEOUT / 2), CLOSE_TIMEOUT
            )
        except WorkerError as exc:
            record.note(f"closing the connections failed: {exc}")
            return
        aborted = sum(r.aborted for r in reports)
        if aborted:
            record.note(f"{aborted} connections did not finish the closing handshake (aborted)")
        ended: dict[str, int] = {}
        for report in reports:
            for how, n in report.ended_early.items():
                ended[how] = ended.get(how, 0) + n
        if ended:
            described = ", ".join(f"{how} (x{n})" for how, n in sorted(ended.items()))
            record.note(f"the server ended connections before the phase closed them: {described}")
        # The server has seen every close; give it a moment to release them.
        await asyncio.sleep(0.2)

    def _sample_cpu(self, target: BenchTarget) -> dict[str, procstat.CpuSample]:
        """CPU of the server and of every load-generator process, at one moment."""
        now = time.monotonic()
        samples = {"publisher": procstat.sample(os.getpid(), now)}
        for index, pid in enumerate(w.pid for w in self._workers):
            samples[f"worker-{index}"] = procstat.sample(pid, now)
        if target.server_pid is not None:
            samples["server"] = procstat.sample(target.server_pid, now)
        return samples
