from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reference_server.protocol.signing import (
    body_md5,
    canonical_query,
    channel_string_to_sign,
    hmac_sha256_hex,
    http_string_to_sign,
    sign_channel,
    sign_http_request,
    sign_user,
    signatures_match,
    user_string_to_sign,
)


def test_channel_auth_vectors(vectors: dict[str, Any]) -> None:
    secret = vectors["app"]["secret"]
    for case in vectors["channel_auth"]:
        string = channel_string_to_sign(case["socket_id"], case["channel"])
        assert string == case["string_to_sign"], case["name"]
        assert sign_channel(secret, case["socket_id"], case["channel"]) == case["signature"]


def test_http_api_vectors(vectors: dict[str, Any]) -> None:
    secret = vectors["app"]["secret"]
    for case in vectors["http_api"]:
        assert body_md5(case["body"].encode()) == case["body_md5"], case["name"]
        params = list(case["params"].items())
        string = http_string_to_sign(case["method"], case["path"], params)
        assert string == case["string_to_sign"]
        assert sign_http_request(secret, case["method"], case["path"], params) == case["signature"]


def test_presence_string_appends_channel_data() -> None:
    assert channel_string_to_sign("1.2", "presence-a", '{"user_id":"1"}') == (
        '1.2:presence-a:{"user_id":"1"}'
    )


def test_canonical_query_lowercases_sorts_and_drops_the_signature() -> None:
    params = [("b", "2"), ("auth_signature", "x"), ("A", "1"), ("AUTH_SIGNATURE", "y")]
    assert canonical_query(params) == "a=1&b=2"


def test_canonical_query_does_not_reescape_values() -> None:
    assert canonical_query([("info", "user_count,subscription_count x&y")]) == (
        "info=user_count,subscription_count x&y"
    )


def test_method_is_upper_cased() -> None:
    assert http_string_to_sign("post", "/p", []) == "POST\n/p\n"


query_params = st.lists(
    st.tuples(st.text(st.characters(codec="utf-8"), min_size=1), st.text()), max_size=6
)


@given(query_params, st.permutations(range(6)))
def test_canonical_query_ignores_parameter_order(
    params: list[tuple[str, str]], order: list[int]
) -> None:
    # Keys are distinct after lower-casing, as in any real request.
    unique = list({key.lower(): (key, value) for key, value in params}.values())
    shuffled = [unique[i] for i in order if i < len(unique)]
    assert canonical_query(shuffled) == canonical_query(unique)


@given(st.text(), st.text())
def test_signature_round_trip(secret: str, message: str) -> None:
    signature = hmac_sha256_hex(secret, message)
    assert len(signature) == 64
    assert signatures_match(signature, hmac_sha256_hex(secret, message))
    assert not signatures_match(signature, hmac_sha256_hex(secret + "x", message))


@given(st.text(), st.text())
def test_signatures_match_accepts_any_text(a: str, b: str) -> None:
    # hmac.compare_digest raises TypeError on non-ASCII str; ours must not.
    assert signatures_match(a, b) is (a == b)


@given(st.binary())
def test_body_md5_is_lowercase_hex(body: bytes) -> None:
    digest = body_md5(body)
    assert len(digest) == 32
    assert digest == digest.lower()


def test_presence_auth_vectors(vectors: dict[str, Any]) -> None:
    secret = vectors["app"]["secret"]
    for case in vectors["presence_auth"]:
        args = (case["socket_id"], case["channel"], case["channel_data"])
        assert channel_string_to_sign(*args) == case["string_to_sign"], case["name"]
        assert sign_channel(secret, *args) == case["signature"]


def test_user_auth_vectors(vectors: dict[str, Any]) -> None:
    secret = vectors["app"]["secret"]
    for case in vectors["user_auth"]:
        string = user_string_to_sign(case["socket_id"], case["user_data"])
        assert string == case["string_to_sign"], case["name"]
        assert sign_user(secret, case["socket_id"], case["user_data"]) == case["signature"]
