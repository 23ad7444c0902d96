"""The docs map in a run's summary.md and summary.html: for every rule a public Pusher docs page
states (``specs/docs/*.yaml``, see conformance/docs_map.py), the sentence, the requirements that
test it and how they did in this run, or the reason none does.

``markdown_section`` and ``html_section`` take the pages, a mapping requirement id ->
outcome (``"PASS"``, ``"FAIL"``...; None when the requirement did not run) and a mapping
requirement id -> subject for the ids another command certifies (a server run's report shows a
rule's ``CLIENT-*`` id as "(client certification)", not as a requirement that did not run);
``markdown_lines`` and ``html_lines`` do the same for a ``RunReport``, loading the map that sits
next to the run's specs. A server run shows every page; a client or auth-endpoint run shows the
pages that name one of its requirements. Everything from a file is escaped: the page is
self-contained and takes no markup in.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from ..docs_map import DocsPage, DocsRule, MapCounts, load_docs_map
from ..errors import SpecError
from ..outcomes import Outcome
from ..results import RunReport
from ..spec import Subject, load_specs

__all__ = [
    "html_lines",
    "html_section",
    "markdown_lines",
    "markdown_section",
    "report_elsewhere",
    "report_outcomes",
    "report_pages",
]

TITLE = "Docs to requirements"
_NOT_RUN = "not run"
_GAP = "not yet tested"
_INTRO = (
    "Every rule the public Pusher docs state, sentence by sentence: the requirements that test "
    "it and their outcome in this run, or why none does. A requirement another command "
    "certifies (a client library's, an app's auth endpoint's) is named with its subject."
)
# The outcome classes of summary.html colour the cells; a docs rule adds three of its own.
_CSS = ".OMITTED { background: #eee; } .GAP { background: #fdf0c8; } .ELSEWHERE { color: #666; }"


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


@functools.lru_cache(maxsize=4)
def _whole_map(
    specs_dir: Path, specs_sha256: str
) -> tuple[tuple[DocsPage, ...], dict[str, Subject]]:
    """The whole docs map and every subject's ids (id -> subject). Each report format shows
    the docs section, and one load serves them all (``specs_sha256`` keys the run's specs)."""
    subjects = {
        r.id: f.subject for f in load_specs(specs_dir, subject=None).files for r in f.requirements
    }
    return load_docs_map(specs_dir, requirement_ids=subjects), subjects


def _load(report: RunReport) -> tuple[tuple[DocsPage, ...], dict[str, Subject]]:
    """The pages to show for ``report`` and the ids another subject's command certifies (id ->
    subject). The map names every subject's requirements, so it is checked against all the
    specs next to the run's. Raises SpecError if it does not load."""
    if not report.specs.files:
        return (), {}
    specs_dir: Path = report.specs.files[0].path.parent
    ours = {f.subject for f in report.specs.files}
    pages, subjects = _whole_map(specs_dir, report.specs.sha256)
    elsewhere = {rid: subject for rid, subject in subjects.items() if subject not in ours}
    if ours != {"server"}:
        # A client's or an auth endpoint's run: only the pages naming one of its requirements.
        run_ids = {r.id for r in report.specs.requirements}
        pages = tuple(
            page
            for page in pages
            if any(run_ids.intersection(rule.requirements) for rule in page.rules)
        )
    return pages, elsewhere


def report_pages(report: RunReport) -> tuple[DocsPage, ...]:
    """The docs map next to the run's specs (none if those specs have no ``docs/``): every page
    for a server run, the pages naming one of its requirements for another subject's run.
    Raises SpecError if it does not load."""
    return _load(report)[0]


def report_elsewhere(report: RunReport) -> dict[str, Subject]:
    """The requirement ids the map may name that another subject's command certifies, with
    that subject (``client``, ``auth-endpoint``, ``server``). Raises SpecError if the specs do
    not load."""
    return _load(report)[1]


def _counts(pages: Sequence[DocsPage]) -> str:
    counts = MapCounts.of(pages)
    return (
        f"{counts.pages} pages, {counts.rules} rules: {counts.mapped} mapped to requirements, "
        f"{counts.omitted} omitted with a reason, {counts.not_yet_tested} not yet tested."
    )


def _certified_elsewhere(subject: str) -> str:
    return f"({subject} certification)"


def _outcome(
    outcomes: Mapping[str, str | None], elsewhere: Mapping[str, str], requirement_id: str
) -> str:
    if requirement_id not in outcomes and requirement_id in elsewhere:
        return _certified_elsewhere(elsewhere[requirement_id])
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


def markdown_section(
    pages: Sequence[DocsPage],
    outcomes: Mapping[str, str | None],
    elsewhere: Mapping[str, str] | None = None,
) -> str:
    """The docs map as Markdown: a heading, the counts, one table per page. ``elsewhere``: the
    ids another subject's command certifies, shown with that subject instead of an outcome."""
    if not pages:
        return ""
    others = elsewhere or {}
    out = [f"## {TITLE}", "", _INTRO, "", _counts(pages)]
    for page in pages:
        out += ["", f"### [{_md_cell(page.title)}]({page.page})", ""]
        out += ["| where | docs say | requirements | outcome |", "|---|---|---|---|"]
        for rule in page.rules:
            where = f"[{_md_cell(rule.anchor or 'top')}]({page.url(rule)})"
            if rule.mapped:
                ids = ", ".join(rule.requirements)
                outcome = ", ".join(
                    f"{i}: {_md_cell(_outcome(outcomes, others, i))}" for i in rule.requirements
                )
            else:
                ids = "-"
                kind, reason = _omission(rule)
                outcome = f"{kind}: {_md_cell(reason)}"
            out.append(f"| {where} | {_md_cell(rule.quote)} | {ids} | {outcome} |")
    return "\n".join(out) + "\n"


# HTML


def _outcome_cell(
    outcomes: Mapping[str, str | None], elsewhere: Mapping[str, str], rule: DocsRule
) -> str:
    if not rule.mapped:
        css = "GAP" if rule.not_yet_tested else "OMITTED"
        kind, reason = _omission(rule)
        return f'<td class="{css}"><b>{escape(kind)}</b>: {escape(reason)}</td>'
    items = []
    for requirement_id in rule.requirements:
        outcome = _outcome(outcomes, elsewhere, requirement_id)
        if outcome in Outcome.__members__:
            css = outcome
        elif requirement_id not in outcomes and requirement_id in elsewhere:
            css = "ELSEWHERE"
        else:
            css = "NOT_RUN"
        items.append(
            f'<span class="{escape(css)}">{escape(requirement_id)}: {escape(outcome)}</span>'
        )
    return f"<td>{'<br>'.join(items)}</td>"


def html_section(
    pages: Sequence[DocsPage],
    outcomes: Mapping[str, str | None],
    elsewhere: Mapping[str, str] | None = None,
) -> str:
    """The docs map as one self-contained ``<section>`` (inline style, no scripts);
    ``elsewhere`` as for ``markdown_section``."""
    if not pages:
        return ""
    others = elsewhere or {}
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
                f"{_outcome_cell(outcomes, others, rule)}</tr>"
            )
        out.append("</table>")
    out.append("</section>")
    return "\n".join(out) + "\n"


# For a run's report


def markdown_lines(report: RunReport) -> list[str]:
    """The section for summary.md, as lines to append (none without a docs map)."""
    try:
        pages, elsewhere = _load(report)
    except SpecError as exc:
        return ["", f"## {TITLE}", "", f"The docs map did not load: {_md_cell(str(exc))}"]
    section = markdown_section(pages, report_outcomes(report), elsewhere)
    return ["", *section.rstrip("\n").split("\n")] if section else []


def html_lines(report: RunReport) -> list[str]:
    """The section for summary.html, as lines to append (none without a docs map)."""
    try:
        pages, elsewhere = _load(report)
    except SpecError as exc:
        return [f"<h2>{escape(TITLE)}</h2><p>The docs map did not load: {escape(str(exc))}</p>"]
    section = html_section(pages, report_outcomes(report), elsewhere)
    return section.rstrip("\n").split("\n") if section else []
