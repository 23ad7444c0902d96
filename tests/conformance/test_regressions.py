"""Saving counterexamples as regression cases, and where a run saves them."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import regressions
from conformance.context import CheckContext, RunSettings
from conformance.errors import SpecError, UsageError
from conformance.options import regressions_dir
from conformance.regressions import (
    case_hash,
    render_case,
    save_counterexample,
    save_regression_case,
)
from conformance.spec import Check, default_specs_dir, load_specs, load_yaml
from conformance.target import target_from_mapping

SPECS = default_specs_dir()
PARAMS = {"pings": 1, "payloads": ["", "\x00\udfff"], "nested": {"on": "yes", "n": 1.5}}


def _case(params: dict[str, object] | None = None) -> dict[str, object]:
    return render_case(
        "PROTO-PING-07",
        "websocket_ping_answered",
        PARAMS if params is None else params,
        found={"profile": "ci", "seed": 0, "failure": "no pong\nfor payload b''"},
    )


def test_render_case_names_the_check_by_a_hash_of_the_params() -> None:
    case = _case()
    assert case["id"] == f"regression-{case_hash(PARAMS)}"
    assert case_hash(PARAMS) == case_hash(dict(reversed(list(PARAMS.items()))))
    assert case_hash(PARAMS) != case_hash({**PARAMS, "pings": 2})
    assert len(case_hash({})) == 8


def test_render_case_refuses_params_that_are_not_json_data() -> None:
    with pytest.raises(SpecError, match="regression case: params are not JSON data"):
        render_case("PROTO-PING-07", "websocket_ping_answered", {"x": object()})


def test_a_saved_case_loads_back_as_a_check_of_its_requirement(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("schema.json", "regression.schema.json", "heartbeat.yaml"):
        shutil.copy(SPECS / name, specs / name)
    path = save_regression_case(specs / "regressions", _case())
    assert path == specs / "regressions" / f"PROTO-PING-07-{case_hash(PARAMS)}.yaml"
    assert path.read_text().startswith("# A counterexample")
    loaded = load_specs(specs)
    check = loaded.requirement("PROTO-PING-07").checks[-1]
    assert check.full_id == f"PROTO-PING-07/regression-{case_hash(PARAMS)}"
    assert check.params == PARAMS  # "on" and "yes" stay strings, the lone surrogate survives
    assert check.regression_file == path.resolve()
    assert loaded.regressions[0].found["failure"] == "no pong\nfor payload b''"


def test_saving_the_same_counterexample_again_keeps_the_first_file(tmp_path: Path) -> None:
    first = save_regression_case(tmp_path, _case())
    text, mtime = first.read_text(), first.stat().st_mtime_ns
    later = _case()
    later["found"] = {"profile": "thorough", "seed": 7}
    assert save_regression_case(tmp_path, later) == first
    assert first.read_text() == text
    assert first.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_another_case_under_the_same_name_moves_aside(tmp_path: Path) -> None:
    taken = tmp_path / f"PROTO-PING-07-{case_hash(PARAMS)}.yaml"
    taken.write_text("regression_of: PROTO-PING-07\nparams: {something: else}\n")
    path = save_regression_case(tmp_path, _case())
    assert path.name == f"PROTO-PING-07-{case_hash(PARAMS)}-2.yaml"
    assert load_yaml(path.read_text())["id"] == f"regression-{case_hash(PARAMS)}-2"
    assert taken.read_text().endswith("{something: else}\n")


def test_a_case_that_would_not_load_is_refused(tmp_path: Path) -> None:
    case = _case()
    case["regression_of"] = "not a requirement"
    with pytest.raises(SpecError, match=r"^regression case: at regression_of: 'not a requirement'"):
        save_regression_case(tmp_path, case)
    assert not list(tmp_path.iterdir())


def test_the_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(source: str, destination: Path) -> None:
        # At the rename the final name does not exist yet and the temporary file is complete.
        assert not Path(destination).exists()
        assert Path(source).parent == tmp_path
        assert load_yaml(Path(source).read_text())["params"] == PARAMS
        renames.append((str(source), str(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(regressions.os, "replace", replace)
    path = save_regression_case(tmp_path, _case())
    assert renames == [(renames[0][0], str(path))]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def replace(source: str, destination: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(regressions.os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        save_regression_case(tmp_path, _case())
    assert not list(tmp_path.iterdir())


# -- from a check -------------------------------------------------------------------------------

TARGET = target_from_mapping(
    {
        "name": "unit target",
        "ws_url": "ws://127.0.0.1:1",
        "http_url": "http://127.0.0.1:1",
        "app_id": "1",
        "key": "k",
        "secret": "s",
    }
)


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop:
        yield loop


def _ctx(runner: asyncio.Runner, settings: RunSettings) -> CheckContext:
    check = Check("PROTO-PING-07", "ws-pings", "t", "property", {}, property_name="model")
    return CheckContext(TARGET, settings, check, runner)


def test_save_counterexample_saves_and_copies_into_the_report(
    tmp_path: Path, runner: asyncio.Runner
) -> None:
    settings = RunSettings(
        profile="thorough", seed=42, report_dir=tmp_path / "report", regressions_dir=tmp_path / "r"
    )
    ctx = _ctx(runner, settings)
    path = save_counterexample(ctx, "websocket_ping_answered", PARAMS, failure="no pong")
    assert path is not None
    assert path.parent == tmp_path / "r"
    copy = tmp_path / "report" / "regressions" / path.name
    assert copy.read_text() == path.read_text()
    case = load_yaml(path.read_text())
    assert case["regression_of"] == "PROTO-PING-07"
    assert case["property"] == "websocket_ping_answered"
    found = case["found"]
    assert {k: found[k] for k in ("check", "profile", "seed", "target", "failure")} == {
        "check": "PROTO-PING-07/ws-pings",
        "profile": "thorough",
        "seed": 42,
        "target": "unit target",
        "failure": "no pong",
    }
    assert any(str(path) in e.get("message", "") for e in ctx.transcript.entries)


def test_save_counterexample_into_the_report_itself_makes_no_copy(
    tmp_path: Path, runner: asyncio.Runner
) -> None:
    settings = RunSettings(report_dir=tmp_path, regressions_dir=tmp_path / "regressions")
    path = save_counterexample(_ctx(runner, settings), "p", {}, failure="x")
    assert path is not None
    assert list((tmp_path / "regressions").iterdir()) == [path]


def test_save_counterexample_when_saving_is_off_or_impossible(
    tmp_path: Path, runner: asyncio.Runner
) -> None:
    off = _ctx(runner, RunSettings(report_dir=tmp_path, regressions_dir=None))
    assert save_counterexample(off, "p", {}, failure="x") is None
    (tmp_path / "a-file").write_text("")
    blocked = _ctx(runner, RunSettings(report_dir=tmp_path, regressions_dir=tmp_path / "a-file"))
    assert save_counterexample(blocked, "p", {}, failure="x") is None
    notes = [e["message"] for e in blocked.transcript.entries if e["kind"] == "note"]
    assert notes
    assert notes[0].startswith("could not save the regression case in ")


# -- where a run saves them ---------------------------------------------------------------------


def test_a_writable_checkout_keeps_cases_next_to_its_specs(tmp_path: Path) -> None:
    specs, report = tmp_path / "specs", tmp_path / "report"
    specs.mkdir()
    assert regressions_dir(specs, report, given=None, save=True) == specs / "regressions"


def test_installed_specs_send_cases_to_the_report(tmp_path: Path) -> None:
    specs = tmp_path / "lib" / "site-packages" / "conformance" / "specs"
    specs.mkdir(parents=True)
    report = tmp_path / "report"
    assert regressions_dir(specs, report, given=None, save=True) == report / "regressions"
    dist = tmp_path / "dist-packages" / "specs"
    dist.mkdir(parents=True)
    assert regressions_dir(dist, report, given=None, save=True) == report / "regressions"


def test_read_only_specs_send_cases_to_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs, report = tmp_path / "specs", tmp_path / "report"
    specs.mkdir()
    # (as root, chmod would not stop a write: ask the access check directly)
    monkeypatch.setattr("conformance.options.os.access", lambda path, mode: False)
    assert regressions_dir(specs, report, given=None, save=True) == report / "regressions"


def test_an_explicit_directory_or_no_saving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    specs, report = tmp_path / "specs", tmp_path / "report"
    assert regressions_dir(specs, report, given="mine", save=True) == tmp_path / "mine"
    assert regressions_dir(specs, report, given=None, save=False) is None
    with pytest.raises(UsageError, match="not both"):
        regressions_dir(specs, report, given="mine", save=False)
