"""Each tamper kind really breaks the request in the one way it claims, checked offline by
re-deriving what a correct server computes."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.context import CheckContext, RunSettings
from conformance.properties import PROPERTIES, TAMPERS
from conformance.properties.http_api import tamper_strategy, tampered_request
from conformance.signing import body_md5, sign_api_request
from conformance.spec import Check
from conformance.target import target_from_mapping

TARGET = target_from_mapping(
    {"ws_url": "ws://127.0.0.1:1", "http_url": "http://127.0.0.1:1", "app_id": "42",
     "key": "the-key", "secret": "the-secret"}
)  # fmt: skip


def _server_verdict(pairs: list[tuple[str, str]], body: bytes) -> str:
    """What a correct server decides about this request: 'ok' or the first reason to refuse."""
    params = dict(pairs)
    for name in ("auth_key", "auth_timestamp", "auth_version", "auth_signature"):
        if name not in params:
            return "missing"
    if body and "body_md5" not in params:
        return "missing"
    if params["auth_key"] != TARGET.key:
        return "key"
    if abs(int(params["auth_timestamp"]) - time.time()) > 600:
        return "timestamp"
    if body and params["body_md5"] != body_md5(body):
        return "md5"
    expected = sign_api_request(TARGET.secret, "POST", "/apps/42/events", params)
    return "ok" if params["auth_signature"] == expected else "signature"


@pytest.fixture(scope="module")
def ctx() -> CheckContext:
    with asyncio.Runner() as runner:
        return CheckContext(TARGET, RunSettings(), Check("R-01", "c", "t", "property", {}), runner)


def test_an_untampered_request_is_accepted(ctx: CheckContext) -> None:
    body = ctx.api.event_body("e", "d", channel="c")
    assert _server_verdict(ctx.api.signed_query("POST", "/apps/42/events", body), body) == "ok"


EXPECTED = {
    "missing_auth_param": {"missing"},
    "signature_bit_flip": {"signature"},
    "signed_other_path": {"signature"},
    "signed_other_method": {"signature"},
    "unsigned_extra_param": {"signature"},
    "changed_param_value": {"signature"},
    "timestamp_outside_window": {"timestamp"},
    "body_changed": {"md5"},
    "other_auth_key": {"key"},
}


def test_every_tamper_kind_has_an_expectation() -> None:
    assert set(EXPECTED) == set(TAMPERS)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_tampered_requests_are_refused_for_their_reason(ctx: CheckContext, data: Any) -> None:
    kind, detail = data.draw(tamper_strategy(list(TAMPERS), 660))
    request = tampered_request(ctx, kind, detail, "chan", "token")
    pairs = [(unquote(k), unquote(v)) for k, v in request.pairs]
    assert _server_verdict(pairs, request.body) in EXPECTED[kind], request.description


def test_property_registry_names_params() -> None:
    assert {"tamper", "status"} <= PROPERTIES["http_tamper"].params
    assert {"alphabet", "min_length", "max_length"} <= PROPERTIES["channel_name_roundtrip"].params
