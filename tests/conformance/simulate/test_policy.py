"""When a virtual tab tries again: pusher-js's rule for each class of close code, and jitter
that stays within what the scenario allows."""

from __future__ import annotations

import random

import pytest

from conformance.simulate.policy import DEFAULT_DELAY, retry_delay


def delay(code: int | None, *, gave_up: bool = False, jitter: float = 0.0) -> float | None:
    return retry_delay(code, gave_up=gave_up, jitter=jitter, rng=random.Random(1))


@pytest.mark.parametrize("code", [4000, 4001, 4009, 4050, 4099])
def test_4000_to_4099_is_never_retried(code: int) -> None:
    assert delay(code) is None
    assert delay(code, jitter=5.0) is None


@pytest.mark.parametrize("code", [4100, 4101, 4150, 4199])
def test_4100_to_4199_waits_a_second(code: int) -> None:
    assert delay(code) == 1.0


@pytest.mark.parametrize("code", [4200, 4201, 4250, 4299])
def test_4200_to_4299_comes_back_at_once(code: int) -> None:
    assert delay(code) == 0.0


def test_no_close_frame_or_no_connection_waits_a_second() -> None:
    assert delay(None) == DEFAULT_DELAY == 1.0


@pytest.mark.parametrize("code", [None, 4001, 4100, 1000, 1006])
def test_giving_up_on_a_silent_link_retries_at_once(code: int | None) -> None:
    assert delay(code, gave_up=True) == 0.0


@pytest.mark.parametrize("code", [1000, 1001, 1006, 1011, 3999, 4300, 4999])
def test_any_other_code_waits_a_second(code: int) -> None:
    assert delay(code) == 1.0


@pytest.mark.parametrize(("code", "base"), [(None, 1.0), (4100, 1.0), (4200, 0.0), (1006, 1.0)])
def test_jitter_adds_at_most_the_given_seconds(code: int | None, base: float) -> None:
    rng = random.Random(7)
    drawn = [retry_delay(code, jitter=0.5, rng=rng) for _ in range(500)]
    assert all(d is not None and base <= d <= base + 0.5 for d in drawn)
    extras = [d - base for d in drawn if d is not None]
    assert max(extras) > 0.4  # spread over the range, not a constant
    assert min(extras) < 0.1
    gave_up = [retry_delay(code, gave_up=True, jitter=2.0, rng=rng) for _ in range(200)]
    assert all(d is not None and 0.0 <= d <= 2.0 for d in gave_up)


def test_no_jitter_draws_nothing_and_the_same_seed_draws_the_same() -> None:
    rng = random.Random(3)
    state = rng.getstate()
    assert retry_delay(4200, jitter=0.0, rng=rng) == 0.0
    assert rng.getstate() == state  # pusher-js has no jitter: the default takes no randomness
    first = [retry_delay(None, jitter=1.0, rng=random.Random(9)) for _ in range(3)]
    assert len(set(first)) == 1
