"""results.json: the schema tools read, with figures only on the checks that reported some."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance.report import results_json
from conformance.report.results_json import SCHEMA_VERSION
from conformance.results import RunReport


def test_results_json(failing_report: RunReport, tmp_path: Path) -> None:
    path = tmp_path / results_json.FILE_NAME
    results_json.write(failing_report, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == results_json.to_dict(failing_report)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["exit_code"] == 1
    requirements = {r["id"]: r for r in data["requirements"]}
    assert requirements["PROTO-CONN-05"]["outcome"] == "FAIL"
    assert requirements["PROTO-CONN-01"]["outcome"] == "PASS"
    assert "PROTO-CONN-02" in {r["id"] for r in data["not_covered"]}
    assert len(data["suite"]["specs_sha256"]) == 64


def test_results_json_carries_figures_only_where_there_are_some(
    figured_report: RunReport, figures: dict[str, Any]
) -> None:
    data = results_json.to_dict(figured_report)
    checks = {c["id"]: c for r in data["requirements"] for c in r["checks"]}
    assert checks["PROTO-CONN-05/first-frame"]["figures"] == figures
    figured = {k for k, c in checks.items() if "figures" in c}
    assert len(figured) == 1 + len([k for k in checks if k.startswith("PROTO-CONN-03/")])
