"""The suite's own signing against the verified vectors in fixtures/vectors.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.signing import (
    body_md5,
    channel_auth,
    hmac_sha256_hex,
    sign_api_request,
    string_to_sign,
)

VECTORS: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "fixtures" / "vectors.yaml").read_text()
)
APP = VECTORS["app"]


@pytest.mark.parametrize("vector", VECTORS["channel_auth"], ids=lambda v: v["name"])
def test_channel_auth_vectors(vector: dict[str, Any]) -> None:
    assert hmac_sha256_hex(APP["secret"], vector["string_to_sign"]) == vector["signature"]
    auth = channel_auth(APP["key"], APP["secret"], vector["socket_id"], vector["channel"])
    assert auth == f"{APP['key']}:{vector['signature']}"


@pytest.mark.parametrize("vector", VECTORS["http_api"], ids=lambda v: v["name"])
def test_http_api_vectors(vector: dict[str, Any]) -> None:
    assert body_md5(vector["body"].encode()) == vector["body_md5"]
    assert (
        string_to_sign(vector["method"], vector["path"], vector["params"])
        == vector["string_to_sign"]
    )
    signature = sign_api_request(APP["secret"], vector["method"], vector["path"], vector["params"])
    assert signature == vector["signature"]


def test_string_to_sign_sorts_lowercases_and_drops_the_signature() -> None:
    params = {"b": "2", "A": "1", "auth_signature": "zzz"}
    assert string_to_sign("post", "/p", params) == "POST\n/p\na=1&b=2"


def test_values_are_not_escaped() -> None:
    assert string_to_sign("GET", "/p", {"filter_by_prefix": "presence-a b"}).endswith(
        "presence-a b"
    )
