"""The bundled server's requirement marks as the suite reads them, and a real run that fills
the report's dynamic coverage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conformance.server_marks import MARKS_FILE, read_marks


def _line(*marks: tuple[str, list[str], int]) -> str:
    return json.dumps({"pid": 1, "marks": [
        {"location": loc, "ids": ids, "hits": hits} for loc, ids, hits in marks
    ]}) + "\n"  # fmt: skip


def test_lines_of_restarted_servers_add_up(tmp_path: Path) -> None:
    path = tmp_path / MARKS_FILE
    path.write_text(_line(("a:f", ["X-1"], 2), ("b:g", ["X-2"], 0)) + _line(("a:f", ["X-1"], 1)))
    marks = read_marks(path)
    assert marks.processes == 2
    assert marks.problem is None
    assert [(m.location, m.ids, m.hits) for m in marks.marks] == [
        ("a:f", ("X-1",), 3),
        ("b:g", ("X-2",), 0),
    ]


def test_a_missing_empty_or_malformed_file_is_a_problem_not_zero_coverage(tmp_path: Path) -> None:
    path = tmp_path / MARKS_FILE
    assert "cannot read" in str(read_marks(path).problem)
    path.write_text("")
    assert "empty" in str(read_marks(path).problem)
    path.write_text('{"marks": [{"location": "a:f", "ids": [], "hits": 1}]}\n')
    assert "ids must be a non-empty list" in str(read_marks(path).problem)
    path.write_text("not json\n")
    assert read_marks(path).problem is not None
    assert read_marks(path).marks == ()


def test_a_run_against_the_bundled_server_reports_dynamic_coverage(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--check", "PROTO-CONN-03",
         "--check", "HTTP-AUTH-04", "--report-dir", str(tmp_path), "--no-save-regressions"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / MARKS_FILE).read_text().count("\n") == 1  # asked for once, not at exit
    coverage = json.loads((tmp_path / "results.json").read_text())["coverage"]
    dynamic = coverage["dynamic"]
    assert dynamic["problem"] is None
    assert dynamic["server_processes"] == 1
    assert {"PROTO-CONN-03", "HTTP-AUTH-04"} <= set(dynamic["exercised"])
    assert dynamic["checked_not_reached"] == []
    assert dynamic["unknown_ids"] == []
    # Two checks leave most of the server unreached; the final stop's drain is not counted.
    assert dynamic["marks_never_hit"]
    assert "RECON-13" not in dynamic["exercised"]
    assert coverage["static"]["with_checks"] > 100
    assert "<h2 id='coverage'>Coverage</h2>" in (tmp_path / "summary.html").read_text()
