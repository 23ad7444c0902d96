"""End to end, as a user runs it: ``conformance auth-endpoint`` certifies the example endpoint
(example_auth_endpoint), served over HTTP on 127.0.0.1, and catches every fault of its faulty
variant with exactly the requirements fixtures/auth_endpoint_faults.yaml names.

This is the certification's test of itself, as tests/test_suite_bites.py is the server suite's:
the clean example passes everything, and each fault turns its named requirements red (FAIL for
a stated MUST, DISPUTED for an inferred one, NON_STRICT for a SHOULD), leaves the ones it makes
untestable INCONCLUSIVE, and leaves every other requirement passing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from aiohttp import web

from conformance.auth_endpoint.command import load_auth_endpoint_specs
from conformance.cli import main
from example_auth_endpoint import CREDENTIALS_FILE, POLICY_FILE
from example_auth_endpoint.app import APP_KEY, APP_SECRET, ExampleAuthApp, build_app
from example_auth_endpoint.faults import Fault, FaultyAuthApp

ROOT = Path(__file__).resolve().parents[3]
_CATALOGUE = yaml.safe_load((ROOT / "fixtures" / "auth_endpoint_faults.yaml").read_text())
FAULTS: dict[str, list[str]] = _CATALOGUE["faults"]
UNTESTABLE: dict[str, list[str]] = _CATALOGUE.get("untestable") or {}
SPECS = load_auth_endpoint_specs()
BROKEN_BY_LEVEL = {"MUST": "FAIL", "SHOULD": "NON_STRICT", "MAY": "OPTIONAL_ABSENT"}


@contextlib.contextmanager
def serving(auth: ExampleAuthApp) -> Iterator[str]:
    """The example app on a free port of 127.0.0.1, on an event loop of its own thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(build_app(auth), access_log=None)

    async def start() -> int:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return int(runner.addresses[0][1])

    port = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def certify(base: str, report_dir: Path, *extra: str, examples: int = 5) -> dict[str, Any]:
    code = main(
        [
            "auth-endpoint",
            "--url", f"{base}/pusher/auth",
            "--user-auth-url", f"{base}/pusher/user-auth",
            "--as", "alice", "--as", "bob",
            "--credentials", str(CREDENTIALS_FILE),
            "--policy", str(POLICY_FILE),
            "--app-key", APP_KEY, "--app-secret", APP_SECRET,
            "--report-dir", str(report_dir),
            "--examples", str(examples), "--seed", "7",
            *extra,
        ]
    )  # fmt: skip
    data: dict[str, Any] = json.loads((report_dir / "results.json").read_text())
    assert data["exit_code"] == code
    return data


def _outcomes(data: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in data["requirements"]}


def _broken(requirement_id: str) -> str:
    requirement = SPECS.requirement(requirement_id)
    if requirement.level == "MUST" and requirement.basis != "stated":
        return "DISPUTED"
    return BROKEN_BY_LEVEL[requirement.level]


def test_the_fault_catalogue_matches_the_example() -> None:
    assert set(FAULTS) == {f.value for f in Fault}
    known = {r.id for r in SPECS.requirements}
    assert {req for reqs in FAULTS.values() for req in reqs} <= known
    assert set(UNTESTABLE) <= set(FAULTS)
    assert all(not set(UNTESTABLE[f]) & set(FAULTS[f]) for f in UNTESTABLE)
    # Every requirement is some fault's: none is untested by the self-test.
    assert {req for reqs in FAULTS.values() for req in reqs} == known


def test_the_example_endpoint_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serving(ExampleAuthApp()) as base:
        data = certify(base, tmp_path, "--strict")
    assert set(_outcomes(data).values()) == {"PASS"}
    assert data["exit_code"] == 0
    assert data["target"]["capabilities"] == ["user_auth"]
    assert data["run"]["seed"] == 7
    out = capsys.readouterr().out
    assert "13 requirements (PASS 13)" in out
    assert "exit 0" in out
    assert {p.name for p in tmp_path.iterdir()} >= {"results.json", "junit.xml", "summary.md"}
    # The same published contract as a server run's results.json, and no secret in it.
    schema = json.loads((ROOT / "schemas" / "results.schema.json").read_text())
    jsonschema.validate(data, schema)
    assert APP_SECRET not in (tmp_path / "results.json").read_text()


def test_without_the_user_auth_url_the_sign_in_rules_are_absent(tmp_path: Path) -> None:
    with serving(ExampleAuthApp()) as base:
        code = main(
            [
                "auth-endpoint", "--url", f"{base}/pusher/auth", "--as", "bob",
                "--credentials", str(CREDENTIALS_FILE), "--policy", str(POLICY_FILE),
                "--app-key", APP_KEY, "--app-secret", APP_SECRET,
                "--report-dir", str(tmp_path), "--examples", "0",
            ]
        )  # fmt: skip
    outcomes = _outcomes(json.loads((tmp_path / "results.json").read_text()))
    assert code == 0
    absent = {k for k, v in outcomes.items() if v == "OPTIONAL_ABSENT"}
    assert absent == {"AUTHEP-11", "AUTHEP-12", "AUTHEP-13"}
    assert {v for k, v in outcomes.items() if k not in absent} == {"PASS"}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_turns_exactly_its_requirements_red(fault: str, tmp_path: Path) -> None:
    # --examples 0: the fixed edges alone must catch every fault, whatever hypothesis draws.
    with serving(FaultyAuthApp({Fault(fault)})) as base:
        data = certify(base, tmp_path, "--strict", examples=0)
    expected = {req: _broken(req) for req in FAULTS[fault]}
    expected.update({req: "INCONCLUSIVE" for req in UNTESTABLE.get(fault, [])})
    changed = {k: v for k, v in _outcomes(data).items() if v != "PASS"}
    why = "\n".join(
        f"  {c['id']}: {c['outcome']}: {c['message'][:300]}"
        for r in data["requirements"]
        for c in r["checks"]
        if c["outcome"] not in ("passed", "skipped")
    )
    assert changed == expected, why
    must_broken = any(SPECS.requirement(req).level == "MUST" for req in FAULTS[fault])
    assert data["exit_code"] == (1 if must_broken else 0)
