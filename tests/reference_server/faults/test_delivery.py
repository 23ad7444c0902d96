"""Delivery faults core: which channel event frames are dropped, doubled or held, and when."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

from reference_server.faults import Fault
from reference_server.faults.delivery import (
    REORDER_WINDOW,
    WIDE_FANOUT,
    DeliveryShaper,
    Step,
    is_channel_event_frame,
    shaper_for,
)
from reference_server.protocol import frames


def event(n: int) -> str:
    return frames.channel_event("e", "c", str(n))


def numbers(texts: Iterable[str]) -> list[int | str]:
    """Channel events as their number, anything else as its event name."""
    out: list[int | str] = []
    for text in texts:
        frame = json.loads(text)
        out.append(int(frame["data"]) if frame["event"] == "e" else frame["event"])
    return out


def burst(
    shaper: DeliveryShaper, count: int, now: float = 0.0, fanout: int = WIDE_FANOUT
) -> list[int | str]:
    """``count`` channel events, each fanned out to ``fanout`` connections, offered at the
    same instant, then the shaper drained."""
    return offered(shaper, [fanout] * count, now)


def offered(shaper: DeliveryShaper, fanouts: list[int], now: float = 0.0) -> list[int | str]:
    """Channel events 1, 2, ... with the given fan-outs, offered at the same instant, then the
    shaper drained."""
    written: list[str] = []
    for n, fanout in enumerate(fanouts, start=1):
        written += shaper.offer(event(n), now, fanout).write
    written += shaper.drain().write
    return numbers(written)


def test_channel_event_frames_are_the_non_reserved_ones() -> None:
    assert is_channel_event_frame(frames.channel_event("my-event", "c", "{}"))
    assert is_channel_event_frame(frames.channel_event("pusherish", "c", "x"))
    assert is_channel_event_frame(frames.client_event("client-x", "private-c", {"a": 1}, "u"))
    reserved = [
        frames.PING,
        frames.PONG,
        frames.connection_established("1.2", 120),
        frames.error("nope", None),
        frames.subscription_succeeded("c"),
        frames.presence_subscription_succeeded("presence-c", {"count": 0}),
        frames.member_added("presence-c", "u"),
        frames.member_removed("presence-c", "u"),
        frames.cache_miss("cache-c"),
        frames.signin_success("{}"),
    ]
    assert not any(is_channel_event_frame(text) for text in reserved)
    # Frames not shaped by frames.py are read instead.
    assert is_channel_event_frame('{"channel":"c","event":"e","data":"x"}')
    assert not is_channel_event_frame('{ "event": "pusher:pong"}')
    assert not is_channel_event_frame("[]")


def test_no_delivery_fault_means_no_shaper() -> None:
    assert shaper_for(frozenset()) is None
    assert shaper_for(frozenset({Fault.NO_PONG, Fault.LEAK_TO_UNSUBSCRIBED})) is None
    assert isinstance(shaper_for(frozenset({Fault.DROP_ONE_IN_N})), DeliveryShaper)


def test_drop_one_in_n_loses_every_fifth_channel_event() -> None:
    shaper = DeliveryShaper(frozenset({Fault.DROP_ONE_IN_N}))
    assert burst(shaper, 12) == [1, 2, 3, 4, 6, 7, 8, 9, 11, 12]
    assert shaper.count == 12
    assert shaper.wide_count == 12


def test_only_channel_events_are_counted() -> None:
    shaper = DeliveryShaper(frozenset({Fault.DROP_ONE_IN_N}))
    written: list[str] = []
    for n in range(1, 6):
        written += shaper.offer(frames.PONG, 0.0, WIDE_FANOUT).write
        written += shaper.offer(event(n), 0.0, WIDE_FANOUT).write
    pong = "pusher:pong"
    assert numbers(written) == [pong, 1, pong, 2, pong, 3, pong, 4, pong]
    assert shaper.count == 5
    assert shaper.wide_count == 5


def test_duplicate_delivery_doubles_every_fourth_channel_event() -> None:
    shaper = DeliveryShaper(frozenset({Fault.DUPLICATE_DELIVERY}))
    assert burst(shaper, 9) == [1, 2, 3, 4, 4, 5, 6, 7, 8, 8, 9]


def test_reorder_under_load_swaps_pairs_in_a_burst() -> None:
    shaper = DeliveryShaper(frozenset({Fault.REORDER_UNDER_LOAD}))
    assert burst(shaper, 7) == [1, 2, 4, 3, 5, 7, 6]


def test_a_held_frame_says_when_it_must_go_out() -> None:
    shaper = DeliveryShaper(frozenset({Fault.REORDER_UNDER_LOAD}))
    shaper.offer(event(1), 10.0)
    shaper.offer(event(2), 10.0)
    assert shaper.offer(event(3), 10.0) == Step((), 10.0 + REORDER_WINDOW)
    assert shaper.next_deadline() == 10.0 + REORDER_WINDOW
    # Other frames are not held behind it.
    assert shaper.offer(frames.PONG, 10.1) == Step((frames.PONG,), 10.0 + REORDER_WINDOW)
    # A timer that fires early releases nothing.
    assert shaper.tick(10.2) == Step((), 10.0 + REORDER_WINDOW)
    assert shaper.tick(10.0 + REORDER_WINDOW) == Step((event(3),), None)
    assert shaper.next_deadline() is None
    # Nothing held now: the next frame goes straight out.
    assert shaper.offer(event(4), 10.3) == Step((event(4),), None)


def test_a_late_next_frame_does_not_overtake() -> None:
    """The window passed but the timer has not run yet: the held frame goes first."""
    shaper = DeliveryShaper(frozenset({Fault.REORDER_UNDER_LOAD}))
    for n in (1, 2, 3):
        shaper.offer(event(n), 0.0)
    assert shaper.offer(event(4), REORDER_WINDOW + 0.01) == Step((event(3), event(4)), None)


def test_the_next_frame_just_inside_the_window_overtakes() -> None:
    shaper = DeliveryShaper(frozenset({Fault.REORDER_UNDER_LOAD}))
    for n in (1, 2, 3):
        shaper.offer(event(n), 0.0)
    assert shaper.offer(event(4), REORDER_WINDOW - 0.001) == Step((event(4), event(3)), None)


def test_drain_releases_what_is_held() -> None:
    shaper = DeliveryShaper(frozenset({Fault.REORDER_UNDER_LOAD}))
    assert shaper.drain() == Step((), None)
    for n in (1, 2, 3):
        shaper.offer(event(n), 0.0)
    assert shaper.drain() == Step((event(3),), None)


@pytest.mark.parametrize(
    ("faults", "count", "expected"),
    [
        # 5 and 10 dropped; 9 is held, and released by the (dropped) 10.
        ({Fault.DROP_ONE_IN_N, Fault.REORDER_UNDER_LOAD}, 10, [1, 2, 4, 3, 7, 6, 8, 9]),
        # 12 is held with its copy; 13 overtakes both.
        (
            {Fault.DUPLICATE_DELIVERY, Fault.REORDER_UNDER_LOAD},
            13,
            [1, 2, 4, 4, 3, 5, 7, 6, 8, 8, 10, 9, 11, 13, 12, 12],
        ),
        # 20 is both 5th and 4th: dropping wins.
        (
            {Fault.DROP_ONE_IN_N, Fault.DUPLICATE_DELIVERY},
            20,
            [1, 2, 3, 4, 4, 6, 7, 8, 8, 9, 11, 12, 12, 13, 14, 16, 16, 17, 18, 19],
        ),
    ],
)
def test_faults_combine(faults: set[Fault], count: int, expected: list[int]) -> None:
    assert burst(DeliveryShaper(frozenset(faults)), count) == expected


LOSSY = [
    {Fault.DROP_ONE_IN_N},
    {Fault.DUPLICATE_DELIVERY},
    {Fault.DROP_ONE_IN_N, Fault.DUPLICATE_DELIVERY},
]


def test_wide_fanout_is_three() -> None:
    assert WIDE_FANOUT == 3


@pytest.mark.parametrize("fanout", [1, 2])
@pytest.mark.parametrize("faults", LOSSY)
def test_narrow_fanout_is_never_dropped_or_duplicated(faults: set[Fault], fanout: int) -> None:
    shaper = DeliveryShaper(frozenset(faults))
    assert burst(shaper, 20, fanout=fanout) == list(range(1, 21))
    assert shaper.count == 20
    assert shaper.wide_count == 0


@pytest.mark.parametrize("faults", LOSSY)
def test_fanout_defaults_to_one(faults: set[Fault]) -> None:
    shaper = DeliveryShaper(frozenset(faults))
    assert [shaper.offer(event(n), 0.0).write for n in range(1, 21)] == [
        (event(n),) for n in range(1, 21)
    ]
    assert shaper.wide_count == 0


@pytest.mark.parametrize("fanout", [1, 2])
def test_narrow_fanout_still_counts_for_reorder(fanout: int) -> None:
    faults = frozenset({Fault.DROP_ONE_IN_N, Fault.DUPLICATE_DELIVERY, Fault.REORDER_UNDER_LOAD})
    shaper = DeliveryShaper(faults)
    assert burst(shaper, 10, fanout=fanout) == [1, 2, 4, 3, 5, 7, 6, 8, 10, 9]
    assert shaper.count == 10
    assert shaper.wide_count == 0


@pytest.mark.parametrize(
    ("fanout", "dropped"),
    [(2, False), (3, True), (4, True), (50, True)],
)
def test_drop_threshold_is_a_fanout_of_three(fanout: int, dropped: bool) -> None:
    shaper = DeliveryShaper(frozenset({Fault.DROP_ONE_IN_N}))
    for n in range(1, 5):
        assert shaper.offer(event(n), 0.0, 3).write == (event(n),)
    # The 5th channel event: the 5th wide one only if its fan-out reaches 3.
    assert shaper.offer(event(5), 0.0, fanout).write == (() if dropped else (event(5),))
    assert shaper.count == 5
    assert shaper.wide_count == (5 if dropped else 4)
    # A narrow 5th leaves the 5th wide one to come.
    assert shaper.offer(event(6), 0.0, 3).write == ((event(6),) if dropped else ())


@pytest.mark.parametrize(
    ("fanout", "doubled"),
    [(2, False), (3, True), (4, True), (50, True)],
)
def test_duplicate_threshold_is_a_fanout_of_three(fanout: int, doubled: bool) -> None:
    shaper = DeliveryShaper(frozenset({Fault.DUPLICATE_DELIVERY}))
    for n in range(1, 4):
        assert shaper.offer(event(n), 0.0, 3).write == (event(n),)
    # The 4th channel event: the 4th wide one only if its fan-out reaches 3.
    expected = (event(4), event(4)) if doubled else (event(4),)
    assert shaper.offer(event(4), 0.0, fanout).write == expected
    assert shaper.count == 4
    assert shaper.wide_count == (4 if doubled else 3)
    expected = (event(5),) if doubled else (event(5), event(5))
    assert shaper.offer(event(5), 0.0, 3).write == expected


#: One connection's channel events 1..15: narrow ones at 1, 3, 6, 9 and 14, so the wide ones
#: are 2, 4, 5, 7, 8 (5th), 10, 11, 12 (8th), 13 and 15 (10th).
INTERLEAVED = [1, 3, 2, 3, 4, 1, 3, 3, 2, 3, 3, 3, 3, 1, 3]


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        # The 5th and 10th wide frames, not the 5th and 10th channel events.
        ({Fault.DROP_ONE_IN_N}, [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14]),
        # The 4th and 8th wide frames, not the 4th, 8th and 12th channel events.
        (
            {Fault.DUPLICATE_DELIVERY},
            [1, 2, 3, 4, 5, 6, 7, 7, 8, 9, 10, 11, 12, 12, 13, 14, 15],
        ),
        # Reordering still counts every channel event: 3, 6, 9 and 12 are held; 15 is
        # dropped, not held.
        (
            {Fault.DROP_ONE_IN_N, Fault.REORDER_UNDER_LOAD},
            [1, 2, 4, 3, 5, 7, 6, 10, 9, 11, 13, 12, 14],
        ),
        # 12 is held with its copy.
        (
            {Fault.DUPLICATE_DELIVERY, Fault.REORDER_UNDER_LOAD},
            [1, 2, 4, 3, 5, 7, 7, 6, 8, 10, 9, 11, 13, 12, 12, 14, 15],
        ),
    ],
)
def test_only_wide_frames_advance_the_drop_and_duplicate_counter(
    faults: set[Fault], expected: list[int]
) -> None:
    shaper = DeliveryShaper(frozenset(faults))
    assert offered(shaper, INTERLEAVED) == expected
    assert shaper.count == 15
    assert shaper.wide_count == 10


def test_same_operations_same_bugs() -> None:
    """Hypothesis replays sequences when it shrinks: the victims must not depend on anything
    but the sequence."""
    faults = frozenset({Fault.DROP_ONE_IN_N, Fault.DUPLICATE_DELIVERY, Fault.REORDER_UNDER_LOAD})
    assert burst(DeliveryShaper(faults), 30) == burst(DeliveryShaper(faults), 30)
