from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_server.protocol.names import (
    CHANNEL_NAME_MAX_LENGTH,
    ChannelType,
    channel_type,
    is_cache_channel,
    is_client_event,
    is_pusher_event,
    is_valid_channel_name,
)

ALPHABET = string.ascii_letters + string.digits + "_-=@,.;"
valid_names = st.text(alphabet=ALPHABET, min_size=1, max_size=CHANNEL_NAME_MAX_LENGTH)


@given(valid_names)
def test_names_from_the_grammar_are_valid(name: str) -> None:
    assert is_valid_channel_name(name)


@given(valid_names, st.characters().filter(lambda c: c not in ALPHABET), st.data())
def test_any_other_character_makes_a_name_invalid(name: str, bad: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(name)))
    assert not is_valid_channel_name(name[:position] + bad + name[position:])


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("", False),
        ("a" * 164, True),
        ("a" * 165, False),
        ("my-channel", True),
        ("private-foo_bar=@,.;", True),
        ("#server-to-user-1", False),
        ("with space", False),
        ("caf\u00e9", False),
        ("\u0661\u0662", False),  # Arabic-Indic digits: \d would match them.
        ("foo\n", False),
        ("foo/bar", False),
    ],
)
def test_channel_name_edges(name: str, valid: bool) -> None:
    assert is_valid_channel_name(name) is valid


def test_max_length_is_adjustable() -> None:
    assert is_valid_channel_name("a" * 100, max_length=100)
    assert not is_valid_channel_name("a" * 101, max_length=100)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("foo", ChannelType.PUBLIC),
        ("cache-foo", ChannelType.PUBLIC),
        ("private-foo", ChannelType.PRIVATE),
        ("private-cache-foo", ChannelType.PRIVATE),
        ("private-encrypted-foo", ChannelType.ENCRYPTED),
        ("private-encrypted-cache-foo", ChannelType.ENCRYPTED),
        ("presence-foo", ChannelType.PRESENCE),
        ("presence-cache-foo", ChannelType.PRESENCE),
        # Anchored prefixes only (Soketi matches unanchored, a known deviation).
        ("foo-private-bar", ChannelType.PUBLIC),
        ("privatefoo", ChannelType.PUBLIC),
        ("Private-foo", ChannelType.PUBLIC),
    ],
)
def test_channel_type_comes_from_the_anchored_prefix(name: str, kind: ChannelType) -> None:
    assert channel_type(name) is kind


@pytest.mark.parametrize(
    ("name", "cache"),
    [
        ("cache-a", True),
        ("private-cache-a", True),
        ("private-encrypted-cache-a", True),
        ("presence-cache-a", True),
        ("cachefoo", False),
        ("foo-cache-a", False),
    ],
)
def test_cache_channels(name: str, cache: bool) -> None:
    assert is_cache_channel(name) is cache


def test_event_classes() -> None:
    assert is_pusher_event("pusher:ping")
    assert not is_pusher_event("pusher_internal:subscription_succeeded")
    assert is_client_event("client-typing")
    assert not is_client_event("clientfoo")
