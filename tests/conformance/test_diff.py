"""``conformance diff``: requirement by requirement, worse, better, sideways, not run, added or
removed; exit 1 only when something got worse; unreadable files are usage errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.diff import Change, diff_runs


def results(outcomes: dict[str, str], sha: str = "abc") -> dict[str, Any]:
    return {
        "schema_version": 1,
        "suite": {"version": "0.1.0", "specs_sha256": sha},
        "run": {"started_at": "2026-12-06T08:00:00+00:00"},
        "target": {"name": "t", "ws_url": "ws://127.0.0.1:1"},
        "requirements": [
            {"id": i, "level": "MUST", "title": f"title of {i}", "outcome": o}
            for i, o in outcomes.items()
        ],
    }


@pytest.mark.parametrize(
    ("old", "new", "direction"),
    [
        ("PASS", "FAIL", "worse"),
        ("OPTIONAL_ABSENT", "INCONCLUSIVE", "worse"),
        ("NON_STRICT", "FAIL", "worse"),
        ("FAIL", "PASS", "better"),
        ("ERROR", "INCONCLUSIVE", "better"),
        ("PASS", "OPTIONAL_ABSENT", "changed"),
        ("ERROR", "VOID", "changed"),
        ("PASS", "NOT_RUN", "not run"),
        (None, "PASS", "added"),
        ("FAIL", None, "removed"),
    ],
)
def test_directions(old: str | None, new: str | None, direction: str) -> None:
    assert Change("R", "MUST", "", old, new).direction == direction


def test_only_changes_are_listed() -> None:
    diff = diff_runs(
        results({"A": "PASS", "B": "FAIL", "C": "PASS"}),
        results({"A": "PASS", "B": "PASS", "D": "PASS"}, sha="def"),
    )
    assert [(c.requirement, c.direction) for c in diff.changes] == [
        ("B", "better"),
        ("C", "removed"),
        ("D", "added"),
    ]
    assert diff.unchanged == 1
    assert diff.worse == ()
    assert diff.specs_differ


def write(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_the_command_exits_1_when_something_got_worse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write(tmp_path, "old.json", results({"A": "PASS", "B": "FAIL"}))
    new = write(tmp_path, "new.json", results({"A": "FAIL", "B": "PASS"}))
    assert main(["diff", old, new]) == 1
    out = capsys.readouterr().out
    assert "  A  MUST               PASS -> FAIL             worse    title of A\n" in out
    assert out.rstrip().endswith("2 changed (1 worse, 1 better); 0 unchanged")
    assert main(["diff", old, old]) == 0
    assert capsys.readouterr().out.rstrip().endswith("0 changed (no change); 2 unchanged")
    assert main(["diff", new, old, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [(c["requirement"], c["direction"]) for c in data["changes"]] == [
        ("A", "better"),
        ("B", "worse"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ({"schema_version": 1}, "not a results.json (no list of requirements)"),
        ({**results({}), "schema_version": 99}, "results schema_version 99; this suite reads 1"),
        ({**results({}), "requirements": [{"id": "A"}]}, "lacks id, level or outcome"),
    ],
)
def test_unreadable_files_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: object, message: str
) -> None:
    good = write(tmp_path, "good.json", results({"A": "PASS"}))
    bad = tmp_path / "bad.json"
    bad.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    assert main(["diff", good, str(bad)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.splitlines()) == 1
    assert main(["diff", good, str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
