"""Profiles: example counts, seeds and the bound on shrinking."""

from __future__ import annotations

import pytest
from hypothesis.internal.conjecture import engine

from conformance.profiles import PROFILES, shrinking_capped


def _bound() -> float:
    value: float = engine.MAX_SHRINKING_SECONDS
    return value


def test_a_cap_applies_inside_and_the_original_comes_back() -> None:
    before = _bound()
    with shrinking_capped(1.5):
        assert _bound() == 1.5
    assert _bound() == before
    seen: list[float] = []
    with pytest.raises(RuntimeError, match="failing"):
        _fail_within(2.5, seen)
    assert seen == [2.5]
    assert _bound() == before


def _fail_within(seconds: float, seen: list[float]) -> None:
    with shrinking_capped(seconds):
        seen.append(_bound())
        raise RuntimeError("a failing run")


def test_checks_side_by_side_get_the_lowest_cap_in_force() -> None:
    before = _bound()
    outer = shrinking_capped(30.0)
    inner = shrinking_capped(20.0)
    outer.__enter__()
    inner.__enter__()
    assert _bound() == 20.0
    outer.__exit__(None, None, None)  # the first to enter leaves first
    assert _bound() == 20.0
    inner.__exit__(None, None, None)
    assert _bound() == before


def test_the_ci_profile_shrinks_briefly() -> None:
    assert PROFILES["ci"].shrink_seconds < PROFILES["thorough"].shrink_seconds
