"""The run's data and verdicts: check records, requirement verdicts, the exit code, figures.
How each file shows them is tested in tests/conformance/report/."""

from __future__ import annotations

import json

import pytest

from conformance.outcomes import CheckOutcome, ExitCode, Outcome
from conformance.properties import known_property_names
from conformance.results import CheckResult, RunReport, build_report, normalize_figures
from conformance.spec import load_specs


def _report(failing: str) -> RunReport:
    specs = load_specs(known_properties=known_property_names())
    results = {}
    for check in specs.checks:
        outcome = CheckOutcome.FAILED if check.requirement_id == failing else CheckOutcome.PASSED
        results[check.full_id] = CheckResult(check.full_id, check.requirement_id, outcome)
    return build_report(specs, results, target={"name": "t"}, run={"profile": "ci", "seed": 0})


def test_must_failure_fails_the_run() -> None:
    report = _report("PROTO-CONN-04")  # a MUST the docs state in words
    assert report.exit is ExitCode.MUST_FAILED
    verdicts = {v.requirement.id: v.outcome for v in report.verdicts}
    assert verdicts["PROTO-CONN-04"] is Outcome.FAIL
    assert verdicts["PROTO-CONN-01"] is Outcome.PASS
    assert "PROTO-CONN-02" in {r.id for r in report.not_covered}
    assert "finished_at" in report.run


def test_should_failure_exits_zero() -> None:
    report = _report("CHAN-SUB-08")
    assert report.exit is ExitCode.OK
    assert report.totals == {"NON_STRICT": 1, "PASS": len(report.verdicts) - 1}


# -- figures -----------------------------------------------------------------------------------

FIGURES = {
    "title": "admin-alerts <scenario>",
    "summary": {"delivered": 312, "expected": 312, "duplicates": 0, "order_violations": 0},
    "table": {"columns": ["user", "tabs"], "rows": [["admin-ana", 3], ["bob|<b>", None]]},
}


def test_figures_round_trip_through_check_result_json() -> None:
    result = CheckResult("R-01/c", "R-01", CheckOutcome.PASSED, figures=FIGURES)
    assert CheckResult.from_json(result.to_json()) == result
    old = result.to_json().replace(', "figures": ' + json.dumps(FIGURES), "")
    assert "figures" not in old
    assert CheckResult.from_json(old).figures == {}


def test_figured_lists_checks_with_figures_whatever_their_outcome() -> None:
    specs = load_specs(known_properties=known_property_names())
    results = {}
    for check in specs.checks:
        failed = check.requirement_id == "PROTO-CONN-03"
        figured = failed or check.full_id == "PROTO-CONN-05/first-frame"
        results[check.full_id] = CheckResult(
            check.full_id, check.requirement_id,
            CheckOutcome.FAILED if failed else CheckOutcome.PASSED,
            figures=FIGURES if figured else {},
        )  # fmt: skip
    report = build_report(specs, results, target={}, run={})
    figured_ids = [c.check_id for c in report.figured()]
    assert "PROTO-CONN-05/first-frame" in figured_ids
    assert [i for i in figured_ids if i.startswith("PROTO-CONN-03/")]
    assert figured_ids == [c.check_id for v in report.verdicts for c in v.checks if c.figures]


def test_normalize_figures_returns_plain_json() -> None:
    assert normalize_figures({}) == {}
    assert normalize_figures({"table": {"columns": ["a"], "rows": [(1,)]}}) == {
        "table": {"columns": ["a"], "rows": [[1]]}
    }
    assert normalize_figures({"other": {"kept": [1]}}) == {"other": {"kept": [1]}}


@pytest.mark.parametrize(
    ("figures", "message"),
    [
        ({"x": object()}, "figures are not JSON data"),
        ({"x": float("nan")}, "figures are not JSON data"),
        ({"title": 3}, "title must be a string"),
        ({"summary": [1]}, "summary must be a mapping"),
        ({"summary": {"a": [1]}}, "summary 'a' is not a number or text"),
        ({"table": {"rows": []}}, "table must be a mapping with exactly columns and rows"),
        ({"table": {"columns": [1], "rows": []}}, "table columns must be a list of strings"),
        ({"table": {"columns": ["a"], "rows": {}}}, "table rows must be a list of lists"),
        ({"table": {"columns": ["a"], "rows": [[1, 2]]}}, "table row 0 is not a list of 1 cells"),
        ({"table": {"columns": ["a"], "rows": [[{}]]}}, "table row 0 holds a cell that is not"),
    ],
)
def test_normalize_figures_names_what_is_wrong(figures: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_figures(figures)
