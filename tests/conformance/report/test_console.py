"""The terminal summary: what went wrong, and one line per check that reported figures."""

from __future__ import annotations

from conformance.report import console
from conformance.results import RunReport


def test_console_prints_one_figures_line_per_check(figured_report: RunReport) -> None:
    lines = console.render(figured_report).splitlines()
    figures = [line for line in lines if line.startswith("figures ")]
    assert (
        "figures PROTO-CONN-05/first-frame: delivered 312, expected 312, "
        "duplicates 0, order violations 0; table of 2 rows in summary.md"
    ) in figures
    assert "figures PROTO-CONN-03/unknown-key-closed-4001: delivered 2, expected 3" in figures
    assert len(figures) == len(figured_report.figured()) == 2


def test_console_lists_the_failing_requirement_and_ends_with_the_exit_code(
    failing_report: RunReport,
) -> None:
    lines = console.render(failing_report).splitlines()
    assert any(line.startswith("FAIL          PROTO-CONN-05 [MUST] ") for line in lines)
    assert '    PROTO-CONN-05/first-frame: failed: boom <&> "quoted"' in lines
    assert lines[-1].endswith("; exit 1")


def test_the_report_prints_through_the_console_module(failing_report: RunReport) -> None:
    assert failing_report.console() == console.render(failing_report)
