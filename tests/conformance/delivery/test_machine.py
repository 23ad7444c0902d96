"""The state machine's plumbing, without a target: rules by weight, the violation dug out of
what hypothesis raises, the shrink budget put back, and what the rules turn into."""

from __future__ import annotations

import dataclasses
from collections import Counter
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis.stateful import RULE_MARKER

from conformance.context import CheckContext
from conformance.delivery.config import ModelConfig, model_config
from conformance.delivery.machine import (
    ModelViolation,
    _rules,
    build_machine,
    find_violation,
    judge_and_raise,
)
from conformance.delivery.model import Judgement, Violation
from conformance.delivery.operations import Check, Connect, Subscribe, Trigger, Unsubscribe
from conformance.spec import default_specs_dir, load_yaml

RAW: dict[str, Any] = load_yaml((default_specs_dir() / "delivery.yaml").read_text())["models"][
    "delivery"
]
NO_CTX = cast(CheckContext, None)


def config(capabilities: frozenset[str] = frozenset({"client_events"})) -> ModelConfig:
    return model_config(RAW, "ci", capabilities)


def registered(machine: type) -> Counter[str]:
    """Rule name (copies folded together) -> how many rules the machine has for it."""
    names = [n for n, v in vars(machine).items() if getattr(v, RULE_MARKER, None) is not None]
    base = {n: n.rsplit("_", 1)[0] if n.rsplit("_", 1)[-1].isdigit() else n for n in names}
    return Counter(base.values())


def test_each_rule_is_registered_as_often_as_its_weight() -> None:
    chosen = config()
    machine = build_machine(NO_CTX, chosen, {"order"})
    assert registered(machine) == Counter({k: v for k, v in chosen.weights.items() if v})
    assert {"connect", "connect_2", "connect_3"} <= set(vars(machine))
    assert "connect_4" not in vars(machine)
    assert machine.aspects == {"order"}
    assert machine.config is chosen


def test_weight_zero_leaves_a_rule_out() -> None:
    weights = {**config().weights, "query": 0, "batch": 1}
    machine = build_machine(NO_CTX, dataclasses.replace(config(), weights=weights), set())
    counts = registered(machine)
    assert "query" not in counts
    assert counts["batch"] == 1
    without_client_events = build_machine(NO_CTX, config(frozenset()), set())
    assert "client_event" not in registered(without_client_events)


def test_rules_over_missing_channel_kinds_are_left_out() -> None:
    bounds = dataclasses.replace(config().bounds, public=1, private=0, presence=0)
    rules = set(_rules(dataclasses.replace(config(), bounds=bounds)))
    assert "subscribe_public" in rules
    assert not rules & {
        "subscribe_private",
        "subscribe_presence",
        "subscribe_invalid_auth",
        "client_event",
        "trigger_multi",  # needs two channels
    }


class FakeMachine:
    def __init__(self, subscriptions: dict[str, set[str]]) -> None:
        self.subscriptions = subscriptions
        self.conns = ["c0", "c1"]

    def is_open(self, conn: str) -> bool:
        return conn in self.subscriptions

    def channels_of(self, conn: str) -> set[str]:
        return set(self.subscriptions.get(conn, set()))


def test_rules_turn_draws_into_operations_for_the_current_state() -> None:
    rules = _rules(config())
    m = FakeMachine({"c0": {"private0"}})

    def make(name: str, **drawn: Any) -> Any:
        return rules[name][1](m, **drawn)

    assert make("subscribe_public", conn="c1", channel="public0") == [
        Connect("c1"),
        Subscribe("c1", "public0"),
    ]
    assert make("subscribe_racing", conn="c0", channel="public0") == [
        Subscribe("c0", "public0", racing=True)
    ]
    assert make("subscribe_private", conn="c0", channel="private0") is None
    assert make("unsubscribe", conn="c0", channel="private0") == Unsubscribe("c0", "private0")
    assert make("unsubscribe", conn="c1", channel="private0") is None
    assert make("connect", conn="c0") is None
    assert make("connect", conn="c1") == Connect("c1")
    # Excluding a connection publishes where it is subscribed, so the exclusion matters.
    assert make("trigger_excluding", conn="c0", channel="public1") == Trigger(
        ("private0",), exclude="c0"
    )
    assert make("trigger_excluding", conn="c1", channel="public1") is None
    assert make("check") == Check()
    assert rules["check"][1](FakeMachine({})) is None


def test_find_violation_digs_through_exception_groups() -> None:
    found = ModelViolation([Violation("order", "late")], [Check()])
    assert find_violation(found) is found
    nested = BaseExceptionGroup(
        "replays disagree",
        [ValueError("flaky"), ExceptionGroup("inner", [KeyError("k"), found])],
    )
    assert find_violation(nested) is found
    assert find_violation(ExceptionGroup("none", [ValueError("x")])) is None
    assert find_violation(RuntimeError("x")) is None


def test_model_violation_says_how_many_and_the_first() -> None:
    violation = ModelViolation(
        [Violation("order", "first one"), Violation("no_leak", "second")], [Check(), Check()]
    )
    assert str(violation) == "2 violation(s): first one"
    assert violation.steps == (Check(), Check())


def test_judge_and_raise_raises_only_for_asserted_aspects() -> None:
    notes: list[str] = []
    ctx = cast(CheckContext, SimpleNamespace(transcript=SimpleNamespace(note=notes.append)))
    judgement = Judgement(
        (Violation("order", "out of order"), Violation("no_leak", "leaked")), tallies={}
    )
    judge_and_raise(ctx, judgement, {"exactly_once"}, [Check()])
    assert notes == [
        "not asserted here (order): out of order",
        "not asserted here (no_leak): leaked",
    ]
    with pytest.raises(ModelViolation) as raised:
        judge_and_raise(ctx, judgement, {"no_leak"}, [Check()])
    assert raised.value.violations == (Violation("no_leak", "leaked"),)
    assert raised.value.steps == (Check(),)
