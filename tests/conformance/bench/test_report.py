"""The bench report from made-up phase results: ratios always reference / Soketi, called
better or worse by the figure's direction, the CPU and loss rows beside every phase, and a
bench.json that holds to schemas/bench.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

from conformance.bench.model import BenchSettings, BenchTarget, PhaseResult
from conformance.bench.report import (
    BenchRun,
    console_table,
    outcome_code,
    ratios,
    table_rows,
    to_json,
    to_markdown,
)
from conformance.bench.servers import REFERENCE_NAME, SOKETI_NAME

SCHEMA = json.loads(
    (Path(__file__).parents[3] / "schemas" / "bench.schema.json").read_text(encoding="utf-8")
)
PHASES = ("idle", "connect", "fanout-events-100", "latency-1", "stalled")


def _target(name: str, port: int) -> BenchTarget:
    return BenchTarget(
        name, f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", "1", "key", "secret", 4242
    )


def _results(scale: float, *, loss: int = 0) -> tuple[PhaseResult, ...]:
    """One target's results; ``scale`` multiplies every rate (times and memory divide)."""
    return (
        PhaseResult("idle", {"connections": 10_000, "rss_kb_per_connection": 22.0 / scale}),
        PhaseResult(
            "connect",
            {"p50_ms": 20.0 / scale, "p99_ms": 73.9 / scale, "per_s": 3500 * scale, "failed": 0},
            server_cpu_percent=97.0,
            loadgen_cpu_percent=140.0,
        ),
        PhaseResult(
            "fanout-events-100",
            {"deliveries_per_s": 85_500 * scale, "events": 2000, "subscribers": 100},
            loss=loss,
        ),
        PhaseResult("latency-1", {"p50_ms": 1.31, "p99_ms": 1.82 * scale, "rate": 200}),
        PhaseResult(
            "stalled",
            {"others_per_s": 50_000.0, "ratio": 0.9, "stalled_close_code": 4100, "x_new": 3},
        ),
    )


def _run(ours: float = 1.0, theirs: float = 1.0, *, loss: int = 0) -> BenchRun:
    return BenchRun(
        settings=BenchSettings(phases=PHASES),
        targets=(_target(REFERENCE_NAME, 1), _target(SOKETI_NAME, 2)),
        results={REFERENCE_NAME: _results(ours, loss=loss), SOKETI_NAME: _results(theirs)},
        started="2024-01-01T00:00:00+00:00",
        seconds=12.5,
        notes=("a note",),
    )


def test_ratios_are_reference_over_soketi_and_judged_by_direction() -> None:
    # The reference server at 0.5x Soketi's speed: rates halve, times and memory double.
    found = {(r.phase, r.figure): r for r in ratios(_run(ours=0.5))}
    fanout = found[("fanout-events-100", "deliveries_per_s")]
    assert fanout.ratio == pytest.approx(0.5)
    assert (fanout.better_is, fanout.verdict) == ("higher", "worse")
    p99 = found[("connect", "p99_ms")]
    assert p99.ratio == pytest.approx(2.0)
    assert (p99.better_is, p99.verdict) == ("lower", "worse")
    assert found[("idle", "rss_kb_per_connection")].verdict == "worse"
    # Latency p99 scales up with the rate in _results: half the scale is half the time.
    assert found[("latency-1", "p99_ms")].verdict == "better"
    assert found[("latency-1", "p50_ms")].verdict == "same (within 5%)"
    # Counts with no direction are shown but never compared.
    assert ("fanout-events-100", "events") not in found
    assert ("idle", "connections") not in found


def test_a_ratio_within_five_percent_is_the_same_and_a_missing_figure_is_not_compared() -> None:
    found = {(r.phase, r.figure): r for r in ratios(_run(ours=1.04))}
    assert found[("fanout-events-100", "deliveries_per_s")].verdict == "same (within 5%)"
    run = _run()
    broken = (PhaseResult("connect", {}, error="boom"),)
    run = BenchRun(run.settings, run.targets, {**run.results, SOKETI_NAME: broken}, "", 1.0)
    connect = {r.figure: r for r in ratios(run) if r.phase == "connect"}
    assert connect["p99_ms"].ratio is None
    assert connect["p99_ms"].verdict == "not compared"


def test_without_both_servers_there_are_no_ratios() -> None:
    run = _run()
    alone = BenchRun(
        run.settings, run.targets[:1], {REFERENCE_NAME: run.results[REFERENCE_NAME]}, "", 1.0
    )
    assert ratios(alone) == []
    assert "comparison" not in to_json(alone, 0)
    assert all(row.ratio == "" for row in table_rows(alone))


def test_every_phase_shows_cpu_and_loss_beside_its_figures() -> None:
    rows = list(table_rows(_run(loss=3)))
    connect = [row for row in rows if row.phase == "connect"]
    assert [row.figure for row in connect] == [
        "connect p50",
        "connect p99",
        "connections/s",
        "failed connects",
        "CPU server / load gen",
        "loss / duplicates",
    ]
    assert connect[-2].values == ("97% / 140%", "97% / 140%")
    fanout_loss = next(
        r for r in rows if r.phase.startswith("fanout") and r.figure.startswith("loss")
    )
    assert fanout_loss.values == ("3 / 0", "0 / 0")
    # A figure the report does not know is still shown, after the known ones.
    stalled = [row.figure for row in rows if row.phase == "stalled"]
    assert stalled.index("x_new") > stalled.index("stalled one closed with")


def test_the_console_table_and_markdown_carry_the_same_rows() -> None:
    run = _run(ours=0.5)
    console = Console(record=True, width=220)
    console.print(console_table(run))
    text = console.export_text()
    markdown = to_markdown(run)
    for expected in ("reference / soketi", "deliveries/s", "0.50x", "worse", "42,750/s"):
        assert expected in text
        assert expected in markdown
    header = next(line for line in markdown.splitlines() if line.startswith("| phase"))
    assert header.count("|") == 8  # phase, figure, 2 targets, ratio, better is, verdict
    assert "note: a note" in markdown


def test_bench_json_holds_to_its_schema() -> None:
    data = to_json(_run(ours=0.8, loss=1), 1)
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert data["comparison"]["reference"] == REFERENCE_NAME
    assert data["results"][SOKETI_NAME][2]["figures"]["deliveries_per_s"] == 85_500
    assert "secret" not in json.dumps(data["targets"])
    alone = BenchRun(
        BenchSettings(phases=("connect",)),
        (_target("example.org", 3),),
        {"example.org": (PhaseResult("connect", {"p50_ms": None}, error="refused"),)},
        "2024-01-01T00:00:00+00:00",
        1.0,
    )
    jsonschema.Draft202012Validator(SCHEMA).validate(to_json(alone, 1))


def test_the_schema_refuses_what_the_writer_never_writes() -> None:
    data = to_json(_run(), 0)
    data["results"][REFERENCE_NAME][0]["extra"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(data)
    data = to_json(_run(), 0)
    data["settings"]["phases"] = ["warp-speed"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(data)


def test_loss_duplicates_or_an_error_anywhere_make_the_outcome_1() -> None:
    assert outcome_code(_run().results) == 0
    assert outcome_code(_run(loss=1).results) == 1
    assert outcome_code({"x": (PhaseResult("relay", {}, duplicates=2),)}) == 1
    assert outcome_code({"x": (PhaseResult("relay", {}, error="timed out"),)}) == 1


def test_notes_and_the_busiest_load_generator_process_are_shown() -> None:
    run = _run()
    noted = PhaseResult(
        "relay",
        {"relayed_per_s": 1600.0},
        loadgen_cpu_percent=130.0,
        loadgen_cpu_by_process={"publisher": 20.0, "worker-0": 99.0, "worker-1": 11.0},
        notes=("worker-0 at 99% of a core: the load generator may be the limit", "more"),
    )
    run = BenchRun(run.settings, run.targets[:1], {REFERENCE_NAME: (noted,)}, "", 1.0)
    rows = {row.figure: row.values for row in table_rows(run)}
    assert rows["CPU server / load gen"] == ("— / 130% (worker-0 99%)",)
    assert rows["notes"] == (
        "worker-0 at 99% of a core: the load generator may be the limit; more",
    )
    jsonschema.Draft202012Validator(SCHEMA).validate(to_json(run, 0))
