"""Operations as data: every operation survives a trip through its YAML form, and a malformed
step list is a UsageError that names what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    channel_kind,
    operation_from_dict,
    operations_from_list,
    operations_to_list,
)
from conformance.errors import UsageError

conns = st.integers(0, 30).map(lambda i: f"c{i}")
channels = st.builds(
    lambda kind, i: f"{kind}{i}",
    st.sampled_from(["public", "private", "presence"]),
    st.integers(0, 30),
)
operations: st.SearchStrategy[Operation] = st.one_of(
    st.builds(Connect, conns),
    st.builds(Disconnect, conns),
    st.builds(Subscribe, conns, channels, st.sampled_from(["valid", "invalid"]), st.booleans()),
    st.builds(Unsubscribe, conns, channels, st.booleans()),
    st.builds(
        Trigger,
        st.lists(channels, min_size=1, max_size=5).map(tuple),
        st.none() | conns,
        st.integers(1, 50),
    ),
    st.builds(
        Batch,
        st.lists(st.builds(BatchItem, channels, st.none() | conns), min_size=1, max_size=10).map(
            tuple
        ),
    ),
    st.builds(ClientEvent, conns, channels),
    st.builds(Query, channels),
    st.just(Check()),
)

EVERY_KIND: list[Operation] = [
    Connect("c0"),
    Disconnect("c1"),
    Subscribe("c2", "presence1", auth="invalid", racing=True),
    Unsubscribe("c3", "private0", racing=True),
    Trigger(("public0", "private1"), exclude="c4", count=3),
    Batch((BatchItem("public0"), BatchItem("presence0", exclude="c1"))),
    ClientEvent("c5", "private2"),
    Query("presence3"),
    Check(),
]


@given(operations)
def test_every_operation_round_trips(op: Operation) -> None:
    as_dict = op.to_dict()
    assert list(as_dict) == [op.kind]
    assert operation_from_dict(as_dict) == op


def test_each_kind_round_trips_through_a_list() -> None:
    listed = operations_to_list(EVERY_KIND)
    assert [next(iter(step)) for step in listed] == [
        "connect",
        "disconnect",
        "subscribe",
        "unsubscribe",
        "trigger",
        "batch",
        "client_event",
        "query",
        "check",
    ]
    assert operations_from_list(listed) == EVERY_KIND


def test_defaults_are_left_out_of_the_dict() -> None:
    assert Trigger(("public0",)).to_dict() == {"trigger": {"channels": ["public0"]}}
    assert Unsubscribe("c0", "public0").to_dict() == {
        "unsubscribe": {"conn": "c0", "channel": "public0"}
    }
    assert Check().to_dict() == {"check": {}}
    assert Batch((BatchItem("public0"),)).to_dict() == {
        "batch": {"items": [{"channel": "public0"}]}
    }


def test_missing_optional_arguments_take_their_defaults() -> None:
    assert operation_from_dict({"subscribe": {"conn": "c1", "channel": "public0"}}) == Subscribe(
        "c1", "public0", "valid", False
    )
    assert operation_from_dict({"check": None}) == Check()
    assert operation_from_dict({"trigger": {"channels": ["public0"]}}) == Trigger(("public0",))


def test_describe_names_the_operation_and_its_arguments() -> None:
    text = Trigger(("public0", "private1"), exclude="c2", count=2).describe()
    assert text == "trigger(channels=['public0', 'private1'], exclude=c2, count=2)"
    assert Check().describe() == "check()"


@pytest.mark.parametrize(
    ("steps", "fragment"),
    [
        ([{"teleport": {"conn": "c0"}}], "unknown operation 'teleport'"),
        ([{"subscribe": {"conn": "x0", "channel": "public0"}}], "'x0' is not a connection slot"),
        ([{"subscribe": {"conn": "c0"}}], "step subscribe: None is not a channel slot"),
        ([{"disconnect": {"conn": "c"}}], "'c' is not a connection slot"),
        ([{"connect": {}}], "step connect: None is not a connection slot"),
        ([{"subscribe": {"conn": "c0", "channel": "secret0"}}], "not a channel slot: 'secret0'"),
        ([{"query": {"channel": "public"}}], "not a channel slot: 'public'"),
        ([{"trigger": {"channels": "public0"}}], "channels must be a non-empty list"),
        ([{"trigger": {"channels": []}}], "channels must be a non-empty list"),
        ([{"trigger": {"channels": ["public0"], "count": 0}}], "count must be a positive"),
        ([{"trigger": {"channels": ["public0"], "count": True}}], "count must be a positive"),
        ([{"trigger": {"channels": ["public0"], "exclude": "me"}}], "'me' is not a connection"),
        ([{"query": {"channel": "public0", "verbose": 1}}], "unknown argument(s) verbose"),
        ([{"check": {"now": True}}], "step check: unknown argument(s) now"),
        (
            [{"unsubscribe": {"conn": "c0", "channel": "public0", "z": 1, "a": 2}}],
            "unknown argument(s) a, z",
        ),
        ([{"subscribe": {"conn": "c0", "channel": "public0", "auth": "maybe"}}], "auth must be"),
        ([{"batch": {"items": []}}], "items must be a non-empty list"),
        ([{"batch": {"items": ["public0"]}}], "an item is a mapping"),
        ([{"batch": {"items": [{"channel": "public0", "exclude": 3}]}}], "3 is not a connection"),
        ([{"connect": {"conn": "c0"}, "check": {}}], "a step is a mapping with one key"),
        (["check"], "a step is a mapping with one key"),
        ([{}], "a step is a mapping with one key"),
        ([], "steps must be a non-empty list"),
        ({"check": {}}, "steps must be a non-empty list"),
    ],
)
def test_malformed_steps_are_usage_errors(steps: Any, fragment: str) -> None:
    with pytest.raises(UsageError) as raised:
        operations_from_list(steps)
    assert fragment in str(raised.value)


@pytest.mark.parametrize("kind", ["connect", "disconnect"])
def test_unknown_argument_of_connect_is_refused(kind: str) -> None:
    with pytest.raises(UsageError, match=r"unknown argument\(s\) tab"):
        operation_from_dict({kind: {"conn": "c0", "tab": 2}})


@pytest.mark.parametrize("step", [{"connect": "c0"}, {"check": 5}, {"query": ["public0"]}])
def test_scalar_arguments_are_usage_errors(step: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        operation_from_dict(step)


def test_unknown_key_of_a_batch_item_is_refused() -> None:
    with pytest.raises(UsageError, match="excl"):
        operation_from_dict({"batch": {"items": [{"channel": "public0", "excl": "c1"}]}})


@pytest.mark.parametrize(
    ("slot", "kind"),
    [("public0", "public"), ("private12", "private"), ("presence3", "presence")],
)
def test_channel_kind(slot: str, kind: str) -> None:
    assert channel_kind(slot) == kind


@pytest.mark.parametrize("slot", ["public", "private-1", "presencex", "c0", "", "Public0"])
def test_channel_kind_refuses_what_is_not_a_slot(slot: str) -> None:
    with pytest.raises(UsageError, match="not a channel slot"):
        channel_kind(slot)
