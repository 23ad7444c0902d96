"""Coverage, in results.json, summary.md and summary.html: one home, so the three agree.

*Static* coverage is what the specs promise whatever the target: each requirement with the
checks that test it, and the requirements no check tests (their status and justification are
the report's "Not covered" list, not repeated here). *Dynamic* coverage is what the bundled
reference server's requirement marks counted in this run (``conformance/server_marks.py``):
the requirements exercised, the requirements whose checks ran but whose marks were never hit
(suspicious: the checks may not reach the code), and the server code no input reached. It is
``null`` for any other target, which marks nothing.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ..results import RunReport
from ..server_marks import DynamicCoverage, dynamic_coverage

__all__ = ["as_json", "dynamic", "html_lines", "markdown_lines"]


def dynamic(report: RunReport) -> DynamicCoverage | None:
    """The run's dynamic coverage, or None when the target is not the bundled server."""
    if report.server_marks is None:
        return None
    outcomes = {v.requirement.id: [c.outcome for c in v.checks] for v in report.verdicts}
    return dynamic_coverage(
        report.server_marks, (r.id for r in report.specs.requirements), outcomes
    )


def _static(report: RunReport) -> dict[str, Any]:
    requirements = report.specs.requirements
    checks = {r.id: [c.full_id for c in r.checks] for r in requirements if r.checks}
    return {
        "requirements": len(requirements),
        "with_checks": len(checks),
        "checks": sum(len(ids) for ids in checks.values()),
        "checks_by_requirement": checks,
        # Why each is untested: the report's top-level "not_covered".
        "untested": [r.id for r in requirements if not r.checks],
    }


def _dynamic_json(cov: DynamicCoverage) -> dict[str, Any]:
    return {
        "marks": cov.marks,
        "server_processes": cov.processes,
        "problem": cov.problem,
        "exercised": list(cov.exercised),
        "checked_not_reached": list(cov.checked_not_reached),
        "checked_unclaimed": list(cov.checked_unclaimed),
        "marks_never_hit": [
            {"location": m.location, "ids": list(m.ids)} for m in cov.marks_never_hit
        ],
        "unknown_ids": list(cov.unknown_ids),
        "hits": cov.hits,
        "claimed_by": {rid: list(where) for rid, where in cov.claimed_by.items()},
    }


def as_json(report: RunReport) -> dict[str, Any]:
    cov = dynamic(report)
    return {
        "static": _static(report),
        "dynamic": _dynamic_json(cov) if cov is not None else None,
    }


def _headlines(report: RunReport) -> list[str]:
    static = _static(report)
    lines = [
        f"Static: {static['with_checks']} of {static['requirements']} requirements have checks"
        f" ({static['checks']} checks); {len(static['untested'])} are untested"
        " (see Not covered for why)."
    ]
    cov = dynamic(report)
    if cov is None:
        lines.append("Dynamic: not measured (only the bundled reference server marks its code).")
    elif cov.problem is not None:
        lines.append(f"Dynamic: not available: {cov.problem}.")
    else:
        lines.append(
            f"Dynamic: {len(cov.exercised)} requirements exercised (a server mark claiming them"
            f" was hit); {len(cov.checked_not_reached)} with checks that ran but marks never"
            f" hit; {len(cov.checked_unclaimed)} with checks that ran and no mark;"
            f" {len(cov.marks_never_hit)} of {cov.marks} server marks never hit"
            f" ({cov.processes} server process(es))."
        )
    return lines


def _suspicious(cov: DynamicCoverage) -> list[tuple[str, list[str]]]:
    """The lists an auditor should look at, each as (title, items)."""
    return [
        (
            "Checks ran, server marks never hit (the checks may not reach the code)",
            [f"{rid}: {', '.join(cov.claimed_by[rid])}" for rid in cov.checked_not_reached],
        ),
        ("Checks ran, no server mark claims the requirement", list(cov.checked_unclaimed)),
        (
            "Server marks never hit (code no input of this run reached)",
            [f"{m.location} ({', '.join(m.ids)})" for m in cov.marks_never_hit],
        ),
        ("Ids marked by the server that no requirement has", list(cov.unknown_ids)),
    ]


def _rows(report: RunReport, cov: DynamicCoverage | None) -> list[list[str]]:
    """requirement -> checks -> server code paths -> hits, one row per requirement."""
    rows = []
    for requirement in report.specs.requirements:
        checks = ", ".join(c.id for c in requirement.checks) or f"none ({requirement.status})"
        if cov is None:
            rows.append([requirement.id, checks])
            continue
        where = ", ".join(cov.claimed_by.get(requirement.id, ())) or "-"
        hits = str(cov.hits[requirement.id]) if requirement.id in cov.hits else "-"
        rows.append([requirement.id, checks, where, hits])
    return rows


def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def markdown_lines(report: RunReport) -> list[str]:
    cov = dynamic(report)
    out = ["", "## Coverage", "", *[f"- {line}" for line in _headlines(report)]]
    if cov is not None and cov.problem is None:
        for title, items in _suspicious(cov):
            if items:
                out += ["", f"{title}:", "", *[f"- `{_md(item)}`" for item in items]]
    header = ["id", "checks"] + (["server code", "hits"] if cov is not None else [])
    out += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in _rows(report, cov)]
    return out


def html_lines(report: RunReport) -> list[str]:
    cov = dynamic(report)
    out = ["<h2 id='coverage'>Coverage</h2><ul>"]
    out += [f"<li>{escape(line)}</li>" for line in _headlines(report)]
    out.append("</ul>")
    if cov is not None and cov.problem is None:
        for title, items in _suspicious(cov):
            if items:
                out.append(f"<p>{escape(title)}:</p><ul>")
                out += [f"<li><code>{escape(item)}</code></li>" for item in items]
                out.append("</ul>")
    header = ["id", "checks"] + (["server code", "hits"] if cov is not None else [])
    out.append("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>")
    out += [
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
        for row in _rows(report, cov)
    ]
    out.append("</table>")
    return out
