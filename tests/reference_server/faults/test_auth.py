"""Fault switches in checking subscribe and sign-in signatures."""

from __future__ import annotations

import pytest

from reference_server.faults import Fault
from reference_server.faults.auth import check_channel_auth_with_faults, correct_signin_auth
from reference_server.protocol.auth import check_signin
from reference_server.protocol.errors import SubscriptionRefused
from reference_server.protocol.signing import hmac_sha256_hex, sign_channel

from ..harness import App, is_error, send, sent

KEY, SECRET, SOCKET = "app-key", "app-secret", "1.2"


def private_auth(channel: str = "private-a", socket_id: str = SOCKET) -> str:
    return f"{KEY}:{sign_channel(SECRET, socket_id, channel)}"


def check(
    auth: str | None,
    channel: str = "private-a",
    *,
    faults: frozenset[Fault],
    channel_data: str | None = None,
) -> None:
    check_channel_auth_with_faults(
        auth,
        app_key=KEY,
        secret=SECRET,
        socket_id=SOCKET,
        channel=channel,
        channel_data=channel_data,
        faults=faults,
    )


def test_without_signing_faults_the_core_decides() -> None:
    faults = frozenset({Fault.NO_PONG})
    check(private_auth(), faults=faults)
    with pytest.raises(SubscriptionRefused, match="Invalid key"):
        check(f"other:{sign_channel(SECRET, SOCKET, 'private-a')}", faults=faults)


def test_refusals_keep_the_cores_messages() -> None:
    faults = frozenset({Fault.AUTH_SOCKET_ID_IGNORED})
    with pytest.raises(SubscriptionRefused, match="Missing auth for channel private-a"):
        check(None, faults=faults)
    with pytest.raises(SubscriptionRefused, match="expected <app key>:<signature>"):
        check("no-colon", faults=faults)
    with pytest.raises(SubscriptionRefused, match=r"Expected HMAC SHA256 hex digest of 1\.2:"):
        check(f"{KEY}:bad", faults=faults)


def test_fault_auth_key_part_ignored() -> None:
    faults = frozenset({Fault.AUTH_KEY_PART_IGNORED})
    signature = sign_channel(SECRET, SOCKET, "private-a")
    check(signature, faults=faults)
    check(f"other:{signature}", faults=faults)
    with pytest.raises(SubscriptionRefused):
        check(f"{KEY}:{sign_channel(SECRET, '9.9', 'private-a')}", faults=faults)


def test_fault_auth_socket_id_ignored() -> None:
    faults = frozenset({Fault.AUTH_SOCKET_ID_IGNORED})
    check(private_auth(), faults=faults)
    check(f"{KEY}:{hmac_sha256_hex(SECRET, 'private-a')}", faults=faults)
    data = '{"user_id":"u"}'
    auth = f"{KEY}:{hmac_sha256_hex(SECRET, 'presence-a:' + data)}"
    check(auth, "presence-a", channel_data=data, faults=faults)
    with pytest.raises(SubscriptionRefused, match="Invalid key"):
        check(f"other:{hmac_sha256_hex(SECRET, 'private-a')}", faults=faults)


def test_fault_presence_channel_data_unsigned() -> None:
    faults = frozenset({Fault.PRESENCE_CHANNEL_DATA_UNSIGNED})
    data = '{"user_id":"u"}'
    check(private_auth("presence-a"), "presence-a", channel_data=data, faults=faults)
    right = f"{KEY}:{sign_channel(SECRET, SOCKET, 'presence-a', data)}"
    check(right, "presence-a", channel_data=data, faults=faults)
    with pytest.raises(SubscriptionRefused):
        check(private_auth(socket_id="9.9"), faults=faults)


def test_correct_signin_auth_is_what_the_core_accepts() -> None:
    user_data = '{"id":"u"}'
    auth = correct_signin_auth(KEY, SECRET, SOCKET, user_data)
    assert check_signin(auth, user_data, app_key=KEY, secret=SECRET, socket_id=SOCKET) == "u"


def test_fault_signin_signature_unchecked() -> None:
    connection = App([Fault.SIGNIN_SIGNATURE_UNCHECKED]).connect()
    send(connection, "pusher:signin", {"auth": "anything", "user_data": '{"id":"u"}'})
    assert sent(connection)[0]["event"] == "pusher:signin_success"
    send(connection, "pusher:signin", {"user_data": '{"id":"u"}'})
    assert sent(connection)[0]["event"] == "pusher:signin_success"
    send(connection, "pusher:signin", {"auth": "anything", "user_data": "{}"})
    is_error(sent(connection))
    assert connection.user_id == "u"
