"""The pytest plugin: turns every check in ``specs/*.yaml`` into a pytest item, runs it against
the target, and writes the reports.

It is registered through the ``pytest11`` entry point but stays inert unless ``--conformance`` is
given, so it never interferes with an unrelated pytest run. Its options are those of
``conformance run`` (conformance/options.py); when the command line starts the run, it hands them
over already checked instead of spelling them out again as flags.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .baseline import load_baseline
from .bundled import BUNDLED_WEBHOOK_LISTEN, start_bundled
from .bundled_cluster import start_bundled_cluster
from .cluster_steps import CommandNodeStopper, NodeStopper
from .context import RunSettings
from .errors import ConformanceError, HarnessError, TargetUnreachable, UsageError
from .items import RESULT_PROPERTY, STATE, RunState, SpecFileCollector
from .options import (
    STASHED_SPECS,
    add_pytest_options,
    options_of,
    regressions_dir,
    require_selection,
)
from .outcomes import CheckOutcome
from .profiles import choose_seed, prepare_hypothesis
from .properties import known_property_names
from .receiver_process import ReceiverProcess, start_receiver_process
from .restart import BundledRestarter, CommandRestarter, Restarter
from .results import CheckResult, RunReport, build_report
from .server_marks import MARKS_FILE, ServerMarks, read_marks
from .side_by_side import run_selected
from .spec import default_specs_dir, load_specs
from .target import Target, check_reachable, target_from_options, with_declared_capabilities


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
    specs = None if _is_worker(config) else config.stash.get(STASHED_SPECS, None)
    if specs is None:
        specs = load_specs(specs_dir, known_properties=known_property_names(), regressions=cases)
    # Before any server starts: a selection of nothing, or a bad baseline, is refused at once.
    require_selection(specs, options)
    baseline = (
        load_baseline(options.baseline, (r.id for r in specs.requirements))
        if options.baseline and not _is_worker(config)
        else None
    )
    prepare_hypothesis(options.cache_dir)
    report_dir = Path(options.report_dir).resolve()
    bundled = None
    node_stopper: NodeStopper | None = None
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
            if options.bundled_nodes:
                cluster = start_bundled_cluster(
                    options.bundled_nodes,
                    report_dir,
                    webhook_url=receiver.listen_url,
                    serves_file=report_dir / MARKS_FILE,
                )
                config.add_cleanup(cluster.stop)
                node_stopper = cluster
                bundled, bundled_target = cluster.nodes[0], cluster.target
            else:
                bundled = start_bundled(
                    report_dir / "reference-server.log",
                    webhook_url=receiver.listen_url,
                    serves_file=report_dir / MARKS_FILE,
                )
                config.add_cleanup(bundled.stop)
                bundled_target = bundled.target
            target = with_declared_capabilities(bundled_target, options)
        else:
            check_reachable(user_target)
            target = user_target
            if "webhooks" in target.capabilities and target.webhook_listen:
                receiver = _start_receiver(target.webhook_listen)
                config.add_cleanup(receiver.stop)
                webhook_control = receiver.control_url
    if node_stopper is None and len(target.nodes) > 1 and target.nodes[-1].stop is not None:
        node_stopper = CommandNodeStopper(target.nodes[-1].stop)
    restarter: Restarter | None = None
    if bundled is not None:
        restarter = BundledRestarter(bundled)
    elif target.restart_command is not None and not _is_worker(config):
        restarter = CommandRestarter(target.restart_command, target.restart_within)
    settings = RunSettings(
        restarter=restarter,
        node_stopper=None if _is_worker(config) else node_stopper,
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
        baseline=baseline,
        strict=options.strict,
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


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Any:
    """Run the selected checks side by side before pytest walks its items; each item then
    reports the outcome its check reached (see conformance/side_by_side.py)."""
    config = session.config
    state = config.stash.get(STATE, None)
    xdist = getattr(config.option, "numprocesses", None) or _is_worker(config)
    if state is not None and not xdist and not config.option.collectonly:
        run_selected(session, state)
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
    if state.probe is not None:
        run["target_probe"] = {
            "handshake_ms": list(state.probe.handshake_ms),
            "answers_pusher_ping": state.probe.answers_pusher_ping,
            "warnings": state.probe.warnings(state.settings.timeout_multiplier),
        }
    if state.health.revived:
        run["target_restarted_after"] = [
            {"finding": finding, "last_inputs": inputs} for finding, inputs in state.health.revived
        ]
    if state.health.died is not None:
        run["target_died"] = {
            "finding": state.health.died,
            "last_inputs": dict(state.health.died_during),
        }
    target = state.target.public()
    if state.bundled is not None:
        target["faults"] = state.bundled.faults
    if state.baseline is not None:
        run["baseline"] = state.baseline.source
    return build_report(
        state.specs,
        state.results,
        target=target,
        run=run,
        baseline=state.baseline,
        strict=state.strict,
        server_marks=_server_marks(state),
    )


def _server_marks(state: RunState) -> ServerMarks | None:
    """The bundled server's mark counts, asked for before the report is built (the server
    is stopped later, at cleanup, and its drain is not counted)."""
    path = state.bundled.collect_marks() if state.bundled is not None else None
    return read_marks(path) if path is not None else None


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
    for finding, inputs in state.health.revived:
        terminalreporter.write_line(f"THE TARGET DIED and was restarted: {finding}")
        for check_id, last in sorted(inputs.items()):
            terminalreporter.write_line(f"    {check_id}: last input {last}")
    if state.health.revived:
        terminalreporter.write_line("    the checks it disturbed were run again")
    if state.health.died is not None:
        terminalreporter.write_line(f"THE TARGET DIED: {state.health.died}")
        for check_id, last in sorted(state.health.died_during.items()):
            terminalreporter.write_line(f"    {check_id}: last input {last}")
        terminalreporter.write_line("    the checks that were still to run are VOID")
    terminalreporter.write_line(f"report: {state.settings.report_dir}")
