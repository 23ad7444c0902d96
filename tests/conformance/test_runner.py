"""Running one check: its time budget, its outcome from what it raised, and its event loop."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conformance.context import RunSettings
from conformance.errors import CheckFailed, CheckOverBudget, PreconditionFailed, TargetError
from conformance.loop import LoopThread
from conformance.outcomes import CheckOutcome
from conformance.runner import (
    budget_for,
    classify,
)
from conformance.target import Target, Timings


def _target(activity: float | None, pong: float | None) -> Target:
    return Target(
        name="t", ws_url="ws://127.0.0.1:1", http_url="http://127.0.0.1:1", app_id="1",
        key="k", secret="s", capabilities=frozenset(), timings=Timings(activity, pong),
    )  # fmt: skip


def _settings(multiplier: float = 1.0) -> RunSettings:
    return RunSettings(
        profile="ci", seed=0, timeout_multiplier=multiplier, report_dir=Path("."),
        replay_prefix="conformance run", webhook_control=None, max_examples=None,
        regressions_dir=None,
    )  # fmt: skip


def test_budgets_leave_room_for_the_timers_and_scale_with_the_multiplier() -> None:
    exchange: Any = SimpleNamespace(kind="exchange")
    prop: Any = SimpleNamespace(kind="property")
    quick = budget_for(_target(3, 2), _settings(), exchange, 12, waits_on_timers=False)
    assert quick == pytest.approx(30)
    timed = budget_for(_target(3, 2), _settings(), exchange, 12, waits_on_timers=True)
    assert timed == pytest.approx(30 + 2 * 3 + 2 * 2)
    explored = budget_for(_target(3, 2), _settings(), prop, 12, waits_on_timers=False)
    assert explored == pytest.approx(30 + 12 * 1.5 + 30 + 30)
    doubled = budget_for(_target(3, 2), _settings(2.0), exchange, 12, waits_on_timers=True)
    assert doubled == pytest.approx(2 * timed)
    # Undeclared timers: the protocol's defaults (120 s activity, 30 s pong).
    default = budget_for(_target(None, None), _settings(), exchange, 0, waits_on_timers=True)
    assert default == pytest.approx(330)


def test_a_spent_budget_ends_the_wait_at_once() -> None:
    import asyncio

    with LoopThread(budget=0.2) as runner:
        began = time.monotonic()
        with pytest.raises(CheckOverBudget):
            runner.run(asyncio.sleep(30))
        assert time.monotonic() - began < 2
        runner.deadline = None
        assert runner.run(asyncio.sleep(0, result=7)) == 7


def test_over_budget_is_not_an_exception_hypothesis_would_shrink() -> None:
    assert not issubclass(CheckOverBudget, Exception)


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (CheckFailed("no"), CheckOutcome.FAILED),
        (PreconditionFailed("setup"), CheckOutcome.INCONCLUSIVE),
        (TargetError("refused"), CheckOutcome.ERROR),
        (RuntimeError("bug"), CheckOutcome.ERROR),
        (ExceptionGroup("two", [PreconditionFailed("a"), CheckFailed("b")]), CheckOutcome.FAILED),
    ],
)
def test_every_exception_has_an_outcome(exc: BaseException, outcome: CheckOutcome) -> None:
    assert classify(exc)[0] is outcome


def test_an_aborted_loop_ends_the_wait_at_once_and_every_later_one() -> None:
    import asyncio

    with LoopThread(budget=60) as runner:
        threading.Timer(0.2, runner.abort).start()
        began = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            runner.run(asyncio.sleep(30))
        assert time.monotonic() - began < 5
        with pytest.raises(KeyboardInterrupt):
            runner.run(asyncio.sleep(0))
