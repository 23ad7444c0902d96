"""Template variables on plain dictionaries: no target, socket or event loop involved."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from conformance.errors import UsageError
from conformance.target import target_from_mapping
from conformance.templates import (
    define,
    lookup,
    nonce,
    render,
    target_variables,
    unique_channel,
)

WHERE = "REQ-01/c"


@pytest.fixture
def variables() -> dict[str, Any]:
    target = target_from_mapping(
        {"ws_url": "ws://127.0.0.1:1", "http_url": "http://127.0.0.1:1", "app_id": "1",
         "key": "k", "secret": "s"}
    )  # fmt: skip
    return target_variables(target)


def test_the_target_is_named_before_anything_is_defined(variables: dict[str, Any]) -> None:
    assert variables == {"target": {"key": "k", "app_id": "1", "max_event_bytes": 10240}}
    assert "secret" not in str(variables)


def test_generated_names_are_fresh_and_lowercase() -> None:
    names = {unique_channel("p-") for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"p-[a-z0-9]{20}", name) for name in names)
    assert re.fullmatch(r"[a-z0-9]{16}", nonce())
    assert nonce() != nonce()


def test_let_generators(variables: dict[str, Any]) -> None:
    define(
        variables,
        {
            "ch": {"channel": "p-${target.key}-"},
            "many": {"channel": "q-", "count": 3},
            "token": {"nonce": True},
            "big": {"repeat": "xy", "length": {"var": "target.max_event_bytes", "plus": 2}},
            "fixed": {"repeat": "ab", "length": 5},
            "copy": {"value": "${ch}"},
            "later": {"unix_time": {"plus": 60}},
        },
        where=WHERE,
    )
    assert re.fullmatch(r"p-k-[a-z0-9]{20}", variables["ch"])
    assert len(set(variables["many"])) == 3
    assert re.fullmatch(r"[a-z0-9]{16}", variables["token"])
    assert variables["big"] == "xy" * 5121
    assert variables["fixed"] == "abab"  # whole repetitions only
    assert variables["copy"] == variables["ch"]
    assert abs(variables["later"] - (time.time() + 60)) < 5


def test_a_length_must_name_an_integer(variables: dict[str, Any]) -> None:
    variables["flag"] = True
    with pytest.raises(UsageError, match="'flag' is not an integer"):
        define(variables, {"x": {"repeat": "a", "length": {"var": "flag"}}}, where=WHERE)


def test_an_unknown_generator_is_a_usage_error(variables: dict[str, Any]) -> None:
    with pytest.raises(UsageError, match="unknown let generator"):
        define(variables, {"x": {"dice": 6}}, where=WHERE)


def test_a_whole_template_keeps_the_value_and_text_spells_it_out(
    variables: dict[str, Any],
) -> None:
    variables["many"] = ["a", "b", "c"]
    assert render("${target.max_event_bytes}", variables, where=WHERE) == 10240
    assert render("n=${target.max_event_bytes}", variables, where=WHERE) == "n=10240"
    assert render("${many}", variables, where=WHERE) == ["a", "b", "c"]
    assert render("${many.2}", variables, where=WHERE) == "c"
    assert render(("${target.key}", 3, None), variables, where=WHERE) == ["k", 3, None]


def test_keys_are_templated_as_text(variables: dict[str, Any]) -> None:
    variables["ch"] = "chan"
    value = {"${ch}": {"${ch}-x": 1}, 5: "${target.key}", "${target.max_event_bytes}": 2}
    assert render(value, variables, where=WHERE) == {
        "chan": {"chan-x": 1},
        5: "k",
        "10240": 2,
    }


@pytest.mark.parametrize("dotted", ["nope", "target.nope", "many.3", "many.x", "target.key.y"])
def test_an_undefined_variable_names_the_check(variables: dict[str, Any], dotted: str) -> None:
    variables["many"] = ["a", "b", "c"]
    with pytest.raises(UsageError, match=re.escape(f"undefined variable ${{{dotted}}} in {WHERE}")):
        lookup(variables, dotted, where=WHERE)
    with pytest.raises(UsageError, match="undefined variable"):
        render(f"x${{{dotted}}}", variables, where=WHERE)
