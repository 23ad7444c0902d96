"""``ws_malformed_input`` passes on the bundled server and really fails against one that breaks
the rule (a fault switched on)."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.errors import CheckFailed
from conformance.properties import PROPERTIES
from conformance.properties.malformed_inputs import WS_TEXT_KINDS


def test_the_property_is_registered() -> None:
    assert PROPERTIES["ws_malformed_input"].params == {"kinds", "assert", "examples"}


def test_it_passes_on_the_clean_server_and_counts(run_on_bundled: Any) -> None:
    stats = run_on_bundled(
        "", "ws_malformed_input",
        {"assert": ["sender", "liveness", "isolation"], "kinds": list(WS_TEXT_KINDS),
         "examples": 5},
    )  # fmt: skip
    assert stats["malformed_inputs"] >= 5


@pytest.mark.parametrize(
    ("fault", "params", "words"),
    [
        ("malformed_error_broadcast", {"assert": ["isolation"]}, "should never see"),
        ("invalid_json_closes", {"assert": ["sender"], "kinds": ["non_json"]},
         "closed the connection"),
    ],
)  # fmt: skip
def test_it_fails_against_a_broken_server(
    run_on_bundled: Any, fault: str, params: dict[str, Any], words: str
) -> None:
    with pytest.raises(CheckFailed, match=words):
        run_on_bundled(fault, "ws_malformed_input", {**params, "examples": 4})
