"""Schedules: loading with one-line errors, and when each step comes due (no sockets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conformance.proxy.faults import Latency, ProxyScheduleError, Reset, Resume, Stall, WsClose
from conformance.proxy.schedule import load_schedule, schedule_from_mapping, seeded_rng

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "proxy"


def _schedule(*steps: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"name": "s", **top, "steps": list(steps)}


def test_the_fixture_schedules_load() -> None:
    names = sorted(p.name for p in FIXTURES.glob("*.yaml"))
    assert names == ["flaky-mobile.yaml", "server-close-4200.yaml", "stall-then-reset.yaml"]
    flaky = load_schedule(FIXTURES / "flaky-mobile.yaml")
    faults = [s.fault for s in flaky.steps]
    assert any(isinstance(f, Latency) and f.jitter_ms for f in faults)
    assert Stall("both") in faults
    assert Resume() in faults
    assert Reset() in faults
    stall = next(s for s in flaky.steps if s.fault == Stall("both"))
    resume = next(s for s in flaky.steps if s.fault == Resume())
    assert resume.at - stall.at == 3
    close = load_schedule(FIXTURES / "server-close-4200.yaml")
    assert [s.fault for s in close.steps] == [WsClose(4200, "reconnect immediately")]
    assert load_schedule(FIXTURES / "stall-then-reset.yaml").steps[-1].fault == Reset()


def test_steps_come_due_in_time_order_once() -> None:
    schedule = schedule_from_mapping(
        _schedule(
            {"at": 2, "fault": "reset"},
            {"at": 0, "fault": "latency", "ms": 50},
            {"at": 1, "fault": "stall", "direction": "down"},
            {"at": 1, "fault": "resume"},
        )
    )
    cursor = schedule.cursor(0)
    assert cursor.next_at == 0
    assert [i.fault for i in cursor.due(0)] == [Latency(50)]
    assert cursor.due(0.5) == []
    assert cursor.next_at == 1
    due = cursor.due(1.7)
    assert [(i.step, i.fault) for i in due] == [(3, Stall("down")), (4, Resume())]
    assert [i.fault for i in cursor.due(10)] == [Reset()]
    assert cursor.next_at is None
    assert cursor.due(100) == []


def test_steps_apply_to_the_connections_they_name() -> None:
    schedule = schedule_from_mapping(
        _schedule({"at": 0, "fault": "reset", "connections": [1, 3]}, {"at": 1, "fault": "resume"})
    )
    assert [i.fault for i in schedule.cursor(0).due(5)] == [Resume()]
    assert [i.fault for i in schedule.cursor(3).due(5)] == [Reset(), Resume()]


def test_the_seed_is_the_files_unless_overridden(tmp_path: Path) -> None:
    file = tmp_path / "s.yaml"
    file.write_text("name: s\nseed: 7\nsteps: [{at: 0, fault: reset}]\n", encoding="utf-8")
    assert load_schedule(file).seed == 7
    assert load_schedule(file, seed=11).seed == 11
    assert schedule_from_mapping(_schedule({"at": 0, "fault": "reset"})).seed == 0


def test_the_random_draws_replay_per_seed_connection_and_direction() -> None:
    def draws(seed: int, connection: int, direction: str) -> list[float]:
        rng = seeded_rng(seed, connection, direction)
        return [rng.random() for _ in range(5)]

    assert draws(3, 0, "up") == draws(3, 0, "up")
    assert draws(3, 0, "up") != draws(4, 0, "up")
    assert draws(3, 0, "up") != draws(3, 1, "up")
    assert draws(3, 0, "up") != draws(3, 0, "down")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "f.yaml: must hold a mapping"),
        ({"name": "s", "steps": [], "extra": 1}, r"f.yaml: unknown field\(s\) extra"),
        ({"steps": [{"at": 0, "fault": "reset"}]}, "f.yaml: field 'name' must be"),
        (_schedule(seed="x"), "f.yaml: field 'seed' must be a whole number, got 'x'"),
        (_schedule(), "f.yaml: field 'steps' must be a non-empty list"),
        (_schedule({"fault": "reset"}), "f.yaml: step 1 \\(reset\\): missing field 'at'"),
        (
            _schedule({"at": 0, "fault": "reset"}, {"at": -1, "fault": "reset"}),
            "f.yaml: step 2 \\(reset\\): field 'at' must be a number of seconds >= 0, got -1",
        ),
        (_schedule({"at": "soon", "fault": "reset"}), "field 'at' must be a number"),
        (_schedule({"at": 0}), "step 1: missing field 'fault'"),
        (_schedule({"at": 0, "fault": "lag"}), "step 1 \\(lag\\): unknown fault 'lag'"),
        (
            _schedule({"at": 0, "fault": "latency", "ms": -5}),
            "step 1 \\(latency\\): latency: ms must be a number >= 0, got -5",
        ),
        (
            _schedule({"at": 0, "fault": "reset", "direction": "up"}),
            r"step 1 \(reset\): reset: unknown field\(s\) direction",
        ),
        (
            _schedule({"at": 0, "fault": "reset", "connections": "some"}),
            "field 'connections' must be 'all' or a non-empty list",
        ),
        (
            _schedule({"at": 0, "fault": "reset", "connections": [-1]}),
            "field 'connections' must be",
        ),
        (_schedule("reset"), "step 1: must be a mapping"),
    ],
)
def test_invalid_schedules_are_one_line_errors(data: Any, message: str) -> None:
    with pytest.raises(ProxyScheduleError, match=message) as info:
        schedule_from_mapping(data, source="f.yaml")
    assert "\n" not in str(info.value)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ProxyScheduleError, match="schedule file not found"):
        load_schedule(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [\n", encoding="utf-8")
    with pytest.raises(ProxyScheduleError, match=r"bad\.yaml: not valid YAML"):
        load_schedule(bad)
