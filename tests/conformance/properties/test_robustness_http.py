"""``http_malformed_request`` signs its inputs as they ask, and really fails against a server
that breaks the rule (a fault switched on)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

from conformance.errors import CheckFailed
from conformance.httpclient import ApiClient
from conformance.properties import PROPERTIES
from conformance.properties.malformed_inputs import HttpInput
from conformance.properties.robustness_http import signed_malformed_request
from conformance.target import target_from_mapping
from conformance.transcript import Transcript

TARGET = target_from_mapping(
    {"ws_url": "ws://127.0.0.1:1", "http_url": "http://127.0.0.1:1", "app_id": "42",
     "key": "the-key", "secret": "the-secret"}
)  # fmt: skip


def test_the_property_is_registered() -> None:
    assert PROPERTIES["http_malformed_request"].params == {"kinds", "assert", "examples"}


def test_overrides_replace_drop_or_are_signed_along() -> None:
    api = ApiClient(TARGET, Transcript("R-01/c"), 1.0)
    item = HttpInput(
        "bad_signing",
        b"{}",
        auth=(("auth_timestamp", "abc"), ("auth_version", None), ("auth_signature", "zz")),
    )
    pairs, body = signed_malformed_request(api, item)
    params = {unquote(k): unquote(v) for k, v in pairs}
    assert body == b"{}"
    assert params["auth_timestamp"] == "abc"
    assert "auth_version" not in params
    assert params["auth_signature"] == "zz"
    assert params["auth_key"] == "the-key"


def test_it_fails_against_a_broken_server(run_on_bundled: Any) -> None:
    with pytest.raises(CheckFailed, match="HTTP 500"):
        run_on_bundled(
            "oversized_body_500",
            "http_malformed_request",
            {"assert": ["status"], "kinds": ["oversized"], "examples": 4},
        )
