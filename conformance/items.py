"""The run's shared state and the pytest items that stand for checks.

A ``CheckItem`` is one check of one requirement; when the checks were already run side by side
(conformance/side_by_side.py), it only reports the outcome reached, so that pytest's own
reporting (the console, JUnit, ``-x``) sees every check as usual.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .baseline import Baseline
from .bundled import BundledServer
from .cluster_steps import STOP_NODE_STEP
from .context import CheckContext, RunSettings
from .options import (
    selected,
)
from .outcomes import CheckOutcome
from .preflight import TargetProbe
from .profiles import profile_examples
from .restart_steps import RESTART_STEP
from .results import CheckResult, RunReport
from .runner import CheckRun, Job, RunHealth, budget_for, execute_check
from .spec import Check, Requirement, SpecSet
from .target import Target
from .target_apps import TARGET_APP_FIELDS

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
    #: The deviations accepted for this target (``--baseline``).
    baseline: Baseline | None = None
    #: ``--strict``: a DISPUTED MUST counts against the exit code.
    strict: bool = False


STATE = pytest.StashKey[RunState]()


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


def undeclared_need(target: Target, requirement: Requirement, check: Check) -> str | None:
    """What the check needs that the target does not declare, as the skip names it
    (``capability 'webhooks'``, ``target field 'second_app'``); ``None``: it can run."""
    # A requirement's capability may join several with ``+`` (``cluster+client_events``).
    joined = requirement.capability.split("+") if requirement.capability else []
    needs = joined + list(check.capabilities)
    for need in needs:
        if not target.declares(need):
            kind = "target field" if need in TARGET_APP_FIELDS else "capability"
            return f"{kind} {need!r}"
    return None


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
        missing = undeclared_need(state.target, self.requirement, self.check)
        if missing is not None:
            self._finish(state, CheckOutcome.SKIPPED, f"{missing} not declared", started, None)
            pytest.skip(f"OPTIONAL_ABSENT: {missing} not declared by the target")
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
        budget = budget_for(
            state.target, state.settings, self.check, examples, waits_on_timers=timers
        )
        alone = any(
            RESTART_STEP in step or STOP_NODE_STEP in step for step in self.check.exchange or ()
        )
        if alone:
            budget += state.target.restart_within * state.settings.timeout_multiplier
        return Job(
            self.check,
            self.requirement,
            budget,
            first=self.check.kind == "property" or timers,
            alone=alone,
            waits_on_timers=timers,
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
