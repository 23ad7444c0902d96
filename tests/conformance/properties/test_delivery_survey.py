"""The delivery model's checks share one exploration per run: the first to start explores, and
the others judge their aspects on what it met, exploring again only to shrink a violation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _run(tmp_path: Path, faults: str) -> dict[str, list[dict[str, object]]]:
    report = tmp_path / "report"
    subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--report-dir", str(report),
         "--no-save-regressions", "--keep-transcripts", "--check", "DELIV-0[1-6]/model"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PUSHER_REF_FAULTS": faults},
    )  # fmt: skip
    transcripts = {}
    for path in sorted((report / "transcripts").glob("*.jsonl")):
        lines = path.read_text().splitlines()
        transcripts[path.stem] = [json.loads(line) for line in lines]
    return transcripts


def _explored(entries: list[dict[str, object]]) -> bool:
    return any(e["kind"] == "ws_connect" for e in entries)


def _shared(entries: list[dict[str, object]]) -> bool:
    return any(
        e["kind"] == "note" and "shared exploration" in str(e.get("message")) for e in entries
    )


def test_one_check_explores_and_the_others_judge_on_it(tmp_path: Path) -> None:
    transcripts = _run(tmp_path, "")
    assert len(transcripts) == 6
    explorers = [name for name, entries in transcripts.items() if _explored(entries)]
    assert len(explorers) == 1, explorers
    assert all(_shared(entries) for name, entries in transcripts.items() if name not in explorers)


def test_a_violated_aspect_is_explored_again_to_shrink(tmp_path: Path) -> None:
    transcripts = _run(tmp_path, "presence_counted_per_connection")
    presence = transcripts["DELIV-05__model"]
    assert _explored(presence)
    assert not _shared(presence)
    # Aspects the fault leaves alone are still judged on the shared exploration.
    others = [name for name in transcripts if name != "DELIV-05__model"]
    assert sum(1 for name in others if _shared(transcripts[name])) >= 4
