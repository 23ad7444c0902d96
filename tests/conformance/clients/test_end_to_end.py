"""End to end: the correct Python client passes every client requirement, and each broken mode
of it fails the requirement it breaks and no other of that area (the requirements bite, and
bite where they should). The modes are catalogued in python_driver_breaks.yaml."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from conformance.clients.command import load_client_specs
from conformance.clients.runner import ClientRun, Tls, make_tls, run_check, run_checks
from conformance.outcomes import CheckOutcome, Outcome
from conformance.results import CheckResult, build_report
from conformance.spec import Check

HERE = Path(__file__).parent
DRIVER = [sys.executable, str(HERE / "python_driver.py")]
CATALOGUE: dict[str, Any] = yaml.safe_load(
    (HERE / "python_driver_breaks.yaml").read_text(encoding="utf-8")
)
#: Each broken mode: the requirements that must fail because of it (``requirements``), and
#: those of the same area it leaves untestable (``inconclusive``).
BREAKS: dict[str, dict[str, Any]] = CATALOGUE["breaks"]
#: Each variant: the graded MAYs that must pass with it.
VARIANTS: dict[str, dict[str, Any]] = CATALOGUE["variants"]
#: Graded requirements no mode can break, with the reason.
UNTESTABLE: dict[str, str] = CATALOGUE.get("untestable") or {}
#: How many checks run at once in one test (each with its own server and driver).
AT_ONCE = 6

SPECS = load_client_specs(None)


def _area(requirement_id: str) -> str:
    """CLIENT-CLOSE-05 -> CLIENT-CLOSE."""
    return requirement_id.rsplit("-", 1)[0]


def _named(entry: dict[str, Any]) -> list[str]:
    return [*entry.get("requirements", []), *entry.get("passes", [])]


def _area_checks(requirement_ids: Iterable[str]) -> list[Check]:
    """Every check of every active requirement in the areas of ``requirement_ids``."""
    areas = {_area(r) for r in requirement_ids}
    return [
        c
        for r in SPECS.requirements
        if r.status == "active" and _area(r.id) in areas
        for c in r.checks
    ]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("ca"))


def test_the_correct_client_passes_everything_but_the_growing_backoff(
    tmp_path: Path, tls: Tls
) -> None:
    run = ClientRun(tuple(DRIVER), tmp_path, parallel=4)
    results = asyncio.run(run_checks(SPECS.checks, run, tls))
    report = build_report(SPECS, results, target={"kind": "client", "name": "py"}, run={})
    verdicts = {v.requirement.id: v.outcome for v in report.verdicts}
    # Its back-off is a fixed 1 s, like pusher-js: the graded MAY is absent, not failed.
    assert verdicts.pop("CLIENT-OPEN-02") is Outcome.OPTIONAL_ABSENT
    # What the docs leave open is recorded, not graded.
    assert verdicts.pop("CLIENT-OPEN-01") is Outcome.REPORTED
    assert verdicts.pop("CLIENT-OPEN-03") is Outcome.REPORTED
    assert {rid: o for rid, o in verdicts.items() if o is not Outcome.PASS} == {}
    assert int(report.exit) == 0


def test_every_graded_requirement_has_a_mode_that_breaks_it() -> None:
    """Completeness: a graded requirement no mode breaks is one nobody has seen go red. A MAY
    cannot be failed (its absence is OPTIONAL_ABSENT), so a variant must make it pass instead."""
    known = {r.id: r for r in SPECS.requirements}
    broken = {rid for entry in BREAKS.values() for rid in entry["requirements"]}
    passed = {rid for entry in VARIANTS.values() for rid in entry["passes"]}
    inconclusive = {rid for entry in BREAKS.values() for rid in entry.get("inconclusive", [])}
    assert (broken | passed | inconclusive | set(UNTESTABLE)) <= set(known)
    assert all(entry["requirements"] and entry["description"] for entry in BREAKS.values())
    assert all(entry["passes"] and entry["description"] for entry in VARIANTS.values())
    assert all(str(why).strip() for why in UNTESTABLE.values())
    for mode, entry in BREAKS.items():
        left = set(entry.get("inconclusive", []))
        assert not left & set(entry["requirements"]), mode
        assert {_area(r) for r in left} <= {_area(r) for r in entry["requirements"]}, mode
    assert all(known[rid].level != "MAY" for rid in broken)
    assert all(known[rid].level == "MAY" for rid in passed)
    graded = [r for r in SPECS.requirements if r.status == "active" and r.graded]
    missing = [
        r.id
        for r in graded
        if r.id not in UNTESTABLE and r.id not in (passed if r.level == "MAY" else broken)
    ]
    assert missing == []
    assert not set(UNTESTABLE) & (broken | passed)
    assert all(known[rid].graded for rid in broken | passed)
    # docs/client-certification.md maps every requirement to its modes.
    doc = (HERE.parents[2] / "docs" / "client-certification.md").read_text(encoding="utf-8")
    assert [m for m in [*BREAKS, *VARIANTS] if f"`{m}`" not in doc] == []


def _run_modes(
    modes: dict[str, list[Check]], flag: str, tmp_path: Path, tls: Tls
) -> dict[str, dict[str, CheckResult]]:
    """Each mode's checks, AT_ONCE checks at a time across all of them."""

    async def everything() -> dict[str, dict[str, CheckResult]]:
        gate = asyncio.Semaphore(AT_ONCE)

        async def one(mode: str, check: Check) -> tuple[str, CheckResult]:
            run = ClientRun((*DRIVER, flag, mode), tmp_path / mode)
            async with gate:
                return mode, await run_check(check, run, tls)

        found: dict[str, dict[str, CheckResult]] = {mode: {} for mode in modes}
        pairs = [(mode, check) for mode, checks in modes.items() for check in checks]
        for mode, result in await asyncio.gather(*(one(m, c) for m, c in pairs)):
            found[mode][result.check_id] = result
        return found

    return asyncio.run(everything())


def _misjudged(
    results: dict[str, CheckResult], fail: set[str], inconclusive: set[str]
) -> dict[str, str]:
    """The requirements whose checks did not end as they must: a named one without a failed
    check, an untestable one not inconclusive, any other one not passed; any ERROR."""
    by_requirement: dict[str, list[CheckResult]] = {}
    for result in results.values():
        by_requirement.setdefault(result.requirement_id, []).append(result)
    wrong: dict[str, str] = {}
    for rid, checks in sorted(by_requirement.items()):
        outcomes = {r.outcome for r in checks}
        if rid in fail:
            ok = CheckOutcome.FAILED in outcomes
        elif rid in inconclusive:
            ok = CheckOutcome.INCONCLUSIVE in outcomes and CheckOutcome.FAILED not in outcomes
        else:
            ok = outcomes == {CheckOutcome.PASSED}
        if not ok or CheckOutcome.ERROR in outcomes:
            wrong[rid] = "; ".join(
                f"{r.check_id}: {r.outcome.value}: {(r.message or '-').splitlines()[0][:160]}"
                for r in checks
            )
    return wrong


AREAS = sorted({_area(rid) for entry in BREAKS.values() for rid in entry["requirements"]})


@pytest.mark.parametrize("area", AREAS)
def test_every_broken_mode_fails_its_requirements_and_no_other_of_its_area(
    area: str, tmp_path: Path, tls: Tls
) -> None:
    """Recall (each named requirement fails) and precision among its area mates (each other
    requirement of the area still passes): the modes that name this area, against every
    check of the areas they name."""
    modes = {
        mode: _area_checks(entry["requirements"])
        for mode, entry in BREAKS.items()
        if min(_area(r) for r in entry["requirements"]) == area
    }
    found = _run_modes(modes, "--break", tmp_path, tls)
    wrong = {
        mode: miss
        for mode, results in found.items()
        if (
            miss := _misjudged(
                results,
                set(BREAKS[mode]["requirements"]),
                set(BREAKS[mode].get("inconclusive", [])),
            )
        )
    }
    assert wrong == {}, json.dumps(wrong, indent=1)


def test_every_variant_passes_the_may_it_does(tmp_path: Path, tls: Tls) -> None:
    """The variants turn their MAY from OPTIONAL_ABSENT to PASS, and leave their area's other
    requirements as the correct client has them."""
    modes = {name: _area_checks(_named(entry)) for name, entry in VARIANTS.items()}
    found = _run_modes(modes, "--variant", tmp_path, tls)
    wrong = {
        name: miss for name, results in found.items() if (miss := _misjudged(results, set(), set()))
    }
    assert wrong == {}, json.dumps(wrong, indent=1)
    for name, entry in VARIANTS.items():
        report = build_report(SPECS, found[name], target={"kind": "client", "name": name}, run={})
        verdicts = {v.requirement.id: v.outcome for v in report.verdicts}
        assert {rid: verdicts[rid] for rid in entry["passes"]} == dict.fromkeys(
            entry["passes"], Outcome.PASS
        )


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
