"""The pattern language of docs/spec-format.md, operator by operator."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.patterns import OPERATORS, is_operator_pattern, match, surely_differs

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(json_values)
def test_equals_matches_itself_only(value: object) -> None:
    assert match({"equals": value}, value) == []


#: Keys a literal mapping may have: a mapping of operator names only is an operator pattern
#: ({"is": null} asks for a type), and data_json is sugar for data: {json: ...}.
literal_keys = st.text(max_size=4).filter(lambda k: k not in OPERATORS and k != "data_json")


@given(st.dictionaries(literal_keys, json_values, max_size=4), st.text(max_size=4))
def test_mapping_is_a_subset_match(obj: dict[str, object], extra: str) -> None:
    bigger = {**obj, extra + "_x": 1}
    plain = {k: v for k, v in obj.items() if not isinstance(v, dict)}
    assert match(plain, bigger) == []


def test_scalars_keep_json_types_apart() -> None:
    assert match(1, True)
    assert match(True, 1)
    assert match("1", 1)
    assert match(1, 1.0) == []


def test_missing_and_absent() -> None:
    assert match({"data": {"absent": True}}, {"event": "x"}) == []
    assert match({"data": {"absent": True}}, {"data": "{}"}) == [
        'data: expected to be absent, got "{}"'
    ]
    assert match({"data": "x"}, {}) == ['data: missing (expected "x")']
    either = {"code": {"any_of": [{"is": "null"}, {"absent": True}]}}
    assert match(either, {}) == []
    assert match(either, {"code": None}) == []
    assert match(either, {"code": 4001})


def test_regex_and_types() -> None:
    pattern = {"socket_id": {"is": "string", "regex": r"^\d+\.\d+$"}}
    assert match(pattern, {"socket_id": "123.456"}) == []
    assert match(pattern, {"socket_id": "123456"})
    assert match(pattern, {"socket_id": 123.456})


def test_int_bounds_reject_booleans() -> None:
    assert match({"int_min": 1}, True)
    assert match({"int_min": 1}, 0)
    assert match({"int_min": 1, "int_max": 3}, 2) == []


def test_json_operator_decodes_strings_only() -> None:
    inner = {"socket_id": {"is": "string"}}
    assert match({"json": inner}, json.dumps({"socket_id": "1.2"})) == []
    problems = match({"json": inner}, {"socket_id": "1.2"})
    assert problems == ["value: expected a JSON-encoded string, got object"]
    assert match({"json": inner}, "not json")


def test_data_json_sugar() -> None:
    frame = {"event": "e", "data": json.dumps({"activity_timeout": 0})}
    problems = match({"data_json": {"activity_timeout": {"int_min": 1}}}, frame)
    assert problems == ["data(json).activity_timeout: 0 is not within int_min 1"]


def test_not_in_and_lengths() -> None:
    assert match({"not": "a"}, "b") == []
    assert match({"not": "a"}, "a")
    assert match({"in": [1, 2]}, 2) == []
    assert match({"in": [1, 2]}, 3)
    assert match({"len_min": 2, "len_max": 3}, "abc") == []
    assert match({"len_max": 3}, [1, 2, 3, 4])


def test_lists_match_item_by_item() -> None:
    assert match([1, {"is": "string"}], [1, "x"]) == []
    assert match([1], [1, 2]) == ["value: expected 1 items, got 2"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [({"regex": "x"}, True), ({"regex": "x", "event": "y"}, False), ({}, False), ("x", False)],
)
def test_operator_detection(pattern: object, expected: bool) -> None:
    assert is_operator_pattern(pattern) is expected


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "b", "1"]))
_patterns = st.dictionaries(
    st.sampled_from(["name", "channel", "data_json", "n"]),
    st.one_of(_scalars, st.fixed_dictionaries({"is": st.sampled_from(["string", "integer"])})),
    max_size=3,
)
_values = st.one_of(
    _scalars,
    st.dictionaries(st.sampled_from(["name", "channel", "data", "n"]), _scalars, max_size=4),
)


@given(_patterns, _values)
def test_surely_differs_only_when_match_finds_a_mismatch(pattern: dict, value: object) -> None:
    if surely_differs(pattern, value):
        assert match(pattern, value)


def test_surely_differs_on_a_literal_at_the_top() -> None:
    pattern = {"name": "member_added", "channel": "presence-x", "user_id": {"is": "string"}}
    assert surely_differs(pattern, {"name": "member_removed", "channel": "presence-x"})
    assert surely_differs(pattern, {"channel": "presence-x"})
    assert surely_differs(pattern, "member_added")
    assert not surely_differs(pattern, {"name": "member_added", "channel": "presence-x"})
    assert not surely_differs({"any_of": [1, 2]}, 3)  # operators: match decides
