"""The interop matrix: rows grouped by area and level, one column per run, cells linked to the
run's evidence by a relative path; the Markdown lists what deviates or differs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.matrix import build_matrix, to_html, to_markdown


def run(name: str, outcomes: dict[str, tuple[str, str, str]]) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "suite": {"version": "0.1.0", "specs_sha256": "abc"},
        "run": {"started_at": "2026-12-06T08:00:00+00:00"},
        "target": {"name": name, "ws_url": "ws://127.0.0.1:1"},
        "requirements": [
            {"id": i, "area": area, "level": level, "title": f"<{i}>", "outcome": o}
            for i, (area, level, o) in outcomes.items()
        ],
    }


A = run("ours", {"C-1": ("conn", "MUST", "PASS"), "C-2": ("conn", "SHOULD", "PASS"),
                 "H-1": ("http", "MUST", "PASS")})  # fmt: skip
B = run("theirs", {"C-1": ("conn", "MUST", "FAIL"), "C-2": ("conn", "SHOULD", "PASS"),
                   "H-1": ("http", "MUST", "OPTIONAL_ABSENT")})  # fmt: skip


def write(directory: Path, data: dict[str, Any], summary: bool = True) -> Path:
    directory.mkdir(parents=True)
    (directory / "results.json").write_text(json.dumps(data), encoding="utf-8")
    if summary:
        (directory / "summary.html").write_text("<html></html>", encoding="utf-8")
    return directory / "results.json"


def test_cells_link_to_each_runs_evidence(tmp_path: Path) -> None:
    ours = write(tmp_path / "runs" / "ours", A)
    theirs = write(tmp_path / "runs" / "theirs", B, summary=False)
    matrix = build_matrix([(ours, A), (theirs, B)], tmp_path / "out")
    assert [c.name for c in matrix.columns] == ["ours", "theirs"]
    assert matrix.columns[0].evidence == "../runs/ours/summary.html"
    assert matrix.columns[1].evidence is None
    assert [(a, lv, [r.id for r in rows]) for a, lv, rows in matrix.groups()] == [
        ("conn", "MUST", ["C-1"]),
        ("conn", "SHOULD", ["C-2"]),
        ("http", "MUST", ["H-1"]),
    ]
    html = to_html(matrix)
    assert "<td class='PASS'><a href='../runs/ours/summary.html#C-1'>PASS</a></td>" in html
    assert "<td class='FAIL'>FAIL</td>" in html  # no summary beside it: no link
    assert "&lt;C-1&gt;" in html  # titles are escaped
    for fetched in ("<script", "<link", "src=", "@import", "://"):  # opens from disk alone
        assert fetched not in html


def test_the_markdown_counts_and_lists_what_deviates_or_differs(tmp_path: Path) -> None:
    matrix = build_matrix([(tmp_path / "a.json", A), (tmp_path / "b.json", B)], tmp_path)
    md = to_markdown(matrix)
    assert "| PASS | 3 | 1 |" in md
    assert "| FAIL | 0 | 1 |" in md
    assert "| C-1 | MUST | ? | PASS | FAIL | <C-1> |" in md
    assert "| H-1 | MUST | ? | PASS | OPTIONAL_ABSENT | <H-1> |" in md  # the targets differ
    assert "| C-2 |" not in md  # the same everywhere, and fine


def test_the_command_writes_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ours, theirs = write(tmp_path / "ours", A), write(tmp_path / "theirs", B)
    out = tmp_path / "matrix"
    assert main(["matrix", str(ours), str(theirs), "--out", str(out)]) == 0
    assert (out / "matrix.html").read_text().startswith("<!doctype html>")
    assert (out / "matrix.md").read_text() in capsys.readouterr().out
    assert main(["matrix", str(tmp_path / "nope.json"), "--out", str(out)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_a_row_shows_its_basis_and_variants(tmp_path: Path) -> None:
    entry = {
        "id": "C-9", "area": "conn", "level": "MUST", "title": "t", "outcome": "DISPUTED",
        "basis": "observed",
        "variants": [{"behaviour": "sends <x>", "seen_in": ["Soketi 1.6.1"], "clients": None}],
    }  # fmt: skip
    data = {"target": {"name": "s"}, "requirements": [entry]}
    matrix = build_matrix([(tmp_path / "r.json", data)], tmp_path)
    page = to_html(matrix)
    assert "<td>observed</td><td class='DISPUTED'>DISPUTED</td>" in page
    assert "variant: Soketi 1.6.1: sends &lt;x&gt;" in page
    assert "| C-9 | MUST | observed | DISPUTED | t |" in to_markdown(matrix)


def test_a_target_that_died_is_a_finding_in_the_matrix(tmp_path: Path) -> None:
    entry = {"id": "C-1", "area": "conn", "level": "MUST", "title": "t", "outcome": "PASS"}
    run = {"target_restarted_after": [{"finding": "stopped answering during <ROBUST-WS-01>"}]}
    data = {"target": {"name": "s"}, "run": run, "requirements": [entry]}
    matrix = build_matrix([(tmp_path / "r.json", data)], tmp_path)
    assert "died 1 time(s) during the run" in to_html(matrix)
    assert "stopped answering during &lt;ROBUST-WS-01&gt;" in to_html(matrix)
    assert "**s died 1 time(s)** during the run" in to_markdown(matrix)


def test_a_cell_says_which_known_variant_the_target_behaves_as(tmp_path: Path) -> None:
    shown = [{"behaviour": "answers <200>", "seen_in": ["Soketi 1.6.1"], "clients": None}]
    entry = {
        "id": "C-1", "area": "conn", "level": "MUST", "title": "t", "outcome": "FAIL",
        "variants_shown": shown,
    }  # fmt: skip
    data = {"target": {"name": "s"}, "requirements": [entry]}
    page = to_html(build_matrix([(tmp_path / "r.json", data)], tmp_path))
    assert "behaves as: answers &lt;200&gt; (as Soketi 1.6.1)" in page
