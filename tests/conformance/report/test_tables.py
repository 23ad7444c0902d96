"""The cells the console, summary.md and summary.html share."""

from __future__ import annotations

from conformance.outcomes import Outcome
from conformance.report.tables import Table, by_area_and_level, figure_summary, figure_table
from conformance.results import RunReport


def test_by_area_and_level_counts_verdicts_and_leaves_out_not_run(
    failing_report: RunReport,
) -> None:
    header, rows = by_area_and_level(failing_report)
    assert header == [
        "area", "level", "PASS", "FAIL", "DISPUTED", "NON_STRICT", "OPTIONAL_ABSENT",
        "INCONCLUSIVE", "ERROR", "VOID",
    ]  # fmt: skip
    assert rows == sorted(rows)
    connection = {row[1]: row for row in rows if row[0] == "connection"}
    assert connection["MUST"][3] == "1"
    ran = [v for v in failing_report.verdicts if v.outcome is not Outcome.NOT_RUN]
    assert sum(int(cell) for row in rows for cell in row[2:]) == len(ran)


def test_figure_cells_read_as_in_results_json() -> None:
    figures = {
        "summary": {"order_violations": 0, "note": "late", "ratio": 0.5},
        "table": {"columns": ["a", "b"], "rows": [["x", None], [True, 3]]},
    }
    assert figure_summary(figures) == "order violations 0, note late, ratio 0.5"
    assert figure_table(figures) == Table(["a", "b"], [["x", "null"], ["true", "3"]])
    assert figure_summary({"title": "only"}) == ""
    assert figure_table({"title": "only"}) is None
