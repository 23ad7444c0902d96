"""summary.md: the report an auditor reads first, and the one that renders on a code host or in
a pull request without anything else installed. It leads with the counts, lists every
requirement, and quotes the evidence only for checks that did not pass."""

from __future__ import annotations

from pathlib import Path

from .. import __version__
from ..outcomes import CheckOutcome
from ..results import RunReport
from . import baseline_section, coverage_section, docs_section
from .tables import (
    Table,
    behaves_as,
    by_area_and_level,
    certified_target,
    figure_summary,
    figure_table,
    provenance,
    unverified_tls,
)

__all__ = ["FILE_NAME", "render", "write"]

FILE_NAME = "summary.md"


def _cell(text: str) -> str:
    # A line break or a bare pipe inside a cell would end the table row early.
    return " ".join(text.split()).replace("|", "\\|")


def _table(table: Table) -> list[str]:
    return [
        "| " + " | ".join(_cell(c) for c in table.header) + " |",
        "|" + "---|" * len(table.header),
        *["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows],
    ]


def _figures(report: RunReport) -> list[str]:
    figured = report.figured()
    if not figured:
        return []
    out = ["", "## Figures"]
    for check in figured:
        title = check.figures.get("title")
        heading = f"{check.check_id}: {title}" if title else check.check_id
        out += ["", f"### {_cell(heading)} ({check.outcome.value})", ""]
        summary = figure_summary(check.figures)
        if summary:
            out += [f"- {_cell(summary)}", ""]
        table = figure_table(check.figures)
        if table is not None:
            out += _table(table)
    return out


def _evidence(report: RunReport) -> list[str]:
    failing = [
        v
        for v in report.verdicts
        if any(c.message for c in v.checks if c.outcome is not CheckOutcome.PASSED)
    ]
    if not failing:
        return []
    out = ["", "## Evidence", ""]
    for verdict in failing:
        out += [
            f"### {verdict.requirement.id} ({verdict.outcome.value})",
            "",
            verdict.requirement.statement,
            "",
            f"Source: {verdict.requirement.source}",
            "",
            *[f"- {label}: {_cell(text)}" for label, text in provenance(verdict.requirement)],
            *[f"- **{label}**: {_cell(text)}" for label, text in behaves_as(verdict)],
            "",
        ]
        for check in verdict.checks:
            if check.outcome is CheckOutcome.PASSED or not check.message:
                continue
            out += [f"- `{check.check_id}` {check.outcome.value}", "", "```", check.message, "```"]
            if check.transcript:
                out.append(f"  wire log: `{check.transcript}`")
            if check.replay:
                out.append(f"  replay: `{check.replay}`")
            out.append("")
    return out


def render(report: RunReport) -> str:
    header, rows = by_area_and_level(report)
    target, run = report.target, report.run
    client = certified_target(target)
    where = (
        [
            f"- Target: `{target.get('ws_url')}` / `{target.get('http_url')}`, "
            f"capabilities: {', '.join(target.get('capabilities') or []) or 'none'}"
            + unverified_tls(target),
            f"- Profile `{run.get('profile')}`, seed `{run.get('seed')}`, "
            f"started {run.get('started_at')}",
        ]
        if client is None
        else [f"- Target: {_cell(client)}", f"- Started {run.get('started_at')}"]
    )
    out = [
        f"# Conformance report: {target.get('name')}",
        "",
        f"- Suite: pusher-conformance {__version__}, specs sha256 `{report.specs.sha256[:16]}`",
        *where,
        f"- Exit code **{int(report.exit)}**; {report.executed_checks} checks executed"
        + ("; --strict: DISPUTED counts as FAIL" if run.get("strict") else ""),
        "",
        "## By area and level",
        "",
        # The counts need no cell escaping: areas, levels and numbers hold no pipes.
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(r) + " |" for r in rows],
        "",
        "## Requirements",
        "",
        "| id | level | basis | outcome | title | checks |",
        "|---|---|---|---|---|---|",
    ]
    for verdict in report.verdicts:
        checks = ", ".join(
            f"{c.check_id.split('/')[-1]}: {c.outcome.value}" for c in verdict.checks
        )
        out.append(
            f"| {verdict.requirement.id} | {verdict.requirement.level} | "
            f"{verdict.requirement.basis} | {verdict.outcome.value} | "
            f"{verdict.requirement.title} | {checks} |"
        )
    if report.baseline is not None:
        out += baseline_section.markdown_lines(report.baseline)
    out += _figures(report)
    out += _evidence(report)
    out += coverage_section.markdown_lines(report)
    out += ["", "## Not covered", "", "| id | level | status | why |", "|---|---|---|---|"]
    for requirement in report.not_covered:
        out.append(
            f"| {requirement.id} | {requirement.level} | {requirement.status} | "
            f"{' '.join((requirement.justification or '').split())} |"
        )
    out += docs_section.markdown_lines(report)
    return "\n".join(out) + "\n"


def write(report: RunReport, path: Path) -> None:
    path.write_text(render(report), encoding="utf-8")
