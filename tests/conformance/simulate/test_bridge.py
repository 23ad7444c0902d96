"""The bridge between Locust and the simulation's tabs: the samples a tab's connections make,
the payload's chunks and their gathering into one ledger, and the loop thread under gevent's
monkey-patching (in a subprocess, so this process stays unpatched)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from collections import deque
from typing import Any

import pytest

from conformance.simulate.bridge import (
    CONNECT,
    CONNECTION,
    RECONNECT,
    Gathering,
    RunPlan,
    Sample,
    _Watcher,
    chunks,
)
from conformance.simulate.ledger import Life
from conformance.simulate.scenario import load_sim_scenario
from conformance.target import Target


class _Tab:
    tab_id = "u1.t0"


def _life(number: int, opened: float, established: float | None, ended: float, how: str) -> Life:
    return Life(
        tab="u1.t0", user="u1", number=number, opened=opened, established=established,
        subscribed={"a": established} if established is not None else {}, ended=ended, how=how,
    )  # fmt: skip


def test_samples_follow_the_ledger_rules_for_a_lost_connection() -> None:
    samples: deque[Sample] = deque()
    watcher = _Watcher(samples)
    tab: Any = _Tab()
    watcher.established(tab, 10.0, 10.05)
    watcher.ready(tab, 10.06)  # the first connection: not a reconnect
    watcher.ended(tab, _life(0, 10.0, 10.05, 20.05, "close 4200 restarting"))
    watcher.ended(tab, _life(1, 20.05, None, 20.10, "connect failed: refused"))
    watcher.established(tab, 21.1, 21.2)
    watcher.ready(tab, 21.25)
    watcher.ended(tab, _life(2, 21.1, 21.2, 30.2, "end of run"))
    names = [(name, round(ms), failure) for name, ms, failure in samples]
    assert names == [
        (CONNECT, 50, None),
        (CONNECTION, 10000, "close 4200 restarting"),
        (CONNECT, 50, "connect failed: refused"),
        (CONNECT, 100, None),
        # From the end of the lost connection to subscribed again, across the failed attempt.
        (RECONNECT, 1200, None),
        (CONNECTION, 9000, None),
    ]


def test_chunks_carry_every_life_and_mark_the_last() -> None:
    payload = {"lives": [{"n": n} for n in range(5)], "publications": [[1, "a", 1.0, 1.1]]}
    parts = list(chunks(payload, size=2))
    assert [len(p["lives"]) for p in parts] == [2, 2, 1]
    assert [p["last"] for p in parts] == [False, False, True]
    assert "publications" in parts[0]
    assert "publications" not in parts[1]
    assert next(iter(chunks({"lives": []}, size=2)))["last"] is True


def test_gathering_tallies_every_process_as_one_ledger() -> None:
    scenario = load_sim_scenario("admin-alerts")
    target = Target("t", "ws://127.0.0.1:1", "http://127.0.0.1:1", "1", "k", "s")
    plan = RunPlan(scenario, target, seed=7, tabs=1)
    slots = list(scenario.channels)

    def life(user: str, got: list[int]) -> dict[str, Any]:
        return Life(
            tab=f"{user}.t0", user=user, number=0, opened=0.0, established=0.1,
            subscribed=dict.fromkeys(slots, 0.2), ended=100.0, how="end of run",
            received={slots[0]: got},
        ).to_dict()  # fmt: skip

    gathering = Gathering()
    publisher = {
        "lives": [life("w0.u00000", [1, 2])],
        "publications": [[1, slots[0], 10.0, 10.1], [2, slots[0], 11.0, 11.1]],
        "publish_failures": {},
        "cpu_shares": [0.1],
        "lag_ms": [1.0],
        "latency_ms": [5.0, 6.0],
    }
    for chunk in chunks(publisher):
        gathering.add("w0", chunk)
    assert not gathering.complete({"w0", "w1"})
    for chunk in chunks({"lives": [life("w1.u00000", [2])], "cpu_shares": [0.2]}):
        gathering.add("w1", chunk)
    assert gathering.complete({"w0", "w1"})
    result = gathering.result(plan, started_at=0.0, ended_at=100.0)
    figures = result.figures
    assert (figures.users, figures.published, figures.owed, figures.lost) == (2, 2, 4, 1)
    assert result.scenario.users == 2
    assert result.scenario.incidents == ()
    assert result.generator.workers == 2


_UNDER_GEVENT = textwrap.dedent(
    """
    import locust  # monkey-patches the process, as every Locust process is
    import asyncio, time
    import gevent
    from gevent import monkey
    from conformance.simulate.bridge import LoopThread

    assert monkey.is_module_patched("socket") and monkey.is_module_patched("threading")
    loop = LoopThread(
        start_thread=monkey.get_original("_thread", "start_new_thread"),
        selector=monkey.get_original("selectors", "DefaultSelector"),
    )
    loop.start()
    stop = asyncio.Event()
    echoed = []

    async def echo():  # a loopback server and client: sockets on the loop thread
        async def serve(reader, writer):
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping\\n")
        echoed.append(await reader.readline())
        writer.close()
        await stop.wait()
        server.close()

    job = loop.submit(echo)
    ticks = 0
    deadline = time.monotonic() + 10
    while not echoed and time.monotonic() < deadline:
        gevent.sleep(0.01)  # greenlets keep running while the loop thread works
        ticks += 1
    loop.call(stop.set)
    while not job.done and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert echoed == [b"ping\\n"] and job.done and job.error is None, (echoed, job.error)
    assert ticks > 0
    loop.stop()
    print("ok")
    """
)


@pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="the locust extra is not installed"
)
def test_loop_thread_runs_sockets_under_gevent_monkey_patching() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _UNDER_GEVENT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
