"""The pytest plugin: turns every check in ``specs/*.yaml`` into a pytest item, runs it against
the target, and writes the reports.

It is registered through the ``pytest11`` entry point but stays inert unless ``--conformance`` is
given, so it never interferes with an unrelated pytest run. Its options are those of
``conformance run`` (conformance/options.py); when the command line starts the run, it hands them
over already checked instead of spelling them out again as flags.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import shlex
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .bundled import BUNDLED_WEBHOOK_LISTEN, BundledServer, start_bundled
from .context import CheckContext, RunSettings
from .errors import ConformanceError, HarnessError, TargetUnreachable, UsageError
from .options import (
    add_pytest_options,
    options_of,
    regressions_dir,
    require_selection,
    selected,
)
from .outcomes import CheckOutcome
from .preflight import TargetProbe, probe_target
from .profiles import choose_seed, profile_examples
from .progress import make_progress
from .properties import known_property_names
from .receiver_process import ReceiverProcess, start_receiver_process
from .results import CheckResult, RunReport, build_report
from .runner import CheckRun, Job, RunHealth, budget_for, execute_check, run_side_by_side
from .spec import Check, Requirement, SpecSet, default_specs_dir, load_specs
from .target import Target, check_reachable, target_from_options, with_declared_capabilities

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
    probe: TargetProbe | None = None
    report: RunReport | None = None


STATE = pytest.StashKey[RunState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "Pusher Channels protocol conformance")
    group.addoption("--conformance", action="store_true", help="run the checks in specs/*.yaml")
    add_pytest_options(group)


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("conformance", default=False))


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _start_receiver(listen_url: str) -> ReceiverProcess:
    """Webhooks: the receiver runs in a child process; checks read it over HTTP."""
    return start_receiver_process(listen_url)


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
    options = options_of(config)
    specs_dir = Path(options.specs_dir) if options.specs_dir else None
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    # A worker loads the regression cases its controller loaded, not any saved since.
    cases = workerinput.get("conformance_regressions") if _is_worker(config) else None
    specs = load_specs(specs_dir, known_properties=known_property_names(), regressions=cases)
    # Before any server starts: a selection of nothing is refused at once.
    require_selection(specs, options)
    report_dir = Path(options.report_dir).resolve()
    bundled = None
    webhook_control: str | None = None
    if _is_worker(config):
        target = Target.from_wire(workerinput["conformance_target"])
        seed = int(workerinput["conformance_seed"])
        started_at = str(workerinput["conformance_started_at"])
        webhook_control = workerinput.get("conformance_webhook_control")
    else:
        seed = choose_seed(options.profile, options.seed)
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        user_target = target_from_options(options)
        if user_target is None:
            # Receiver first (port 0: a free one), then the server that posts to it.
            receiver = _start_receiver(BUNDLED_WEBHOOK_LISTEN)
            config.add_cleanup(receiver.stop)
            webhook_control = receiver.control_url
            bundled = start_bundled(
                report_dir / "reference-server.log", webhook_url=receiver.listen_url
            )
            config.add_cleanup(bundled.stop)
            target = with_declared_capabilities(bundled.target, options)
        else:
            check_reachable(user_target)
            target = user_target
            if "webhooks" in target.capabilities and target.webhook_listen:
                receiver = _start_receiver(target.webhook_listen)
                config.add_cleanup(receiver.stop)
                webhook_control = receiver.control_url
    settings = RunSettings(
        profile=options.profile,
        seed=seed,
        timeout_multiplier=options.timeout_multiplier,
        report_dir=report_dir,
        replay_prefix=options.replay_prefix(),
        webhook_control=webhook_control,
        max_examples=options.max_examples,
        regressions_dir=regressions_dir(
            (specs_dir or default_specs_dir()).resolve(),
            report_dir,
            given=options.regressions_dir,
            save=not options.no_save_regressions,
        ),
    )
    state = RunState(
        specs=specs,
        target=target,
        settings=settings,
        selection=options.checks,
        levels=options.selected_levels,
        keep_transcripts=options.keep_transcripts,
        started_at=started_at,
        concurrency=options.concurrency,
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
        timers = _waits_on_timers(self.check.exchange)
        return Job(
            self.check,
            self.requirement,
            budget_for(state.target, state.settings, self.check, examples, waits_on_timers=timers),
            first=self.check.kind == "property" or timers,
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
    if isinstance(exchange, Mapping):
        return "timing" in exchange or any(_waits_on_timers(v) for v in exchange.values())
    if isinstance(exchange, list | tuple):
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
            state.probe = _probe(state)
            state.settings = dataclasses.replace(
                state.settings, answers_pusher_ping=state.probe.answers_pusher_ping
            )
            for line in state.probe.warnings(state.settings.timeout_multiplier):
                print(f"conformance: warning: {line}", flush=True)
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


def _probe(state: RunState) -> TargetProbe:
    """The pre-flight look at the target (see conformance/preflight.py); a target that does
    not even take a handshake gets an empty probe, and the checks will say the rest."""
    timeout = state.settings.response_timeout * state.settings.timeout_multiplier
    try:
        return asyncio.run(probe_target(state.target.ws_url, state.target.key, timeout))
    except (OSError, ConformanceError):
        return TargetProbe((), answers_pusher_ping=True)


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
    if state.probe is not None:
        run["target_probe"] = {
            "handshake_ms": list(state.probe.handshake_ms),
            "answers_pusher_ping": state.probe.answers_pusher_ping,
            "warnings": state.probe.warnings(state.settings.timeout_multiplier),
        }
    if state.health.died is not None:
        run["target_died"] = {
            "finding": state.health.died,
            "last_inputs": dict(state.health.died_during),
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
    if state.health.died is not None:
        terminalreporter.write_line(f"THE TARGET DIED: {state.health.died}")
        for check_id, last in sorted(state.health.died_during.items()):
            terminalreporter.write_line(f"    {check_id}: last input {last}")
        terminalreporter.write_line("    the checks that were still to run are VOID")
    terminalreporter.write_line(f"report: {state.settings.report_dir}")
