"""The names and socket ids tried: the fixed edges around a pattern, and strategies that stay
within what each check needs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.auth_endpoint.files import (
    CHANNEL_NAME_MAX,
    Pattern,
    valid_channel_name,
    valid_socket_id,
)
from conformance.auth_endpoint.names import (
    FIXED_SOCKET_IDS,
    MALFORMED_SOCKET_IDS,
    granted_names,
    malformed_socket_ids,
    names_around,
    names_under,
    near_misses,
    socket_ids,
)

ADMIN = Pattern("private-admin.*")
NEWS = Pattern("private-news")


def test_near_misses_of_a_prefix_walk_its_edges() -> None:
    misses = near_misses(ADMIN)
    for name in (
        "private-admin.",
        "private-admin",
        "private-adminX",
        "private-admin-x",
        "PRIVATE-ADMIN.x",
        "Private-admin.x",
        "presence-admin.x",
        " private-admin.x",
        "private-admin.x ",
        "private-admin%2Ex",
        "private-admin.x:x",
    ):
        assert name in misses, name
    assert any(len(m) == CHANNEL_NAME_MAX + 1 for m in misses)
    # Some stay under the prefix (private-admin.xX): refused to a user without it, granted
    # to one with it; the checks ask the policy which.
    assert any(ADMIN.matches(m) and valid_channel_name(m) for m in misses)


def test_near_misses_of_an_exact_name_are_never_that_name() -> None:
    misses = near_misses(NEWS)
    assert "private-news" not in misses
    assert {"private-newsX", "private-new", "private-newss", "PRIVATE-NEWS"} <= set(misses)
    assert any(not m.isascii() for m in misses)  # look-alikes and full-width letters


def test_granted_names_are_granted_and_reach_the_length_limit() -> None:
    names = granted_names(ADMIN)
    assert all(ADMIN.matches(n) and valid_channel_name(n) for n in names)
    assert max(len(n) for n in names) == CHANNEL_NAME_MAX
    assert granted_names(NEWS) == ("private-news",)


def test_the_fixed_socket_ids() -> None:
    assert all(valid_socket_id(s) for s in FIXED_SOCKET_IDS)
    assert not any(s is not None and valid_socket_id(s) for s in MALFORMED_SOCKET_IDS)
    assert None in MALFORMED_SOCKET_IDS  # the field left out


@settings(max_examples=60, deadline=None, database=None)
@given(st.data())
def test_the_strategies_keep_their_promises(data: st.DataObject) -> None:
    assert valid_socket_id(data.draw(socket_ids()))
    assert not valid_socket_id(data.draw(malformed_socket_ids()))
    under = data.draw(names_under([ADMIN, NEWS]))
    assert ADMIN.matches(under) or NEWS.matches(under)
    assert valid_channel_name(under)
    assert isinstance(data.draw(names_around([ADMIN, NEWS])), str)
