"""The files a run leaves behind, one module per format, each rendered from the public data of
a ``RunReport``. Keeping a format to its own module means changing how one file looks cannot
disturb another, and a new format is a new module plus one line in ``write_all``."""

from __future__ import annotations

from pathlib import Path

from ..results import RunReport
from . import junit, markdown, results_json, simulation_section, summary_html

__all__ = ["write_all"]


def write_all(report: RunReport, report_dir: Path) -> None:
    """One call for every file, so callers cannot forget a format; the console summary is
    printed rather than written, so it is not among them."""
    report_dir.mkdir(parents=True, exist_ok=True)
    results_json.write(report, report_dir / results_json.FILE_NAME)
    junit.write(report, report_dir / junit.FILE_NAME)
    markdown.write(report, report_dir / markdown.FILE_NAME)
    summary_html.write(report, report_dir / summary_html.FILE_NAME)
    simulation_section.attach(report_dir)
