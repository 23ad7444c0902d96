"""Each HTTP kind's strategy generates what its kind claims, once signed with its overrides
(checked offline)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.errors import UsageError
from conformance.httpclient import ApiClient
from conformance.properties.malformed_http_inputs import HTTP_INPUTS, http_input_strategy
from conformance.properties.malformed_inputs import HTTP_KINDS, HttpInput
from conformance.signing import body_md5, sign_api_request
from conformance.target import target_from_mapping
from conformance.transcript import Transcript

CHANNELS = ["robustness-aaaa", "private-robustness-bbbb"]
TOKEN = "robustness-0123456789abcdef"
TARGET = target_from_mapping(
    {"ws_url": "ws://127.0.0.1:1", "http_url": "http://127.0.0.1:1", "app_id": "42",
     "key": "the-key", "secret": "the-secret"}
)  # fmt: skip


def _trigger_ok(body: bytes, json_reader: Any) -> bool:
    """Whether a correct server would accept this trigger body (HTTP API, POST events)."""
    value = json_reader.parse(body)
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
def api() -> ApiClient:
    """Only signs here: nothing is sent."""
    return ApiClient(TARGET, Transcript("R-01/c"), 1.0)


def test_every_kind_has_one_strategy_in_kind_order() -> None:
    assert list(HTTP_INPUTS) == list(HTTP_KINDS)


def test_an_unknown_kind_is_a_usage_error_listing_the_known() -> None:
    with pytest.raises(UsageError, match=r"unknown HTTP input kind 'nope' \(known: bad_json"):
        http_input_strategy("nope", CHANNELS, TOKEN)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("kind", [k for k in HTTP_KINDS if k != "oversized"])
def test_http_inputs_are_what_they_claim(
    kind: str, data: Any, api: ApiClient, json_reader: Any
) -> None:
    item: HttpInput = data.draw(http_input_strategy(kind, CHANNELS, TOKEN))
    body = item.body
    pairs = api.signed_query("POST", api.events_path(), body, auth=dict(item.auth))
    pairs = [(unquote(k), unquote(v)) for k, v in pairs]
    if kind == "bad_signing":
        assert _trigger_ok(body, json_reader), item
        assert not _auth_ok(pairs, body), item
        return
    assert _auth_ok(pairs, body), item
    if kind == "wrong_content_type":
        assert item.content_type != "application/json"
        assert item.may_accept
        assert _trigger_ok(body, json_reader)
    elif kind == "lone_surrogate":
        assert json_reader.has_lone_surrogate(json_reader.parse(body))
    else:
        assert not item.may_accept
        assert not _trigger_ok(body, json_reader), item
        if kind == "bad_json":
            assert not isinstance(json_reader.parse(body), dict)
        if kind == "deep_nesting":
            assert json_reader.depth(body.decode()) >= 2
    assert len(repr(item)) < 400


@settings(max_examples=3, deadline=None)
@given(item=http_input_strategy("oversized", CHANNELS, TOKEN))
def test_oversized_bodies_are_over_a_megabyte(item: HttpInput) -> None:
    assert len(item.body) > 1024 * 1024
    assert len(repr(item)) < 400
