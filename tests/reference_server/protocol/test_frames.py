from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_server.protocol import frames


def test_connection_established_double_encodes_data() -> None:
    text = frames.connection_established("123.456", 120)
    assert text == (
        '{"event":"pusher:connection_established",'
        '"data":"{\\"socket_id\\":\\"123.456\\",\\"activity_timeout\\":120}"}'
    )


@given(st.text(max_size=30), st.integers(min_value=1, max_value=10**6))
def test_connection_established_is_the_json_of_its_fields(socket_id: str, seconds: int) -> None:
    """Whatever the socket id (the usual digits.digits take a shortcut), the frame parses to
    the same fields."""
    frame = json.loads(frames.connection_established(socket_id, seconds))
    assert frame["event"] == "pusher:connection_established"
    assert json.loads(frame["data"]) == {"socket_id": socket_id, "activity_timeout": seconds}


@pytest.mark.parametrize(("configured", "advertised"), [(0.5, 1), (0.01, 1), (2.1, 3), (3, 3)])
def test_connection_established_advertises_whole_seconds(
    configured: float, advertised: int
) -> None:
    """A positive integer, rounded up: clients parse it as one, and 0 would mean "never"."""
    data = json.loads(json.loads(frames.connection_established("1.2", configured))["data"])
    assert data["activity_timeout"] == advertised
    assert type(data["activity_timeout"]) is int


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


@given(st.text(), st.text(), st.text())
def test_channel_event_keeps_data_as_the_exact_string(name: str, channel: str, data: str) -> None:
    assert json.loads(frames.channel_event(name, channel, data)) == {
        "event": name,
        "channel": channel,
        "data": data,
    }
