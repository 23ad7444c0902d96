"""Baselines: the file is checked as a whole, and a run's verdicts are sorted into new,
expected and fixed deviations; the exit code counts only the new ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.baseline import Baseline, ExpectedDeviation, compare, load_baseline
from conformance.errors import UsageError
from conformance.outcomes import Outcome

KNOWN = ("RECON-01", "RECON-02", "CHAN-SUB-09", "WH-05")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "baseline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_baseline_loads_with_reasons_and_optional_outcomes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "target: soketi-1.6.1\n"
        "deviations:\n"
        "  RECON-01: {outcome: FAIL, reason: ' no close reason '}\n"
        "  CHAN-SUB-09: {reason: subscription_error on the channel}\n",
    )
    baseline = load_baseline(path, KNOWN)
    assert baseline.target == "soketi-1.6.1"
    assert baseline.deviations["RECON-01"] == ExpectedDeviation(
        "RECON-01", "no close reason", Outcome.FAIL
    )
    assert baseline.deviations["CHAN-SUB-09"].outcome is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list", "baseline.yaml: a baseline is a mapping with 'deviations'"),
        (
            "deviations: {}\nextra: 1",
            "baseline.yaml: unknown field(s) extra (known: deviations, target)",
        ),
        ("target: 3", "baseline.yaml: target must be a string, got 3"),
        (
            "deviations: [RECON-01]",
            "baseline.yaml: deviations must map requirement ids to a reason",
        ),
        ("deviations: {NOPE-01: {reason: x}}", "baseline.yaml: NOPE-01: no such requirement"),
        (
            "deviations: {RECON-01: because}",
            "baseline.yaml: RECON-01: give a mapping with a reason",
        ),
        (
            "deviations: {RECON-01: {}}",
            "baseline.yaml: RECON-01: every accepted deviation needs a reason",
        ),
        ("deviations: {RECON-01: {reason: '  '}}", "every accepted deviation needs a reason"),
        ("deviations: {RECON-01: {reason: x, why: y}}", "RECON-01: unknown field(s) why"),
        ("deviations: {RECON-01: {reason: x, outcome: PASS}}", "RECON-01: outcome must be one of"),
        ("deviations: {RECON-01: [", "baseline.yaml: not valid YAML"),
    ],
)
def test_mistakes_are_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        load_baseline(write(tmp_path, text), KNOWN)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the baseline"):
        load_baseline(tmp_path / "nowhere.yaml", KNOWN)


def baseline(**entries: ExpectedDeviation) -> Baseline:
    return Baseline("b.yaml", None, {e.requirement: e for e in entries.values()})


def test_deviations_are_new_expected_or_fixed() -> None:
    accepted = baseline(
        a=ExpectedDeviation("RECON-01", "no reason text", Outcome.FAIL),
        b=ExpectedDeviation("CHAN-SUB-09", "another form"),
        c=ExpectedDeviation("WH-05", "was broken"),
        d=ExpectedDeviation("RECON-02", "not selected"),
    )
    result = compare(
        accepted,
        [
            ("RECON-01", "MUST", Outcome.FAIL),  # expected, outcome as accepted
            ("CHAN-SUB-09", "MUST", Outcome.INCONCLUSIVE),  # expected: any deviation
            ("WH-05", "SHOULD", Outcome.PASS),  # fixed
            ("RECON-02", "MUST", Outcome.NOT_RUN),  # not run
            ("HTTP-EVT-10", "MUST", Outcome.FAIL),  # new
            ("HTTP-EVT-11", "MUST", Outcome.OPTIONAL_ABSENT),  # not a deviation
        ],
    )
    assert [d.requirement for d in result.expected] == ["RECON-01", "CHAN-SUB-09"]
    assert [(d.requirement, d.reason) for d in result.fixed] == [("WH-05", "was broken")]
    assert [d.requirement for d in result.new] == ["HTTP-EVT-10"]
    assert result.unchecked == ("RECON-02",)
    assert result.exempt == {"RECON-01", "CHAN-SUB-09"}


def test_an_outcome_the_baseline_did_not_accept_is_new() -> None:
    accepted = baseline(a=ExpectedDeviation("RECON-01", "soft", Outcome.NON_STRICT))
    result = compare(accepted, [("RECON-01", "MUST", Outcome.FAIL)])
    assert result.expected == ()
    assert [(d.requirement, d.reason) for d in result.new] == [
        ("RECON-01", "the baseline accepts NON_STRICT only")
    ]


def test_the_shipped_soketi_baseline_names_requirements_of_the_specs() -> None:
    from conformance.spec import load_specs

    path = Path(__file__).resolve().parents[2] / "fixtures" / "baselines" / "soketi-1.6.1.yaml"
    baseline = load_baseline(str(path), (r.id for r in load_specs().requirements))
    assert baseline.target == "soketi-1.6.1"
    assert all(d.reason for d in baseline.deviations.values())
