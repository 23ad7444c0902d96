"""CPU time and memory of a local process, read from Linux's ``/proc``.

Both sides of a benchmark report the CPU they used, so that a reader can tell which one was
saturated: a server at 100 % of its core with a load generator at 40 % is the server's limit,
not ours. The parsing is separate from the reading so that it is tested on sample text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "CpuSample",
    "cpu_percent",
    "cpu_seconds",
    "parse_rss_kb",
    "parse_stat_ticks",
    "rss_kb",
    "sample",
]

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_stat_ticks(stat: str) -> int:
    """utime + stime, in clock ticks, from the text of ``/proc/PID/stat``.

    The command name (field 2) is in parentheses and may itself hold spaces and parentheses,
    so the fields are counted from the last ``)``.

    Raises:
        ValueError: the text is not a stat line.
    """
    close = stat.rfind(")")
    if close < 0:
        raise ValueError("not a /proc/PID/stat line: no ')' after the command name")
    fields = stat[close + 1 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    if len(fields) < 13:
        raise ValueError(f"not a /proc/PID/stat line: {len(fields)} fields after the name")
    return int(fields[11]) + int(fields[12])


def parse_rss_kb(status: str) -> int | None:
    """VmRSS in KiB from the text of ``/proc/PID/status``; ``None`` when it has none (a zombie
    or a kernel thread)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1])
            raise ValueError(f"unreadable VmRSS line: {line!r}")
    return None


def cpu_seconds(pid: int | None = None) -> float | None:
    """CPU seconds (user + system) a process has used; this process without ``pid``. ``None``
    when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid or 'self'}/stat", encoding="ascii", errors="replace") as file:
            return parse_stat_ticks(file.read()) / _TICKS_PER_SECOND
    except (OSError, ValueError):
        return None


def rss_kb(pid: int | None = None) -> int | None:
    """Resident memory in KiB; this process without ``pid``. ``None`` when it is gone."""
    try:
        with open(f"/proc/{pid or 'self'}/status", encoding="utf-8", errors="replace") as file:
            return parse_rss_kb(file.read())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds of a process at a monotonic time."""

    cpu: float | None
    at: float


def sample(pid: int | None, at: float) -> CpuSample:
    return CpuSample(cpu_seconds(pid), at)


def cpu_percent(before: CpuSample, after: CpuSample) -> float | None:
    """Percent of one core used between two samples; ``None`` if either is missing or no time
    passed."""
    if before.cpu is None or after.cpu is None or after.at <= before.at:
        return None
    return 100.0 * (after.cpu - before.cpu) / (after.at - before.at)
