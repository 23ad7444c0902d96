"""Counting deliveries: loss, duplicates, strays, latency and percentiles."""

from __future__ import annotations

import pytest

from conformance.bench.tally import (
    DeliveryTally,
    TallySummary,
    event_data,
    merge_summaries,
    percentile,
)


def frame_of(data: str) -> bytes:
    return ('{"event":"bench","channel":"c","data":"' + data + '"}').encode()


def deliver(
    tally: DeliveryTally, counter: list[int], seq: int, *, sent: float = 0.0, now: float = 1.0
) -> None:
    tally.record(counter, frame_of(event_data(seq, sent)), 1, now)


def test_event_data_carries_sequence_time_and_padding() -> None:
    assert event_data(7, 12.5) == "bnch:7:12.500000:"
    padded = event_data(7, 12.5, 100)
    assert len(padded) == 100
    assert padded.startswith("bnch:7:12.500000:x")
    assert event_data(7, 12.5, 3) == "bnch:7:12.500000:"


def test_every_event_once_is_no_loss_and_no_duplicate() -> None:
    tally = DeliveryTally(5)
    counters = [tally.track(), tally.track()]
    for counter in counters:
        for seq in range(5):
            deliver(tally, counter, seq)
    summary = tally.summary()
    assert (summary.subscribers, summary.received, summary.distinct) == (2, 10, 10)
    assert (summary.loss, summary.duplicates, summary.strays) == (0, 0, 0)


def test_loss_and_duplicates_are_per_subscriber() -> None:
    tally = DeliveryTally(4)
    first, second = tally.track(), tally.track()
    for seq in (0, 1, 1, 1, 3):  # 2 lost, 1 twice extra
        deliver(tally, first, seq)
    for seq in (0, 1, 2, 3, 3):  # 3 once extra
        deliver(tally, second, seq)
    summary = tally.summary()
    assert summary.loss == 1
    assert summary.duplicates == 3
    assert summary.distinct == 7


def test_unacknowledged_events_not_seen_are_not_loss() -> None:
    tally = DeliveryTally(4)
    counter = tally.track()
    deliver(tally, counter, 0)
    deliver(tally, counter, 2)
    assert tally.summary().loss == 2
    assert tally.summary(unacknowledged=[1, 3, 99]).loss == 0
    # Seen although unacknowledged (the answer was lost, not the event): still no loss.
    assert tally.summary(unacknowledged=[2, 3]).loss == 1


def test_many_copies_are_all_counted() -> None:
    tally = DeliveryTally(1)
    counter = tally.track()
    for _ in range(300):
        deliver(tally, counter, 0)
    assert counter[0] == 300
    assert tally.summary().duplicates == 299


@pytest.mark.parametrize(
    "data", ["bnch:9:1.0:", "bnch:-1:1.0:", "bnch:x:1.0:", "bnch:12", "bnch::"]
)
def test_out_of_range_or_unreadable_numbers_are_strays(data: str) -> None:
    tally = DeliveryTally(5)
    counter = tally.track()
    tally.record(counter, frame_of(data), 1, 1.0)
    summary = tally.summary()
    assert (summary.strays, summary.received, summary.loss) == (1, 0, 5)


def test_one_read_of_many_events_at_once() -> None:
    tally = DeliveryTally(10, latency=True)
    counter = tally.track()
    blob = b"\n".join(frame_of(event_data(seq, 1.0)) for seq in (0, 1, 2, 2, 11))
    blob += b"\n" + frame_of("bnch:oops")
    tally.record(counter, blob, 6, 1.5)
    summary = tally.summary()
    assert (summary.received, summary.distinct, summary.duplicates) == (4, 3, 1)
    assert (summary.strays, summary.loss) == (2, 7)
    assert summary.latencies_ms == pytest.approx((500.0,) * 5)


def test_latency_and_receipt_times() -> None:
    tally = DeliveryTally(3, latency=True)
    counter = tally.track()
    deliver(tally, counter, 0, sent=10.0, now=10.002)
    deliver(tally, counter, 1, sent=10.5, now=10.51)
    summary = tally.summary()
    assert summary.latencies_ms == pytest.approx((2.0, 10.0))
    assert (summary.first_at, summary.last_at) == (10.002, 10.51)
    assert DeliveryTally(3).summary().latencies_ms == ()


def test_merging_workers() -> None:
    a = TallySummary(2, 10, 9, 1, 1, 0, 5.0, 6.0, (1.0,))
    b = TallySummary(3, 15, 15, 0, 0, 2, 4.0, 7.0, (2.0, 3.0))
    merged = merge_summaries([a, b])
    assert merged == TallySummary(5, 25, 24, 1, 1, 2, 4.0, 7.0, (1.0, 2.0, 3.0))
    empty = merge_summaries([])
    assert (empty.first_at, empty.last_at, empty.received) == (None, None, 0)


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, unsorted
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0], 50) == 1.0
    assert percentile([1.0, 2.0], 51) == 2.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, 0)


def test_a_negative_event_count_is_refused() -> None:
    with pytest.raises(ValueError, match="events"):
        DeliveryTally(-1)
