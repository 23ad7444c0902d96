"""The run's results: per-check records, per-requirement verdicts, and the files an auditor and
a CI system read (``results.json``, ``junit.xml``, ``summary.md``).

A check may also report *figures* (``CheckContext.figures``): a title, a one-line summary of
named numbers and a table, which the reports show for passing and failing checks alike, so an
auditor sees how much a check exercised, not only that it passed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from . import __version__
from .outcomes import CheckOutcome, ExitCode, Outcome, exit_code, grade
from .spec import Requirement, SpecSet

__all__ = ["SCHEMA_VERSION", "CheckResult", "RunReport", "build_report", "normalize_figures"]

SCHEMA_VERSION = 1


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


def _figure_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _figure_summary(figures: Mapping[str, Any]) -> str:
    """The summary as one line: ``delivered 312, expected 312, duplicates 0``."""
    summary = figures.get("summary")
    if not isinstance(summary, Mapping):
        return ""
    return ", ".join(f"{k.replace('_', ' ')} {_figure_text(v)}" for k, v in summary.items())


def _figure_table(figures: Mapping[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    table = figures.get("table")
    if not isinstance(table, Mapping):
        return None
    columns = [str(c) for c in table.get("columns", ())]
    rows = [[_figure_text(cell) for cell in row] for row in table.get("rows", ())]
    return columns, rows


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


@dataclass(frozen=True)
class RequirementVerdict:
    requirement: Requirement
    outcome: Outcome
    checks: tuple[CheckResult, ...]


@dataclass
class RunReport:
    specs: SpecSet
    verdicts: list[RequirementVerdict]
    not_covered: list[Requirement]
    target: Mapping[str, Any]
    run: Mapping[str, Any]
    exit: ExitCode
    executed_checks: int
    totals: Counter[str] = field(default_factory=Counter)

    # -- files -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "suite": {
                "name": "pusher-conformance",
                "version": __version__,
                "specs_sha256": self.specs.sha256,
            },
            "run": dict(self.run),
            "target": dict(self.target),
            "exit_code": int(self.exit),
            "executed_checks": self.executed_checks,
            "totals": dict(sorted(self.totals.items())),
            "requirements": [
                {
                    "id": v.requirement.id,
                    "area": v.requirement.area,
                    "level": v.requirement.level,
                    "title": v.requirement.title,
                    "statement": v.requirement.statement,
                    "source": v.requirement.source,
                    "capability": v.requirement.capability,
                    "notes": v.requirement.notes,
                    "outcome": v.outcome.value,
                    "checks": [
                        {
                            "id": c.check_id,
                            "outcome": c.outcome.value,
                            "message": c.message,
                            "duration_s": round(c.duration_s, 3),
                            "transcript": c.transcript,
                            "replay": c.replay,
                            **({"stats": dict(c.stats)} if c.stats else {}),
                            **({"figures": c.figures} if c.figures else {}),
                        }
                        for c in v.checks
                    ],
                }
                for v in self.verdicts
            ],
            "not_covered": [
                {
                    "id": r.id,
                    "area": r.area,
                    "level": r.level,
                    "title": r.title,
                    "status": r.status,
                    "justification": r.justification,
                    "source": r.source,
                }
                for r in self.not_covered
            ],
        }

    def write(self, report_dir: Path) -> None:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "results.json").write_text(
            json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        self._write_junit(report_dir / "junit.xml")
        (report_dir / "summary.md").write_text(self.markdown(), encoding="utf-8")
        (report_dir / "summary.html").write_text(self.html(), encoding="utf-8")

    def _write_junit(self, path: Path) -> None:
        suites = ET.Element("testsuites", name="pusher-conformance")
        by_area: dict[str, list[RequirementVerdict]] = defaultdict(list)
        for verdict in self.verdicts:
            by_area[verdict.requirement.area].append(verdict)
        for area, verdicts in by_area.items():
            cases = [(v, c) for v in verdicts for c in v.checks]
            counts = Counter(c.outcome for _, c in cases)
            suite = ET.SubElement(
                suites,
                "testsuite",
                name=area,
                tests=str(len(cases)),
                failures=str(counts[CheckOutcome.FAILED]),
                errors=str(counts[CheckOutcome.ERROR]),
                skipped=str(counts[CheckOutcome.SKIPPED] + counts[CheckOutcome.INCONCLUSIVE]),
                time=f"{sum(c.duration_s for _, c in cases):.3f}",
            )
            for verdict, check in cases:
                case = ET.SubElement(
                    suite,
                    "testcase",
                    classname=f"{area}.{verdict.requirement.id}",
                    name=check.check_id,
                    time=f"{check.duration_s:.3f}",
                )
                props = ET.SubElement(case, "properties")
                for name, value in (
                    ("requirement", verdict.requirement.id),
                    ("level", verdict.requirement.level),
                    ("requirement_outcome", verdict.outcome.value),
                    ("source", verdict.requirement.source),
                ):
                    ET.SubElement(props, "property", name=name, value=value)
                if check.outcome is CheckOutcome.FAILED:
                    failure = ET.SubElement(
                        case,
                        "failure",
                        message=check.message.splitlines()[0][:300] if check.message else "failed",
                        type=f"{verdict.requirement.level} {verdict.outcome.value}",
                    )
                    failure.text = check.message
                elif check.outcome is CheckOutcome.ERROR:
                    error = ET.SubElement(case, "error", message=(check.message or "error")[:300])
                    error.text = check.message
                elif check.outcome in (CheckOutcome.SKIPPED, CheckOutcome.INCONCLUSIVE):
                    ET.SubElement(
                        case, "skipped", message=f"{check.outcome.value}: {check.message}"[:300]
                    )
        for key in ("tests", "failures", "errors", "skipped"):
            suites.set(key, str(sum(int(suite.get(key, "0")) for suite in suites)))
        ET.indent(suites)
        ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)

    # -- summaries -------------------------------------------------------------------------

    def figured(self) -> list[CheckResult]:
        """The checks that reported figures, in report order, whatever their outcome."""
        return [c for v in self.verdicts for c in v.checks if c.figures]

    def _table(self) -> tuple[list[str], list[list[str]]]:
        columns = [o.value for o in Outcome if o is not Outcome.NOT_RUN]
        rows = []
        grouped: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for verdict in self.verdicts:
            if verdict.outcome is Outcome.NOT_RUN:
                continue
            grouped[(verdict.requirement.area, verdict.requirement.level)][
                verdict.outcome.value
            ] += 1
        for (area, level), counts in sorted(grouped.items()):
            rows.append([area, level, *[str(counts.get(c, 0)) for c in columns]])
        return ["area", "level", *columns], rows

    def console(self) -> str:
        header, rows = self._table()
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        lines = [
            f"pusher-conformance {__version__}: target {self.target.get('name')} "
            f"({self.target.get('ws_url')}), profile {self.run.get('profile')}, "
            f"seed {self.run.get('seed')}",
            "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        ]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        bad = [
            v
            for v in self.verdicts
            if v.outcome in (Outcome.FAIL, Outcome.NON_STRICT, Outcome.ERROR, Outcome.INCONCLUSIVE)
        ]
        if bad:
            lines.append("")
            for verdict in bad:
                lines.append(
                    f"{verdict.outcome.value:<13} {verdict.requirement.id} "
                    f"[{verdict.requirement.level}] {verdict.requirement.title}"
                )
                for check in verdict.checks:
                    if check.outcome in (CheckOutcome.PASSED, CheckOutcome.SKIPPED):
                        continue
                    first = check.message.splitlines()[0] if check.message else ""
                    lines.append(f"    {check.check_id}: {check.outcome.value}: {first[:160]}")
                    if check.replay:
                        lines.append(f"      replay: {check.replay}")
        verdict_counts = ", ".join(f"{k} {v}" for k, v in sorted(self.totals.items()))
        stats: Counter[str] = Counter()
        for verdict in self.verdicts:
            for check in verdict.checks:
                stats.update(check.stats)
        if stats:
            lines.append("")
            counted = (f"{k.replace('_', ' ')} {v}" for k, v in sorted(stats.items()))
            lines.append("counted: " + ", ".join(counted))
        figured = self.figured()
        if figured:
            lines.append("")
            for check in figured:
                text = _figure_summary(check.figures) or str(check.figures.get("title") or "")
                table = _figure_table(check.figures)
                if table is not None:
                    text += f"{'; ' if text else ''}table of {len(table[1])} rows in summary.md"
                lines.append(f"figures {check.check_id}: {text}")
        lines.append("")
        lines.append(
            f"{len([v for v in self.verdicts if v.outcome is not Outcome.NOT_RUN])} requirements "
            f"({verdict_counts}); {self.executed_checks} checks executed; "
            f"{len(self.not_covered)} not covered; exit {int(self.exit)}"
        )
        return "\n".join(lines)

    def html(self) -> str:
        return _html(self)

    def markdown(self) -> str:
        header, rows = self._table()
        out = [
            f"# Conformance report: {self.target.get('name')}",
            "",
            f"- Suite: pusher-conformance {__version__}, specs sha256 `{self.specs.sha256[:16]}`",
            f"- Target: `{self.target.get('ws_url')}` / `{self.target.get('http_url')}`, "
            f"capabilities: {', '.join(self.target.get('capabilities') or []) or 'none'}",
            f"- Profile `{self.run.get('profile')}`, seed `{self.run.get('seed')}`, "
            f"started {self.run.get('started_at')}",
            f"- Exit code **{int(self.exit)}**; {self.executed_checks} checks executed",
            "",
            "## By area and level",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
            *["| " + " | ".join(r) + " |" for r in rows],
            "",
            "## Requirements",
            "",
            "| id | level | outcome | title | checks |",
            "|---|---|---|---|---|",
        ]
        for verdict in self.verdicts:
            checks = ", ".join(
                f"{c.check_id.split('/')[-1]}: {c.outcome.value}" for c in verdict.checks
            )
            out.append(
                f"| {verdict.requirement.id} | {verdict.requirement.level} | "
                f"{verdict.outcome.value} | {verdict.requirement.title} | {checks} |"
            )
        out += self._markdown_figures()
        failing = [
            v
            for v in self.verdicts
            if any(c.message for c in v.checks if c.outcome is not CheckOutcome.PASSED)
        ]
        if failing:
            out += ["", "## Evidence", ""]
            for verdict in failing:
                out += [
                    f"### {verdict.requirement.id} ({verdict.outcome.value})",
                    "",
                    verdict.requirement.statement,
                    "",
                    f"Source: {verdict.requirement.source}",
                    "",
                ]
                for check in verdict.checks:
                    if check.outcome is CheckOutcome.PASSED or not check.message:
                        continue
                    out += [
                        f"- `{check.check_id}` {check.outcome.value}",
                        "",
                        "```",
                        check.message,
                        "```",
                    ]
                    if check.transcript:
                        out.append(f"  wire log: `{check.transcript}`")
                    if check.replay:
                        out.append(f"  replay: `{check.replay}`")
                    out.append("")
        out += ["", "## Not covered", "", "| id | level | status | why |", "|---|---|---|---|"]
        for requirement in self.not_covered:
            out.append(
                f"| {requirement.id} | {requirement.level} | {requirement.status} | "
                f"{' '.join((requirement.justification or '').split())} |"
            )
        return "\n".join(out) + "\n"

    def _markdown_figures(self) -> list[str]:
        figured = self.figured()
        if not figured:
            return []
        out = ["", "## Figures"]
        for check in figured:
            title = check.figures.get("title")
            heading = f"{check.check_id}: {title}" if title else check.check_id
            out += ["", f"### {_md_cell(heading)} ({check.outcome.value})", ""]
            summary = _figure_summary(check.figures)
            if summary:
                out += [f"- {_md_cell(summary)}", ""]
            table = _figure_table(check.figures)
            if table is not None:
                columns, rows = table
                out += [
                    "| " + " | ".join(_md_cell(c) for c in columns) + " |",
                    "|" + "---|" * len(columns),
                    *["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows],
                ]
        return out


_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: .3em .6em; }
th { background: #f3f3f3; text-align: left; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; }
.PASS { background: #dff5df; } .FAIL, .ERROR { background: #f9d6d5; }
.NON_STRICT, .INCONCLUSIVE { background: #fdf0c8; } .OPTIONAL_ABSENT, .NOT_RUN { background: #eee; }
"""


def _cell(text: object, css: str = "") -> str:
    klass = f' class="{escape(css)}"' if css else ""
    return f"<td{klass}>{escape(str(text))}</td>"


def _html(report: RunReport) -> str:
    header, rows = report._table()
    target = report.target
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Conformance report: {escape(str(target.get('name')))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Conformance report: {escape(str(target.get('name')))}</h1>",
        "<p>",
        f"pusher-conformance {escape(__version__)}, specs sha256 "
        f"<code>{escape(report.specs.sha256[:16])}</code><br>",
        f"target <code>{escape(str(target.get('ws_url')))}</code>, capabilities: "
        f"{escape(', '.join(target.get('capabilities') or []) or 'none')}<br>",
        f"profile {escape(str(report.run.get('profile')))}, "
        f"seed {escape(str(report.run.get('seed')))}, "
        f"started {escape(str(report.run.get('started_at')))}<br>",
        f"exit code <b>{int(report.exit)}</b>, {report.executed_checks} checks executed</p>",
        "<h2>By area and level</h2><table><tr>",
        *[f"<th>{escape(h)}</th>" for h in header],
        "</tr>",
    ]
    for row in rows:
        out.append("<tr>" + "".join(_cell(c) for c in row) + "</tr>")
    out += ["</table>", "<h2>Requirements</h2><table><tr><th>id</th><th>level</th>"
            "<th>verdict</th><th>title</th><th>checks</th></tr>"]  # fmt: skip
    for verdict in report.verdicts:
        req = verdict.requirement
        checks = ", ".join(
            f"{c.check_id.split('/')[-1]}: {c.outcome.value}" for c in verdict.checks
        )
        link = f"<a href='#{escape(req.id)}'>{escape(req.id)}</a>"
        outcome = verdict.outcome.value
        out.append(
            f"<tr><td>{link}</td>{_cell(req.level)}{_cell(outcome, outcome)}"
            f"{_cell(req.title)}{_cell(checks)}</tr>"
        )
    out.append("</table><h2>Requirements in detail</h2>")
    for verdict in report.verdicts:
        req = verdict.requirement
        out += [
            f"<h3 id='{escape(req.id)}'>{escape(req.id)} [{escape(req.level)}] "
            f"<span class='{verdict.outcome.value}'>{verdict.outcome.value}</span></h3>",
            f"<p>{escape(req.statement)}</p>",
            f"<p>Source: {escape(req.source)}</p>",
        ]
        if req.notes:
            out.append(f"<p><i>{escape(req.notes)}</i></p>")
        for check in verdict.checks:
            out.append(
                f"<p><code>{escape(check.check_id)}</code>: {escape(check.outcome.value)}</p>"
            )
            if check.message:
                out.append(f"<pre>{escape(check.message)}</pre>")
            if check.transcript:
                path = escape(check.transcript)
                out.append(f"<p>wire log: <a href='{path}'>{path}</a></p>")
            if check.replay:
                out.append(f"<p>replay: <code>{escape(check.replay)}</code></p>")
    out += _html_figures(report)
    out.append(
        "<h2>Not covered</h2><table><tr><th>id</th><th>level</th><th>status</th><th>why</th></tr>"
    )
    for req in report.not_covered:
        why = " ".join((req.justification or "").split())
        out.append(f"<tr>{_cell(req.id)}{_cell(req.level)}{_cell(req.status)}{_cell(why)}</tr>")
    out.append("</table></body></html>")
    return "\n".join(out) + "\n"


def _html_figures(report: RunReport) -> list[str]:
    figured = report.figured()
    if not figured:
        return []
    out = ["<h2>Figures</h2>"]
    for check in figured:
        title = check.figures.get("title")
        heading = f"{check.check_id}: {title}" if title else check.check_id
        outcome = check.outcome.value
        out.append(f"<h3>{escape(heading)} ({escape(outcome)})</h3>")
        summary = _figure_summary(check.figures)
        if summary:
            out.append(f"<ul><li>{escape(summary)}</li></ul>")
        table = _figure_table(check.figures)
        if table is not None:
            columns, rows = table
            out.append("<table><tr>" + "".join(f"<th>{escape(c)}</th>" for c in columns) + "</tr>")
            out += ["<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows]
            out.append("</table>")
    return out


def build_report(
    specs: SpecSet,
    results: Mapping[str, CheckResult],
    *,
    target: Mapping[str, Any],
    run: Mapping[str, Any],
) -> RunReport:
    verdicts = []
    not_covered = []
    for requirement in specs.requirements:
        if requirement.status != "active":
            not_covered.append(requirement)
            continue
        checks = tuple(results[c.full_id] for c in requirement.checks if c.full_id in results)
        verdicts.append(
            RequirementVerdict(
                requirement, grade(requirement.level, [c.outcome for c in checks]), checks
            )
        )
    executed = sum(1 for r in results.values() if r.outcome is not CheckOutcome.SKIPPED)
    totals = Counter(v.outcome.value for v in verdicts if v.outcome is not Outcome.NOT_RUN)
    code = exit_code(((v.requirement.level, v.outcome) for v in verdicts), executed)
    run_info = dict(run)
    run_info.setdefault("finished_at", datetime.now(UTC).isoformat(timespec="seconds"))
    return RunReport(specs, verdicts, not_covered, target, run_info, code, executed, totals)
