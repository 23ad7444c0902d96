"""Faults are checked when built: one line naming the fault, the field and the value."""

from __future__ import annotations

import random
from typing import Any

import pytest

from conformance.errors import UsageError
from conformance.proxy.faults import (
    CutAfter,
    Latency,
    ProxyScheduleError,
    Stall,
    WsClose,
    fault_from_params,
)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Latency(-1), "latency: ms must be a number >= 0, got -1"),
        (lambda: Latency(10, jitter_ms=True), "latency: jitter_ms must be a number"),
        (lambda: Stall("sideways"), "stall: direction must be one of up, down, both"),
        (lambda: CutAfter(10, "both"), "cut_after: direction must be one of up, down"),
        (lambda: CutAfter(-3, "up"), "cut_after: bytes must be a whole number >= 0, got -3"),
        (lambda: WsClose(999), "ws_close: code must be a whole number from 1000 to 4999"),
        (lambda: WsClose(5000), "got 5000"),
        (lambda: WsClose(4000, "é" * 62), "at most 123 UTF-8 bytes"),
    ],
)
def test_bad_faults_are_refused_by_field(build: Any, message: str) -> None:
    with pytest.raises(ProxyScheduleError, match=message):
        build()


def test_schedule_errors_are_usage_errors() -> None:
    assert issubclass(ProxyScheduleError, UsageError)


def test_a_123_byte_reason_is_the_longest_allowed() -> None:
    assert WsClose(4999, "x" * 123).reason == "x" * 123


def test_fault_from_params_names_unknown_and_missing_fields() -> None:
    assert fault_from_params("stall", {"direction": "up"}) == Stall("up")
    with pytest.raises(ProxyScheduleError, match="unknown fault 'lag'"):
        fault_from_params("lag", {})
    with pytest.raises(ProxyScheduleError, match=r"latency: unknown field\(s\) msec"):
        fault_from_params("latency", {"msec": 3})
    with pytest.raises(ProxyScheduleError, match=r"cut_after: missing field\(s\) bytes"):
        fault_from_params("cut_after", {"direction": "up"})


def test_jitter_is_drawn_from_the_given_source_and_never_negative() -> None:
    latency = Latency(5, jitter_ms=20)
    rng = random.Random(1)
    draws = [latency.draw(rng) for _ in range(200)]
    assert draws[0] == latency.draw(random.Random(1))
    assert all(0 <= d <= 0.025 for d in draws)
    assert min(draws) == 0.0
    assert Latency(30).draw(random.Random(0)) == pytest.approx(0.03)


def test_params_are_what_the_log_shows() -> None:
    assert WsClose(4200, "bye").params() == {"code": 4200, "reason": "bye"}
    assert CutAfter(5, "down").params() == {"bytes": 5, "direction": "down"}
