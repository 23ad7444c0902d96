from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_server.protocol.errors import (
    InvalidChannelName,
    InvalidMessage,
    ProtocolError,
)
from reference_server.protocol.messages import (
    ClientEvent,
    ClientMessage,
    Ping,
    Pong,
    Signin,
    Subscribe,
    Unrecognised,
    Unsubscribe,
    parse_client_message,
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"event":"pusher:ping","data":{}}', Ping()),
        ('{"event":"pusher:ping"}', Ping()),
        ('{"event":"pusher:pong","data":{}}', Pong()),
        ('{"event":"pusher:subscribe","data":{"channel":"a"}}', Subscribe("a")),
        (
            '{"event":"pusher:subscribe","data":{"channel":"a","auth":"k:s","channel_data":"{}"}}',
            Subscribe("a", auth="k:s", channel_data="{}"),
        ),
        ('{"event":"pusher:subscribe","data":{"channel":"a","auth":null}}', Subscribe("a")),
        ('{"event":"pusher:unsubscribe","data":{"channel":"a"}}', Unsubscribe("a")),
        (
            '{"event":"client-x","channel":"private-a","data":{"b":1}}',
            ClientEvent("client-x", "private-a", {"b": 1}),
        ),
        ('{"event":"client-x"}', ClientEvent("client-x", None, None)),
        ('{"event":"pusher:signin","data":{}}', Signin(None, None)),
        (
            '{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{}"}}',
            Signin("k:s", "{}"),
        ),
        ('{"event":"pusher:whatever","data":{}}', Unrecognised("pusher:whatever")),
        ('{"event":"my-event"}', Unrecognised("my-event")),
    ],
)
def test_valid_messages(text: str, message: ClientMessage) -> None:
    assert parse_client_message(text) == message


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", InvalidMessage),
        ("not json", InvalidMessage),
        ('{"event":"pusher:ping"', InvalidMessage),
        ("[]", InvalidMessage),
        ('"pusher:ping"', InvalidMessage),
        ("null", InvalidMessage),
        ("{}", InvalidMessage),
        ('{"event":null}', InvalidMessage),
        ('{"event":1}', InvalidMessage),
        ('{"event":"pusher:ping","data":NaN}', InvalidMessage),
        ('{"event":"pusher:subscribe"}', InvalidMessage),
        ('{"event":"pusher:subscribe","data":"{\\"channel\\":\\"a\\"}"}', InvalidMessage),
        ('{"event":"pusher:subscribe","data":{}}', InvalidChannelName),
        ('{"event":"pusher:subscribe","data":{"channel":1}}', InvalidChannelName),
        ('{"event":"pusher:subscribe","data":{"channel":"a","auth":1}}', InvalidMessage),
        ('{"event":"pusher:subscribe","data":{"channel":"a","channel_data":{}}}', InvalidMessage),
        ('{"event":"pusher:unsubscribe","data":{}}', InvalidChannelName),
    ],
)
def test_invalid_messages(text: str, error: type[ProtocolError]) -> None:
    with pytest.raises(error) as info:
        parse_client_message(text)
    assert info.value.code is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def parses_or_fails_with_a_documented_error(text: str) -> None:
    """The parser's contract: a message, or a non-fatal documented error; nothing else."""
    error: ProtocolError | None = None
    try:
        parse_client_message(text)
    except (InvalidMessage, InvalidChannelName) as exc:
        error = exc
    assert error is None or error.code is None


@given(st.text())
def test_any_text_parses_or_fails_with_a_documented_error(text: str) -> None:
    parses_or_fails_with_a_documented_error(text)


@given(
    st.sampled_from(["pusher:ping", "pusher:subscribe", "pusher:unsubscribe", "client-a", "e"]),
    json_values,
)
def test_any_json_envelope_parses_or_fails_with_a_documented_error(
    event: str, data: object
) -> None:
    parses_or_fails_with_a_documented_error(json.dumps({"event": event, "data": data}))
