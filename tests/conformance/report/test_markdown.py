"""summary.md: evidence for what failed, the gaps, and figures as markdown tables."""

from __future__ import annotations

from conformance.report import markdown
from conformance.results import RunReport


def test_markdown_summary_has_evidence_and_gaps(failing_report: RunReport) -> None:
    text = markdown.render(failing_report)
    assert "| PROTO-CONN-05 | MUST | stated | FAIL |" in text
    assert "## Evidence" in text
    assert "transcripts/x.jsonl" in text
    assert "## Not covered" in text
    assert "PROTO-CONN-02" in text


def test_markdown_has_a_figures_section_for_passing_and_failing_checks(
    figured_report: RunReport,
) -> None:
    text = markdown.render(figured_report)
    section = text[text.index("## Figures") : text.index("## Evidence")]
    assert "### PROTO-CONN-05/first-frame: admin-alerts <scenario> (passed)" in section
    assert "- delivered 312, expected 312, duplicates 0, order violations 0" in section
    assert "| user | tabs | delivered | expected | duplicates | order violations |" in section
    assert "|---|---|---|---|---|---|" in section
    assert "| admin-ana | 3 | 120 | 120 | 0 | 0 |" in section
    assert "| bob\\|<b> | 1 | 12 | 12 | null | 0 |" in section
    assert "(failed)" in section
    assert "- delivered 2, expected 3" in section


def test_no_figures_no_section(failing_report: RunReport) -> None:
    assert "## Figures" not in markdown.render(failing_report)
