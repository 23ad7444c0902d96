"""How the stalled phase reports what a server did with a subscriber that stopped reading."""

from __future__ import annotations

from conformance.bench.delivery_phases import describe_stall
from conformance.bench.orders import StallReport
from conformance.bench.phases import PhaseRecord


def test_a_close_seen_only_after_reading_again_is_an_upper_bound() -> None:
    record = PhaseRecord()
    describe_stall(record, StallReport(10.0, None, "close-frame", 4100, 12.5), 480, 2000)
    assert record.figures == {"stalled_close_code": 4100, "stalled_closed_after_s": 2.5}
    assert record.notes == [
        "the server ended the stalled subscriber with a close frame (4100), seen once it read"
        " again (so the time is an upper bound)"
    ]


def test_a_reset_seen_while_paused_is_timed_from_the_tcp_state() -> None:
    record = PhaseRecord()
    describe_stall(record, StallReport(10.0, 10.75, "reset", None, 14.0), 0, 2000)
    assert record.figures == {"stalled_close_code": None, "stalled_closed_after_s": 0.75}
    assert record.notes == [
        "the server ended the stalled subscriber with a TCP reset, seen while it was not reading"
    ]


def test_kept_open_says_whether_events_were_dropped_or_held() -> None:
    dropped, held = PhaseRecord(), PhaseRecord()
    describe_stall(dropped, StallReport(10.0, None, None, None, None), 502, 2000)
    describe_stall(held, StallReport(10.0, None, None, None, None), 2000, 2000)
    assert dropped.figures == held.figures == {}
    assert dropped.notes == [
        "the server kept the stalled subscriber open; it dropped 1498 of the 2000 events it"
        " could not send"
    ]
    assert "held every event" in held.notes[0]
