"""results.json holds to its published schema (schemas/results.schema.json): what the writer
makes of the shared report fixtures, and the files of a real short run on the bundled server,
with failures, a baseline and stats in them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema

from conformance.outcomes import CheckOutcome, Outcome
from conformance.report import results_json, schemas
from conformance.results import RunReport


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schemas.path(schemas.RESULTS).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


def errors(validator: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(data)]


def test_the_schema_names_every_outcome_the_suite_grades(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    requirement_outcomes = set(defs["requirementOutcome"]["enum"])
    assert requirement_outcomes == {o.value for o in Outcome}
    assert set(defs["checkOutcome"]["enum"]) == {o.value for o in CheckOutcome}


@pytest.mark.parametrize("name", ["failing_report", "figured_report"])
def test_the_writers_output_validates(
    name: str, request: pytest.FixtureRequest, validator: jsonschema.Draft202012Validator,
    tmp_path: Path,
) -> None:  # fmt: skip
    report: RunReport = request.getfixturevalue(name)
    path = tmp_path / results_json.FILE_NAME
    results_json.write(report, path)
    assert errors(validator, json.loads(path.read_text(encoding="utf-8"))) == []


def test_a_disputed_verdict_with_its_provenance_validates(
    disputed_report: RunReport, validator: jsonschema.Draft202012Validator
) -> None:
    data = results_json.to_dict(disputed_report)
    entry = next(r for r in data["requirements"] if r["id"] == "PROTO-CONN-05")
    assert (entry["outcome"], entry["basis"]) == ("DISPUTED", "inferred")
    assert entry["variants"]
    assert errors(validator, data) == []


def test_the_basis_is_optional_and_one_of_three(
    failing_report: RunReport, validator: jsonschema.Draft202012Validator
) -> None:
    """Results written before provenance was recorded have no basis."""
    data = results_json.to_dict(failing_report)
    for entry in (*data["requirements"], *data["not_covered"]):
        for key in ("basis", "quote", "reasoning", "observed_in", "variants"):
            entry.pop(key, None)
    assert errors(validator, data) == []
    data["requirements"][1]["basis"] = "guessed"
    assert errors(validator, data) == ["$.requirements[1].basis: 'guessed' is not one of"
                                       " ['stated', 'inferred', 'observed']"]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda d: d["target"].update(secret="s3cret"), "$.target: "),
        (lambda d: d["requirements"][0].update(outcome="MAYBE"), "$.requirements[0].outcome: "),
        (lambda d: d["requirements"][0]["checks"][0].update(outcome="PASS"), ".checks[0].outcome"),
        (lambda d: d["requirements"][0].pop("level"), "'level' is a required property"),
        (lambda d: d["requirements"][0].update(verdict="PASS"), "('verdict' was unexpected)"),
        (lambda d: d.update(schema_version=2), "$.schema_version: 1 was expected"),
        (lambda d: d["totals"].update(NOT_RUN=3), "$.totals: "),
        (lambda d: d["suite"].update(specs_sha256="abc"), "$.suite.specs_sha256: "),
        (lambda d: d["requirements"][0].update(variants=[{"behaviour": "x"}]), ".variants[0]: "),
    ],
)
def test_the_schema_is_strict(
    change: Any, complaint: str, failing_report: RunReport,
    validator: jsonschema.Draft202012Validator,
) -> None:  # fmt: skip
    data = results_json.to_dict(failing_report)
    change(data)
    found = errors(validator, data)
    assert found
    assert any(complaint in e for e in found), found


def test_a_real_runs_files_validate(
    validator: jsonschema.Draft202012Validator, tmp_path: Path
) -> None:
    """Under --strict: a broken stated MUST the baseline accepts, a broken inferred MUST
    (DISPUTED, counted), a passing property with stats, and a requirement the baseline accepts
    that does not run: every optional part of the file."""
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(
        "target: reference-server\ndeviations:\n"
        "  RECON-01: {outcome: FAIL, reason: closes carry no reason text}\n"
        "  HTTP-EVT-10: {reason: not selected in this run}\n",
        encoding="utf-8",
    )
    report = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--check", "RECON-01",
         "--check", "CHAN-NAME-03", "--check", "PROTO-CONN-05*", "--check", "ROBUST-WS-03",
         "--max-examples", "3", "--baseline", str(baseline), "--strict",
         "--report-dir", str(report), "--no-save-regressions"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PUSHER_REF_FAULTS": "close_without_reason,unanchored_private_prefix"},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr  # CHAN-NAME-03, strictly
    data = json.loads((report / results_json.FILE_NAME).read_text(encoding="utf-8"))
    ran = {r["id"]: r["outcome"] for r in data["requirements"] if r["outcome"] != "NOT_RUN"}
    assert ran == {"RECON-01": "FAIL", "CHAN-NAME-03": "DISPUTED", "PROTO-CONN-05": "PASS",
                   "ROBUST-WS-03": "PASS"}  # fmt: skip
    assert data["run"]["strict"] is True
    assert data["baseline"]["not_run"] == ["HTTP-EVT-10"]
    assert errors(validator, data) == []
    junit = xmlschema.XMLSchema(schemas.path(schemas.JUNIT))
    assert [e.reason for e in junit.iter_errors(report / "junit.xml")] == []
