"""The shipped Node drivers (drivers/): each certifies its library, and every deliberately
broken mode of drivers/breaks.yaml fails the client requirements the catalogue names for it.

They need Node and ``npm ci --prefix drivers``; ``tox -e clients`` provides both, runs them
(marker ``client_drivers``) and sets ``CONFORMANCE_DRIVERS_REQUIRED=1``, so there a missing
install is a failure, not a skip."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conformance.clients.command import load_client_specs
from conformance.clients.runner import ClientRun, Tls, make_tls, run_checks
from conformance.outcomes import CheckOutcome

pytestmark = pytest.mark.client_drivers

DRIVERS = Path(__file__).resolve().parents[2] / "drivers"
CATALOGUE = yaml.safe_load((DRIVERS / "breaks.yaml").read_text(encoding="utf-8"))
LIBRARIES = ("pusher-js", "laravel-echo")


def _installed() -> bool:
    return shutil.which("node") is not None and (DRIVERS / "node_modules" / "pusher-js").is_dir()


@pytest.fixture(scope="module", autouse=True)
def _drivers_installed() -> None:
    if _installed():
        return
    message = "the Node drivers are not installed (node, npm ci --prefix drivers)"
    if os.environ.get("CONFORMANCE_DRIVERS_REQUIRED") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("ca"))


def test_the_catalogue_and_the_drivers_list_the_same_modes() -> None:
    listed = subprocess.run(
        ["node", "--input-type=module", "-e",
         "const m = await import(process.argv[1]);"
         "process.stdout.write(JSON.stringify(m.BREAK_MODES));",
         (DRIVERS / "lib" / "breaks.mjs").as_uri()],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert sorted(json.loads(listed.stdout)) == sorted(CATALOGUE)
    known = {r.id for r in load_client_specs(None).requirements}
    for mode, entry in CATALOGUE.items():
        assert entry["requirements"], mode
        assert set(entry["requirements"]) <= known, mode


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("mode", sorted(CATALOGUE))
def test_each_broken_mode_fails_what_it_breaks(
    library: str, mode: str, tmp_path: Path, tls: Tls
) -> None:
    wanted = CATALOGUE[mode]["requirements"]
    checks = [c for c in load_client_specs(None).checks if c.requirement_id in wanted]
    command = ("node", str(DRIVERS / f"{library}.mjs"), "--break", mode)
    results = asyncio.run(run_checks(checks, ClientRun(command, tmp_path, parallel=2), tls))
    failed = {r.requirement_id for r in results.values() if r.outcome is CheckOutcome.FAILED}
    outcomes = {cid: (r.outcome.value, r.message[:200]) for cid, r in results.items()}
    assert set(wanted) <= failed, outcomes


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_unbroken_driver_passes_those_checks(library: str, tmp_path: Path, tls: Tls) -> None:
    wanted = {rid for entry in CATALOGUE.values() for rid in entry["requirements"]}
    checks = [c for c in load_client_specs(None).checks if c.requirement_id in wanted]
    command = ("node", str(DRIVERS / f"{library}.mjs"))
    results = asyncio.run(run_checks(checks, ClientRun(command, tmp_path, parallel=3), tls))
    outcomes = {cid: (r.outcome.value, r.message[:200]) for cid, r in results.items()}
    assert all(r.outcome is CheckOutcome.PASSED for r in results.values()), outcomes
