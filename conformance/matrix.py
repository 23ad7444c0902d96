"""``conformance matrix RESULTS.json...``: one interop matrix from several runs, requirements
by targets, as a static HTML page (no script, no CDN: it opens from disk) and a Markdown
summary.

Rows are grouped by area and level in the order of the first run's report; each cell is the
requirement's verdict on that target, coloured by outcome and linked to its evidence (the
requirement's section in that run's summary.html, by a path relative to the matrix).
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from .provenance import Variant
from .report.results_json import read
from .report.tables import shown_as, variant_text

__all__ = ["Column", "Matrix", "add_matrix_arguments", "build_matrix", "matrix_command"]

HTML_FILE = "matrix.html"
MARKDOWN_FILE = "matrix.md"
_LEVELS = ("MUST", "SHOULD", "MAY")
_OK = ("PASS", "OPTIONAL_ABSENT", "REPORTED")
_COLOURS = {
    "PASS": "#d7f0d0", "FAIL": "#f6c9c4", "DISPUTED": "#f9ddb8", "NON_STRICT": "#fdf0c8",
    "OPTIONAL_ABSENT": "#eee", "REPORTED": "#e4ecf7",
    "INCONCLUSIVE": "#fde4b8", "ERROR": "#e7c9f2", "VOID": "#d9d9d9", "NOT_RUN": "#fff",
}  # fmt: skip


@dataclass(frozen=True)
class Column:
    """One run: a target at a time."""

    name: str
    detail: str
    #: The run's summary.html, relative to the matrix's folder (None: no summary beside it).
    evidence: str | None
    outcomes: Mapping[str, str]
    #: The target's deaths during the run (each restarted, or the last one that ended it): a
    #: finding in their own right, beside the verdicts.
    deaths: tuple[str, ...] = ()
    #: Per requirement, the known variants the target's failures matched (``variants_shown``).
    behaves_as: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    id: str
    area: str
    level: str
    title: str
    #: What the requirement rests on (stated, inferred, observed; "" in results from before
    #: provenance was recorded), and the behaviours seen in the wild where it is disputed.
    basis: str = ""
    variants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Matrix:
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]

    def groups(self) -> list[tuple[str, str, list[Row]]]:
        """(area, level, rows) in the first run's area order, MUST before SHOULD before MAY."""
        areas = list(dict.fromkeys(r.area for r in self.rows))
        out = []
        for area in areas:
            for level in _LEVELS:
                rows = [r for r in self.rows if r.area == area and r.level == level]
                if rows:
                    out.append((area, level, rows))
        return out

    def counts(self, column: Column) -> Counter[str]:
        return Counter(column.outcomes.get(r.id, "NOT_RUN") for r in self.rows)


def _deaths(run: Mapping[str, Any]) -> tuple[str, ...]:
    found = [d.get("finding", "") for d in run.get("target_restarted_after") or ()]
    died = run.get("target_died")
    if isinstance(died, Mapping):
        found.append(str(died.get("finding", "")))
    return tuple(str(f) for f in found if f)


def _variant(data: Mapping[str, Any]) -> Variant:
    """A variant as results.json records it."""
    return Variant(
        str(data.get("behaviour", "")), tuple(data.get("seen_in", ())), data.get("clients")
    )


def _row(entry: Mapping[str, Any]) -> Row:
    variants = tuple(variant_text(_variant(v)) for v in entry.get("variants", ()))
    return Row(
        entry["id"],
        str(entry.get("area", "")),
        entry["level"],
        str(entry.get("title", "")),
        str(entry.get("basis", "")),
        variants,
    )


def build_matrix(runs: Sequence[tuple[Path, Mapping[str, Any]]], out_dir: Path) -> Matrix:
    columns = []
    rows: dict[str, Row] = {}
    for path, data in runs:
        target, suite, run = data.get("target", {}), data.get("suite", {}), data.get("run", {})
        summary = path.parent / "summary.html"
        evidence = (
            Path(os.path.relpath(summary.resolve(), out_dir.resolve())).as_posix()
            if summary.is_file()
            else None
        )
        columns.append(
            Column(
                name=str(target.get("name", path.parent.name)),
                detail=f"suite {suite.get('version', '?')}, started {run.get('started_at', '?')}",
                evidence=evidence,
                outcomes={r["id"]: r["outcome"] for r in data["requirements"]},
                deaths=_deaths(run),
                behaves_as={
                    r["id"]: tuple(shown_as(_variant(v)) for v in r["variants_shown"])
                    for r in data["requirements"]
                    if r.get("variants_shown")
                },
            )
        )
        for r in data["requirements"]:
            rows.setdefault(r["id"], _row(r))
    return Matrix(tuple(columns), tuple(rows.values()))


def _worth_a_line(matrix: Matrix, row: Row) -> bool:
    """A deviation somewhere, or targets that disagree (not run everywhere is neither)."""
    outcomes = [c.outcomes.get(row.id, "NOT_RUN") for c in matrix.columns]
    deviates = any(o not in (*_OK, "NOT_RUN") for o in outcomes)
    return deviates or len(set(outcomes)) > 1


def to_markdown(matrix: Matrix) -> str:
    names = [c.name for c in matrix.columns]
    lines = [
        "# Interop matrix",
        "",
        *(f"- **{c.name}**: {c.detail}" for c in matrix.columns),
        *(
            f"- **{c.name} died {len(c.deaths)} time(s)** during the run (restarted by the suite);"
            f" first: {c.deaths[0]}"
            for c in matrix.columns
            if c.deaths
        ),
        "",
        "| outcome | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    present = sorted({o for c in matrix.columns for o in matrix.counts(c)})
    for outcome in present:
        cells = [str(matrix.counts(c).get(outcome, 0)) for c in matrix.columns]
        lines.append(f"| {outcome} | " + " | ".join(cells) + " |")
    differing = [r for r in matrix.rows if _worth_a_line(matrix, r)]
    if differing:
        lines += [
            "",
            "Requirements that deviate somewhere, or where the targets differ:",
            "",
            "| id | level | basis | " + " | ".join(names) + " | title |",
            "|---|---|---|" + "---|" * len(names) + "---|",
        ]
        for r in differing:
            cells = [c.outcomes.get(r.id, "NOT_RUN") for c in matrix.columns]
            title = r.title.replace("|", "\\|")
            lines.append(
                f"| {r.id} | {r.level} | {r.basis or '?'} | " + " | ".join(cells) + f" | {title} |"
            )
    return "\n".join(lines) + "\n"


def _died(column: Column) -> str:
    if not column.deaths:
        return ""
    items = "".join(f"<li>{escape(d)}</li>" for d in column.deaths)
    return (
        f"<div class='died'><b>died {len(column.deaths)} time(s) during the run</b>"
        f" (restarted by the suite; the checks it disturbed were run again):<ul>{items}</ul></div>"
    )


def to_html(matrix: Matrix) -> str:
    css = "".join(f".{k}{{background:{v}}}" for k, v in _COLOURS.items())
    head = "".join(
        f"<th>{escape(c.name)}<br><small>{escape(c.detail)}</small>{_died(c)}</th>"
        for c in matrix.columns
    )
    totals = "".join(
        "<td>" + escape(", ".join(f"{k} {v}" for k, v in sorted(matrix.counts(c).items())))
        + "</td>"
        for c in matrix.columns
    )  # fmt: skip
    body = []
    for area, level, rows in matrix.groups():
        span = len(matrix.columns) + 3
        body.append(f"<tr class='group'><th colspan='{span}'>{escape(area)} {level}</th></tr>")
        for r in rows:
            cells = []
            for c in matrix.columns:
                outcome = c.outcomes.get(r.id, "NOT_RUN")
                text = escape(outcome)
                if c.evidence is not None and outcome != "NOT_RUN":
                    text = f"<a href='{escape(c.evidence)}#{escape(r.id)}'>{text}</a>"
                shown = "".join(
                    f"<br><small>behaves as: {escape(v)}</small>"
                    for v in c.behaves_as.get(r.id, ())
                )
                cells.append(f"<td class='{escape(outcome)}'>{text}{shown}</td>")
            variants = "".join(f"<br><small>variant: {escape(v)}</small>" for v in r.variants)
            body.append(
                f"<tr><td><code>{escape(r.id)}</code></td><td>{escape(r.basis or '?')}</td>"
                f"{''.join(cells)}<td>{escape(r.title)}{variants}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Interop matrix</title><style>"
        "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:.2em .5em;vertical-align:top}"
        "tr.group th{background:#334;color:#fff;text-align:left}a{color:inherit}"
        ".died{background:#f6c9c4;font-weight:normal;font-size:smaller;text-align:left;"
        "max-width:30em;padding:.3em}"
        f"{css}</style></head><body><h1>Interop matrix</h1>"
        "<p>A FAIL breaks a rule the Pusher docs state in words; a DISPUTED MUST is broken on a"
        " reading the docs do not state (basis inferred or observed), shown with the variants seen"
        " in the wild.</p>"
        f"<table id='matrix'><tr><th>requirement</th><th>basis</th>{head}<th>title</th></tr>"
        f"<tr><th>totals</th><td></td>{totals}<td></td></tr>{''.join(body)}</table>"
        "</body></html>\n"
    )


def add_matrix_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", metavar="RESULTS.json", help="one run per target")
    parser.add_argument(
        "--out", metavar="DIR", default="interop-report",
        help=f"where {HTML_FILE} and {MARKDOWN_FILE} go (default: interop-report)",
    )  # fmt: skip


def matrix_command(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    runs = [(Path(p), read(p)) for p in args.results]
    out_dir.mkdir(parents=True, exist_ok=True)
    matrix = build_matrix(runs, out_dir)
    (out_dir / HTML_FILE).write_text(to_html(matrix), encoding="utf-8")
    markdown = to_markdown(matrix)
    (out_dir / MARKDOWN_FILE).write_text(markdown, encoding="utf-8")
    print(markdown, end="")
    print(f"\nmatrix: {out_dir / HTML_FILE} and {out_dir / MARKDOWN_FILE}")
    return 0
