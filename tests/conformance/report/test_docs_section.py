"""The docs map in the reports: a table per page with each sentence, its requirements and their
outcomes, omissions with their reasons, everything escaped; and both summaries carry it."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.docs_map import DocsPage, DocsRule, load_docs_map
from conformance.outcomes import CheckOutcome
from conformance.report import markdown, summary_html
from conformance.report.docs_section import (
    html_section,
    markdown_section,
    report_elsewhere,
    report_outcomes,
    report_pages,
)
from conformance.results import CheckResult, RunReport, build_report
from conformance.spec import Subject, load_specs

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
#: A rule naming a server's, a client's and an auth endpoint's requirements.
SHARED = DocsPage(
    path=Path("specs/docs/pusher-websockets-protocol.yaml"),
    page=PAGE.page,
    title="Protocol",
    rules=(
        DocsRule(
            anchor="#recommendations-for-client-libraries",
            quote="The client MUST respond with a pong.",
            requirements=("PROTO-PING-01", "CLIENT-PING-01", "AUTHEP-01"),
        ),
    ),
)
ELSEWHERE: dict[str, Subject] = {"CLIENT-PING-01": "client", "AUTHEP-01": "auth-endpoint"}


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


def test_ids_another_command_certifies_are_named_with_their_subject() -> None:
    md = markdown_section([SHARED], {"PROTO-PING-01": "PASS"}, ELSEWHERE)
    assert (
        "PROTO-PING-01: PASS, CLIENT-PING-01: (client certification), "
        "AUTHEP-01: (auth-endpoint certification) |"
    ) in md
    html = html_section([SHARED], {"PROTO-PING-01": "PASS"}, ELSEWHERE)
    assert '<span class="PASS">PROTO-PING-01: PASS</span>' in html
    assert '<span class="ELSEWHERE">CLIENT-PING-01: (client certification)</span>' in html
    assert '<span class="ELSEWHERE">AUTHEP-01: (auth-endpoint certification)</span>' in html
    assert ".ELSEWHERE" in html
    # Without the subjects they read as requirements that did not run, as before.
    assert "CLIENT-PING-01: not run" in markdown_section([SHARED], {}, None)


def test_a_server_run_shows_every_page_and_names_the_other_subjects(
    failing_report: RunReport,
) -> None:
    elsewhere = report_elsewhere(failing_report)
    assert elsewhere["CLIENT-PING-01"] == "client"
    assert elsewhere["AUTHEP-01"] == "auth-endpoint"
    assert "PROTO-CONN-05" not in elsewhere
    md = markdown.render(failing_report)
    assert "did not load" not in md
    assert "CLIENT-PING-01: (client certification)" in md
    assert "AUTHEP-01: (auth-endpoint certification)" in md
    assert "CLIENT-PING-01: not run" not in md


def _run_of(subject: Subject) -> RunReport:
    """A run of another subject's command, every check passed."""
    specs = load_specs(subject=subject)
    results = {
        c.full_id: CheckResult(c.full_id, c.requirement_id, CheckOutcome.PASSED, duration_s=0.1)
        for c in specs.checks
    }
    return build_report(specs, results, target={"name": subject}, run={"profile": "ci"})


@pytest.mark.parametrize("subject", ["client", "auth-endpoint"])
def test_another_subjects_run_shows_the_pages_naming_its_requirements(subject: Subject) -> None:
    report = _run_of(subject)
    ours = {r.id for r in report.specs.requirements}
    pages = report_pages(report)
    assert pages, f"the docs map names {subject} requirements"
    assert all(any(ours.intersection(r.requirements) for r in p.rules) for p in pages)
    assert {p.page for p in pages} < {p.page for p in load_docs_map()}
    elsewhere = report_elsewhere(report)
    assert elsewhere["PROTO-CONN-05"] == "server"
    assert not ours.intersection(elsewhere)
    md = markdown.render(report)
    assert "did not load" not in md
    first = sorted(ours.intersection(i for p in pages for r in p.rules for i in r.requirements))[0]
    assert f"{first}: PASS" in md
    assert "(server certification)" in md
    html = summary_html.render(report)
    assert f'<span class="PASS">{first}: PASS</span>' in html
