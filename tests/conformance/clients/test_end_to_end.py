"""End to end: the correct Python client passes every client requirement, and each broken mode
of it fails the requirement it breaks (the requirements bite)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from conformance.clients.command import load_client_specs
from conformance.clients.runner import ClientRun, Tls, make_tls, run_checks
from conformance.outcomes import CheckOutcome, Outcome
from conformance.results import CheckResult, build_report

DRIVER = [sys.executable, str(Path(__file__).with_name("python_driver.py"))]

#: Each broken mode, and the requirements that must fail because of it.
BITES = {
    "reconnect-on-4009": ["CLIENT-CLOSE-01"],
    "no-tls-switch": ["CLIENT-CLOSE-02"],
    "no-backoff": ["CLIENT-CLOSE-03"],
    "no-pong": ["CLIENT-PING-01"],
    "never-ping": ["CLIENT-PING-03", "CLIENT-PING-04"],
    "impatient": ["CLIENT-PING-05"],
    "forget-channel": ["CLIENT-RESUB-01"],
    "stale-auth": ["CLIENT-RESUB-02"],
    "no-signin-repeat": ["CLIENT-RESUB-03"],
    "stale-roster": ["CLIENT-RESUB-04"],
}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("ca"))


def test_the_correct_client_passes_everything_but_the_growing_backoff(
    tmp_path: Path, tls: Tls
) -> None:
    specs = load_client_specs(None)
    run = ClientRun(tuple(DRIVER), tmp_path, parallel=4)
    results = asyncio.run(run_checks(specs.checks, run, tls))
    report = build_report(specs, results, target={"kind": "client", "name": "py"}, run={})
    verdicts = {v.requirement.id: v.outcome for v in report.verdicts}
    # Its back-off is a fixed 1 s, like pusher-js: the graded MAY is absent, not failed.
    assert verdicts.pop("CLIENT-OPEN-02") is Outcome.OPTIONAL_ABSENT
    # What the docs leave open is recorded, not graded.
    assert verdicts.pop("CLIENT-OPEN-01") is Outcome.REPORTED
    assert verdicts.pop("CLIENT-OPEN-03") is Outcome.REPORTED
    assert {rid: o for rid, o in verdicts.items() if o is not Outcome.PASS} == {}
    assert int(report.exit) == 0


def test_every_broken_mode_fails_its_requirement(tmp_path: Path, tls: Tls) -> None:
    specs = load_client_specs(None)

    async def all_modes() -> dict[str, dict[str, CheckResult]]:
        gate = asyncio.Semaphore(2)

        async def one(mode: str) -> dict[str, CheckResult]:
            checks = [c for c in specs.checks if c.requirement_id in BITES[mode]]
            run = ClientRun((*DRIVER, "--break", mode), tmp_path / mode, parallel=2)
            async with gate:
                return await run_checks(checks, run, tls)

        found = await asyncio.gather(*(one(mode) for mode in BITES))
        return dict(zip(BITES, found, strict=True))

    by_mode = asyncio.run(all_modes())
    missed = {
        mode: {cid: r.outcome.value for cid, r in results.items()}
        for mode, results in by_mode.items()
        if not all(
            any(
                r.outcome is CheckOutcome.FAILED
                for r in results.values()
                if r.requirement_id == requirement
            )
            for requirement in BITES[mode]
        )
    }
    assert missed == {}


def test_the_command_writes_every_report_for_a_client(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "client", "--report-dir", str(tmp_path),
         "--only", "CLIENT-PING-01", "CLIENT-CLOSE-04/close-4200", "--", *DRIVER],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "python-test-client 0.1, client library, driver" in result.stdout
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["target"]["kind"] == "client"
    schema = json.loads((Path(__file__).parents[3] / "schemas/results.schema.json").read_text())
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(data)) == []
    assert {r["id"] for r in data["requirements"] if r["outcome"] != "NOT_RUN"} == {
        "CLIENT-PING-01",
        "CLIENT-CLOSE-04",
    }
    summary = (tmp_path / "summary.md").read_text()
    assert "- Target: client library, driver" in summary
    assert "None" not in summary.split("## By area")[0]
    assert "did not load" not in summary  # the docs map names other subjects' requirements
    assert "client library" in (tmp_path / "summary.html").read_text()
    assert (tmp_path / "junit.xml").is_file()


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["client"], 2, "give the driver command"),
        (["client", "--only", "NOPE-01", "--", "true"], 2, "names no client requirement"),
        (["client", "--parallel", "0", "--", "true"], 2, "--parallel"),
        (["client", "--", "/nonexistent/driver"], 3, "cannot start the driver"),
    ],
)
def test_usage_and_driver_errors_are_one_line(args: list[str], status: int, says: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conformance", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == status
    assert says in result.stderr
    assert result.stderr.strip().count("\n") == 0
