"""The tables that more than one format shows: verdict counts by area and level, and a check's
figures. The console, summary.md and summary.html each lay them out in their own markup; building
the cells here once keeps the three from ever disagreeing on a count or a figure's spelling."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..outcomes import Outcome
from ..provenance import Variant
from ..results import RequirementVerdict, RunReport
from ..spec import Requirement

__all__ = [
    "Table",
    "behaves_as",
    "by_area_and_level",
    "certified_target",
    "figure_summary",
    "figure_table",
    "provenance",
    "shown_as",
    "unverified_tls",
    "variant_text",
]


class Table(NamedTuple):
    """Cells as text, so every format only has to escape and lay them out."""

    header: list[str]
    rows: list[list[str]]


def by_area_and_level(report: RunReport) -> Table:
    """How many requirements got each verdict, per area and level.

    Requirements that did not run are left out (and so is the NOT_RUN column): a partial run
    (``--check``) would otherwise fill the table with rows that say nothing about the target.
    """
    reported = any(v.outcome is Outcome.REPORTED for v in report.verdicts)
    # REPORTED only exists where a spec has ungraded requirements (client certification).
    columns = [
        o.value
        for o in Outcome
        if o is not Outcome.NOT_RUN and (o is not Outcome.REPORTED or reported)
    ]
    grouped: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for verdict in report.verdicts:
        if verdict.outcome is Outcome.NOT_RUN:
            continue
        grouped[(verdict.requirement.area, verdict.requirement.level)][verdict.outcome.value] += 1
    rows = [
        [area, level, *[str(counts.get(c, 0)) for c in columns]]
        for (area, level), counts in sorted(grouped.items())
    ]
    return Table(["area", "level", *columns], rows)


def unverified_tls(target: Mapping[str, Any]) -> str:
    """What the report heads add when the run did not verify the target's certificate
    (``--insecure``): empty otherwise. Said wherever the target is, so that no reader takes
    the run for a certification of the deployment's TLS."""
    return "; TLS certificate NOT verified (--insecure)" if target.get("insecure") else ""


def certified_target(target: Mapping[str, Any]) -> str | None:
    """What a client or auth-endpoint run certified, as the report heads name it, or None for
    a server target, whose URLs the formats show instead."""
    kind = target.get("kind")
    if kind == "client":
        features = ", ".join(target.get("capabilities") or []) or "none"
        return f"client library, driver `{target.get('command')}`, features: {features}"
    if kind == "auth-endpoint":
        user_auth = target.get("user_auth_url") or "not given"
        users = ", ".join(target.get("users") or []) or "none"
        return (
            f"auth endpoint `{target.get('channel_auth_url')}`, user authentication "
            f"`{user_auth}`, as users: {users}"
        )
    return None


def _figure_text(value: Any) -> str:
    # Text stays bare; numbers, booleans and null read as they do in results.json.
    return value if isinstance(value, str) else json.dumps(value)


def figure_summary(figures: Mapping[str, Any]) -> str:
    """The summary as one line (``delivered 312, expected 312, duplicates 0``), short enough for
    the console, which has no room for the table."""
    summary = figures.get("summary")
    if not isinstance(summary, Mapping):
        return ""
    return ", ".join(f"{k.replace('_', ' ')} {_figure_text(v)}" for k, v in summary.items())


def figure_table(figures: Mapping[str, Any]) -> Table | None:
    """The figures' table as text cells, or None when the check reported no table (the formats
    then leave the table out rather than show an empty one)."""
    table = figures.get("table")
    if not isinstance(table, Mapping):
        return None
    columns = [str(c) for c in table.get("columns", ())]
    rows = [[_figure_text(cell) for cell in row] for row in table.get("rows", ())]
    return Table(columns, rows)


def provenance(requirement: Requirement) -> list[tuple[str, str]]:
    """What a verdict rests on, as labelled lines: the basis, then the quote, the reasoning or
    the implementations, then each known variant with what client libraries make of it."""
    lines: list[tuple[str, str]] = [("basis", requirement.basis)]
    if requirement.quote:
        lines.append(("the docs say", f"\u201c{requirement.quote}\u201d ({requirement.source})"))
    if requirement.reasoning:
        lines.append(("reasoning", requirement.reasoning))
    if requirement.observed_in:
        lines.append(("observed in", ", ".join(requirement.observed_in)))
    lines += [("variant", variant_text(variant)) for variant in requirement.variants]
    return lines


def variant_text(variant: Variant) -> str:
    """A known variant as the reports and the matrix list it: who, what, and what clients make
    of it."""
    text = f"{', '.join(variant.seen_in)}: {variant.behaviour}"
    return text + (f" (clients: {variant.clients})" if variant.clients else "")


def shown_as(variant: Variant) -> str:
    """A variant a target's failure matched, as the reports and the matrix name it."""
    return f"{variant.behaviour} (as {', '.join(variant.seen_in)})"


def behaves_as(verdict: RequirementVerdict) -> list[tuple[str, str]]:
    """The known variants the target's failures match, with what client libraries make of
    them: a server that picked a variant a major client cannot use is told so here."""
    lines = []
    for variant in verdict.variants_shown:
        text = shown_as(variant)
        if variant.clients:
            text += f"; clients: {variant.clients}"
        lines.append(("the target behaves as a known variant", text))
    return lines
