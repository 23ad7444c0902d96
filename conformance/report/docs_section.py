"""The docs map in a run's summary.md and summary.html: for every rule a public Pusher docs page
states (``specs/docs/*.yaml``, see conformance/docs_map.py), the sentence, the requirements that
test it and how they did in this run, or the reason none does.

``markdown_section`` and ``html_section`` take the pages and a mapping requirement id ->
outcome (``"PASS"``, ``"FAIL"``...; None when the requirement did not run); ``markdown_lines``
and ``html_lines`` do the same for a ``RunReport``, loading the map that sits next to the run's
specs. Everything from a file is escaped: the page is self-contained and takes no markup in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from ..docs_map import DocsPage, DocsRule, load_docs_map
from ..errors import SpecError
from ..outcomes import Outcome
from ..results import RunReport

__all__ = [
    "html_lines",
    "html_section",
    "markdown_lines",
    "markdown_section",
    "report_outcomes",
    "report_pages",
]

TITLE = "Docs to requirements"
_NOT_RUN = "not run"
_GAP = "not yet tested"
_INTRO = (
    "Every rule the public Pusher docs state, sentence by sentence: the requirements that test "
    "it and their outcome in this run, or why none does."
)
# The outcome classes of summary.html colour the cells; a docs rule adds two of its own.
_CSS = ".OMITTED { background: #eee; } .GAP { background: #fdf0c8; }"


def report_outcomes(report: RunReport) -> dict[str, str | None]:
    """Each requirement's outcome in ``report``: its verdict, None if it did not run, its status
    (``unverifiable``, ``n/a``) if it has no checks."""
    outcomes: dict[str, str | None] = {
        v.requirement.id: None if v.outcome is Outcome.NOT_RUN else v.outcome.value
        for v in report.verdicts
    }
    for requirement in report.not_covered:
        outcomes[requirement.id] = requirement.status
    return outcomes


def report_pages(report: RunReport) -> tuple[DocsPage, ...]:
    """The docs map next to the run's specs (none if those specs have no ``docs/``). Raises
    SpecError if it does not load."""
    if not report.specs.files:
        return ()
    specs_dir: Path = report.specs.files[0].path.parent
    if all(f.subject == "server" for f in report.specs.files):
        return load_docs_map(specs_dir, requirement_ids=(r.id for r in report.specs.requirements))
    # Another subject's run (a client's): the map names every subject's requirements, so it is
    # checked against all of them, and only the pages mapping one of this run's are shown.
    ours = {r.id for r in report.specs.requirements}
    return tuple(
        page
        for page in load_docs_map(specs_dir)
        if any(ours.intersection(rule.requirements) for rule in page.rules)
    )


def _counts(pages: Sequence[DocsPage]) -> str:
    rules = [r for p in pages for r in p.rules]
    mapped = sum(1 for r in rules if r.mapped)
    gaps = sum(1 for r in rules if r.not_yet_tested)
    return (
        f"{len(pages)} pages, {len(rules)} rules: {mapped} mapped to requirements, "
        f"{len(rules) - mapped - gaps} omitted with a reason, {gaps} not yet tested."
    )


def _outcome(outcomes: Mapping[str, str | None], requirement_id: str) -> str:
    return outcomes.get(requirement_id) or _NOT_RUN


def _omission(rule: DocsRule) -> tuple[str, str]:
    """How an omission reads in a table: its kind, then its reason."""
    text = rule.omission or ""
    if rule.not_yet_tested:
        return _GAP, text[len(_GAP) :].lstrip(" :")
    return "omitted", text


# Markdown


def _md_cell(text: str) -> str:
    # A line break or a bare pipe inside a cell would end the table row early; the quotes are
    # shown as text, so markdown's own markup characters are escaped too.
    flat = " ".join(text.split())
    for char in "\\`*_[]<>|":
        flat = flat.replace(char, "\\" + char)
    return flat


def markdown_section(pages: Sequence[DocsPage], outcomes: Mapping[str, str | None]) -> str:
    """The docs map as Markdown: a heading, the counts, one table per page."""
    if not pages:
        return ""
    out = [f"## {TITLE}", "", _INTRO, "", _counts(pages)]
    for page in pages:
        out += ["", f"### [{_md_cell(page.title)}]({page.page})", ""]
        out += ["| where | docs say | requirements | outcome |", "|---|---|---|---|"]
        for rule in page.rules:
            where = f"[{_md_cell(rule.anchor or 'top')}]({page.url(rule)})"
            if rule.mapped:
                ids = ", ".join(rule.requirements)
                outcome = ", ".join(
                    f"{i}: {_md_cell(_outcome(outcomes, i))}" for i in rule.requirements
                )
            else:
                ids = "-"
                kind, reason = _omission(rule)
                outcome = f"{kind}: {_md_cell(reason)}"
            out.append(f"| {where} | {_md_cell(rule.quote)} | {ids} | {outcome} |")
    return "\n".join(out) + "\n"


# HTML


def _outcome_cell(outcomes: Mapping[str, str | None], rule: DocsRule) -> str:
    if not rule.mapped:
        css = "GAP" if rule.not_yet_tested else "OMITTED"
        kind, reason = _omission(rule)
        return f'<td class="{css}"><b>{escape(kind)}</b>: {escape(reason)}</td>'
    items = []
    for requirement_id in rule.requirements:
        outcome = _outcome(outcomes, requirement_id)
        css = outcome if outcome in Outcome.__members__ else "NOT_RUN"
        items.append(
            f'<span class="{escape(css)}">{escape(requirement_id)}: {escape(outcome)}</span>'
        )
    return f"<td>{'<br>'.join(items)}</td>"


def html_section(pages: Sequence[DocsPage], outcomes: Mapping[str, str | None]) -> str:
    """The docs map as one self-contained ``<section>`` (inline style, no scripts)."""
    if not pages:
        return ""
    out = [
        f'<section id="docs-map"><style>{_CSS}</style>',
        f"<h2>{escape(TITLE)}</h2><p>{escape(_INTRO)}</p><p>{escape(_counts(pages))}</p>",
    ]
    for page in pages:
        out.append(
            f'<h3><a href="{escape(page.page)}">{escape(page.title)}</a></h3>'
            "<table><tr><th>where</th><th>docs say</th><th>requirements</th>"
            "<th>outcome</th></tr>"
        )
        for rule in page.rules:
            where = f'<a href="{escape(page.url(rule))}">{escape(rule.anchor or "top")}</a>'
            ids = ", ".join(escape(i) for i in rule.requirements) or "-"
            quote = escape(rule.quote)
            if rule.notes:
                quote += f"<br><i>{escape(rule.notes)}</i>"
            out.append(
                f"<tr><td>{where}</td><td>{quote}</td><td>{ids}</td>"
                f"{_outcome_cell(outcomes, rule)}</tr>"
            )
        out.append("</table>")
    out.append("</section>")
    return "\n".join(out) + "\n"


# For a run's report


def markdown_lines(report: RunReport) -> list[str]:
    """The section for summary.md, as lines to append (none without a docs map)."""
    try:
        pages = report_pages(report)
    except SpecError as exc:
        return ["", f"## {TITLE}", "", f"The docs map did not load: {_md_cell(str(exc))}"]
    section = markdown_section(pages, report_outcomes(report))
    return ["", *section.rstrip("\n").split("\n")] if section else []


def html_lines(report: RunReport) -> list[str]:
    """The section for summary.html, as lines to append (none without a docs map)."""
    try:
        pages = report_pages(report)
    except SpecError as exc:
        return [f"<h2>{escape(TITLE)}</h2><p>The docs map did not load: {escape(str(exc))}</p>"]
    section = html_section(pages, report_outcomes(report))
    return section.rstrip("\n").split("\n") if section else []
