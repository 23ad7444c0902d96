"""The coverage section: static coverage from the specs alone, dynamic coverage from the
bundled server's marks, the same in results.json, summary.md and summary.html."""

from __future__ import annotations

import dataclasses
import json

import pytest

from conformance.outcomes import CheckOutcome
from conformance.report import coverage_section, markdown, results_json, summary_html
from conformance.results import CheckResult, RunReport, build_report
from conformance.server_marks import ServerMark, ServerMarks
from conformance.spec import SpecSet

MARKS = ServerMarks(
    (
        ServerMark("srv/a.py:Conn.open", ("PROTO-CONN-05", "PROTO-CONN-01"), 3),
        ServerMark("srv/b.py:Conn.refuse <&> |x|", ("PROTO-CONN-03",), 0),
        ServerMark("srv/c.py:f", ("NOPE-99",), 1),
    ),
    processes=2,
)


def _with_marks(report: RunReport, marks: ServerMarks | None = MARKS) -> RunReport:
    return dataclasses.replace(report, server_marks=marks)


def test_static_coverage_lists_checks_and_points_untested_ones_at_not_covered(
    failing_report: RunReport, specs: SpecSet
) -> None:
    data = coverage_section.as_json(failing_report)
    assert data["dynamic"] is None  # not the bundled server: nothing marked
    static = data["static"]
    assert static["requirements"] == len(specs.requirements)
    assert static["checks"] == len(specs.checks)
    assert static["checks_by_requirement"]["PROTO-CONN-05"] == ["PROTO-CONN-05/first-frame"]
    assert static["untested"] == [r.id for r in failing_report.not_covered]


def test_dynamic_coverage_sorts_the_marks_into_what_an_auditor_asks(
    failing_report: RunReport,
) -> None:
    dynamic = coverage_section.as_json(_with_marks(failing_report))["dynamic"]
    assert dynamic["exercised"] == ["PROTO-CONN-01", "PROTO-CONN-05"]  # spec order
    assert dynamic["checked_not_reached"] == ["PROTO-CONN-03"]  # its checks ran: suspicious
    assert "HTTP-AUTH-04" in dynamic["checked_unclaimed"]
    assert "PROTO-CONN-05" not in dynamic["checked_unclaimed"]
    assert dynamic["marks_never_hit"] == [
        {"location": "srv/b.py:Conn.refuse <&> |x|", "ids": ["PROTO-CONN-03"]}
    ]
    assert dynamic["unknown_ids"] == ["NOPE-99"]
    assert dynamic["hits"] == {"PROTO-CONN-03": 0, "PROTO-CONN-01": 3, "PROTO-CONN-05": 3}
    assert (dynamic["marks"], dynamic["server_processes"], dynamic["problem"]) == (3, 2, None)


def test_checks_that_never_reached_the_target_do_not_count_as_run(specs: SpecSet) -> None:
    results = {
        c.full_id: CheckResult(c.full_id, c.requirement_id, CheckOutcome.SKIPPED)
        for c in specs.checks
    }
    report = build_report(specs, results, target={"name": "t"}, run={}, server_marks=MARKS)
    dynamic = coverage_section.as_json(report)["dynamic"]
    assert dynamic["checked_not_reached"] == []
    assert dynamic["checked_unclaimed"] == []


def test_a_marks_file_that_could_not_be_read_is_said_so(failing_report: RunReport) -> None:
    report = _with_marks(failing_report, ServerMarks((), 0, "server-marks.jsonl is empty"))
    assert coverage_section.as_json(report)["dynamic"]["problem"] == "server-marks.jsonl is empty"
    assert "Dynamic: not available: server-marks.jsonl is empty." in markdown.render(report)


@pytest.mark.parametrize("with_marks", [False, True])
def test_every_format_carries_the_section(failing_report: RunReport, with_marks: bool) -> None:
    report = _with_marks(failing_report, MARKS if with_marks else None)
    data = json.loads(results_json.render(report))
    assert data["coverage"] == json.loads(json.dumps(coverage_section.as_json(report)))
    text, page = markdown.render(report), summary_html.render(report)
    assert "## Coverage" in text
    assert "<h2 id='coverage'>Coverage</h2>" in page
    assert text.index("## Coverage") < text.index("## Not covered")
    if with_marks:
        assert "| PROTO-CONN-05 | first-frame | srv/a.py:Conn.open | 3 |" in text
        assert "`srv/b.py:Conn.refuse <&> \\|x\\| (PROTO-CONN-03)`" in text
        assert "srv/b.py:Conn.refuse &lt;&amp;&gt; |x|" in page
        assert "<&>" not in page
        assert "1 with checks that ran but marks never hit" in text
    else:
        assert "Dynamic: not measured" in text
        assert "| PROTO-CONN-05 | first-frame |" in text
