"""One call writes every file, and RunReport.write (what the plugin calls) is that call."""

from __future__ import annotations

from pathlib import Path

from conformance.report import write_all
from conformance.results import RunReport


def test_write_all_writes_every_format_and_the_report_delegates(
    failing_report: RunReport, tmp_path: Path
) -> None:
    write_all(failing_report, tmp_path / "direct" / "nested")
    failing_report.write(tmp_path / "delegated")
    names = ["junit.xml", "results.json", "summary.html", "summary.md"]
    assert sorted(p.name for p in (tmp_path / "direct" / "nested").iterdir()) == names
    for name in names:
        direct = (tmp_path / "direct" / "nested" / name).read_bytes()
        assert direct == (tmp_path / "delegated" / name).read_bytes()
