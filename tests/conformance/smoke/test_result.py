"""What a smoke run reports: the exit code a pipeline acts on, the JSON it reads, the lines a
person reads."""

from __future__ import annotations

import json
import re

import pytest

from conformance.smoke.render import render_lines, step_line, summary_line
from conformance.smoke.result import STEP_NAMES, SmokeResult, Status, StepResult, not_run


def _result(*steps: StepResult, unreachable: str | None = None) -> SmokeResult:
    return SmokeResult(
        target="prod",
        ws_url="wss://ws.example.test",
        http_url="https://ws.example.test",
        deadline_s=10,
        elapsed_s=0.42,
        steps=steps,
        unreachable=unreachable,
    )


PASSED = StepResult("connect", Status.PASSED, figure="23 ms (second user 25 ms)", ms=23.4)
FAILED = StepResult("trigger to two users", Status.FAILED, reason="user b got nothing", ms=3000)
SKIPPED = StepResult("health", Status.SKIPPED, figure="no --health-url")


@pytest.mark.parametrize(
    ("steps", "unreachable", "code"),
    [
        ((PASSED, SKIPPED), None, 0),
        ((PASSED, FAILED, not_run("channel info", "needs connect")), None, 1),
        ((), "nothing answers at ws.example.test:443", 3),
    ],
)
def test_exit_code(steps: tuple[StepResult, ...], unreachable: str | None, code: int) -> None:
    assert _result(*steps, unreachable=unreachable).exit_code == code


def test_json_is_stable_and_holds_every_step() -> None:
    data = _result(PASSED, FAILED, SKIPPED).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["ok"] is False
    assert data["exit_code"] == 1
    assert (data["passed"], data["failed"], data["skipped"]) == (1, 1, 1)
    assert [s["status"] for s in data["steps"]] == ["passed", "failed", "skipped"]
    assert data["steps"][1]["reason"] == "user b got nothing"
    assert "secret" not in json.dumps(data)


def test_lines_mark_each_step_and_name_the_reason() -> None:
    assert step_line(PASSED).startswith("✓ connect ")
    assert step_line(PASSED).endswith("23 ms (second user 25 ms)")
    assert step_line(FAILED).startswith("✗ trigger to two users")
    assert step_line(FAILED).endswith("user b got nothing")
    assert step_line(SKIPPED).endswith("skipped: no --health-url")
    timed = StepResult("public subscribe", Status.PASSED, figure="2 users subscribed", ms=3.2)
    assert step_line(timed).endswith("2 users subscribed (3 ms)")


def test_summary_says_the_verdict_and_never_looks_like_a_test_runner_count() -> None:
    runner_count = re.compile(r"\d+ passed, \d+ failed")
    for result in (
        _result(PASSED, SKIPPED),
        _result(PASSED, FAILED),
        _result(unreachable="nothing answers"),
    ):
        lines = render_lines(result)
        assert not any(runner_count.search(line) for line in lines)
    assert summary_line(_result(PASSED, SKIPPED)).startswith("smoke: PASS")
    assert "(trigger to two users)" in summary_line(_result(PASSED, FAILED))
    assert summary_line(_result(unreachable="nothing answers")).startswith("smoke: UNREACHABLE")


def test_step_names_are_the_documented_ones() -> None:
    assert STEP_NAMES[0] == "wss only"
    assert len(set(STEP_NAMES)) == len(STEP_NAMES) == 9
