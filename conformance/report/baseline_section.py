"""The run against its baseline, in every format: the new deviations (the only ones that fail
the run), the expected ones with their reasons, the fixed ones, and accepted deviations whose
requirement did not run. One home, so the console, JSON, Markdown and HTML say the same."""

from __future__ import annotations

from html import escape
from typing import Any

from ..baseline import BaselineComparison, Deviation

__all__ = ["as_json", "console_lines", "html_lines", "markdown_lines"]

_GROUPS = (
    ("new", "new: not in the baseline (these fail the run)"),
    ("fixed", "fixed: accepted in the baseline, now passing"),
    ("expected", "expected: accepted in the baseline"),
)


def _groups(c: BaselineComparison) -> list[tuple[str, str, tuple[Deviation, ...]]]:
    return [(key, title, getattr(c, key)) for key, title in _GROUPS]


def _headline(c: BaselineComparison) -> str:
    target = f" (written for {c.target})" if c.target else ""
    return (
        f"baseline {c.source}{target}: {len(c.new)} new, {len(c.expected)} expected,"
        f" {len(c.fixed)} fixed, {len(c.unchecked)} not run"
    )


def console_lines(c: BaselineComparison) -> list[str]:
    lines = ["", _headline(c)]
    for key, _, items in _groups(c):
        if key == "expected":
            continue  # accepted and unchanged: the files list them
        for d in items:
            note = f": {d.reason}" if d.reason else ""
            lines.append(f"  {key:<8} {d.outcome.value:<13} {d.requirement} [{d.level}]{note}")
    return lines


def as_json(c: BaselineComparison) -> dict[str, Any]:
    def entry(d: Deviation) -> dict[str, str]:
        return {
            "id": d.requirement,
            "level": d.level,
            "outcome": d.outcome.value,
            "reason": d.reason,
        }

    return {
        "source": c.source,
        "target": c.target,
        **{key: [entry(d) for d in items] for key, _, items in _groups(c)},
        "not_run": list(c.unchecked),
    }


def markdown_lines(c: BaselineComparison) -> list[str]:
    out = ["", "## Against the baseline", "", _headline(c), ""]
    out += ["| | id | level | outcome | reason |", "|---|---|---|---|---|"]
    for key, _, items in _groups(c):
        for d in items:
            reason = " ".join(d.reason.split()).replace("|", "\\|")
            out.append(f"| {key} | {d.requirement} | {d.level} | {d.outcome.value} | {reason} |")
    if c.unchecked:
        out += ["", f"Accepted but not run: {', '.join(c.unchecked)}."]
    return out


def html_lines(c: BaselineComparison) -> list[str]:
    out = [f"<h2>Against the baseline</h2><p>{escape(_headline(c))}</p>"]
    out.append("<table><tr><th></th><th>id</th><th>level</th><th>outcome</th><th>reason</th></tr>")
    for key, _, items in _groups(c):
        for d in items:
            out.append(
                f"<tr><td>{key}</td><td>{escape(d.requirement)}</td><td>{escape(d.level)}</td>"
                f'<td class="{escape(d.outcome.value)}">{escape(d.outcome.value)}</td>'
                f"<td>{escape(d.reason)}</td></tr>"
            )
    out.append("</table>")
    if c.unchecked:
        out.append(f"<p>Accepted but not run: {escape(', '.join(c.unchecked))}.</p>")
    return out
