"""The shipped Node drivers (drivers/): each certifies its library, and every deliberately
broken mode of drivers/breaks.yaml fails the client requirements the catalogue names for it,
and changes nothing else in their areas.

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
from typing import Any

import pytest
import yaml

from conformance.clients.command import load_client_specs
from conformance.clients.runner import ClientRun, Tls, make_tls, run_check
from conformance.outcomes import CheckOutcome
from conformance.results import CheckResult
from conformance.spec import Check

pytestmark = pytest.mark.client_drivers

DRIVERS = Path(__file__).resolve().parents[2] / "drivers"
CATALOGUE: dict[str, dict[str, Any]] = yaml.safe_load(
    (DRIVERS / "breaks.yaml").read_text(encoding="utf-8")
)
LIBRARIES = ("pusher-js", "laravel-echo")
#: How many checks run at once in one test (each with its own server and Node process).
AT_ONCE = 8
SPECS = load_client_specs(None)


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


def _area(requirement_id: str) -> str:
    """CLIENT-CLOSE-05 -> CLIENT-CLOSE."""
    return requirement_id.rsplit("-", 1)[0]


def _area_checks(requirement_ids: list[str]) -> list[Check]:
    """Every check of every active requirement in the areas of ``requirement_ids``."""
    areas = {_area(r) for r in requirement_ids}
    return [
        c
        for r in SPECS.requirements
        if r.status == "active" and _area(r.id) in areas
        for c in r.checks
    ]


def _modes_of(library: str, catalogue: dict[str, dict[str, Any]] = CATALOGUE) -> list[str]:
    """The modes this driver takes (``drivers``, when given, names them)."""
    return sorted(m for m, e in catalogue.items() if library in e.get("drivers", LIBRARIES))


def test_the_catalogue_and_the_drivers_list_the_same_modes() -> None:
    listed = subprocess.run(
        ["node", "--input-type=module", "-e",
         "const m = await import(process.argv[1]);"
         "process.stdout.write(JSON.stringify(m.BREAK_MODES));",
         (DRIVERS / "lib" / "breaks.mjs").as_uri()],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert sorted(json.loads(listed.stdout)) == sorted(CATALOGUE)
    known = {r.id for r in SPECS.requirements}
    for mode, entry in CATALOGUE.items():
        assert entry["requirements"], mode
        assert set(entry["requirements"]) <= known, mode
        left = set(entry.get("inconclusive", []))
        assert left <= known, mode
        assert not left & set(entry["requirements"]), mode
        assert {_area(r) for r in left} <= {_area(r) for r in entry["requirements"]}, mode
        assert entry.get("drivers", LIBRARIES), mode
        assert set(entry.get("drivers", LIBRARIES)) <= set(LIBRARIES), mode
    # drivers/README.md and docs/client-certification.md list every mode.
    for doc in (DRIVERS / "README.md", DRIVERS.parent / "docs" / "client-certification.md"):
        text = doc.read_text(encoding="utf-8")
        assert [m for m in CATALOGUE if f"`{m}`" not in text] == [], doc.name
    # A mode limited to some drivers runs under those only.
    limited = {**CATALOGUE, "x": {"requirements": ["CLIENT-PING-01"], "drivers": ["pusher-js"]}}
    assert "x" in _modes_of("pusher-js", limited)
    assert "x" not in _modes_of("laravel-echo", limited)


def _line(result: CheckResult) -> str:
    return f"{result.outcome.value}: {(result.message or '-').splitlines()[0][:160]}"


# The module keeps to three tests: pytest-xdist deals out fewer than two tests per worker
# round-robin, so under -n 2 the two long ones below run side by side (four would go out in
# chunks of two consecutive tests, and these two would share a worker).
@pytest.mark.parametrize("library", LIBRARIES)
def test_each_broken_mode_fails_what_it_breaks_and_nothing_else_nearby(
    library: str, tmp_path: Path, tls: Tls
) -> None:
    """For this driver: unbroken, it passes every requirement a mode names; each mode fails
    the requirements it names (recall), leaves its ``inconclusive`` ones inconclusive, and
    every other check of the areas it names ends as it does unbroken (precision)."""
    modes = _modes_of(library)
    runs: dict[str, list[Check]] = {
        mode: _area_checks(CATALOGUE[mode]["requirements"]) for mode in modes
    }
    runs[""] = _area_checks([r for m in modes for r in CATALOGUE[m]["requirements"]])

    async def everything() -> dict[str, dict[str, CheckResult]]:
        gate = asyncio.Semaphore(AT_ONCE)

        async def one(mode: str, check: Check) -> tuple[str, CheckResult]:
            command = ("node", str(DRIVERS / f"{library}.mjs"))
            if mode:
                command = (*command, "--break", mode)
            async with gate:
                return mode, await run_check(
                    check, ClientRun(command, tmp_path / (mode or "unbroken")), tls
                )

        found: dict[str, dict[str, CheckResult]] = {mode: {} for mode in runs}
        pairs = [(mode, check) for mode, checks in runs.items() for check in checks]
        for mode, result in await asyncio.gather(*(one(m, c) for m, c in pairs)):
            found[mode][result.check_id] = result
        return found

    found = asyncio.run(everything())
    unbroken = found.pop("")
    named = {r for m in modes for r in CATALOGUE[m]["requirements"]}
    assert {
        cid: _line(r)
        for cid, r in unbroken.items()
        if r.requirement_id in named and r.outcome is not CheckOutcome.PASSED
    } == {}
    wrong: dict[str, dict[str, str]] = {}
    for mode, results in found.items():
        fail = set(CATALOGUE[mode]["requirements"])
        left = set(CATALOGUE[mode].get("inconclusive", []))
        miss: dict[str, str] = {}
        for rid in sorted(fail | left):
            mine = [r for r in results.values() if r.requirement_id == rid]
            outcomes = {r.outcome for r in mine}
            if rid in fail:
                ok = CheckOutcome.FAILED in outcomes
            else:
                ok = CheckOutcome.INCONCLUSIVE in outcomes and CheckOutcome.FAILED not in outcomes
            if not ok or CheckOutcome.ERROR in outcomes:
                miss[rid] = "; ".join(f"{r.check_id}: {_line(r)}" for r in mine)
        for cid, result in results.items():
            if result.requirement_id in fail | left:
                continue
            if result.outcome is not unbroken[cid].outcome:
                miss[cid] = f"{_line(result)} (unbroken: {unbroken[cid].outcome.value})"
        if miss:
            wrong[mode] = miss
    assert wrong == {}, json.dumps(wrong, indent=1)
