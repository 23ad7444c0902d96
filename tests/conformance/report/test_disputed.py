"""A broken MUST whose reading is inferred: DISPUTED in every format, with what it rests on and
the known variants, and counted against the run only under --strict."""

from __future__ import annotations

import dataclasses
import json

from conformance.outcomes import CheckOutcome, ExitCode, Outcome
from conformance.report import console, junit, markdown, results_json, summary_html
from conformance.results import CheckResult, RunReport, build_report
from conformance.spec import SpecSet


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


def test_a_failure_matching_a_variant_says_the_target_behaves_as_it(specs: SpecSet) -> None:
    requirement = specs.requirement("CHAN-SUB-09")
    [variant] = [v for v in requirement.variants if v.recognised_by]
    results = {
        check.full_id: CheckResult(
            check.full_id,
            check.requirement_id,
            CheckOutcome.FAILED if check.requirement_id == "CHAN-SUB-09" else CheckOutcome.PASSED,
            message=(
                'step 3 (expect): no frame matching {"event": "pusher:error"} within 5s\n'
                'unconsumed frames on c1:\n  {"event":"pusher:subscription_error","channel":"x"}'
            )
            if check.requirement_id == "CHAN-SUB-09"
            else "",
        )
        for check in specs.checks
    }
    report = build_report(specs, results, target={"name": "t"}, run={})
    verdict = next(v for v in report.verdicts if v.requirement.id == "CHAN-SUB-09")
    assert verdict.variants_shown == (variant,)
    entry = next(
        r for r in results_json.to_dict(report)["requirements"] if r["id"] == "CHAN-SUB-09"
    )
    assert entry["variants_shown"][0]["seen_in"] == ["Soketi 1.6.1"]
    assert "the target behaves as a known variant: sends pusher:subscription_error" in (
        console.render(report)
    )
    assert "the target behaves as a known variant" in markdown.render(report)
    assert "the target behaves as a known variant" in summary_html.render(report)
    # A failure that does not match names no variant.
    other = {k: dataclasses.replace(v, message="closed 1006") for k, v in results.items()}
    quiet = build_report(specs, other, target={"name": "t"}, run={})
    assert not next(v for v in quiet.verdicts if v.requirement.id == "CHAN-SUB-09").variants_shown
