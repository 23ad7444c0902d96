from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from reference_server.protocol import frames


def test_connection_established_double_encodes_data() -> None:
    text = frames.connection_established("123.456", 120)
    assert text == (
        '{"event":"pusher:connection_established",'
        '"data":"{\\"socket_id\\":\\"123.456\\",\\"activity_timeout\\":120}"}'
    )


def test_connection_established_fractional_timeout() -> None:
    data = json.loads(json.loads(frames.connection_established("1.2", 0.5))["data"])
    assert data["activity_timeout"] == 0.5


def test_connection_established_data_as_object_fault() -> None:
    frame = json.loads(frames.connection_established("1.2", 120.0, data_as_object=True))
    assert frame["data"] == {"socket_id": "1.2", "activity_timeout": 120}


def test_ping_and_pong() -> None:
    assert frames.PING == '{"event":"pusher:ping","data":"{}"}'
    assert frames.PONG == '{"event":"pusher:pong","data":"{}"}'


def test_error_data_is_an_object_with_null_code() -> None:
    assert json.loads(frames.error("nope", None)) == {
        "event": "pusher:error",
        "data": {"code": None, "message": "nope"},
    }
    assert json.loads(frames.error("bad key", 4001))["data"]["code"] == 4001


def test_subscription_succeeded() -> None:
    assert frames.subscription_succeeded("foo") == (
        '{"event":"pusher_internal:subscription_succeeded","channel":"foo","data":"{}"}'
    )
    assert "data" not in json.loads(frames.subscription_succeeded("foo", with_data=False))


@given(st.text(), st.text(), st.text())
def test_channel_event_keeps_data_as_the_exact_string(name: str, channel: str, data: str) -> None:
    assert json.loads(frames.channel_event(name, channel, data)) == {
        "event": name,
        "channel": channel,
        "data": data,
    }


def test_channel_event_reencoded_fault() -> None:
    assert json.loads(frames.channel_event("e", "c", '{"a":1}', reencode_json_data=True))[
        "data"
    ] == {"a": 1}
    # Data that is not JSON cannot be re-encoded and stays a string.
    assert (
        json.loads(frames.channel_event("e", "c", "not json", reencode_json_data=True))["data"]
        == "not json"
    )
