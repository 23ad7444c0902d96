"""The presence model's bookkeeping: member events follow users, not connections."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from conformance.properties.presence import PresenceModel


def test_two_tabs_of_one_user() -> None:
    model = PresenceModel()
    assert model.join("ann", "tab1") is True
    assert model.join("ann", "tab2") is False
    assert model.leave("ann", "tab1") is False
    assert model.users() == {"ann"}
    assert model.leave("ann", "tab2") is True
    assert model.users() == set()


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("xyz")), max_size=30))
def test_added_and_removed_balance(ops: list[tuple[str, str]]) -> None:
    model = PresenceModel()
    added = removed = 0
    for user, tab in ops:
        conn = f"{user}{tab}"
        if conn in model.subscribed():
            removed += model.leave(user, conn)
        else:
            added += model.join(user, conn)
        assert added - removed == len(model.users())
