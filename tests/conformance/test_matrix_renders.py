"""The interop matrix and a run's summary.html open from disk in headless Chromium (Debian's
package, /usr/bin/chromium; .ci/run installs it) and render: a screenshot that shows the
outcome colours, and a rendered DOM with the table, both targets and every requirement. No CDN,
no server: the pages are opened as file:// URLs with every host name unresolvable, and they
reference nothing on the web."""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from collections import Counter
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conformance import __version__
from conformance.cli import main
from conformance.outcomes import CheckOutcome
from conformance.properties import known_property_names
from conformance.report import write_all
from conformance.results import CheckResult, RunReport, build_report
from conformance.spec import SpecSet, load_specs

CHROMIUM = Path("/usr/bin/chromium")
#: Every Chromium run is bounded, so a browser that hangs fails the test instead of CI.
TIMEOUT_S = 60
WINDOW = (1280, 900)

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason=f"{CHROMIUM} is absent (Debian package chromium; .ci/run installs it)",
)


def chromium(page: Path, profile: Path, *args: str) -> bytes:
    """Headless Chromium on one page from disk; what it printed on stdout. It may resolve no
    host name at all, so a page that needed the network could not hide it."""
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}", *args, page.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout


def screenshot(page: Path, work: Path) -> Path:
    png = work / f"{page.stem}.png"
    chromium(
        page, work / f"{page.stem}-profile-shot", f"--screenshot={png}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}", "--run-all-compositor-stages-before-draw",
    )  # fmt: skip
    return png


def dump_dom(page: Path, work: Path) -> str:
    return chromium(page, work / f"{page.stem}-profile-dom", "--dump-dom").decode("utf-8")


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    #: How many pixels have each colour, as "#rrggbb".
    colours: Counter[str]


def decode_png(data: bytes) -> Image:
    """An 8-bit RGB or RGBA PNG, as Chromium writes screenshots: chunks, zlib, then each row's
    filter undone (PNG specification, section 9)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0)
    assert colour_type in (2, 6), colour_type  # RGB or RGBA
    bpp = 3 if colour_type == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    assert len(raw) == height * (stride + 1)
    prev, colours = bytearray(stride), Counter[str]()
    for y in range(height):
        start = y * (stride + 1)
        method, row = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride) if method else ():
            left = row[i - bpp] if i >= bpp else 0
            up, corner = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if method == 1:  # Sub
                row[i] = (row[i] + left) & 255
            elif method == 2:  # Up
                row[i] = (row[i] + up) & 255
            elif method == 3:  # Average
                row[i] = (row[i] + (left + up) // 2) & 255
            else:  # Paeth
                guess = left + up - corner
                pl, pu, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                best = left if pl <= pu and pl <= pc else up if pu <= pc else corner
                row[i] = (row[i] + best) & 255
        colours.update("#" + row[x : x + 3].hex() for x in range(0, stride, bpp))
        prev = row
    return Image(width, height, colours)


def background_colours(html: str) -> dict[str, str]:
    """Outcome class -> background colour as "#rrggbb", from the page's own style sheet."""
    found = {}
    for selectors, colour in re.findall(
        r"([.A-Z_, ]+)\{\s*background:\s*(#[0-9a-f]+);?\s*\}", html
    ):
        if len(colour) == 4:
            colour = "#" + "".join(c * 2 for c in colour[1:])
        for selector in selectors.split(","):
            found[selector.strip().lstrip(".")] = colour
    return found


class Tables(HTMLParser):
    """Every table's id and rows, each row as its cells' texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[list[str]]]] = []
        self.current: list[list[str]] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.current = []
            self.tables.append((dict(attrs).get("id") or "", self.current))
        elif tag == "tr" and self.current is not None:
            self.current.append([])
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "br" and self.cell is not None:
            self.cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None and self.current:
            self.current[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def tables(dom: str) -> list[tuple[str, list[list[str]]]]:
    parser = Tables()
    parser.feed(dom)
    return parser.tables


def external_references(html: str) -> list[str]:
    """What a page would fetch from the web: scripts, style sheets, fonts, images, imports.
    A link the reader may follow (``<a href>``, e.g. to the docs sentence a verdict rests on)
    fetches nothing."""
    refs = re.findall(r"""\bsrc\s*=\s*["']?([^"'\s>]+)""", html)
    refs += re.findall(r"""<link\b[^>]*\bhref\s*=\s*["']?([^"'\s>]+)""", html, re.IGNORECASE)
    refs += re.findall(r"""url\(\s*["']?([^"')]+)""", html)
    refs += re.findall(r"""@import\s+["']([^"']+)""", html)
    return [r for r in refs if re.match(r"(?i)(https?:)?//", r)]


def test_what_counts_as_a_fetch_from_the_web() -> None:
    html = (
        '<script src="https://cdn.example/x.js"></script><link rel="stylesheet" '
        'href="//fonts.example/f.css"><img src=/local.png><style>a { background: '
        'url("https://img.example/i.png") }</style><a href="https://pusher.com/docs/">docs</a>'
    )
    assert external_references(html) == [
        "https://cdn.example/x.js",
        "//fonts.example/f.css",
        "https://img.example/i.png",
    ]


@dataclass(frozen=True)
class Pages:
    work: Path
    matrix: Path
    summary: Path
    #: Target name -> requirement id -> verdict, as the runs graded them.
    outcomes: dict[str, dict[str, str]]


def _report(specs: SpecSet, name: str, broken: dict[str, CheckOutcome]) -> RunReport:
    results = {
        c.full_id: CheckResult(
            c.full_id, c.requirement_id, broken.get(c.requirement_id, CheckOutcome.PASSED),
            message="it <broke>" if c.requirement_id in broken else "", duration_s=0.25,
        )
        for c in specs.checks
    }  # fmt: skip
    target = {"name": name, "ws_url": "ws://127.0.0.1:1"}
    run = {"profile": "ci", "seed": 0, "started_at": "2026-12-06T08:00:00+00:00"}
    return build_report(specs, results, target=target, run=run)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Pages:
    """Two runs of a few channel requirements, one clean and one with a failed MUST the docs
    state (FAIL) and one they do not (DISPUTED), a failed SHOULD, an inconclusive and an error;
    their reports, and the matrix of both."""
    work = tmp_path_factory.mktemp("pages")
    full = load_specs(known_properties=known_property_names())
    area = next(f for f in full.files if f.area == "channels")
    active = [r for r in area.requirements if r.status == "active" and r.checks]
    stated = [r.id for r in active if r.level == "MUST" and r.basis == "stated"]
    inferred = [r.id for r in active if r.level == "MUST" and r.basis != "stated"]
    should = [r.id for r in active if r.level == "SHOULD"]
    chosen = {*stated[:3], *inferred[:2], *should[:2]}
    specs = SpecSet(
        (replace(area, requirements=tuple(r for r in area.requirements if r.id in chosen)),),
        full.sha256,
    )
    broken = {stated[0]: CheckOutcome.FAILED, inferred[0]: CheckOutcome.FAILED,
              should[0]: CheckOutcome.FAILED, stated[1]: CheckOutcome.INCONCLUSIVE,
              inferred[1]: CheckOutcome.ERROR}  # fmt: skip
    outcomes = {}
    for name, breaks in (("ours", {}), ("theirs <b>", broken)):
        report = _report(specs, name, breaks)
        write_all(report, work / "runs" / name.split()[0])
        outcomes[name] = {v.requirement.id: v.outcome.value for v in report.verdicts}
    runs = [str(work / "runs" / d / "results.json") for d in ("ours", "theirs")]
    assert main(["matrix", *runs, "--out", str(work / "matrix")]) == 0
    return Pages(
        work, work / "matrix" / "matrix.html", work / "runs" / "theirs" / "summary.html", outcomes
    )


def _shows(image: Image, colours: set[str]) -> None:
    """Not blank: many colours, and each of these over a cell's worth of pixels."""
    assert (image.width, image.height) == WINDOW
    assert len(image.colours) > 20
    assert image.colours.most_common(1)[0][1] < 0.95 * image.width * image.height
    assert {c: image.colours[c] for c in colours if image.colours[c] < 500} == {}


def test_the_pages_reference_nothing_on_the_web(pages: Pages) -> None:
    for page in (pages.matrix, pages.summary):
        html = page.read_text(encoding="utf-8")
        assert external_references(html) == [], page
        assert "<script" not in html
        assert "<link" not in html


@needs_chromium
def test_the_matrix_screenshot_shows_the_outcome_colours(pages: Pages) -> None:
    html = pages.matrix.read_text(encoding="utf-8")
    css = background_colours(html)
    shown = {o for run in pages.outcomes.values() for o in run.values()}
    assert shown == {"PASS", "FAIL", "DISPUTED", "NON_STRICT", "INCONCLUSIVE", "ERROR"}
    image = decode_png(screenshot(pages.matrix, pages.work).read_bytes())
    _shows(image, {css[o] for o in shown} | {"#333344"})  # and the group rows' #334


@needs_chromium
def test_the_matrix_dom_has_both_targets_and_every_requirement(pages: Pages) -> None:
    dom = dump_dom(pages.matrix, pages.work)
    assert "<tbody>" in dom  # parsed and rendered by the browser, not the file as written
    (rows,) = [rows for name, rows in tables(dom) if name == "matrix"]
    head = rows[0]
    started = "started 2026-12-06T08:00:00+00:00"
    assert head == [
        "requirement", "basis", f"ours suite {__version__}, {started}",
        f"theirs <b> suite {__version__}, {started}", "title",  # escaped markup reads as text
    ]  # fmt: skip
    assert rows[1][2:4] == [
        "PASS 7", "DISPUTED 1, ERROR 1, FAIL 1, INCONCLUSIVE 1, NON_STRICT 1, PASS 2"
    ]  # fmt: skip
    by_id = {r[0]: r[1:4] for r in rows[2:] if len(r) == 5}
    ours, theirs = pages.outcomes["ours"], pages.outcomes["theirs <b>"]
    assert set(by_id) == set(ours)
    for requirement, (basis, mine, other) in by_id.items():
        assert basis in ("stated", "inferred", "observed")
        assert [mine, other] == [ours[requirement], theirs[requirement]]


@needs_chromium
def test_the_summary_renders_with_its_verdicts(pages: Pages) -> None:
    html = pages.summary.read_text(encoding="utf-8")
    css = background_colours(html)
    image = decode_png(screenshot(pages.summary, pages.work).read_bytes())
    _shows(image, {css["PASS"], css["FAIL"], css["DISPUTED"], css["NON_STRICT"]})
    dom = dump_dom(pages.summary, pages.work)
    assert "<h1>Conformance report: theirs &lt;b&gt;</h1>" in dom
    head = ["id", "level", "basis", "verdict"]
    (overview,) = [t for _, t in tables(dom) if t and t[0][:4] == head]
    assert {r[0]: r[3] for r in overview[1:]} == pages.outcomes["theirs <b>"]
