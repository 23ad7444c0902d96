"""The docs map (specs/docs/*.yaml): a valid file loads, each broken one is refused with one line
naming the file and the rule, and the bundled map loads with every id it names known."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.docs_map import DocsPage, docs_paths, load_docs_map
from conformance.errors import SpecError
from conformance.spec import default_specs_dir, load_specs

SPECS = default_specs_dir()
PAGE = "https://pusher.com/docs/channels/library_auth_reference/pusher-websockets-protocol/"

VALID = f"""\
page: {PAGE}
title: Pusher Channels Protocol
description: A small map for the tests.
rules:
  - anchor: "#connection-events"
    quote: >-
      When the connection is established the server sends a pusher:connection_established
      event.
    requirements: [PROTO-CONN-05]
    notes: the first frame
  - anchor: ""
    quote: A client should reconnect.
    omission: a client's duty; client certification is a separate issue
  - anchor: "#ping-and-pong-messages"
    quote: The server may send pusher:ping.
    omission: "not yet tested: a check would wait for the server's ping"
"""


@pytest.fixture
def specs_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "specs"
    (directory / "docs").mkdir(parents=True)
    for name in ("schema.json", "docs.schema.json", "connection.yaml", "heartbeat.yaml"):
        shutil.copy(SPECS / name, directory / name)
    return directory


def _write(specs_dir: Path, text: str, name: str = "pusher-websockets-protocol.yaml") -> Path:
    path = specs_dir / "docs" / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_file_loads(specs_dir: Path) -> None:
    _write(specs_dir, VALID)
    (page,) = load_docs_map(specs_dir)
    assert page.page == PAGE
    assert page.title == "Pusher Channels Protocol"
    assert page.name == "docs/pusher-websockets-protocol.yaml"
    first, second, third = page.rules
    assert first.requirements == ("PROTO-CONN-05",)
    assert first.quote == (
        "When the connection is established the server sends a pusher:connection_established event."
    )
    assert first.mapped
    assert not first.not_yet_tested
    assert first.notes == "the first frame"
    assert page.url(first) == PAGE + "#connection-events"
    assert page.url(second) == PAGE
    assert second.omission == "a client's duty; client certification is a separate issue"
    assert not second.mapped
    assert not second.not_yet_tested
    assert third.not_yet_tested


def test_no_docs_folder_is_an_empty_map(specs_dir: Path) -> None:
    shutil.rmtree(specs_dir / "docs")
    assert load_docs_map(specs_dir) == ()
    assert docs_paths(specs_dir) == []


def test_the_given_ids_are_the_known_ones(specs_dir: Path) -> None:
    _write(specs_dir, VALID)
    with pytest.raises(SpecError, match=r"rule 1 \(#connection-events\) names unknown"):
        load_docs_map(specs_dir, requirement_ids=["PROTO-CONN-01"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("    omission: a client's duty", "    requirements: [PROTO-CONN-05]"
                                "\n    omission: a client's duty"),
            "docs/pusher-websockets-protocol.yaml: rule 2 has both requirements and omission: "
            "give exactly one of them",
        ),
        (
            lambda t: t.replace("    requirements: [PROTO-CONN-05]\n", ""),
            "docs/pusher-websockets-protocol.yaml: rule 1 (#connection-events) has neither "
            "requirements nor omission: give exactly one of them",
        ),
        (
            lambda t: t.replace("[PROTO-CONN-05]", "[PROTO-CONN-05, PROTO-CONN-99]"),
            "docs/pusher-websockets-protocol.yaml: rule 1 (#connection-events) names unknown "
            "requirement(s) PROTO-CONN-99",
        ),
        (
            lambda t: t.replace('anchor: "#ping-and-pong-messages"', 'anchor: "Ping and pong"'),
            "docs/pusher-websockets-protocol.yaml: rule 3 (Ping and pong), at anchor: "
            "'Ping and pong' does not match",
        ),
        (
            lambda t: t.replace("    notes: the first frame\n", "    note: the first frame\n"),
            "docs/pusher-websockets-protocol.yaml: rule 1 (#connection-events): Additional "
            "properties are not allowed ('note' was unexpected)",
        ),
        (
            lambda t: t.replace("title: Pusher Channels Protocol\n", ""),
            "docs/pusher-websockets-protocol.yaml: at (top level): 'title' is a required property",
        ),
        (
            lambda t: t.replace(PAGE, "https://example.com/docs/"),
            "docs/pusher-websockets-protocol.yaml: at page: 'https://example.com/docs/' does not "
            "match",
        ),
        (
            lambda t: t.replace("rules:\n", "rules: [\n"),
            "docs/pusher-websockets-protocol.yaml: not valid YAML:",
        ),
    ],
    ids=["both", "neither", "unknown-id", "bad-anchor", "unknown-key", "no-title", "bad-page",
         "bad-yaml"],
)  # fmt: skip
def test_a_broken_file_is_refused_with_one_line(
    specs_dir: Path, edit: Callable[[str], str], message: str
) -> None:
    _write(specs_dir, edit(VALID))
    with pytest.raises(SpecError) as caught:
        load_docs_map(specs_dir)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_the_file_is_named_after_its_page(specs_dir: Path) -> None:
    _write(specs_dir, VALID, name="protocol.yaml")
    with pytest.raises(SpecError) as caught:
        load_docs_map(specs_dir)
    assert str(caught.value) == (
        f"docs/protocol.yaml: maps page {PAGE}: the file must be pusher-websockets-protocol.yaml"
        " (or library_auth_reference-pusher-websockets-protocol.yaml)"
    )


def test_a_page_is_mapped_once(specs_dir: Path) -> None:
    _write(specs_dir, VALID)
    _write(specs_dir, VALID, name="library_auth_reference-pusher-websockets-protocol.yaml")
    with pytest.raises(SpecError) as caught:
        load_docs_map(specs_dir)
    assert str(caught.value) == (
        "docs/pusher-websockets-protocol.yaml: page "
        f"{PAGE} is already mapped by docs/library_auth_reference-pusher-websockets-protocol.yaml"
    )


def test_subfolders_are_not_part_of_the_map(specs_dir: Path) -> None:
    _write(specs_dir, VALID)
    (specs_dir / "docs" / "drafts").mkdir()
    _write(specs_dir, "not: [valid", name="drafts/pusher-websockets-protocol.yaml")
    assert len(load_docs_map(specs_dir)) == 1


def test_a_missing_schema_is_named(specs_dir: Path) -> None:
    _write(specs_dir, VALID)
    (specs_dir / "docs.schema.json").unlink()
    with pytest.raises(SpecError, match="docs map schema not found"):
        load_docs_map(specs_dir)


def test_the_spec_loader_ignores_the_docs_folder(specs_dir: Path) -> None:
    _write(specs_dir, VALID)
    specs = load_specs(specs_dir)
    assert {f.path.name for f in specs.files} == {"connection.yaml", "heartbeat.yaml"}


def test_validate_specs_fails_on_a_bad_docs_file(
    specs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(specs_dir, VALID)
    assert main(["validate-specs", "--specs", str(specs_dir)]) == 0
    assert "docs map: 1 pages, 3 rules" in capsys.readouterr().out
    _write(specs_dir, VALID.replace("[PROTO-CONN-05]", "[NOPE-01]"))
    assert main(["validate-specs", "--specs", str(specs_dir)]) == 2
    err = capsys.readouterr().err
    assert "docs/pusher-websockets-protocol.yaml: rule 1 (#connection-events) names unknown" in err


# The bundled map


@pytest.fixture(scope="module")
def bundled() -> tuple[DocsPage, ...]:
    return load_docs_map()


def test_the_bundled_map_loads_and_names_only_known_ids(bundled: tuple[DocsPage, ...]) -> None:
    assert bundled, "specs/docs holds the docs map"
    known = {r.id for r in load_specs(SPECS).requirements}
    for page in bundled:
        assert page.path.stem == page.page.rstrip("/").rsplit("/", 1)[-1]
        assert page.rules
        for rule in page.rules:
            assert set(rule.requirements) <= known, (page.name, rule.anchor)
            assert bool(rule.requirements) != bool(rule.omission)


def test_the_bundled_quotes_are_short_and_anchored(bundled: tuple[DocsPage, ...]) -> None:
    for page in bundled:
        for rule in page.rules:
            assert len(rule.quote) <= 900, (page.name, rule.quote[:60])
            assert re.fullmatch(r"(#[a-z0-9_-]+)?", rule.anchor)


def test_the_bundled_pages_cover_the_protocol_page(bundled: tuple[DocsPage, ...]) -> None:
    names = {p.path.stem for p in bundled}
    assert "pusher-websockets-protocol" in names


# Against the docs' own text: set PUSHER_DOCS_DIR to a checkout of the docs' markdown (the folder
# that holds channels/), and every quote must be found on its page and every anchor be a heading.

_DOCS_DIR = os.environ.get("PUSHER_DOCS_DIR")


def _plain_markdown(text: str) -> str:
    """The page as its reader sees the words: front matter, markup and line breaks gone."""
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)
    text = re.sub(r"^\s*>\s?", "", text, flags=re.MULTILINE)
    text = re.sub(r"<a [^>]*>(.*?)</a>", r"\1", text)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.replace("**", "").replace("`", "")
    text = re.sub(r"\\([*_\[\]])", r"\1", text)
    text = re.sub(r"\{'(.*?)'\}", r"\1", text)
    return " ".join(text.split())


def _heading_slugs(text: str) -> set[str]:
    slugs, fenced = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#+ ", line):
            heading = re.sub(r"\{'(.*?)'\}", r"\1", line.lstrip("#").strip())
            slugs.add("#" + re.sub(r"[^a-z0-9_]+", "-", heading.lower()).strip("-"))
    return slugs


@pytest.mark.skipif(not _DOCS_DIR, reason="PUSHER_DOCS_DIR is not set")
def test_the_quotes_are_verbatim_and_the_anchors_are_headings(
    bundled: tuple[DocsPage, ...],
) -> None:
    root = Path(str(_DOCS_DIR))
    for page in bundled:
        relative = page.page.split("/docs/channels/", 1)[1].rstrip("/")
        source = root / "channels" / f"{relative}.md"
        if not source.is_file():
            source = root / "channels" / relative / "index.md"
        raw = source.read_text(encoding="utf-8")
        text, slugs = _plain_markdown(raw), _heading_slugs(raw)
        for rule in page.rules:
            assert not rule.anchor or rule.anchor in slugs, (page.name, rule.anchor)
            quote = " ".join(rule.quote.replace("**", "").replace("`", "").split())
            at = 0
            for part in (p.strip() for p in quote.split("...")):
                if part:
                    found = text.find(part, at)
                    assert found >= 0, (page.name, rule.anchor, part)
                    at = found + len(part)


def test_every_stated_requirement_is_reached_from_the_docs() -> None:
    # The map and the specs agree from both sides: a rule the docs state in words is a docs
    # sentence somewhere in the map, mapped to the requirement that tests it.
    mapped = {rid for page in load_docs_map() for rule in page.rules for rid in rule.requirements}
    unmapped = [
        r.id
        for r in load_specs().requirements
        if r.basis == "stated" and r.status == "active" and r.id not in mapped
    ]
    assert unmapped == []
