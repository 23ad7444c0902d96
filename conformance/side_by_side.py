"""Running the selected checks side by side before pytest reports them, after a pre-flight
look at the target; and telling whether a target that stopped answering is gone for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import pytest

from .errors import ConformanceError, HarnessError, TargetUnreachable
from .items import CheckItem, RunState, undeclared_need
from .preflight import TargetProbe, greets, probe_target
from .profiles import profile, shrinking_capped
from .progress import make_progress
from .restart import restart
from .scheduling import run_side_by_side
from .target import check_reachable
from .tls import insecure_warning


def _alive(state: RunState) -> bool:
    """Whether the target still answers: the bundled server's process is up, its address
    accepts a TCP connection, and a WebSocket handshake is greeted with
    ``pusher:connection_established`` (a server stuck shutting down, closing every newcomer,
    is not alive)."""
    if state.bundled is not None and state.bundled.process.poll() is not None:
        return False
    try:
        check_reachable(state.target, timeout=3.0)
    except TargetUnreachable:
        return False
    # Generous: a busy machine (the self-test runs suites side by side) may greet slowly,
    # and a false death costs a restart and the disturbed checks' time.
    timeout = 10.0 * state.settings.timeout_multiplier
    target = state.target
    return asyncio.run(greets(target.ws_url, target.key, timeout, tls=target.client_tls()))


def _revive(state: RunState) -> str | None:
    """Restart a target that died (its restart command, or the bundled server again): None
    when it is back and greets, else why not."""
    restarter = state.settings.restarter
    if restarter is None:
        return "nothing can restart this target"

    print("conformance: the target died; restarting it", flush=True)
    try:
        asyncio.run(restart(restarter))
    except HarnessError as exc:
        return str(exc)
    return None if _alive(state) else "it did not greet a handshake after the restart"


def _probe(state: RunState) -> TargetProbe:
    """The pre-flight look at the target (see conformance/preflight.py); a target that does
    not even take a handshake gets an empty probe, and the checks will say the rest."""
    timeout = state.settings.response_timeout * state.settings.timeout_multiplier
    try:
        target = state.target
        return asyncio.run(
            probe_target(target.ws_url, target.key, timeout, tls=target.client_tls())
        )
    except (OSError, ConformanceError):
        return TargetProbe((), answers_pusher_ping=True)


def run_selected(session: pytest.Session, state: RunState) -> None:
    """Run every selected check the target has the capability for, side by side, and keep
    each one's outcome for its item to report."""
    config = session.config
    items = [
        i
        for i in session.items
        if isinstance(i, CheckItem)
        and undeclared_need(state.target, i.requirement, i.check) is None
    ]
    by_job = {item.job(state): item for item in items}
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        if state.target.insecure:
            print(f"conformance: {insecure_warning(state.target.ws_url)}", flush=True)
        state.probe = _probe(state)
        state.settings = dataclasses.replace(
            state.settings, answers_pusher_ping=state.probe.answers_pusher_ping
        )
        for line in state.probe.warnings(state.settings.timeout_multiplier):
            print(f"conformance: warning: {line}", flush=True)
        progress = make_progress(config, total=len(by_job))
        shrink = profile(state.settings.profile).shrink_seconds * state.settings.timeout_multiplier
        with progress, shrinking_capped(shrink):
            runs = run_side_by_side(
                list(by_job),
                lambda job: by_job[job].execute(state),
                concurrency=state.concurrency,
                alive=lambda: _alive(state),
                health=state.health,
                progress=progress,
                revive=(lambda: _revive(state)) if state.settings.restarter else None,
            )
    state.runs = {job.check.full_id: run for job, run in runs.items()}
