"""``conformance simulate``'s scenarios on Locust's master and workers: beyond one machine.

    locust -f conformance/simulate/locustfile.py --headless -u 201 -r 50 -t 30s \\
        --scenario admin-alerts --target-file target.yaml

or distributed: the master with ``--master --expect-workers N``, each worker with ``--worker
--master-host HOST`` (docs/simulate.md, "Beyond one machine"; ``scripts/locust-demo.sh`` runs
it on loopback).
This file starts no server: the target file names one that is running.

One Locust user is one virtual user with the scenario's tabs (``Tab``, asyncio, on a loop
thread of the worker process: ``bridge``), and one ``AlertPublisher`` (``fixed_count = 1``, so
``-u`` counts it) publishes the scenario's alerts at its rate. Locust's statistics show
``WS connect`` and ``reconnect`` (ms until connected, until subscribed again after a loss),
``deliver`` (publish to receipt, per event) and ``connection`` (how long each lived; a failure
when it was lost). When the test stops, the master asks every worker for its connections'
``Life`` records and the publish log (Locust custom messages) and prints the ledger and the
readiness verdict of ``conformance simulate`` (reports in ``--report-dir``); the process exits
with the verdict's status (0 ready, 1 not ready, 3 inconclusive).

Only Locust loads this file (it imports ``locust``, the optional extra
``pusher-conformance[locust]``).
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import gevent.lock
from gevent import monkey
from locust import User, constant, events, task
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from conformance.errors import TargetUnreachable, UsageError
from conformance.simulate.bridge import (
    Gathering,
    Job,
    LoopThread,
    RunPlan,
    Swarm,
    UserTabs,
    chunks,
)
from conformance.simulate.coordinator import SimulationResult
from conformance.simulate.report import figure_rows, to_html, to_json, to_markdown
from conformance.simulate.scenario import load_sim_scenario
from conformance.target import check_reachable, load_target_file

log = logging.getLogger("conformance.simulate.locust")

#: Seconds every process gets, once asked, to close its tabs and send what they saw.
COLLECT_SECONDS = 60.0
#: Seconds a stopping user waits for its tabs to close (their close handshakes take up to 2 s).
USER_STOP_SECONDS = 5.0
#: How often samples go from the loop thread into Locust's statistics.
DRAIN_EVERY = 0.25

COLLECT = "simulate_collect"
PART = "simulate_part"


class ConnectionEnded(Exception):
    """A sample's failure, named the way the connection ended (Locust groups by it)."""


class _Process:
    """This process's share of the run (each Locust process imports this file once)."""

    def __init__(self) -> None:
        self.loop: LoopThread | None = None
        self.plan: RunPlan | None = None
        self.swarm: Swarm | None = None
        self.reported = False
        self.lock = gevent.lock.Semaphore()
        self.users = itertools.count()
        self.prefix = ""
        self.gathering = Gathering()
        self.workers: set[str] = set()
        self.started_at = 0.0


state = _Process()


@events.init_command_line_parser.add_listener
def _arguments(parser: LocustArgumentParser) -> None:
    parser.add_argument(
        "--scenario", default="admin-alerts", env_var="CONFORMANCE_SCENARIO",
        help="a bundled simulate scenario (admin-alerts, restart-under-load, flaky-network) or"
        " a file; its tabs, channels, alerts, publish rate and thresholds apply",
    )  # fmt: skip
    parser.add_argument(
        "--target-file", default="", env_var="CONFORMANCE_TARGET_FILE",
        help="the running server to load (a conformance target file; required)",
    )  # fmt: skip
    parser.add_argument(
        "--tabs", default="", env_var="CONFORMANCE_TABS",
        help="tabs per virtual user (default: the scenario's)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", default="", env_var="CONFORMANCE_SEED",
        help="the run's seed: channel names and tab choices (default: random)",
    )  # fmt: skip
    parser.add_argument(
        "--report-dir", default="simulation-report", env_var="CONFORMANCE_REPORT_DIR",
        help="where the master writes simulation.json, .md and .html",
    )  # fmt: skip


def _plan(options: Any, seed: int) -> RunPlan:
    """The scenario and target the options name, checked; UsageError names the mistake."""
    if not options.target_file:
        raise UsageError(
            "--target-file is required: start the server first (e.g. reference-server --host"
            " 127.0.0.1 --port 6001 --app-id ... --key ... --secret ...) and name it in a"
            " target file"
        )
    scenario = load_sim_scenario(options.scenario)
    tabs = int(options.tabs) if options.tabs else scenario.tabs
    if not 1 <= tabs <= 20:
        raise UsageError(f"--tabs must be from 1 to 20, got {tabs}")
    return RunPlan(scenario, load_target_file(options.target_file), seed, tabs)


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if runner is None or environment.parsed_options is None:
        return
    if not isinstance(runner, WorkerRunner):
        # The master (or a lone process) checks the options once, before anything starts.
        try:
            plan = _plan(environment.parsed_options, 0)
            check_reachable(plan.target)
        except (UsageError, TargetUnreachable) as exc:
            log.error("conformance simulate: %s", exc)
            raise SystemExit(2 if isinstance(exc, UsageError) else 3) from None
        if plan.scenario.incidents or plan.scenario.latency_ms or plan.scenario.bytes_per_second:
            log.warning(
                "scenario %s: its incidents and network shaping need the fault proxy of the"
                " embedded `conformance simulate`; this Locust run applies neither",
                plan.scenario.name,
            )
        runner.register_message(PART, _on_part)
    if not isinstance(runner, MasterRunner):
        original = monkey.get_original
        state.loop = LoopThread(
            start_thread=original("_thread", "start_new_thread"),
            selector=original("selectors", "DefaultSelector"),
        )
        state.loop.start()
        gevent.spawn(_drain_forever, environment)
    if isinstance(runner, WorkerRunner):
        runner.register_message(COLLECT, _on_collect, concurrent=True)


@events.test_start.add_listener
def _test_start(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    runner = environment.runner
    if options is None or runner is None:
        return
    if not isinstance(runner, WorkerRunner):
        # Every process must name the same channels: the master picks the seed, and Locust
        # sends custom options (this one included) to the workers with their users.
        options.simulate_seed = int(options.seed) if options.seed else secrets.randbelow(2**31)
        state.gathering = Gathering()
        state.started_at = time.time()
    state.plan = _plan(options, int(options.simulate_seed))
    if isinstance(runner, MasterRunner):
        state.workers = {node.id for node in runner.clients.all}
        return
    assert state.loop is not None
    state.swarm = Swarm(state.loop, state.plan)
    state.reported = False
    state.users = itertools.count()
    state.prefix = f"w{runner.worker_index}." if isinstance(runner, WorkerRunner) else ""


@events.test_stop.add_listener
def _test_stop(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _report(environment)  # if the master did not ask first (its web UI's stop)
        return
    if isinstance(runner, MasterRunner):
        for worker in state.workers:
            runner.send_message(COLLECT, None, client_id=worker)
        if not _wait(lambda: state.gathering.complete(state.workers), COLLECT_SECONDS):
            missing = state.workers - {
                w for w, p in state.gathering.parts.items() if p.complete
            }  # fmt: skip
            log.error("conformance simulate: no report from worker(s) %s", sorted(missing))
    else:
        _report(environment)
    _conclude(environment)


def _on_collect(environment: Environment, msg: Message, **_: Any) -> None:
    _report(environment)


def _on_part(environment: Environment, msg: Message, **_: Any) -> None:
    state.gathering.add(str(msg.node_id), msg.data)


def _report(environment: Environment) -> None:
    """Close this process's tabs and send what they saw (once per test)."""
    with state.lock:
        swarm = state.swarm
        if swarm is None or state.reported:
            return
        state.reported = True
        swarm.stop()
        if not _wait(lambda: swarm.finished, COLLECT_SECONDS):
            log.error("conformance simulate: tabs still open %gs after stop", COLLECT_SECONDS)
        payload = swarm.payload()
        _fire(environment, swarm)
        runner = environment.runner
        for chunk in chunks(payload):
            if isinstance(runner, WorkerRunner):
                runner.send_message(PART, chunk)
            else:
                state.gathering.add("local", chunk)


def _conclude(environment: Environment) -> None:
    plan = state.plan
    if plan is None or not state.gathering.parts:
        log.error("conformance simulate: nothing gathered, no ledger")
        return
    result = state.gathering.result(plan, started_at=state.started_at, ended_at=time.time())
    _print(result)
    options = environment.parsed_options
    report_dir = Path(options.report_dir if options is not None else "simulation-report")
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "simulation.json").write_text(json.dumps(to_json(result), indent=2) + "\n")
    (report_dir / "simulation.md").write_text(to_markdown(result), encoding="utf-8")
    (report_dir / "simulation.html").write_text(to_html(result), encoding="utf-8")
    print(f"conformance simulate: report written to {report_dir}/simulation.{{json,md,html}}")
    environment.process_exit_code = result.readiness.exit_code


def _print(result: SimulationResult) -> None:
    rows = figure_rows(result)
    width = max(len(name) for name, _ in rows)
    r = result.readiness
    lines = [
        "",
        f"{result.scenario.title}: what the users felt"
        f" (the ledger of {len(state.gathering.parts)} load-generating process(es))",
        *(f"  {name:<{width}}  {value}" for name, value in rows),
        "",
        f"production readiness: {r.verdict.upper()} ({r.note})",
        *(f"  {c.name:<32} {c.measured:>16}  bar {c.bar:<12} {c.shown}" for c in r.criteria),
        "",
    ]
    print("\n".join(lines), flush=True)


def _wait(done: Callable[[], bool], seconds: float) -> bool:
    """Poll, yielding to other greenlets: never block on the loop thread."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.05)
    return True


def _fire(environment: Environment, swarm: Swarm) -> None:
    for name, ms, failure in swarm.drain():
        environment.events.request.fire(
            request_type="WS",
            name=name,
            response_time=ms,
            response_length=0,
            exception=ConnectionEnded(failure) if failure is not None else None,
            context={},
        )


def _drain_forever(environment: Environment) -> None:
    while True:
        gevent.sleep(DRAIN_EVERY)
        if state.swarm is not None:
            _fire(environment, state.swarm)


def _swarm() -> Swarm:
    if state.swarm is None:
        raise RuntimeError("no simulation in this process (test_start did not run)")
    return state.swarm


class VirtualUser(User):
    """One virtual user: the scenario's tabs, open as long as Locust keeps the user."""

    wait_time = constant(5)

    def on_start(self) -> None:
        self.tabs: UserTabs = _swarm().open_user(f"{state.prefix}u{next(state.users):05d}")

    @task
    def keep_tabs_open(self) -> None:
        """The tabs live on the loop thread; a Locust task has nothing to do."""

    def on_stop(self) -> None:
        swarm = state.swarm
        if swarm is not None:
            swarm.close_user(self.tabs)
            _wait(lambda: self.tabs.done, USER_STOP_SECONDS)


class AlertPublisher(User):
    """The app's backend: the scenario's alerts through the HTTP API, one at a time."""

    fixed_count = 1
    wait_time = constant(5)

    def on_start(self) -> None:
        self.job: Job = _swarm().start_publisher()

    @task
    def keep_publishing(self) -> None:
        if self.job.done and self.job.error is not None:
            log.error("conformance simulate: the publisher stopped: %r", self.job.error)

    def on_stop(self) -> None:
        swarm = state.swarm
        if swarm is not None:
            swarm.stop_publisher()
            _wait(lambda: self.job.done, USER_STOP_SECONDS)
