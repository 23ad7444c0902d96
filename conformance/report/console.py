"""The summary printed at the end of a run: what someone watching a terminal needs to decide
whether to open the report files at all. Only what went wrong is listed check by check; figures
get one line each, pointing at summary.md for their tables."""

from __future__ import annotations

from collections import Counter

from .. import __version__
from ..outcomes import CheckOutcome, Outcome
from ..results import RunReport
from . import baseline_section
from .tables import (
    behaves_as,
    by_area_and_level,
    certified_target,
    figure_summary,
    figure_table,
    provenance,
    unverified_tls,
)

__all__ = ["render"]

# Verdicts worth a line of their own; a PASS or an absent MAY needs no attention.
_ATTENTION = (
    Outcome.FAIL,
    Outcome.DISPUTED,
    Outcome.NON_STRICT,
    Outcome.ERROR,
    Outcome.INCONCLUSIVE,
)


def _attention(report: RunReport) -> list[str]:
    bad = [v for v in report.verdicts if v.outcome in _ATTENTION]
    if not bad:
        return []
    lines = [""]
    for verdict in bad:
        lines.append(
            f"{verdict.outcome.value:<13} {verdict.requirement.id} "
            f"[{verdict.requirement.level}] {verdict.requirement.title}"
        )
        if verdict.outcome is Outcome.DISPUTED:
            lines += [
                f"    {label}: {text[:160]}" for label, text in provenance(verdict.requirement)
            ]
        lines += [f"    {label}: {text[:200]}" for label, text in behaves_as(verdict)]
        for check in verdict.checks:
            if check.outcome in (CheckOutcome.PASSED, CheckOutcome.SKIPPED):
                continue
            first = check.message.splitlines()[0] if check.message else ""
            lines.append(f"    {check.check_id}: {check.outcome.value}: {first[:160]}")
            if check.replay:
                lines.append(f"      replay: {check.replay}")
    return lines


def _counted_and_figures(report: RunReport) -> list[str]:
    lines = []
    stats: Counter[str] = Counter()
    for verdict in report.verdicts:
        for check in verdict.checks:
            stats.update(check.stats)
    if stats:
        lines.append("")
        counted = (f"{k.replace('_', ' ')} {v}" for k, v in sorted(stats.items()))
        lines.append("counted: " + ", ".join(counted))
    figured = report.figured()
    if figured:
        lines.append("")
        for check in figured:
            text = figure_summary(check.figures) or str(check.figures.get("title") or "")
            table = figure_table(check.figures)
            if table is not None:
                text += f"{'; ' if text else ''}table of {len(table.rows)} rows in summary.md"
            lines.append(f"figures {check.check_id}: {text}")
    return lines


def render(report: RunReport) -> str:
    header, rows = by_area_and_level(report)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    client = certified_target(report.target)
    head = (
        f"pusher-conformance {__version__}: target {report.target.get('name')} "
        f"({report.target.get('ws_url')}), profile {report.run.get('profile')}, "
        f"seed {report.run.get('seed')}{unverified_tls(report.target)}"
        if client is None
        else f"pusher-conformance {__version__}: {report.target.get('name')}, {client}"
    )
    lines = [
        head,
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines += _attention(report)
    lines += _counted_and_figures(report)
    if report.baseline is not None:
        lines += baseline_section.console_lines(report.baseline)
    verdict_counts = ", ".join(f"{k} {v}" for k, v in sorted(report.totals.items()))
    ran = len([v for v in report.verdicts if v.outcome is not Outcome.NOT_RUN])
    lines.append("")
    lines.append(
        f"{ran} requirements ({verdict_counts}); {report.executed_checks} checks executed; "
        f"{len(report.not_covered)} not covered; exit {int(report.exit)}"
    )
    return "\n".join(lines)
