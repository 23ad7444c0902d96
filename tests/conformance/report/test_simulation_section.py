"""A simulation's section in a run's summaries: placed once, replaced by the next one, and
left out when either side is missing."""

from __future__ import annotations

from pathlib import Path

from conformance.report import markdown, summary_html
from conformance.report.simulation_section import HTML_FILE, MARKDOWN_FILE, attach

SUMMARY_MD = "# Conformance report: x\n\n## Requirements\n"
SUMMARY_HTML = "<html><body><h1>Conformance</h1></body></html>\n"


def write_run(directory: Path) -> None:
    (directory / markdown.FILE_NAME).write_text(SUMMARY_MD, encoding="utf-8")
    (directory / summary_html.FILE_NAME).write_text(SUMMARY_HTML, encoding="utf-8")


def write_simulation(directory: Path, verdict: str) -> None:
    (directory / MARKDOWN_FILE).write_text(f"## Simulation: s\n\n{verdict}\n", encoding="utf-8")
    (directory / HTML_FILE).write_text(
        f'<!doctype html><style>x</style><section id="simulation"><p>{verdict}</p></section>\n',
        encoding="utf-8",
    )


def test_the_section_goes_into_both_summaries(tmp_path: Path) -> None:
    write_run(tmp_path)
    write_simulation(tmp_path, "READY")
    attach(tmp_path)
    md = (tmp_path / markdown.FILE_NAME).read_text()
    assert md.startswith(SUMMARY_MD.rstrip("\n"))
    assert "## Simulation: s\n\nREADY" in md
    html = (tmp_path / summary_html.FILE_NAME).read_text()
    assert '<section id="simulation"><p>READY</p></section>' in html
    assert html.index("READY") < html.index("</body>")
    assert "<style>x</style>" not in html  # the section only, not the page around it


def test_a_later_simulation_replaces_the_section(tmp_path: Path) -> None:
    write_run(tmp_path)
    write_simulation(tmp_path, "READY")
    attach(tmp_path)
    write_simulation(tmp_path, "NOT READY")
    attach(tmp_path)
    attach(tmp_path)
    md = (tmp_path / markdown.FILE_NAME).read_text()
    html = (tmp_path / summary_html.FILE_NAME).read_text()
    assert md.count("## Simulation") == html.count('id="simulation"') == 1
    assert "NOT READY" in md
    assert "NOT READY" in html


def test_nothing_happens_without_both_sides(tmp_path: Path) -> None:
    write_simulation(tmp_path, "READY")
    attach(tmp_path)  # no run summaries: nothing to put it in
    assert not (tmp_path / markdown.FILE_NAME).exists()
    other = tmp_path / "run-only"
    other.mkdir()
    write_run(other)
    attach(other)  # no simulation: the summaries stay as they were
    assert (other / markdown.FILE_NAME).read_text() == SUMMARY_MD
    assert (other / summary_html.FILE_NAME).read_text() == SUMMARY_HTML
