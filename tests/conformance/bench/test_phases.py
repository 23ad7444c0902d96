"""Phase names, and what a phase's record turns into."""

from __future__ import annotations

import pytest

from conformance.bench.model import ALL_PHASES
from conformance.bench.orders import OpenReport, iter_split
from conformance.bench.phases import PhaseRecord, PhaseSpec, merge_open_reports, parse_phase
from conformance.bench.procstat import CpuSample
from conformance.bench.tally import TallySummary


def test_every_default_phase_parses() -> None:
    kinds = {parse_phase(name).kind for name in ALL_PHASES}
    assert kinds == {"idle", "connect", "fanout", "relay", "latency", "stalled"}


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("fanout-events-100", PhaseSpec("fanout", "events", 100)),
        ("fanout-batch-1", PhaseSpec("fanout", "batch", 1)),
        ("latency-250", PhaseSpec("latency", None, 250)),
        ("stalled", PhaseSpec("stalled")),
    ],
)
def test_names_with_their_sizes(name: str, spec: PhaseSpec) -> None:
    assert parse_phase(name) == spec


@pytest.mark.parametrize(
    "name", ["", "fanout", "fanout-events", "fanout-http-10", "latency-x", "idle-3", "Relay"]
)
def test_unknown_names_say_which_there_are(name: str) -> None:
    with pytest.raises(ValueError, match=r"unknown bench phase .*expected idle, connect"):
        parse_phase(name)


@pytest.mark.parametrize("name", ["fanout-events-0", "latency-0"])
def test_no_subscribers_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="at least 1 subscriber"):
        parse_phase(name)


def test_the_record_becomes_a_result_with_each_sides_cpu() -> None:
    record = PhaseRecord(figures={"p50_ms": 1.5})
    record.window_start = {
        "server": CpuSample(10.0, 100.0),
        "publisher": CpuSample(1.0, 100.0),
        "worker-0": CpuSample(2.0, 100.0),
        "worker-1": CpuSample(None, 100.0),
    }
    record.window_end = {
        "server": CpuSample(11.8, 102.0),
        "publisher": CpuSample(1.5, 102.0),
        "worker-0": CpuSample(3.0, 102.0),
        "worker-1": CpuSample(None, 102.0),
    }
    record.count(TallySummary(2, 10, 9, 3, 1, 4, 1.0, 2.0))
    record.note("a note")
    record.note("a note")
    record.fail("first")
    record.fail("second")
    result = record.result("latency-1", 3.14159)
    assert result.server_cpu_percent == 90.0
    assert result.loadgen_cpu_percent == 75.0
    assert result.loadgen_cpu_by_process == {"publisher": 25.0, "worker-0": 50.0}
    assert (result.loss, result.duplicates, result.error) == (3, 1, "first")
    assert result.notes == ("4 events with an unexpected sequence number", "a note")
    assert (result.phase, result.seconds, result.figures) == ("latency-1", 3.142, {"p50_ms": 1.5})


def test_without_a_server_pid_its_cpu_is_none() -> None:
    record = PhaseRecord()
    record.window_start = {"publisher": CpuSample(1.0, 1.0)}
    record.window_end = {"publisher": CpuSample(1.1, 2.0)}
    result = record.result("connect", 1.0)
    assert result.server_cpu_percent is None
    assert result.loadgen_cpu_percent == 10.0
    assert result.notes == ()


def test_a_saturated_load_generator_process_is_named() -> None:
    record = PhaseRecord()
    record.window_start = {"publisher": CpuSample(1.0, 1.0), "worker-1": CpuSample(0.0, 1.0)}
    record.window_end = {"publisher": CpuSample(1.95, 2.0), "worker-1": CpuSample(0.3, 2.0)}
    result = record.result("fanout-events-100", 1.0)
    assert result.loadgen_cpu_percent == 125.0
    assert len(result.notes) == 1
    assert "publisher used 95% of a core" in result.notes[0]


def test_shares_are_even_and_cover_everything() -> None:
    assert list(iter_split(10, 3)) == [(0, 4), (4, 3), (7, 3)]
    assert list(iter_split(1, 2)) == [(0, 1), (1, 0)]
    assert sum(count for _, count in iter_split(10_001, 7)) == 10_001


def test_workers_open_reports_merge() -> None:
    a = OpenReport(3, 1, ("refused (x1)",), (1.0, 2.0, 3.0), 10.0, 11.0)
    b = OpenReport(2, 2, ("refused (x1)", "timeout"), (4.0, 5.0), 9.5, 10.5)
    merged = merge_open_reports([a, b])
    assert merged == OpenReport(
        5, 3, ("refused (x1)", "timeout"), (1.0, 2.0, 3.0, 4.0, 5.0), 9.5, 11.0
    )
