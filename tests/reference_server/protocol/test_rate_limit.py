from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reference_server.protocol.rate_limit import RollingWindow


def test_ten_per_rolling_second() -> None:
    window = RollingWindow()
    assert all(window.allow(0.05 * n) for n in range(10))
    assert not window.allow(0.5)
    assert not window.allow(0.999)
    assert window.allow(1.0)  # The first one has left the window.
    assert not window.allow(1.01)


@given(st.lists(st.floats(0, 0.2, allow_nan=False), max_size=60))
def test_never_more_than_ten_in_any_second(gaps: list[float]) -> None:
    window = RollingWindow()
    now, accepted = 0.0, []
    for gap in gaps:
        now += gap
        if window.allow(now):
            accepted.append(now)
    for start in accepted:
        assert sum(1 for t in accepted if start <= t < start + 1.0) <= 10


@given(st.lists(st.floats(0.1, 5, allow_nan=False), max_size=30))
def test_events_at_most_ten_per_second_are_all_accepted(gaps: list[float]) -> None:
    window = RollingWindow()
    now = 0.0
    for gap in gaps:
        now += gap
        assert window.allow(now)
