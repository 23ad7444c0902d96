"""The run's results as data: one record per check, one verdict per requirement, and the exit
code they add up to. The files an auditor and a CI system read are rendered from this data by
``conformance.report``, one module per format, so a new format never touches the judging.

A check may also report *figures* (``CheckContext.figures``): a title, a one-line summary of
named numbers and a table, which the reports show for passing and failing checks alike, so an
auditor sees how much a check exercised, not only that it passed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .baseline import Baseline, BaselineComparison, compare
from .outcomes import CheckOutcome, ExitCode, Outcome, exit_code, grade
from .provenance import Variant
from .server_marks import ServerMarks
from .spec import Requirement, SpecSet

__all__ = [
    "CheckResult",
    "RequirementVerdict",
    "RunReport",
    "build_report",
    "normalize_figures",
]


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    requirement_id: str
    outcome: CheckOutcome
    message: str = ""
    duration_s: float = 0.0
    transcript: str | None = None
    replay: str | None = None
    #: Counters the check reported, e.g. ``{"malformed_inputs": 2500}``.
    stats: dict[str, int] = field(default_factory=dict)
    #: Figures the check reported (see ``normalize_figures``); results written before figures
    #: existed load with none.
    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> CheckResult:
        data = json.loads(text)
        data["outcome"] = CheckOutcome(data["outcome"])
        return cls(**data)


_SCALARS = (str, int, float, bool, type(None))


def normalize_figures(figures: Mapping[str, Any]) -> dict[str, Any]:
    """Check a property's figures and return them as plain JSON data.

    Raises ``ValueError`` naming what is wrong: a malformed table would otherwise only show up
    as a broken report, far from the property that made it.
    """
    if not isinstance(figures, Mapping):
        raise ValueError(f"figures must be a mapping, not {type(figures).__name__}")
    try:
        data = json.loads(json.dumps(dict(figures), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"figures are not JSON data: {exc}") from None
    title = data.get("title")
    if title is not None and not isinstance(title, str):
        raise ValueError("figures: title must be a string")
    summary = data.get("summary")
    if summary is not None:
        if not isinstance(summary, dict):
            raise ValueError("figures: summary must be a mapping of name -> number or text")
        for name, value in summary.items():
            if not isinstance(value, _SCALARS):
                raise ValueError(f"figures: summary {name!r} is not a number or text")
    table = data.get("table")
    if table is not None:
        if not isinstance(table, dict) or set(table) != {"columns", "rows"}:
            raise ValueError("figures: table must be a mapping with exactly columns and rows")
        columns, rows = table["columns"], table["rows"]
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise ValueError("figures: table columns must be a list of strings")
        if not isinstance(rows, list):
            raise ValueError("figures: table rows must be a list of lists")
        for number, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(columns):
                raise ValueError(
                    f"figures: table row {number} is not a list of {len(columns)} cells"
                )
            if not all(isinstance(cell, _SCALARS) for cell in row):
                raise ValueError(f"figures: table row {number} holds a cell that is not a scalar")
    return dict(data)


@dataclass(frozen=True)
class RequirementVerdict:
    requirement: Requirement
    outcome: Outcome
    checks: tuple[CheckResult, ...]

    @property
    def variants_shown(self) -> tuple[Variant, ...]:
        """The known variants the target's failures match (``recognised_by``)."""
        messages = [
            c.message
            for c in self.checks
            if c.outcome in (CheckOutcome.FAILED, CheckOutcome.INCONCLUSIVE) and c.message
        ]
        if not messages:
            return ()
        return tuple(v for v in self.requirement.variants if v.seen_in_messages(messages))


@dataclass
class RunReport:
    """The whole run as plain data. The formats in ``conformance.report`` read only these public
    fields, so any of them can be added or changed without touching the judging here."""

    specs: SpecSet
    verdicts: list[RequirementVerdict]
    not_covered: list[Requirement]
    target: Mapping[str, Any]
    run: Mapping[str, Any]
    exit: ExitCode
    executed_checks: int
    totals: Counter[str] = field(default_factory=Counter)
    #: The run against ``--baseline``, if one was given.
    baseline: BaselineComparison | None = None
    #: What the bundled server's requirement marks counted (``server_marks.py``); ``None``
    #: when the target is not the bundled server.
    server_marks: ServerMarks | None = None

    def figured(self) -> list[CheckResult]:
        """The checks that reported figures, in report order, whatever their outcome."""
        return [c for v in self.verdicts for c in v.checks if c.figures]

    # conformance.report imports this module for the data types, so the two delegations below
    # import it when called rather than at the top, which would be a cycle.

    def write(self, report_dir: Path) -> None:
        """Kept on the report so the plugin writes every format with one call."""
        from .report import write_all

        write_all(self, report_dir)

    def console(self) -> str:
        """Kept on the report so the plugin prints the terminal summary with one call."""
        from .report.console import render

        return render(self)


def build_report(
    specs: SpecSet,
    results: Mapping[str, CheckResult],
    *,
    target: Mapping[str, Any],
    run: Mapping[str, Any],
    baseline: Baseline | None = None,
    strict: bool = False,
    server_marks: ServerMarks | None = None,
) -> RunReport:
    """The verdicts and the exit code; with a ``baseline``, the deviations it accepts do not
    count towards the exit code (a run fails only on new ones); with ``strict``, a DISPUTED MUST
    counts like a FAIL."""
    verdicts = []
    not_covered = []
    for requirement in specs.requirements:
        if requirement.status != "active":
            not_covered.append(requirement)
            continue
        checks = tuple(results[c.full_id] for c in requirement.checks if c.full_id in results)
        verdicts.append(
            RequirementVerdict(
                requirement,
                grade(
                    requirement.level,
                    [c.outcome for c in checks],
                    requirement.basis,
                    graded=requirement.graded,
                ),
                checks,
            )
        )
    executed = sum(1 for r in results.values() if r.outcome is not CheckOutcome.SKIPPED)
    totals = Counter(v.outcome.value for v in verdicts if v.outcome is not Outcome.NOT_RUN)
    comparison = (
        compare(baseline, ((v.requirement.id, v.requirement.level, v.outcome) for v in verdicts))
        if baseline is not None
        else None
    )
    exempt = comparison.exempt if comparison is not None else frozenset()
    code = exit_code(
        (
            (v.requirement.level, Outcome.PASS if v.requirement.id in exempt else v.outcome)
            for v in verdicts
        ),
        executed,
        strict=strict,
    )
    run_info = dict(run)
    if strict:
        run_info["strict"] = True
    run_info.setdefault("finished_at", datetime.now(UTC).isoformat(timespec="seconds"))
    return RunReport(
        specs,
        verdicts,
        not_covered,
        target,
        run_info,
        code,
        executed,
        totals,
        comparison,
        server_marks,
    )
