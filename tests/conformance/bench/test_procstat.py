"""Reading CPU time and memory from /proc."""

from __future__ import annotations

import os
import time

import pytest

from conformance.bench.procstat import (
    CpuSample,
    cpu_percent,
    cpu_seconds,
    parse_rss_kb,
    parse_stat_ticks,
    rss_kb,
    sample,
)

# A real /proc/PID/stat line with a command name holding spaces and parentheses; utime is 250
# and stime 37 (fields 14 and 15).
STAT = (
    "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1533 0 0 0 250 37 0 0 20 0 3 0"
    " 1234567 123456789 2345 18446744073709551615 1 1 0 0 0 0 0 16781312 2 0 0 0 17 1 0 0"
)

STATUS = """Name:\tpython
State:\tS (sleeping)
VmPeak:\t  300000 kB
VmRSS:\t   61234 kB
RssAnon:\t   40000 kB
"""


def test_ticks_count_from_the_last_parenthesis() -> None:
    assert parse_stat_ticks(STAT) == 287


@pytest.mark.parametrize("text", ["", "4242 no parentheses here", "1 (x) S 1 2 3"])
def test_a_line_that_is_not_a_stat_line(text: str) -> None:
    with pytest.raises(ValueError, match="not a /proc/PID/stat line"):
        parse_stat_ticks(text)


def test_rss_from_status() -> None:
    assert parse_rss_kb(STATUS) == 61234
    assert parse_rss_kb("Name:\tkthreadd\nState:\tS\n") is None
    with pytest.raises(ValueError, match="unreadable VmRSS"):
        parse_rss_kb("VmRSS:\tlots\n")


def test_this_process_is_readable_and_busy_work_shows() -> None:
    before = sample(None, time.monotonic())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    after = sample(os.getpid(), time.monotonic())
    assert before.cpu is not None
    assert after.cpu is not None
    assert after.cpu >= before.cpu
    percent = cpu_percent(before, after)
    assert percent is not None
    assert percent > 0
    memory = rss_kb()
    assert memory is not None
    assert memory > 1000


def test_a_process_that_is_gone_has_no_figures() -> None:
    assert cpu_seconds(2**22 + 7) is None  # above the default pid_max
    assert rss_kb(2**22 + 7) is None


def test_percent_of_one_core() -> None:
    assert cpu_percent(CpuSample(1.0, 10.0), CpuSample(1.5, 11.0)) == pytest.approx(50.0)
    assert cpu_percent(CpuSample(None, 10.0), CpuSample(1.5, 11.0)) is None
    assert cpu_percent(CpuSample(1.0, 10.0), CpuSample(1.5, 10.0)) is None
