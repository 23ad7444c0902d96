"""The pytest plugin: turns every check in ``specs/*.yaml`` into a pytest item, runs it against
the target, and writes the reports.

It is registered through the ``pytest11`` entry point but stays inert unless ``--conformance`` is
given, so it never interferes with an unrelated pytest run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fnmatch
import os
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .bundled import BUNDLED_WEBHOOK_LISTEN, BundledServer, start_bundled
from .context import CheckContext, RunSettings
from .errors import (
    ConformanceError,
    HarnessError,
    TargetUnreachable,
    UsageError,
)
from .outcomes import CheckOutcome
from .profiles import PROFILES, choose_seed, profile_examples
from .progress import make_progress
from .properties import known_property_names
from .receiver_process import ReceiverProcess, start_receiver_process
from .results import CheckResult, RunReport, build_report
from .runner import CheckRun, Job, RunHealth, budget_for, execute_check, run_side_by_side
from .spec import REGRESSIONS_SUBDIR, Check, Requirement, SpecSet, default_specs_dir, load_specs
from .target import (
    KNOWN_CAPABILITIES,
    Target,
    check_reachable,
    load_target_file,
    target_from_mapping,
    webhook_listen_url,
)

RESULT_PROPERTY = "conformance_result"


@dataclass
class RunState:
    specs: SpecSet
    target: Target
    settings: RunSettings
    selection: tuple[str, ...]
    levels: frozenset[str]
    keep_transcripts: bool
    started_at: str
    concurrency: int = 1
    bundled: BundledServer | None = None
    results: dict[str, CheckResult] = field(default_factory=dict)
    #: Checks already run side by side, by id, waiting for pytest to report them.
    runs: dict[str, CheckRun] = field(default_factory=dict)
    health: RunHealth = field(default_factory=RunHealth)
    report: RunReport | None = None


STATE = pytest.StashKey[RunState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "Pusher Channels protocol conformance")
    add = group.addoption
    add("--conformance", action="store_true", help="run the checks in specs/*.yaml")
    add("--conformance-specs", metavar="DIR", help="specs directory (default: the bundled one)")
    add("--conformance-target", metavar="FILE", help="target file (YAML)")
    add("--conformance-ws-url", metavar="URL", help="WebSocket base URL, e.g. ws://127.0.0.1:6001")
    add("--conformance-http-url", metavar="URL", help="HTTP API base URL")
    add("--conformance-app-id", metavar="ID")
    add("--conformance-key", metavar="KEY")
    add("--conformance-secret", metavar="SECRET")
    add(
        "--conformance-capability",
        action="append",
        default=[],
        metavar="NAME",
        help=f"declare an optional feature ({', '.join(sorted(KNOWN_CAPABILITIES))})",
    )
    add("--conformance-activity-timeout", type=float, metavar="SECONDS")
    add("--conformance-pong-timeout", type=float, metavar="SECONDS")
    add("--conformance-max-event-bytes", type=int, metavar="BYTES")
    add(
        "--conformance-webhook-listen",
        metavar="URL",
        help="where the target posts webhooks (loopback http URL); the suite listens there",
    )
    add("--conformance-report-dir", default="conformance-report", metavar="DIR")
    add("--conformance-profile", default="ci", choices=sorted(PROFILES))
    add("--conformance-seed", type=int, metavar="N")
    add("--conformance-max-examples", type=int, metavar="N", help="examples per property check")
    add("--conformance-timeout-multiplier", type=float, default=1.0, metavar="X")
    add(
        "--conformance-concurrency",
        type=int,
        default=8,
        metavar="N",
        help="checks run side by side in this process (1: one at a time)",
    )
    add(
        "--conformance-check",
        action="append",
        default=[],
        metavar="GLOB",
        help="only checks whose id (REQ-ID/check) or requirement id matches",
    )
    add("--conformance-level", action="append", default=[], choices=["MUST", "SHOULD", "MAY"])
    add("--conformance-keep-transcripts", action="store_true", help="keep passing checks' logs")
    add(
        "--conformance-regressions-dir",
        metavar="DIR",
        help="where properties save the counterexamples they find as regression cases "
        "(default: the specs' regressions/ in a writable checkout, else the report's)",
    )
    add(
        "--conformance-no-save-regressions",
        action="store_true",
        help="save no regression cases",
    )
    add("--conformance-replay-prefix", default=None, help=argparse.SUPPRESS)


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("conformance", default=False))


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _target_from_options(config: pytest.Config) -> Target | None:
    option = config.getoption
    flags = {
        "ws_url": option("conformance_ws_url"),
        "http_url": option("conformance_http_url"),
        "app_id": option("conformance_app_id"),
        "key": option("conformance_key"),
        "secret": option("conformance_secret"),
    }
    given = {k: v for k, v in flags.items() if v}
    target_file = option("conformance_target")
    if target_file and given:
        raise UsageError("give either a target file or --ws-url/--http-url/... flags, not both")
    if target_file:
        target = load_target_file(target_file)
    elif given:
        missing = [k for k, v in flags.items() if not v]
        if missing:
            names = ", ".join("--" + m.replace("_", "-") for m in missing)
            raise UsageError(f"a target given by flags also needs {names}")
        timings = {}
        if option("conformance_activity_timeout"):
            timings["activity_timeout"] = option("conformance_activity_timeout")
        if option("conformance_pong_timeout"):
            timings["pong_timeout"] = option("conformance_pong_timeout")
        limits = {}
        if option("conformance_max_event_bytes"):
            limits["max_event_bytes"] = option("conformance_max_event_bytes")
        target = target_from_mapping(
            {"name": "command-line target", **flags, "timings": timings, "limits": limits}
        )
    else:
        return None
    extra = option("conformance_capability")
    if extra:
        unknown = set(extra) - KNOWN_CAPABILITIES
        if unknown:
            raise UsageError(f"unknown capability: {', '.join(sorted(unknown))}")
        target = _with(target, capabilities=target.capabilities | frozenset(extra))
    listen = option("conformance_webhook_listen")
    if listen:
        target = _with(target, webhook_listen=webhook_listen_url({"listen": listen}, ()))
    if "webhooks" in target.capabilities:
        webhook_listen_url(
            {"listen": target.webhook_listen} if target.webhook_listen else None,
            target.capabilities,
        )
    return target


def _start_receiver(listen_url: str) -> ReceiverProcess:
    """Webhooks: the receiver runs in a child process; checks read it over HTTP."""
    return start_receiver_process(listen_url)


def _with(target: Target, **changes: Any) -> Target:
    return dataclasses.replace(target, **changes)


def _installed(path: Path) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in path.parts)


def regressions_dir(
    specs_dir: Path, report_dir: Path, *, given: str | None, save: bool
) -> Path | None:
    """Where new regression cases go: next to the specs they join when those are a writable
    source checkout (so they can be committed), otherwise into the report (a CI artifact)."""
    if not save:
        if given:
            raise UsageError("give either --regressions-dir or --no-save-regressions, not both")
        return None
    if given:
        return Path(given).resolve()
    in_specs = specs_dir / REGRESSIONS_SUBDIR
    existing = in_specs if in_specs.is_dir() else specs_dir
    if not _installed(specs_dir) and os.access(existing, os.W_OK):
        return in_specs
    return report_dir / REGRESSIONS_SUBDIR


def _fail_configure(message: str, code: int) -> None:
    pytest.exit(message, returncode=code)


def pytest_configure(config: pytest.Config) -> None:
    if not _enabled(config):
        return
    try:
        _configure(config)
    except UsageError as exc:
        _fail_configure(f"conformance: {exc}", int(pytest.ExitCode.USAGE_ERROR))
    except TargetUnreachable as exc:
        _fail_configure(f"conformance: {exc}", 3)
    except ConformanceError as exc:
        _fail_configure(f"conformance: {exc}", 3)


def _configure(config: pytest.Config) -> None:
    option = config.getoption
    specs_dir = Path(option("conformance_specs")) if option("conformance_specs") else None
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    # A worker loads the regression cases its controller loaded, not any saved since.
    cases = workerinput.get("conformance_regressions") if _is_worker(config) else None
    specs = load_specs(specs_dir, known_properties=known_property_names(), regressions=cases)
    report_dir = Path(option("conformance_report_dir")).resolve()
    profile = option("conformance_profile")
    bundled = None
    webhook_control: str | None = None
    if _is_worker(config):
        target = Target.from_wire(workerinput["conformance_target"])
        seed = int(workerinput["conformance_seed"])
        started_at = str(workerinput["conformance_started_at"])
        webhook_control = workerinput.get("conformance_webhook_control")
    else:
        seed = choose_seed(profile, option("conformance_seed"))
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        user_target = _target_from_options(config)
        if user_target is None:
            # Receiver first (port 0: a free one), then the server that posts to it.
            receiver = _start_receiver(BUNDLED_WEBHOOK_LISTEN)
            config.add_cleanup(receiver.stop)
            webhook_control = receiver.control_url
            bundled = start_bundled(
                report_dir / "reference-server.log", webhook_url=receiver.listen_url
            )
            config.add_cleanup(bundled.stop)
            target = bundled.target
            extra = option("conformance_capability")
            if extra:
                target = _with(target, capabilities=target.capabilities | frozenset(extra))
        else:
            check_reachable(user_target)
            target = user_target
            if "webhooks" in target.capabilities and target.webhook_listen:
                receiver = _start_receiver(target.webhook_listen)
                config.add_cleanup(receiver.stop)
                webhook_control = receiver.control_url
    replay_prefix = option("conformance_replay_prefix") or "conformance run"
    settings = RunSettings(
        profile=profile,
        seed=seed,
        timeout_multiplier=option("conformance_timeout_multiplier"),
        report_dir=report_dir,
        replay_prefix=replay_prefix,
        webhook_control=webhook_control,
        max_examples=option("conformance_max_examples"),
        regressions_dir=regressions_dir(
            (specs_dir or default_specs_dir()).resolve(),
            report_dir,
            given=option("conformance_regressions_dir"),
            save=not option("conformance_no_save_regressions"),
        ),
    )
    if settings.timeout_multiplier <= 0:
        raise UsageError("--timeout-multiplier must be positive")
    if settings.max_examples is not None and settings.max_examples <= 0:
        raise UsageError("--max-examples must be a positive whole number")
    selection = tuple(option("conformance_check"))
    levels = frozenset(option("conformance_level") or ("MUST", "SHOULD", "MAY"))
    if not any(selected(c, r, selection, levels) for r in specs.requirements for c in r.checks):
        raise UsageError(f"no check matches {', '.join(selection) or 'the selected levels'}")
    state = RunState(
        specs=specs,
        target=target,
        settings=settings,
        selection=selection,
        levels=levels,
        keep_transcripts=bool(option("conformance_keep_transcripts")),
        started_at=started_at,
        concurrency=max(1, int(option("conformance_concurrency") or 1)),
        bundled=bundled,
    )
    config.stash[STATE] = state
    if not _is_worker(config):
        config.pluginmanager.register(ResultCollector(state), "conformance-results")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: hand the controller's target (and bundled server) to every worker."""
    state = node.config.stash.get(STATE, None)
    if state is None:
        return
    node.workerinput["conformance_target"] = state.target.to_wire()
    node.workerinput["conformance_seed"] = state.settings.seed
    node.workerinput["conformance_started_at"] = state.started_at
    node.workerinput["conformance_webhook_control"] = state.settings.webhook_control
    node.workerinput["conformance_regressions"] = [c.path.name for c in state.specs.regressions]


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash.get(STATE, None)
    if state is None:
        return []
    lines = [
        f"conformance: target {state.target.name} ({state.target.ws_url}), "
        f"profile {state.settings.profile}, seed {state.settings.seed}, "
        f"specs sha256 {state.specs.sha256[:16]}",
    ]
    if state.bundled is not None and state.bundled.faults:
        lines.append(f"conformance: bundled server running WITH FAULTS: {state.bundled.faults}")
    return lines


def selected(
    check: Check, requirement: Requirement, selection: tuple[str, ...], levels: frozenset[str]
) -> bool:
    """Whether ``--check``/``--level`` select this check (globs on check or requirement id)."""
    if requirement.level not in levels:
        return False
    if not selection:
        return True
    return any(
        fnmatch.fnmatchcase(check.full_id, pattern) or fnmatch.fnmatchcase(requirement.id, pattern)
        for pattern in selection
    )


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    state = parent.config.stash.get(STATE, None)
    if state is None or file_path.suffix != ".yaml":
        return None
    for spec_file in state.specs.files:
        if spec_file.path == file_path.resolve():
            return SpecFileCollector.from_parent(parent, path=file_path)
    return None


class SpecFileCollector(pytest.File):
    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        state = self.config.stash[STATE]
        for spec_file in state.specs.files:
            if spec_file.path != self.path.resolve():
                continue
            for requirement in spec_file.requirements:
                if requirement.status == "active":
                    yield RequirementCollector.from_parent(
                        self, name=requirement.id, requirement=requirement
                    )


class RequirementCollector(pytest.Collector):
    def __init__(self, *, requirement: Requirement, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requirement = requirement

    def collect(self) -> Iterator[pytest.Item]:
        state = self.config.stash[STATE]
        for check in self.requirement.checks:
            if selected(check, self.requirement, state.selection, state.levels):
                yield CheckItem.from_parent(
                    self, name=check.id, check=check, requirement=self.requirement
                )


class _Reported(Exception):
    """Carries a finished check's failure text to ``repr_failure``."""


class CheckItem(pytest.Item):
    def __init__(self, *, check: Check, requirement: Requirement, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.requirement = requirement
        self.user_properties.append(("requirement", requirement.id))
        self.user_properties.append(("level", requirement.level))

    def _replay(self, state: RunState) -> str:
        parts = [
            state.settings.replay_prefix,
            "--profile", state.settings.profile,
            "--seed", str(state.settings.seed),
            "--check", shlex.quote(self.check.full_id),
        ]  # fmt: skip
        if state.settings.max_examples is not None:
            parts[-2:-2] = ["--max-examples", str(state.settings.max_examples)]
        return " ".join(parts)

    def runtest(self) -> None:
        state = self.config.stash[STATE]
        started = time.monotonic()
        capability = self.requirement.capability
        if capability and capability not in state.target.capabilities:
            self._finish(
                state,
                CheckOutcome.SKIPPED,
                f"capability {capability!r} not declared",
                started,
                None,
            )
            pytest.skip(f"OPTIONAL_ABSENT: capability {capability!r} not declared by the target")
        run = state.runs.pop(self.check.full_id, None) or self.execute(state)
        outcome, message, ctx = run.outcome, run.message, run.ctx
        self._finish(state, outcome, message, run.started, ctx, run.duration)
        if outcome is CheckOutcome.VOID:
            pytest.skip(f"VOID: {message.splitlines()[0]}")
        if outcome is CheckOutcome.INCONCLUSIVE:
            pytest.skip(f"INCONCLUSIVE: {message.splitlines()[0] if message else ''}")
        if outcome in (CheckOutcome.FAILED, CheckOutcome.ERROR):
            tail = "\n".join(ctx.transcript.tail()) if ctx is not None else ""
            replay = self._replay(state)
            raise _Reported(
                f"{self.requirement.id} [{self.requirement.level}] {self.requirement.title}\n"
                f"  rule: {self.requirement.statement}\n"
                f"  source: {self.requirement.source}\n"
                f"{outcome.value.upper()}: {message}\n"
                f"--- last wire events ---\n{tail}\n"
                f"replay: {replay}"
            )

    def job(self, state: RunState) -> Job:
        examples = profile_examples(state.settings, self.check.params)
        return Job(
            self.check,
            self.requirement,
            budget_for(state.target, state.settings, self.check, examples),
            first=self.check.kind == "property" or _waits_on_timers(self.check.exchange),
        )

    def execute(self, state: RunState) -> CheckRun:
        """Run this check here and now (one at a time, or on an xdist worker)."""
        job = self.job(state)
        return execute_check(
            state.target, state.settings, self.check, state.specs.models, budget=job.budget
        )

    def _finish(
        self,
        state: RunState,
        outcome: CheckOutcome,
        message: str,
        started: float,
        ctx: CheckContext | None,
        duration: float | None = None,
    ) -> None:
        transcript_rel = None
        if ctx is not None and (outcome is not CheckOutcome.PASSED or state.keep_transcripts):
            name = re.sub(r"[^A-Za-z0-9_.-]+", "__", self.check.full_id) + ".jsonl"
            path = state.settings.report_dir / "transcripts" / name
            ctx.transcript.write(path)
            transcript_rel = str(path.relative_to(state.settings.report_dir))
        result = CheckResult(
            check_id=self.check.full_id,
            requirement_id=self.requirement.id,
            outcome=outcome,
            message=message,
            duration_s=duration if duration is not None else time.monotonic() - started,
            transcript=transcript_rel,
            replay=self._replay(state) if outcome is not CheckOutcome.PASSED else None,
            stats=dict(ctx.stats) if ctx is not None else {},
            figures=dict(ctx.figures) if ctx is not None else {},
        )
        self.user_properties.append((RESULT_PROPERTY, result.to_json()))

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, _Reported):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.check.full_id} [{self.requirement.level}]"


def _waits_on_timers(exchange: Any) -> bool:
    """Whether a scripted exchange waits on the target's heartbeat timers (``timing:``)."""
    if isinstance(exchange, dict):
        return "timing" in exchange or any(_waits_on_timers(v) for v in exchange.values())
    if isinstance(exchange, list):
        return any(_waits_on_timers(v) for v in exchange)
    return False


def _alive(state: RunState) -> bool:
    """Whether the target still answers: the bundled server's process is up, or its address
    accepts a TCP connection."""
    if state.bundled is not None and state.bundled.process.poll() is not None:
        return False
    try:
        check_reachable(state.target, timeout=3.0)
    except TargetUnreachable:
        return False
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Any:
    """Run the selected checks side by side before pytest walks its items; each item then
    reports the outcome its check reached (see conformance/runner.py)."""
    config = session.config
    state = config.stash.get(STATE, None)
    xdist = getattr(config.option, "numprocesses", None) or _is_worker(config)
    if state is not None and not xdist and not config.option.collectonly:
        declared = state.target.capabilities
        items = [
            i
            for i in session.items
            if isinstance(i, CheckItem)
            and (not i.requirement.capability or i.requirement.capability in declared)
        ]
        by_job = {item.job(state): item for item in items}
        capture = config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            progress = make_progress(config, total=len(by_job))
            with progress:
                runs = run_side_by_side(
                    list(by_job),
                    lambda job: by_job[job].execute(state),
                    concurrency=state.concurrency,
                    alive=lambda: _alive(state),
                    health=state.health,
                    progress=progress,
                )
        state.runs = {job.check.full_id: run for job, run in runs.items()}
    return (yield)


def _check_id_from_nodeid(nodeid: str) -> str | None:
    parts = nodeid.split("::")
    if len(parts) >= 3:
        return f"{parts[-2]}/{parts[-1]}"
    return None


class ResultCollector:
    """Gathers each check's result from the test reports, on the process that writes the
    report (the controller, with xdist: results travel in the reports' user properties)."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        results = self.state.results
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY:
                result = CheckResult.from_json(str(value))
                results[result.check_id] = result
                return
        check_id = _check_id_from_nodeid(report.nodeid)
        if report.failed and check_id and check_id not in results:
            results[check_id] = CheckResult(
                check_id,
                check_id.split("/")[0],
                CheckOutcome.ERROR,
                f"the check crashed outside the harness ({report.when}): "
                f"{str(report.longrepr)[-500:]}",
            )


def _build(state: RunState) -> RunReport:
    run = {
        "profile": state.settings.profile,
        "seed": state.settings.seed,
        "max_examples": state.settings.max_examples,
        "timeout_multiplier": state.settings.timeout_multiplier,
        "started_at": state.started_at,
        "selection": list(state.selection),
        "levels": sorted(state.levels),
        "suite_version": __version__,
    }
    target = state.target.public()
    if state.bundled is not None:
        target["faults"] = state.bundled.faults
    return build_report(state.specs, state.results, target=target, run=run)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or _is_worker(config) or config.option.collectonly:
        return
    if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR):
        return
    state.report = _build(state)
    try:
        state.report.write(state.settings.report_dir)
    except OSError as exc:
        raise HarnessError(
            f"could not write the report to {state.settings.report_dir}: {exc}"
        ) from None
    session.exitstatus = int(state.report.exit)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or state.report is None:
        return
    terminalreporter.section("conformance")
    for line in state.report.console().splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"report: {state.settings.report_dir}")
