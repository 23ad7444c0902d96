"""The simulation's section in a run's summary.md and summary.html.

``conformance simulate --report-dir DIR`` writes ``simulation.md`` and ``simulation.html`` of
its own; when DIR also holds a run's summaries, the simulation's section is placed into them
(between markers, so a later run or simulation replaces it instead of stacking copies), and a
run writing into a directory that holds a simulation carries its section over. The section
stays a section: the readiness verdict never enters the run's outcomes or exit code.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import markdown, summary_html

__all__ = ["HTML_FILE", "MARKDOWN_FILE", "attach"]

MARKDOWN_FILE = "simulation.md"
HTML_FILE = "simulation.html"
_BEGIN, _END = "<!-- simulation -->", "<!-- /simulation -->"
_SECTION = re.compile(re.escape(_BEGIN) + r".*?" + re.escape(_END) + r"\n?", re.DOTALL)
_HTML_SECTION = re.compile(r'<section id="simulation">.*?</section>', re.DOTALL)


def attach(report_dir: Path) -> None:
    """Put the directory's simulation section into its run summaries, if both exist."""
    sim_md = report_dir / MARKDOWN_FILE
    summary_md = report_dir / markdown.FILE_NAME
    if sim_md.is_file() and summary_md.is_file():
        section = sim_md.read_text(encoding="utf-8")
        _place(summary_md, f"{_BEGIN}\n{section}{_END}\n", before=None)
    sim_html = report_dir / HTML_FILE
    summary = report_dir / summary_html.FILE_NAME
    if sim_html.is_file() and summary.is_file():
        found = _HTML_SECTION.search(sim_html.read_text(encoding="utf-8"))
        if found:
            _place(summary, f"{_BEGIN}{found.group(0)}{_END}\n", before="</body>")


def _place(path: Path, block: str, *, before: str | None) -> None:
    text = _SECTION.sub("", path.read_text(encoding="utf-8"))
    if before is not None and before in text:
        head, tail = text.rsplit(before, 1)
        text = head + block + before + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")
