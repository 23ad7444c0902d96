"""The judges against the docs' worked examples (auth-signatures page, as fixtures/vectors.yaml
holds them): each rule's judge accepts the docs' own reply and names what is wrong with a reply
that differs in one way."""

from __future__ import annotations

import json

import pytest

from conformance.auth_endpoint.judge import (
    Reply,
    Request,
    channel_string,
    judge_channel_signed,
    judge_client_error,
    judge_key,
    judge_own_id,
    judge_refusal_status,
    judge_unsigned,
    judge_user_signed,
    signed,
    user_string,
)
from conformance.signing import hmac_sha256_hex

KEY = "278d425bdf160c739803"
SECRET = "7ad3773142a6692b25b8"
SOCKET = "1234.1234"
PRIVATE_SIGNATURE = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
PRESENCE_DATA = '{"user_id":10,"user_info":{"name":"Mr. Channels"}}'
#: The docs print this channel_data beside the signature of an older string ("Mr. Pusher");
#: this is the signature of the string as printed (fixtures/vectors.yaml says the same).
PRESENCE_SIGNATURE = "31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"
USER_DATA = '{"id":"12345"}'
USER_SIGNATURE = "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"


def _ok(body: dict[str, str]) -> Reply:
    return Reply(200, "application/json", json.dumps(body))


PRIVATE = _ok({"auth": f"{KEY}:{PRIVATE_SIGNATURE}"})
PRESENCE = _ok({"auth": f"{KEY}:{PRESENCE_SIGNATURE}", "channel_data": PRESENCE_DATA})
USER = _ok({"auth": f"{KEY}:{USER_SIGNATURE}", "user_data": USER_DATA})
FORBIDDEN = Reply(403, "text/plain", "Forbidden")


def test_the_strings_to_sign_are_the_docs() -> None:
    assert channel_string(SOCKET, "private-foobar") == "1234.1234:private-foobar"
    assert channel_string(SOCKET, "presence-foobar", "{}") == "1234.1234:presence-foobar:{}"
    assert user_string(SOCKET, USER_DATA) == '1234.1234::user::{"id":"12345"}'
    assert hmac_sha256_hex(SECRET, user_string(SOCKET, USER_DATA)) == USER_SIGNATURE


def test_the_docs_replies_pass_every_judge() -> None:
    assert (
        judge_channel_signed(
            PRIVATE, secret=SECRET, socket_id=SOCKET, channel="private-foobar", presence=False
        )
        is None
    )
    assert (
        judge_channel_signed(
            PRESENCE, secret=SECRET, socket_id=SOCKET, channel="presence-foobar", presence=True
        )
        is None
    )
    assert judge_user_signed(USER, secret=SECRET, socket_id=SOCKET) is None
    for reply in (PRIVATE, PRESENCE, USER):
        assert judge_key(reply, KEY) is None
    assert judge_own_id(PRESENCE, "10", "channel") is None  # the docs sign a number
    assert judge_own_id(USER, "12345", "user") is None


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (FORBIDDEN, "no signature: HTTP 403"),
        (Reply(200, "text/html", "<html>"), "not a JSON object"),
        (_ok({"token": "x"}), "no auth string"),
        (_ok({"auth": PRIVATE_SIGNATURE}), "not <key>:<signature>"),
        (_ok({"auth": f"{KEY}:{PRIVATE_SIGNATURE.upper()}"}), "the signature is not"),
        (Reply(201, "application/json", PRIVATE.body), "no signature: HTTP 201"),
    ],
)
def test_a_private_reply_wrong_in_one_way_is_named(reply: Reply, problem: str) -> None:
    found = judge_channel_signed(
        reply, secret=SECRET, socket_id=SOCKET, channel="private-foobar", presence=False
    )
    assert found is not None
    assert problem in found


def test_presence_data_must_be_signed_and_returned_as_signed() -> None:
    unsigned = _ok({"auth": f"{KEY}:{hmac_sha256_hex(SECRET, '1234.1234:presence-foobar')}",
                    "channel_data": PRESENCE_DATA})  # fmt: skip
    reencoded = _ok({"auth": PRESENCE.json_object()["auth"],  # type: ignore[index]
                     "channel_data": json.dumps(json.loads(PRESENCE_DATA))})  # fmt: skip
    as_object = Reply(200, "", json.dumps({"auth": "k:s", "channel_data": {"user_id": 1}}))
    for reply, problem in (
        (unsigned, "the signature is not"),
        (reencoded, "the signature is not"),
        (as_object, "channel_data as a JSON string"),
        (_ok({"auth": "k:s", "channel_data": "[1]"}), "not a JSON-encoded object"),
    ):
        found = judge_channel_signed(
            reply, secret=SECRET, socket_id=SOCKET, channel="presence-foobar", presence=True
        )
        assert found is not None
        assert problem in found


def test_user_auth_needs_user_data_with_a_string_id() -> None:
    def judged(data: str, string: str | None = None) -> str | None:
        signature = hmac_sha256_hex(SECRET, string or user_string(SOCKET, data))
        return judge_user_signed(
            _ok({"auth": f"{KEY}:{signature}", "user_data": data}), secret=SECRET, socket_id=SOCKET
        )

    assert judged(USER_DATA) is None
    assert "no non-empty string id" in str(judged('{"id":12345}'))
    assert "no non-empty string id" in str(judged('{"id":""}'))
    assert "the signature is not" in str(judged(USER_DATA, f"{SOCKET}:user:{USER_DATA}"))


def test_the_key_part_and_the_id_are_judged_only_on_signing_replies() -> None:
    other = _ok({"auth": f"other:{PRIVATE_SIGNATURE}"})
    assert "not the app's key" in str(judge_key(other, KEY))
    assert judge_key(FORBIDDEN, KEY) is None
    assert judge_own_id(FORBIDDEN, "1", "channel") is None
    assert "not the logged-in user's id" in str(judge_own_id(PRESENCE, "11", "channel"))
    assert "has no user_id" in str(judge_own_id(PRIVATE, "10", "channel"))
    assert "not the logged-in user's id" in str(judge_own_id(USER, "1", "user"))


def test_a_refusal_signs_nothing_anywhere() -> None:
    strings = [channel_string(SOCKET, "private-foobar")]
    assert judge_unsigned(FORBIDDEN, secret=SECRET, strings=strings) is None
    assert "signed" in str(judge_unsigned(PRIVATE, secret=SECRET, strings=strings))
    leaky = Reply(403, "text/html", f"<pre>debug: would sign {PRIVATE_SIGNATURE}</pre>")
    assert "carries the signature" in str(judge_unsigned(leaky, secret=SECRET, strings=strings))
    assert not signed(_ok({"auth": ""}))


def test_the_status_judges_leave_signing_replies_to_the_signature_judges() -> None:
    assert judge_refusal_status(FORBIDDEN, (403,)) is None
    assert judge_refusal_status(PRIVATE, (403,)) is None
    assert "HTTP 401, not 403" in str(judge_refusal_status(Reply(401, "", ""), (403,)))
    assert judge_refusal_status(Reply(401, "", ""), (401, 403)) is None
    assert "HTTP 200" in str(judge_refusal_status(_ok({"error": "no"}), (403,)))
    assert judge_client_error(Reply(400, "", "")) is None
    assert judge_client_error(FORBIDDEN) is None
    assert judge_client_error(PRIVATE) is None
    assert "HTTP 500, not 4xx" in str(judge_client_error(Reply(500, "", "boom")))
    assert "HTTP 302" in str(judge_client_error(Reply(302, "", "")))


def test_a_request_describes_itself_with_its_fields() -> None:
    request = Request("channel", "alice", (("socket_id", "1.1"), ("channel_name", "x" * 300)))
    text = request.describe()
    assert text.startswith("channel auth as alice: socket_id='1.1' channel_name='xxx")
    assert "(300 chars)" in text
    assert Request("user", None, ()).describe() == "user auth anonymously: "
    assert request.field("socket_id") == "1.1"
    assert request.field("nope") is None
