"""A broken MUST whose reading is inferred: DISPUTED in every format, with what it rests on and
the known variants, and counted against the run only under --strict."""

from __future__ import annotations

import json

from conformance.outcomes import ExitCode, Outcome
from conformance.report import console, junit, markdown, results_json, summary_html
from conformance.results import RunReport


def _verdict(report: RunReport) -> Outcome:
    return next(v.outcome for v in report.verdicts if v.requirement.id == "PROTO-CONN-05")


def test_disputed_counts_only_when_strict(disputed_report: RunReport) -> None:
    strict = bool(disputed_report.run.get("strict"))
    assert _verdict(disputed_report) is Outcome.DISPUTED
    assert disputed_report.exit is (ExitCode.MUST_FAILED if strict else ExitCode.OK)
    assert disputed_report.totals["DISPUTED"] == 1


def test_junit_shows_disputed_as_skipped_unless_strict(disputed_report: RunReport) -> None:
    strict = bool(disputed_report.run.get("strict"))
    root = junit.render(disputed_report)
    cases = [c for c in root.iter("testcase") if c.get("classname", "").endswith("PROTO-CONN-05")]
    assert cases
    for case in cases:
        if strict:
            assert case.find("failure") is not None
        else:
            skipped = case.find("skipped")
            assert skipped is not None
            assert skipped.get("message", "").startswith("DISPUTED")
    assert int(root.get("failures", "0")) == (len(cases) if strict else 0)


def test_every_format_shows_the_basis_and_the_variants(disputed_report: RunReport) -> None:
    data = results_json.to_dict(disputed_report)
    entry = next(r for r in data["requirements"] if r["id"] == "PROTO-CONN-05")
    assert entry["outcome"] == "DISPUTED"
    assert entry["basis"] == "inferred"
    assert entry["variants"][0]["seen_in"] == ["Soketi 1.6.1"]
    json.dumps(data)
    text = markdown.render(disputed_report)
    assert "| PROTO-CONN-05 | MUST | inferred | DISPUTED |" in text
    assert "variant: Soketi 1.6.1: sends it <elsewhere>" in text
    page = summary_html.render(disputed_report)
    assert "sends it &lt;elsewhere&gt;" in page
    assert "<elsewhere>" not in page
    assert "reasoning: read &lt;into&gt; the docs &amp; not stated" in page
    shown = console.render(disputed_report)
    assert "DISPUTED" in shown
    assert "variant: Soketi 1.6.1" in shown
