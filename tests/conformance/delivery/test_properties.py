"""The delivery properties' helpers: which aspects a check asserts, and the step list printed
in a failure (YAML that reads back as the same operations)."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.delivery.model import ASPECTS
from conformance.delivery.operations import (
    Batch,
    BatchItem,
    Check,
    ClientEvent,
    Connect,
    Disconnect,
    Operation,
    Query,
    Subscribe,
    Trigger,
    Unsubscribe,
    operations_from_list,
)
from conformance.errors import UsageError
from conformance.properties.delivery import aspects_of, format_steps
from conformance.spec import load_yaml

STEPS: list[Operation] = [
    Connect("c0"),
    Subscribe("c0", "presence0", racing=True),
    Subscribe("c1", "private1", auth="invalid"),
    Unsubscribe("c0", "presence0"),
    Trigger(("public0", "private1", "presence0"), exclude="c0", count=4),
    Batch((BatchItem("public0"), BatchItem("private0", exclude="c10"))),
    ClientEvent("c1", "private1"),
    Query("presence0"),
    Disconnect("c0"),
    Check(),
]


def test_aspects_default_to_all() -> None:
    assert aspects_of({}) == set(ASPECTS)
    assert aspects_of({"assert": ["order", "no_leak"]}) == {"order", "no_leak"}


@pytest.mark.parametrize("value", [[], "order", ["order", "speed"], None, {"order": 1}])
def test_bad_aspects_are_usage_errors(value: Any) -> None:
    with pytest.raises(UsageError) as raised:
        aspects_of({"assert": value})
    assert str(raised.value) == f"assert must be a non-empty list of: {', '.join(ASPECTS)}"


def test_formatted_steps_read_back_as_the_same_operations() -> None:
    text = format_steps(STEPS)
    assert not text.endswith("\n")
    assert text.splitlines()[0] == "- connect: {conn: c0}"
    assert operations_from_list(load_yaml(text)) == STEPS


def test_formatted_steps_stay_readable() -> None:
    text = format_steps([Trigger(("public0",), count=2), Check()])
    assert text == "- trigger:\n    channels: [public0]\n    count: 2\n- check: {}"
