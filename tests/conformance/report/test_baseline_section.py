"""A run against a baseline, end to end on the bundled server: an accepted deviation does not
fail the run, a new one does, a fixed one is named, and every format says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.cli import main


def test_a_run_fails_only_on_new_deviations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # RECON-01 breaks (accepted), CHAN-SUB-03 breaks (new), RECON-02 passes (accepted: fixed).
    monkeypatch.setenv("PUSHER_REF_FAULTS", "close_without_reason,private_without_auth_accepted")
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(
        "target: reference-server\n"
        "deviations:\n"
        "  RECON-01: {outcome: FAIL, reason: closes carry no reason text}\n"
        "  RECON-02: {reason: was slow to notice dead links}\n"
        "  HTTP-EVT-10: {reason: not selected in this run}\n",
        encoding="utf-8",
    )
    report = tmp_path / "report"
    args = ["run", "--check", "RECON-01", "--check", "RECON-02", "--check", "CHAN-SUB-03"]
    assert main([*args, "--baseline", str(baseline), "--report-dir", str(report)]) == 1
    data = json.loads((report / "results.json").read_text())
    assert data["run"]["baseline"] == str(baseline)
    section = data["baseline"]
    assert [(d["id"], d["outcome"]) for d in section["new"]] == [("CHAN-SUB-03", "FAIL")]
    assert [(d["id"], d["reason"]) for d in section["expected"]] == [
        ("RECON-01", "closes carry no reason text")
    ]
    assert [(d["id"], d["outcome"]) for d in section["fixed"]] == [("RECON-02", "PASS")]
    assert section["not_run"] == ["HTTP-EVT-10"]
    out = capsys.readouterr().out
    assert f"baseline {baseline} (written for reference-server): 1 new, 1 expected, 1 fixed," in out
    assert "  new      FAIL          CHAN-SUB-03 [MUST]" in out
    assert "  fixed    PASS          RECON-02 [MUST]: was slow to notice dead links" in out
    md = (report / "summary.md").read_text()
    assert "## Against the baseline" in md
    assert "| expected | RECON-01 | MUST | FAIL | closes carry no reason text |" in md
    html = (report / "summary.html").read_text()
    assert "<h2>Against the baseline</h2>" in html
    assert "closes carry no reason text" in html


def test_without_the_new_deviation_the_run_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUSHER_REF_FAULTS", "close_without_reason")
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text("deviations:\n  RECON-01: {reason: no reason text}\n", encoding="utf-8")
    report = tmp_path / "report"
    args = ["run", "--check", "RECON-01", "--report-dir", str(report)]
    assert main([*args, "--baseline", str(baseline)]) == 0
    assert json.loads((report / "results.json").read_text())["exit_code"] == 0
    assert main(args) == 1  # the same run without the baseline


def test_a_bad_baseline_ends_the_run_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text("deviations:\n  NOPE-01: {reason: x}\n", encoding="utf-8")
    report = tmp_path / "report"
    assert main(["run", "--baseline", str(baseline), "--report-dir", str(report)]) == 2
    assert "baseline.yaml: NOPE-01: no such requirement" in capsys.readouterr().err
    assert not report.exists()
