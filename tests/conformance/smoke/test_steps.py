"""The pure judgements inside the steps, on frames made by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance.signing import channel_auth, hmac_sha256_hex
from conformance.smoke.steps import (
    UNAUTHORISED,
    Failed,
    PresenceRoster,
    channel_reply,
    check_roster,
    names_for,
    refusal_text,
    unauthorised_subscribe,
)
from conformance.wsclient import Frame


def _frame(value: dict[str, Any]) -> Frame:
    text = json.dumps(value)
    return Frame(0, 0.0, False, text, json.loads(text))


def _succeeded(channel: str, ids: list[str]) -> Frame:
    presence = {"ids": ids, "hash": {i: {} for i in ids}, "count": len(ids)}
    return _frame(
        {
            "event": "pusher_internal:subscription_succeeded",
            "channel": channel,
            "data": json.dumps({"presence": presence}),
        }
    )


def test_names_are_unique_per_run_and_valid_channel_names() -> None:
    names = names_for("abc123")
    assert names.private == "private-smoke-abc123"
    assert names.presence.startswith("presence-")
    assert names_for("x").public != names_for("y").public


def test_channel_reply_matches_only_answers_about_the_channel() -> None:
    assert channel_reply(_succeeded("presence-a", []), "presence-a")
    assert not channel_reply(_succeeded("presence-b", []), "presence-a")
    assert channel_reply(_frame({"event": "pusher:error", "data": {"code": None}}), "x")
    assert channel_reply(
        _frame({"event": "pusher:subscription_error", "channel": "x", "data": "{}"}), "x"
    )
    assert not channel_reply(_frame({"event": "smoke-event", "channel": "x"}), "x")


def test_refusal_text_is_short() -> None:
    message = "Invalid signature: Expected HMAC SHA256 hex digest of '1.2:private-x', got 'ab'"
    frame = _frame({"event": "pusher:error", "data": {"code": 4009, "message": message}})
    assert refusal_text(frame) == "pusher:error: code 4009, Invalid signature"
    error = _frame({"event": "pusher:subscription_error", "channel": "x", "data": "{}"})
    assert refusal_text(error) == "pusher:subscription_error"


def test_roster_of_two_users_passes() -> None:
    rosters = [
        PresenceRoster.of("a", _succeeded("presence-x", ["a"])),
        PresenceRoster.of("b", _succeeded("presence-x", ["a", "b"])),
    ]
    assert check_roster(rosters) == "roster of 2 users"


@pytest.mark.parametrize(
    ("first", "second", "says"),
    [
        (["a"], ["a"], "user b is not in its own roster"),
        ([], ["a", "b"], "user a is not in its own roster"),
        (["a"], ["a", "b", "c"], "expected ['a', 'b']"),
    ],
)
def test_roster_faults_are_named(first: list[str], second: list[str], says: str) -> None:
    rosters = [
        PresenceRoster.of("a", _succeeded("p", first)),
        PresenceRoster.of("b", _succeeded("p", second)),
    ]
    with pytest.raises(Failed, match=says.replace("[", r"\[").replace("]", r"\]")):
        check_roster(rosters)


def test_a_refused_presence_subscribe_is_named() -> None:
    refused = _frame({"event": "pusher:error", "data": {"code": None, "message": "nope"}})
    with pytest.raises(Failed, match="user a refused: pusher:error: nope"):
        check_roster([PresenceRoster.of("a", refused)])


def test_each_unauthorised_subscribe_is_wrong_in_one_way_only() -> None:
    def made(kind: str) -> dict[str, Any]:
        return unauthorised_subscribe(
            kind, key="k", secret="s", channel="private-x", socket_id="1.2", other_socket_id="3.4"
        )

    right = channel_auth("k", "s", "1.2", "private-x")
    subscribes = {kind: made(kind) for kind, _ in UNAUTHORISED}
    assert {kind: data.get("auth") for kind, data in subscribes.items()} == {
        "no-auth": None,
        "wrong-secret": channel_auth("k", "s-not", "1.2", "private-x"),
        "other-socket": channel_auth("k", "s", "3.4", "private-x"),
        "no-socket-id": f"k:{hmac_sha256_hex('s', 'private-x')}",
    }
    assert all(data["channel"] == "private-x" for data in subscribes.values())
    assert right not in {data.get("auth") for data in subscribes.values()}
    with pytest.raises(ValueError, match="not an unauthorised subscribe"):
        made("right")
