"""The robustness strategies generate what they claim (checked offline), and the properties
really fail against a server that breaks the rule (checked against the bundled server with a
fault switched on)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.bundled import start_bundled
from conformance.context import CheckContext, RunSettings
from conformance.errors import CheckFailed
from conformance.loop import LoopThread
from conformance.properties import PROPERTIES
from conformance.properties.malformed_inputs import (
    HTTP_KINDS,
    KNOWN_PUSHER_EVENTS,
    WS_FRAME_KINDS,
    WS_TEXT_KINDS,
    HttpInput,
    WsInput,
    at_least_one,
    http_input_strategy,
    ws_input_strategy,
)
from conformance.properties.robustness import _request, _retoken
from conformance.signing import body_md5, sign_api_request
from conformance.spec import Check
from conformance.target import target_from_mapping

CHANNELS = ["robustness-aaaa", "private-robustness-bbbb"]
TOKEN = "robustness-0123456789abcdef"
TARGET = target_from_mapping(
    {"ws_url": "ws://127.0.0.1:1", "http_url": "http://127.0.0.1:1", "app_id": "42",
     "key": "the-key", "secret": "the-secret"}
)  # fmt: skip


def _depth(text: str) -> int:
    """Deepest bracket nesting outside JSON strings (an iterative scan)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


_NOT_JSON = object()


def _valid_pusher_message(value: Any) -> bool:
    """What a correct server accepts as a well-formed message (before any permission check)."""
    if not isinstance(value, dict) or not isinstance(value.get("event"), str):
        return False
    event = value["event"]
    if event in ("pusher:subscribe", "pusher:unsubscribe"):
        data = value.get("data")
        return (
            isinstance(data, dict)
            and isinstance(data.get("channel"), str)
            and bool(data["channel"])
            and all(
                data.get(k) is None or isinstance(data.get(k), str)
                for k in ("auth", "channel_data")
            )
        )
    if event == "pusher:signin":
        data = value.get("data")
        return isinstance(data, dict) and all(
            isinstance(data.get(k), str) for k in ("auth", "user_data")
        )
    if event.startswith(("pusher:", "pusher_internal:")):
        return event in KNOWN_PUSHER_EVENTS
    return isinstance(value.get("channel"), str)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


@settings(max_examples=60, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("kind", [k for k in WS_TEXT_KINDS + WS_FRAME_KINDS if k != "huge"])
def test_ws_inputs_are_what_they_claim(kind: str, data: Any) -> None:
    item: WsInput = data.draw(ws_input_strategy(kind, CHANNELS, TOKEN))
    assert item.kind == kind
    if kind == "binary":
        assert isinstance(item.payload, bytes)
        return
    assert isinstance(item.payload, str)
    item.payload.encode()  # a text frame must be valid UTF-8
    value = _loads(item.payload)
    if kind == "non_json":
        assert value is _NOT_JSON
    elif kind == "not_object":
        assert value is not _NOT_JSON
        assert not isinstance(value, dict)
    elif kind == "missing_event":
        assert isinstance(value, dict)
        assert "event" not in value
    elif kind in ("wrong_types", "unknown_pusher_event", "subscribe_without_channel"):
        assert not _valid_pusher_message(value), item
    elif kind == "nested":
        assert 2 <= _depth(item.payload) <= 1000 + 2  # plus the envelope
    elif kind == "very_deep":
        assert _depth(item.payload) > 1000
    elif kind == "lone_surrogate":
        assert _has_lone_surrogate(value)
    assert len(repr(item)) < 400


@settings(max_examples=4, deadline=None)
@given(item=ws_input_strategy("huge", CHANNELS, TOKEN))
def test_huge_frames_are_megabytes_with_a_short_repr(item: WsInput) -> None:
    assert 1_000_000 <= len(item.payload) <= 13_000_000
    assert len(repr(item)) < 400


def _trigger_ok(body: bytes) -> bool:
    """Whether a correct server would accept this trigger body (HTTP API, POST events)."""
    value = _loads(body)
    if not isinstance(value, dict) or len(body) > 1024 * 1024:
        return False
    name, data = value.get("name"), value.get("data")
    if not isinstance(name, str) or not name or not isinstance(data, str):
        return False
    if ("channel" in value) == ("channels" in value):
        return False
    channels = [value["channel"]] if "channel" in value else value["channels"]
    if not isinstance(channels, list) or not 1 <= len(channels) <= 100:
        return False
    if not all(isinstance(c, str) and c in CHANNELS for c in channels):
        return False
    socket_id = value.get("socket_id")
    return socket_id is None or (
        isinstance(socket_id, str)
        and socket_id.count(".") == 1
        and all(p.isascii() and p.isdigit() for p in socket_id.split("."))
    )


def _auth_ok(pairs: list[tuple[str, str]], body: bytes) -> bool:
    params = dict(pairs)
    if not {"auth_key", "auth_timestamp", "auth_version", "auth_signature"} <= set(params):
        return False
    if params["auth_key"] != TARGET.key or params["auth_version"] != "1.0":
        return False
    stamp = params["auth_timestamp"]
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) < 19):
        return False
    if abs(int(stamp) - time.time()) > 600:
        return False
    if body and params.get("body_md5") != body_md5(body):
        return False
    expected = sign_api_request(TARGET.secret, "POST", "/apps/42/events", params)
    return params["auth_signature"] == expected


@pytest.fixture(scope="module")
def ctx() -> CheckContext:
    with asyncio.Runner() as runner:
        return CheckContext(TARGET, RunSettings(), Check("R-01", "c", "t", "property", {}), runner)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("kind", [k for k in HTTP_KINDS if k != "oversized"])
def test_http_inputs_are_what_they_claim(kind: str, data: Any, ctx: CheckContext) -> None:
    item: HttpInput = data.draw(http_input_strategy(kind, CHANNELS, TOKEN))
    pairs, body = _request(ctx, ctx.api, item)
    pairs = [(unquote(k), unquote(v)) for k, v in pairs]
    if kind == "bad_signing":
        assert _trigger_ok(body), item
        assert not _auth_ok(pairs, body), item
        return
    assert _auth_ok(pairs, body), item
    if kind == "wrong_content_type":
        assert item.content_type != "application/json"
        assert item.may_accept
        assert _trigger_ok(body)
    elif kind == "lone_surrogate":
        assert _has_lone_surrogate(_loads(body))
    else:
        assert not item.may_accept
        assert not _trigger_ok(body), item
        if kind == "bad_json":
            assert not isinstance(_loads(body), dict)
        if kind == "deep_nesting":
            assert _depth(body.decode()) >= 2
    assert len(repr(item)) < 400


@settings(max_examples=3, deadline=None)
@given(item=http_input_strategy("oversized", CHANNELS, TOKEN))
def test_oversized_bodies_are_over_a_megabyte(item: HttpInput) -> None:
    assert len(item.body) > 1024 * 1024
    assert len(repr(item)) < 400


@settings(max_examples=50, deadline=None)
@given(inputs=at_least_one([ws_input_strategy(k, CHANNELS, TOKEN) for k in WS_TEXT_KINDS]))
def test_every_example_sends_something(inputs: tuple[Any, ...]) -> None:
    assert any(i is not None for i in inputs)
    assert len(inputs) == len(WS_TEXT_KINDS)


def test_retoken_swaps_the_placeholder() -> None:
    other = "robustness-fedcba9876543210"
    ws = _retoken(WsInput("non_json", f"x{TOKEN}y"), TOKEN, other)
    assert ws.payload == f"x{other}y"
    http = _retoken(HttpInput("bad_json", f"{{{TOKEN}".encode()), TOKEN, other)
    assert http.body == f"{{{other}".encode()


def test_the_properties_are_registered() -> None:
    assert PROPERTIES["ws_malformed_input"].params == {"kinds", "assert", "examples"}
    assert PROPERTIES["http_malformed_request"].params == {"kinds", "assert", "examples"}


# -- against the bundled server ------------------------------------------------------------


def _run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faults: str, name: str, params: dict[str, Any]
) -> dict[str, int]:
    monkeypatch.setenv("PUSHER_REF_FAULTS", faults)
    server = start_bundled(tmp_path / "server.log")
    try:
        with LoopThread() as runner:
            check = Check(
                "ROBUST-T-01", "t", "t", "property", {}, property_name=name, params=params
            )
            ctx = CheckContext(server.target, RunSettings(), check, runner)
            try:
                PROPERTIES[name].run(ctx, params)
            finally:
                runner.run(ctx.aclose())
            return ctx.stats
    finally:
        server.stop()


def test_ws_property_passes_on_the_clean_server_and_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = _run(
        tmp_path, monkeypatch, "", "ws_malformed_input",
        {"assert": ["sender", "liveness", "isolation"], "kinds": list(WS_TEXT_KINDS),
         "examples": 5},
    )  # fmt: skip
    assert stats["malformed_inputs"] >= 5


@pytest.mark.parametrize(
    ("fault", "name", "params", "words"),
    [
        ("malformed_error_broadcast", "ws_malformed_input", {"assert": ["isolation"]},
         "should never see"),
        ("invalid_json_closes", "ws_malformed_input",
         {"assert": ["sender"], "kinds": ["non_json"]}, "closed the connection"),
        ("oversized_body_500", "http_malformed_request",
         {"assert": ["status"], "kinds": ["oversized"]}, "HTTP 500"),
    ],
)  # fmt: skip
def test_the_property_fails_against_a_broken_server(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    name: str,
    params: dict[str, Any],
    words: str,
) -> None:
    with pytest.raises(CheckFailed, match=words):
        _run(tmp_path, monkeypatch, fault, name, {**params, "examples": 4})
