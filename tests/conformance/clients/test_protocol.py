"""The scripted server's protocol decisions, without sockets: signatures, the per-connection
state machine and the auth endpoints' answers."""

from __future__ import annotations

import json

import pytest

from conformance.clients.protocol import (
    App,
    Session,
    answer_channel_auth,
    answer_user_auth,
    channel_auth,
    connection_established,
    parse_client_frame,
    user_auth,
    verify_channel_auth,
    verify_user_auth,
)

# The worked examples of the auth-signatures page.
DOCS_APP = App(key="278d425bdf160c739803", secret="7ad3773142a6692b25b8")


def _frame(event: str, data: object = None, channel: str | None = None) -> str:
    message: dict[str, object] = {"event": event, "data": data if data is not None else {}}
    if channel is not None:
        message["channel"] = channel
    return json.dumps(message)


def _data(text: str) -> dict[str, object]:
    decoded = json.loads(json.loads(text)["data"])
    assert isinstance(decoded, dict)
    return decoded


def test_signatures_match_the_docs_examples() -> None:
    assert channel_auth(DOCS_APP, "1234.1234", "private-foobar") == (
        "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
    )
    assert user_auth(DOCS_APP, "1234.1234", '{"id":"12345"}') == (
        "278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
    )


def test_verification_refuses_another_socket_or_channel_data() -> None:
    app = App()
    auth = channel_auth(app, "1.1", "presence-x", '{"user_id":"u"}')
    assert verify_channel_auth(app, "1.1", "presence-x", auth, '{"user_id":"u"}')
    assert not verify_channel_auth(app, "1.2", "presence-x", auth, '{"user_id":"u"}')
    assert not verify_channel_auth(app, "1.1", "presence-x", auth, '{"user_id":"v"}')
    assert not verify_channel_auth(app, "1.1", "presence-x", None)
    assert verify_user_auth(app, "1.1", "{}", user_auth(app, "1.1", "{}"))
    assert not verify_user_auth(app, "1.2", "{}", user_auth(app, "1.1", "{}"))


def test_connection_established_double_encodes_its_data() -> None:
    assert _data(connection_established("1.2", 1)) == {"socket_id": "1.2", "activity_timeout": 1}


def test_unreadable_frames_are_noted_not_answered() -> None:
    session = Session(App(), "1.1")
    for text in ("not json", "[1]", '{"data": 1}'):
        observed = session.receive(text)
        assert observed.kind == "unreadable"
        assert observed.replies == ()
    assert parse_client_frame('{"event": "client-x", "data": "plain text"}') is not None


def test_public_subscribe_succeeds_and_unsubscribe_is_noted() -> None:
    session = Session(App(), "1.1")
    observed = session.receive(_frame("pusher:subscribe", {"channel": "news"}))
    assert observed.kind == "subscribe"
    assert json.loads(observed.replies[0])["event"] == "pusher_internal:subscription_succeeded"
    assert session.receive(_frame("pusher:unsubscribe", {"channel": "news"})).facts == {
        "channel": "news",
        "was_subscribed": True,
    }


@pytest.mark.parametrize("socket_id", ["1.1", "9.9"])
def test_private_subscribe_needs_auth_for_this_socket(socket_id: str) -> None:
    app = App()
    session = Session(app, "1.1")
    auth = channel_auth(app, socket_id, "private-a")
    observed = session.receive(_frame("pusher:subscribe", {"channel": "private-a", "auth": auth}))
    valid = socket_id == "1.1"
    assert observed.facts["auth_valid"] is valid
    event = json.loads(observed.replies[0])["event"]
    assert event == ("pusher_internal:subscription_succeeded" if valid else "pusher:error")
    assert ("private-a" in session.subscribed) is valid


def test_presence_roster_is_the_scripted_others_and_the_client() -> None:
    app = App()
    others = {"presence-r": {"alice": {"name": "A"}}}
    session = Session(app, "1.1", others=others)
    answer = answer_channel_auth(app, {"socket_id": "1.1", "channel_name": "presence-r"})
    observed = session.receive(_frame("pusher:subscribe", {"channel": "presence-r", **answer.body}))
    presence = json.loads(json.loads(observed.replies[0])["data"])["presence"]
    assert presence["ids"] == ["alice", app.user_id]
    assert presence["count"] == 2
    assert presence["hash"]["alice"] == {"name": "A"}


def test_pings_are_answered_unless_withheld() -> None:
    answered = Session(App(), "1.1").receive(_frame("pusher:ping"))
    assert [json.loads(r)["event"] for r in answered.replies] == ["pusher:pong"]
    withheld = Session(App(), "1.1", answer_pings=False).receive(_frame("pusher:ping"))
    assert withheld.kind == "ping"
    assert withheld.replies == ()


def test_signin_is_checked_against_this_socket() -> None:
    app = App()
    good = answer_user_auth(app, {"socket_id": "1.1"}).body
    session = Session(app, "1.1")
    observed = session.receive(_frame("pusher:signin", dict(good)))
    assert observed.facts == {"auth_valid": True}
    assert json.loads(observed.replies[0])["event"] == "pusher:signin_success"
    assert session.signed_in_as == app.user_id
    other = answer_user_auth(app, {"socket_id": "2.2"}).body
    refused = Session(app, "1.1").receive(_frame("pusher:signin", dict(other)))
    assert refused.facts == {"auth_valid": False}


def test_client_events_are_noted_with_their_data() -> None:
    session = Session(App(), "1.1")
    observed = session.receive(_frame("client-x", {"n": 1}, channel="private-a"))
    assert observed.kind == "client_event"
    assert observed.facts["data"] == {"n": 1}
    assert observed.facts["subscribed"] is False
    assert session.receive(_frame("hello", {}, channel="private-a")).kind == "other"


def test_channel_auth_endpoint_answers() -> None:
    app = App()
    assert answer_channel_auth(app, {"socket_id": "1.1"}).status == 400
    refused = answer_channel_auth(
        app, {"socket_id": "1.1", "channel_name": "private-x"}, refuse=frozenset({"private-x"})
    )
    assert refused.status == 403
    assert "auth" not in refused.body
    private = answer_channel_auth(app, {"socket_id": "1.1", "channel_name": "private-y"})
    assert private.body == {"auth": channel_auth(app, "1.1", "private-y")}
    presence = answer_channel_auth(app, {"socket_id": "1.1", "channel_name": "presence-y"})
    channel_data = presence.body["channel_data"]
    assert json.loads(channel_data)["user_id"] == app.user_id
    assert verify_channel_auth(app, "1.1", "presence-y", presence.body["auth"], channel_data)
    assert answer_user_auth(app, {}).status == 400
