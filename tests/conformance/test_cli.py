"""The conformance CLI: exit codes and one-line errors, as promised in the README."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.spec import default_specs_dir


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
        (
            ["run", "--regressions-dir", "x", "--no-save-regressions"],
            "argument --no-save-regressions: not allowed with argument --regressions-dir",
        ),
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


def test_list_shows_the_server_unless_told_another_subject(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list"]) == 0
    plain = capsys.readouterr().out
    assert "PROTO-CONN-05" in plain
    assert "CLIENT-" not in plain
    assert "AUTHEP-" not in plain
    assert "==" not in plain
    assert main(["list", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert "subject" not in default[0]  # unchanged for existing users
    assert main(["list", "--subject", "server", "--json"]) == 0
    server = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in server] == [r["id"] for r in default]
    assert {r["subject"] for r in server} == {"server"}

    assert main(["list", "--subject", "client"]) == 0
    client = capsys.readouterr().out
    assert "CLIENT-PING-01" in client
    assert "CLIENT-PING-01/pong  [property answers_pusher_ping]" in client
    assert "PROTO-CONN-05" not in client
    assert "AUTHEP-" not in client

    assert main(["list", "--subject", "auth-endpoint", "--json"]) == 0
    authep = json.loads(capsys.readouterr().out)
    assert {r["subject"] for r in authep} == {"auth-endpoint"}
    assert any(r["id"] == "AUTHEP-01" for r in authep)

    assert main(["list", "--subject", "client", "--json"]) == 0
    client_ids = [r["id"] for r in json.loads(capsys.readouterr().out)]
    assert main(["list", "--subject", "all", "--json"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in every] == [
        *(r["id"] for r in server),
        *client_ids,
        *(r["id"] for r in authep),
    ]
    assert main(["list", "--subject", "all"]) == 0
    headings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("==")]
    assert [h.split(":")[0] for h in headings] == ["== server", "== client", "== auth-endpoint"]


def test_list_refuses_an_unknown_subject(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--subject", "browser"]) == 2
    err = capsys.readouterr().err
    assert "argument --subject: invalid choice: 'browser'" in err
    assert err.strip().count("\n") == 0


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


def test_hypothesis_caches_go_to_the_cache_dir_not_the_working_directory(tmp_path: Path) -> None:
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    env = {"HYPOTHESIS_STORAGE_DIRECTORY": ""}  # unset: --cache-dir decides
    result = _run(
        "run", "--check", "PROTO-CONN-05*", "--report-dir", str(work / "report"),
        "--cache-dir", str(cache), env=env, cwd=work,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (cache / "unicode_data").is_dir()
    assert not (work / ".hypothesis").exists()


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


def test_a_regression_case_runs_as_a_check_of_its_requirement(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("schema.json", "regression.schema.json", "connection.yaml", "heartbeat.yaml"):
        shutil.copy(default_specs_dir() / name, specs / name)
    (specs / "regressions").mkdir()
    (specs / "regressions" / "PROTO-PING-07-0a1b2c3d.yaml").write_text(
        "regression_of: PROTO-PING-07\nid: regression-0a1b2c3d\ntitle: One empty ping\n"
        "property: websocket_ping_answered\nparams: {pings: 1, examples: 1}\n"
    )
    listed = _run("list", "--specs", str(specs))
    assert (
        "PROTO-PING-07/regression-0a1b2c3d  [property websocket_ping_answered, "
        "regression case PROTO-PING-07-0a1b2c3d.yaml]"
    ) in listed.stdout
    # Two workers: each must collect the regression check the controller did.
    result = _run(
        "run", "--specs", str(specs), "--check", "PROTO-PING-07", "-n", "2",
        "--report-dir", str(tmp_path / "report"), "--regressions-dir", str(tmp_path / "saved"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "report" / "results.json").read_text())
    (requirement,) = [r for r in data["requirements"] if r["id"] == "PROTO-PING-07"]
    assert {c["id"]: c["outcome"] for c in requirement["checks"]} == {
        "PROTO-PING-07/ws-pings": "passed",
        "PROTO-PING-07/regression-0a1b2c3d": "passed",
    }
    assert not (tmp_path / "saved").exists()


PROBE = """
from conformance.properties.registry import prop


@prop("figures_probe", "bad")
def figures_probe(ctx, params):
    if params.get("bad"):
        ctx.figures = {"table": {"columns": ["a"], "rows": [[1, 2]]}}
        return
    ctx.figures = {
        "title": "probe",
        "summary": {"delivered": 3, "order_violations": 0},
        "table": {"columns": ["user", "delivered"], "rows": [["ana", 3]]},
    }
"""

PROBE_SPEC = """\
area: probe
prefixes: [TEST-FIG]
title: Figures probe
requirements:
  - id: TEST-FIG-01
    level: MUST
    title: Figures travel
    statement: A check's figures reach every report, through pytest-xdist workers too.
    source: "peer behaviour: none, a test of the suite"
    basis: observed
    observed_in: [this suite's tests]
    checks:
      - id: probe
        title: Reports figures
        property: figures_probe
  - id: TEST-FIG-02
    level: SHOULD
    title: Bad figures are named
    statement: Figures of the wrong shape make the check an error that says what is wrong.
    source: "peer behaviour: none, a test of the suite"
    basis: observed
    observed_in: [this suite's tests]
    checks:
      - id: bad
        title: Reports a malformed table
        property: figures_probe
        params: {bad: true}
"""


def test_figures_survive_xdist_into_every_report(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(default_specs_dir() / "schema.json", specs / "schema.json")
    (specs / "probe.yaml").write_text(PROBE_SPEC)
    (tmp_path / "figures_probe.py").write_text(PROBE)
    report = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(specs / "probe.yaml"), "-p", "figures_probe",
         "-p", "no:cacheprovider", "-n", "2", "--conformance", "--rootdir", str(tmp_path),
         "--conformance-specs", str(specs), "--conformance-report-dir", str(report),
         "--conformance-no-save-regressions"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    # 3: the malformed figures are a harness error, whatever the level.
    assert result.returncode == 3, result.stdout + result.stderr
    assert "figures TEST-FIG-01/probe: delivered 3, order violations 0; table of 1 rows" in (
        result.stdout
    )
    data = json.loads((report / "results.json").read_text())
    (check,) = data["requirements"][0]["checks"]
    assert check["figures"]["summary"] == {"delivered": 3, "order_violations": 0}
    (bad,) = data["requirements"][1]["checks"]
    assert bad["outcome"] == "error"
    assert bad["message"] == "harness error: figures: table row 0 is not a list of 1 cells"
    assert "figures" not in bad
    assert "| ana | 3 |" in (report / "summary.md").read_text()
    assert "<td>ana</td>" in (report / "summary.html").read_text()
