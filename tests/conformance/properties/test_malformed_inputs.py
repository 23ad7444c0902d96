"""What both transports' malformed inputs share: readable reprs however large the payload, and
examples that always send something."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from conformance.properties.malformed_inputs import (
    WS_FRAME_KINDS,
    WS_TEXT_KINDS,
    HttpInput,
    WsInput,
    at_least_one,
    nest,
)
from conformance.properties.malformed_ws_inputs import ws_input_strategy

CHANNELS = ["robustness-aaaa", "private-robustness-bbbb"]
TOKEN = "robustness-0123456789abcdef"


@settings(max_examples=50, deadline=None)
@given(inputs=at_least_one([ws_input_strategy(k, CHANNELS, TOKEN) for k in WS_TEXT_KINDS]))
def test_every_example_sends_something(inputs: tuple[Any, ...]) -> None:
    assert any(i is not None for i in inputs)
    assert len(inputs) == len(WS_TEXT_KINDS)


def test_a_megabyte_payload_has_a_short_repr() -> None:
    ws = WsInput("huge", "a" * 1_000_000, "1000000 bytes, garbage")
    assert len(repr(ws)) < 300
    assert repr(ws).startswith("<huge 1000000 bytes, garbage: 'aaa")
    assert "(1000000 chars)" in repr(ws)
    http = HttpInput("oversized", b"a" * 2_000_000, note="2000000 bytes")
    assert "(2000000 bytes)" in repr(http)


def test_an_http_repr_says_what_differs_from_a_plain_request() -> None:
    plain = HttpInput("bad_json", b"{")
    assert repr(plain) == "<bad_json: body b'{'>"
    odd = HttpInput(
        "bad_signing", b"{}", content_type="text/plain", auth=(("auth_key", None),), note="n"
    )
    assert (
        repr(odd) == "<bad_signing n content-type 'text/plain' auth {'auth_key': None}: body b'{}'>"
    )


def test_only_frame_kinds_are_frame_level() -> None:
    assert all(WsInput(k, "").frame_level for k in WS_FRAME_KINDS)
    assert not any(WsInput(k, "").frame_level for k in WS_TEXT_KINDS)


def test_nesting_is_built_as_text() -> None:
    assert nest(3, "array") == "[[[0]]]"
    assert nest(2, "object", "1") == '{"a":{"a":1}}'
    assert len(nest(100_000, "array")) == 200_001
