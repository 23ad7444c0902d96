"""HTTP API authentication: the app id, then the signed query (steps 1-6)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_server.protocol.errors import BadRequest, NotFound, Unauthorized
from reference_server.protocol.http_events import EventParser
from reference_server.protocol.http_requests import (
    AppCredentials,
    HttpRequest,
    RequestAuthenticator,
)

from ..http_harness import (
    LIMITS,
    NOW,
    PATH,
    authenticator,
    refused,
    signed,
    signed_get,
    validate,
)


def test_the_docs_vector_validates(vectors: dict[str, Any]) -> None:
    case = vectors["http_api"][0]
    query = (*case["params"].items(), ("auth_signature", case["signature"]))
    request = HttpRequest("POST", case["path"], tuple(query), case["body"].encode())
    RequestAuthenticator(AppCredentials(**vectors["app"]), LIMITS).validate("3", request, NOW)
    assert EventParser(LIMITS).trigger(request).channels == ("project-3",)


class TestAuthentication:
    def test_unknown_app_is_404(self) -> None:
        assert isinstance(refused(signed(), app_id="4"), NotFound)

    @pytest.mark.parametrize(
        "name", ["auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"]
    )
    def test_missing_parameter_is_401(self, name: str) -> None:
        error = refused(signed(drop=[name]))
        assert isinstance(error, Unauthorized)
        assert name in error.message

    def test_body_md5_is_optional_for_an_empty_body(self) -> None:
        # Authentication passes; the empty body then fails as "not a JSON object".
        assert isinstance(refused(signed(b"")), BadRequest)

    def test_wrong_key_is_401(self) -> None:
        assert isinstance(refused(signed(auth_key="other")), Unauthorized)

    @pytest.mark.parametrize("version", ["2.0", "1", ""])
    def test_wrong_version_is_401(self, version: str) -> None:
        assert isinstance(refused(signed(auth_version=version)), Unauthorized)

    @pytest.mark.parametrize("timestamp", ["abc", "1.5", "", " 1353088179", "1_353_088_179"])
    def test_non_integer_timestamp_is_401(self, timestamp: str) -> None:
        assert isinstance(refused(signed(auth_timestamp=timestamp)), Unauthorized)

    @pytest.mark.parametrize(
        ("skew", "ok"), [(600, True), (-600, True), (601, False), (-601, False)]
    )
    def test_timestamp_window_is_600_seconds(self, skew: int, ok: bool) -> None:
        request = signed(auth_timestamp=str(NOW + skew))
        if ok:
            validate(request)
        else:
            assert isinstance(refused(request), Unauthorized)

    def test_wrong_body_md5_is_401(self) -> None:
        error = refused(signed(body_md5="0" * 32))
        assert isinstance(error, Unauthorized)
        assert "body_md5" in error.message

    @pytest.mark.parametrize("signature", ["0" * 64, "", "caf\u00e9", "A" * 64])
    def test_wrong_signature_is_401(self, signature: str) -> None:
        error = refused(signed(auth_signature=signature))
        assert isinstance(error, Unauthorized)
        assert "signature" in error.message

    def test_signature_with_another_secret_is_401(self) -> None:
        assert isinstance(refused(signed(secret="nope")), Unauthorized)

    def test_signature_covers_the_path(self) -> None:
        request = signed(path="/apps/3/events/")
        moved = HttpRequest("POST", PATH, request.query, request.body)
        assert isinstance(refused(moved), Unauthorized)

    def test_extra_parameters_are_signed_lower_cased(self) -> None:
        validate(signed(Info="user_count", z="1 2"))

    @given(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.text(), max_size=4))
    def test_any_correctly_signed_extra_parameters_pass(self, extra: dict[str, str]) -> None:
        reserved = {"auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"}
        reserved |= {"drop", "path", "secret"}  # signed()'s own keywords.
        request = signed(**{k: v for k, v in extra.items() if k not in reserved})
        authenticator().authenticate(request, NOW)


def test_get_requests_sign_the_query_without_body_md5() -> None:
    request = signed_get("/apps/3/channels/a", info="subscription_count")
    authenticator().validate("3", request, NOW)
    tampered = HttpRequest("GET", "/apps/3/channels/b", request.query, b"")
    with pytest.raises(Unauthorized):
        authenticator().validate("3", tampered, NOW)
    with pytest.raises(NotFound):
        authenticator().validate("4", request, NOW)
