"""summary.html: everything from the server escaped, requirements linked to their details."""

from __future__ import annotations

from conformance.report import summary_html
from conformance.results import RunReport


def test_html_summary_escapes_and_links(failing_report: RunReport) -> None:
    text = summary_html.render(failing_report)
    assert text.startswith("<!doctype html>")
    assert "boom &lt;&amp;&gt; &quot;quoted&quot;" in text
    assert "<a href='#PROTO-CONN-05'>" in text
    assert "href='transcripts/x.jsonl'" in text


def test_html_has_the_figures_escaped(figured_report: RunReport) -> None:
    text = summary_html.render(figured_report)
    section = text[text.index("<h2>Figures</h2>") : text.index("<h2>Not covered</h2>")]
    assert "admin-alerts &lt;scenario&gt; (passed)</h3>" in section
    assert "<li>delivered 312, expected 312, duplicates 0, order violations 0</li>" in section
    assert "<th>order violations</th>" in section
    assert "<td>bob|&lt;b&gt;</td>" in section
    assert "<b>" not in section


def test_no_figures_no_section(failing_report: RunReport) -> None:
    assert "<h2>Figures</h2>" not in summary_html.render(failing_report)
