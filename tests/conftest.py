"""The mutation self-test's summary: how many fault switches the suite killed, how many with
exactly their named requirements, and which faults took longest (the tier's cost)."""

from __future__ import annotations

from typing import Any

import pytest

#: How many of the slowest faults the summary names.
SLOWEST_SHOWN = 5


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    faults: dict[str, dict[str, Any]] = {}
    for outcome in ("passed", "failed"):
        for report in terminalreporter.getreports(outcome):
            if report.when != "call":
                continue
            found = dict(report.user_properties)
            if "selftest_fault" in found:
                tier = "full" if "whole_suite" in report.nodeid else "fast"
                faults[f"{tier}:{found['selftest_fault']}"] = found
    if not faults:
        return
    terminalreporter.section("mutation self-test")
    for tier in ("fast", "full"):
        runs = {k.split(":", 1)[1]: v for k, v in faults.items() if k.startswith(f"{tier}:")}
        if not runs:
            continue
        killed = sum(1 for v in runs.values() if v["selftest_killed"])
        exact = sum(1 for v in runs.values() if v["selftest_exact"])
        slowest = sorted(runs.items(), key=lambda item: -float(item[1]["selftest_seconds"]))
        terminalreporter.write_line(
            f"{tier} tier: {len(runs)} faults, killed {killed} ({100 * killed / len(runs):.1f}%),"
            f" exactly their requirements {exact}; slowest: "
            + ", ".join(f"{name} {v['selftest_seconds']} s" for name, v in slowest[:SLOWEST_SHOWN])
        )
        missed = sorted(name for name, v in runs.items() if not v["selftest_killed"])
        if missed:
            terminalreporter.write_line(f"  not killed: {', '.join(missed)}")
