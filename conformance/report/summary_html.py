"""summary.html: the same report as summary.md as one self-contained page (inline CSS, no
scripts), so it opens from a CI artifact or an email attachment. Unlike the markdown it details
every requirement, passing ones included, with links from the overview, because a page can hold
that much without becoming unreadable.

Everything that comes from a spec, a target or a server is escaped: a hostile server's message
must not be able to inject markup into the page an auditor opens."""

from __future__ import annotations

from html import escape
from pathlib import Path

from .. import __version__
from ..results import RunReport
from . import baseline_section, coverage_section, docs_section
from .tables import (
    behaves_as,
    by_area_and_level,
    certified_target,
    figure_summary,
    figure_table,
    provenance,
    unverified_tls,
)

__all__ = ["FILE_NAME", "render", "write"]

FILE_NAME = "summary.html"

# Verdict classes colour the cells; the class names are the verdicts themselves.
_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: .3em .6em; }
th { background: #f3f3f3; text-align: left; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; }
.PASS { background: #dff5df; } .FAIL, .ERROR { background: #f9d6d5; }
.NON_STRICT, .INCONCLUSIVE { background: #fdf0c8; } .DISPUTED { background: #f9ddb8; }
.OPTIONAL_ABSENT, .NOT_RUN { background: #eee; }
.REPORTED { background: #e4ecf7; }
"""


def _cell(text: object, css: str = "") -> str:
    klass = f' class="{escape(css)}"' if css else ""
    return f"<td{klass}>{escape(str(text))}</td>"


def _head(report: RunReport) -> list[str]:
    target, run = report.target, report.run
    return [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Conformance report: {escape(str(target.get('name')))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Conformance report: {escape(str(target.get('name')))}</h1>",
        "<p>",
        f"pusher-conformance {escape(__version__)}, specs sha256 "
        f"<code>{escape(report.specs.sha256[:16])}</code><br>",
        *(
            [
                f"target <code>{escape(str(target.get('ws_url')))}</code>, capabilities: "
                f"{escape(', '.join(target.get('capabilities') or []) or 'none')}"
                f"{escape(unverified_tls(target))}<br>",
                f"profile {escape(str(run.get('profile')))}, "
                f"seed {escape(str(run.get('seed')))}, "
                f"started {escape(str(run.get('started_at')))}<br>",
            ]
            if certified_target(target) is None
            else [
                f"target: {escape(str(certified_target(target)))}<br>",
                f"started {escape(str(run.get('started_at')))}<br>",
            ]
        ),
        f"exit code <b>{int(report.exit)}</b>, {report.executed_checks} checks executed"
        + ("; --strict: DISPUTED counts as FAIL" if run.get("strict") else "")
        + "</p>",
    ]


def _counts(report: RunReport) -> list[str]:
    header, rows = by_area_and_level(report)
    out = ["<h2>By area and level</h2><table><tr>", *[f"<th>{escape(h)}</th>" for h in header]]
    out.append("</tr>")
    out += ["<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows]
    out.append("</table>")
    return out


def _requirements(report: RunReport) -> list[str]:
    """The overview rows, each linking to its requirement's details; ``render`` closes the
    table, on the same line as the next heading."""
    out = ["<h2>Requirements</h2><table><tr><th>id</th><th>level</th><th>basis</th>"
           "<th>verdict</th><th>title</th><th>checks</th></tr>"]  # fmt: skip
    for verdict in report.verdicts:
        req = verdict.requirement
        checks = ", ".join(
            f"{c.check_id.split('/')[-1]}: {c.outcome.value}" for c in verdict.checks
        )
        link = f"<a href='#{escape(req.id)}'>{escape(req.id)}</a>"
        outcome = verdict.outcome.value
        out.append(
            f"<tr><td>{link}</td>{_cell(req.level)}{_cell(req.basis)}{_cell(outcome, outcome)}"
            f"{_cell(req.title)}{_cell(checks)}</tr>"
        )
    return out


def _details(report: RunReport) -> list[str]:
    out: list[str] = []
    for verdict in report.verdicts:
        req = verdict.requirement
        out += [
            f"<h3 id='{escape(req.id)}'>{escape(req.id)} [{escape(req.level)}] "
            f"<span class='{verdict.outcome.value}'>{verdict.outcome.value}</span></h3>",
            f"<p>{escape(req.statement)}</p>",
            f"<p>Source: {escape(req.source)}</p>",
            "<ul>",
            *[f"<li>{escape(label)}: {escape(text)}</li>" for label, text in provenance(req)],
            *[
                f"<li><b>{escape(label)}</b>: {escape(text)}</li>"
                for label, text in behaves_as(verdict)
            ],
            "</ul>",
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
    return out


def _figures(report: RunReport) -> list[str]:
    figured = report.figured()
    if not figured:
        return []
    out = ["<h2>Figures</h2>"]
    for check in figured:
        title = check.figures.get("title")
        heading = f"{check.check_id}: {title}" if title else check.check_id
        outcome = check.outcome.value
        out.append(f"<h3>{escape(heading)} ({escape(outcome)})</h3>")
        summary = figure_summary(check.figures)
        if summary:
            out.append(f"<ul><li>{escape(summary)}</li></ul>")
        table = figure_table(check.figures)
        if table is not None:
            header = "".join(f"<th>{escape(c)}</th>" for c in table.header)
            out.append(f"<table><tr>{header}</tr>")
            out += ["<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in table.rows]
            out.append("</table>")
    return out


def render(report: RunReport) -> str:
    out = [*_head(report), *_counts(report), *_requirements(report)]
    out.append("</table>")
    if report.baseline is not None:
        out += baseline_section.html_lines(report.baseline)
    out.append("<h2>Requirements in detail</h2>")
    out += _details(report)
    out += _figures(report)
    out += coverage_section.html_lines(report)
    out.append(
        "<h2>Not covered</h2><table><tr><th>id</th><th>level</th><th>status</th><th>why</th></tr>"
    )
    for req in report.not_covered:
        why = " ".join((req.justification or "").split())
        out.append(f"<tr>{_cell(req.id)}{_cell(req.level)}{_cell(req.status)}{_cell(why)}</tr>")
    out.append("</table>")
    out += docs_section.html_lines(report)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write(report: RunReport, path: Path) -> None:
    path.write_text(render(report), encoding="utf-8")
