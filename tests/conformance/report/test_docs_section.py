"""The docs map in the reports: a table per page with each sentence, its requirements and their
outcomes, omissions with their reasons, everything escaped; and both summaries carry it."""

from __future__ import annotations

from pathlib import Path

from conformance.docs_map import DocsPage, DocsRule, load_docs_map
from conformance.report import markdown, summary_html
from conformance.report.docs_section import (
    html_section,
    markdown_section,
    report_outcomes,
    report_pages,
)
from conformance.results import RunReport

PAGE = DocsPage(
    path=Path("specs/docs/pusher-websockets-protocol.yaml"),
    page="https://pusher.com/docs/channels/library_auth_reference/pusher-websockets-protocol/",
    title="Protocol <b>&</b>",
    rules=(
        DocsRule(
            anchor="#connection-events",
            quote='The server sends <script>alert("x")</script> | `pusher:ping` *now*',
            requirements=("PROTO-CONN-05", "PROTO-CONN-06", "PROTO-CONN-07"),
            notes="a <note>",
        ),
        DocsRule(
            anchor="",
            quote="Clients should reconnect.",
            omission="a client's duty <i>; client certification is a separate issue",
        ),
        DocsRule(
            anchor="#ping-and-pong-messages",
            quote="The server may ping.",
            omission="not yet tested: a check would wait for the ping",
        ),
    ),
)
OUTCOMES: dict[str, str | None] = {"PROTO-CONN-05": "PASS", "PROTO-CONN-06": "FAIL"}


def test_html_escapes_and_shows_outcomes_and_omissions() -> None:
    html = html_section([PAGE], OUTCOMES)
    assert html.startswith('<section id="docs-map">')
    assert html.rstrip().endswith("</section>")
    assert "<script>" not in html
    assert "<b>&</b>" not in html
    assert "<note>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "Protocol &lt;b&gt;&amp;&lt;/b&gt;" in html
    assert "<i>a &lt;note&gt;</i>" in html
    assert '<span class="PASS">PROTO-CONN-05: PASS</span>' in html
    assert '<span class="FAIL">PROTO-CONN-06: FAIL</span>' in html
    assert '<span class="NOT_RUN">PROTO-CONN-07: not run</span>' in html
    assert (
        '<td class="OMITTED"><b>omitted</b>: a client&#x27;s duty &lt;i&gt;; client '
        "certification is a separate issue</td>"
    ) in html
    assert '<td class="GAP"><b>not yet tested</b>: a check would wait for the ping</td>' in html
    assert f'<a href="{PAGE.page}#connection-events">#connection-events</a>' in html
    assert f'<a href="{PAGE.page}">top</a>' in html
    assert "1 pages, 3 rules: 1 mapped to requirements, 1 omitted with a reason, 1 not yet" in html
    assert "<script" not in html.lower().replace("&lt;script", "")
    assert "http://" not in html
    assert "stylesheet" not in html


def test_markdown_escapes_and_shows_outcomes_and_omissions() -> None:
    md = markdown_section([PAGE], OUTCOMES)
    assert md.startswith("## Docs to requirements\n")
    assert f"### [Protocol \\<b\\>&\\</b\\>]({PAGE.page})" in md
    row = next(line for line in md.splitlines() if "connection-events" in line)
    assert row.count(" | ") == 3  # the pipe in the quote is escaped
    assert "\\| \\`pusher:ping\\` \\*now\\*" in row
    assert "| PROTO-CONN-05, PROTO-CONN-06, PROTO-CONN-07 |" in row
    assert "PROTO-CONN-05: PASS, PROTO-CONN-06: FAIL, PROTO-CONN-07: not run |" in row
    assert (
        f"| [top]({PAGE.page}) | Clients should reconnect. | - | omitted: a client's duty "
        "\\<i\\>; client certification is a separate issue |"
    ) in md
    assert "| - | not yet tested: a check would wait for the ping |" in md


def test_no_pages_no_section() -> None:
    assert html_section([], OUTCOMES) == ""
    assert markdown_section([], OUTCOMES) == ""


def test_a_report_maps_verdicts_and_not_covered(failing_report: RunReport) -> None:
    outcomes = report_outcomes(failing_report)
    assert outcomes["PROTO-CONN-05"] == "FAIL"
    assert outcomes["PROTO-CONN-06"] == "PASS"
    for requirement in failing_report.not_covered:
        assert outcomes[requirement.id] == requirement.status
    assert report_pages(failing_report) == load_docs_map()


def test_both_summaries_carry_the_section(failing_report: RunReport) -> None:
    pages = report_pages(failing_report)
    assert pages, "the bundled specs have a docs map"
    html = summary_html.render(failing_report)
    assert '<section id="docs-map">' in html
    assert html.index('<section id="docs-map">') > html.index("<h2>Not covered</h2>")
    assert html.rstrip().endswith("</section>\n</body></html>")
    md = markdown.render(failing_report)
    assert "## Docs to requirements" in md
    assert md.index("## Docs to requirements") > md.index("## Not covered")
    mapped = next(r for p in pages for r in p.rules if "PROTO-CONN-05" in r.requirements)
    assert mapped.quote[:20].replace("`", "\\`") in md or mapped.quote[:20] in md
