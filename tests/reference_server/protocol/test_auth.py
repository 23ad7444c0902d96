from __future__ import annotations

from typing import Any

import pytest

from reference_server.protocol.auth import check_channel_auth, check_signin
from reference_server.protocol.errors import SigninRefused, SubscriptionRefused
from reference_server.protocol.signing import sign_channel, sign_user

KEY, SECRET, SOCKET = "app-key", "app-secret", "1.2"


def private_auth(channel: str = "private-a", socket_id: str = SOCKET) -> str:
    return f"{KEY}:{sign_channel(SECRET, socket_id, channel)}"


def check(auth: str | None, channel: str = "private-a", **kwargs: Any) -> None:
    check_channel_auth(
        auth, app_key=KEY, secret=SECRET, socket_id=SOCKET, channel=channel, **kwargs
    )


class TestChannelAuth:
    def test_docs_vectors(self, vectors: dict[str, Any]) -> None:
        app = vectors["app"]
        for case in [*vectors["channel_auth"], *vectors["presence_auth"]]:
            check_channel_auth(
                f"{app['key']}:{case['signature']}",
                app_key=app["key"],
                secret=app["secret"],
                socket_id=case["socket_id"],
                channel=case["channel"],
                channel_data=case.get("channel_data"),
            )

    def test_right_signature_passes(self) -> None:
        check(private_auth())

    @pytest.mark.parametrize(
        ("auth", "message"),
        [
            (None, "Missing auth"),
            ("", "Missing auth"),
            (sign_channel(SECRET, SOCKET, "private-a"), "expected <app key>:<signature>"),
            (f"other-key:{sign_channel(SECRET, SOCKET, 'private-a')}", "Invalid key"),
            (f"{KEY}:{sign_channel(SECRET, SOCKET, 'private-a').upper()}", "Invalid signature"),
            (private_auth(socket_id="9.9"), "Invalid signature"),
            (private_auth(channel="private-b"), "Invalid signature"),
            (f"{KEY}:{sign_channel('other', SOCKET, 'private-a')}", "Invalid signature"),
            (f"{KEY}:", "Invalid signature"),
            (f"{KEY}:é", "Invalid signature"),
        ],
    )
    def test_bad_auth_is_refused(self, auth: str | None, message: str) -> None:
        with pytest.raises(SubscriptionRefused, match=message) as info:
            check(auth)
        assert info.value.code is None
        assert info.value.close_code is None

    def test_presence_signs_the_exact_channel_data(self) -> None:
        data = '{"user_id":"u"}'
        auth = f"{KEY}:{sign_channel(SECRET, SOCKET, 'presence-a', data)}"
        check(auth, "presence-a", channel_data=data)
        with pytest.raises(SubscriptionRefused, match="Invalid signature"):
            check(auth, "presence-a", channel_data='{"user_id": "u"}')
        with pytest.raises(SubscriptionRefused):
            check(private_auth("presence-a"), "presence-a", channel_data=data)


def user_auth(user_data: str) -> str:
    return f"{KEY}:{sign_user(SECRET, SOCKET, user_data)}"


def signin(auth: str | None, user_data: str | None, **kwargs: Any) -> str:
    return check_signin(auth, user_data, app_key=KEY, secret=SECRET, socket_id=SOCKET, **kwargs)


class TestSignin:
    def test_docs_vector(self, vectors: dict[str, Any]) -> None:
        app = vectors["app"]
        [case] = vectors["user_auth"]
        user_id = check_signin(
            f"{app['key']}:{case['signature']}",
            case["user_data"],
            app_key=app["key"],
            secret=app["secret"],
            socket_id=case["socket_id"],
        )
        assert user_id == "12345"

    def test_right_signature_gives_the_user_id(self) -> None:
        data = '{"id":"u1","user_info":{"n":1}}'
        assert signin(f"{KEY}:{sign_user(SECRET, SOCKET, data)}", data) == "u1"

    @pytest.mark.parametrize(
        ("auth", "user_data", "message"),
        [
            (None, '{"id":"u"}', "needs auth"),
            ("x", None, "needs user_data"),
            (f"{KEY}:{sign_user(SECRET, '9.9', '{}')}", "{}", "Invalid signature"),
            (sign_user(SECRET, SOCKET, '{"id":"u"}'), '{"id":"u"}', "Invalid signature"),
            (user_auth("nope"), "nope", "JSON object"),
            (user_auth("[1]"), "[1]", "JSON object"),
            (user_auth("{}"), "{}", "non-empty string id"),
            (user_auth('{"id":""}'), '{"id":""}', "string id"),
            (user_auth('{"id":7}'), '{"id":7}', "string id"),
        ],
    )
    def test_bad_signin_is_refused(
        self, auth: str | None, user_data: str | None, message: str
    ) -> None:
        with pytest.raises(SigninRefused, match=message) as info:
            signin(auth, user_data)
        assert info.value.code is None
