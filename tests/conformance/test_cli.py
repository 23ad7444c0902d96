"""The conformance CLI: exit codes and one-line errors, as promised in the README."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.cli import main


def _run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}, cwd=cwd,
    )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_missing_target_file_is_exit_2_one_line(tmp_path: Path) -> None:
    result = _run("run", "--target", str(tmp_path / "nosuch.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "target file not found" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unreachable_target_is_exit_3_within_10s(tmp_path: Path) -> None:
    port = _free_port()
    started = time.monotonic()
    result = _run(
        "run", "--ws-url", f"ws://127.0.0.1:{port}", "--http-url", f"http://127.0.0.1:{port}",
        "--app-id", "1", "--key", "k", "--secret", "s", "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 3
    assert time.monotonic() - started < 10
    assert result.stderr.strip().count("\n") == 0
    assert "target unreachable" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--ws-url", "ws://127.0.0.1:1"],
            "also needs --http-url, --app-id, --key, --secret",
        ),
        (["run", "--profile", "nope"], "invalid choice"),
        (["run", "--timeout-multiplier", "-1"], "must be positive"),
        (["run", "--max-examples", "0"], "argument --max-examples: must be positive: '0'"),
        (["run", "--max-examples", "-5"], "argument --max-examples: must be positive"),
        (["run", "--max-examples", "many"], "argument --max-examples: not a whole number"),
        (["run", "--max-examples", "2.5"], "argument --max-examples: not a whole number"),
        (["run", "--capability", "teleport"], "unknown capability: teleport"),
        (["run", "--specs", "/nonexistent"], "specs directory not found"),
        (["run", "--check", "NOPE-99"], "no check matches NOPE-99"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.strip().count("\n") == 0


def test_list_and_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate-specs"]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
    assert main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert any(r["id"] == "PROTO-CONN-05" for r in listed)


def test_a_selected_run_against_the_bundled_server(tmp_path: Path) -> None:
    result = _run(
        "run", "--check", "PROTO-CONN-05*", "--check", "HTTP-AUTH-04",
        "--report-dir", str(tmp_path), "--keep-transcripts",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list((tmp_path / "transcripts").glob("*.jsonl"))) == 2
    data = json.loads((tmp_path / "results.json").read_text())
    ran = {r["id"]: r["outcome"] for r in data["requirements"] if r["outcome"] != "NOT_RUN"}
    assert ran == {"PROTO-CONN-05": "PASS", "HTTP-AUTH-04": "PASS"}
    assert (tmp_path / "junit.xml").is_file()
    assert (tmp_path / "summary.md").is_file()
    assert "seed 0" in result.stdout


def test_max_examples_sizes_a_property_run_and_the_count_is_reported(tmp_path: Path) -> None:
    result = _run(
        "run", "--check", "ROBUST-WS-03", "--max-examples", "3", "--report-dir", str(tmp_path),
        "--keep-transcripts",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["run"]["max_examples"] == 3
    (check,) = next(r for r in data["requirements"] if r["id"] == "ROBUST-WS-03")["checks"]
    sent = check["stats"]["malformed_inputs"]
    (transcript,) = (tmp_path / "transcripts").glob("*.jsonl")
    # "\n" only: the malformed text in the log may hold other Unicode line breaks.
    examples = [json.loads(line) for line in transcript.read_text().split("\n") if line]
    assert len([e for e in examples if e["kind"] == "example"]) == 3
    assert 3 <= sent <= 3 * 8
    assert f"counted: malformed inputs {sent}" in result.stdout


def test_a_failing_run_names_the_requirement_and_prints_a_replay(tmp_path: Path) -> None:
    result = _run(
        "run", "--check", "PROTO-CONN-03", "--report-dir", str(tmp_path),
        env={"PUSHER_REF_FAULTS": "unknown_key_accepted"},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL          PROTO-CONN-03" in result.stdout
    assert "replay: conformance run --profile ci --seed 0 --check PROTO-CONN-03/" in result.stdout
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["target"]["faults"] == "unknown_key_accepted"
    transcripts = list((tmp_path / "transcripts").glob("*.jsonl"))
    assert transcripts, "a failing check leaves its wire log"
    entries = [json.loads(line) for line in transcripts[0].read_text().splitlines()]
    assert any(e["kind"] == "ws_recv" for e in entries)
