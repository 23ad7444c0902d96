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
from conformance.quotes import Quoted, check_quotes
from conformance.spec import SUBJECTS, Subject, default_specs_dir, load_specs

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
    out = capsys.readouterr().out
    assert "docs map: 1 pages, 3 rules (1 mapped, 1 omitted, 1 not yet tested)" in out
    _write(specs_dir, VALID.replace("[PROTO-CONN-05]", "[NOPE-01]"))
    assert main(["validate-specs", "--specs", str(specs_dir)]) == 2
    err = capsys.readouterr().err
    assert "docs/pusher-websockets-protocol.yaml: rule 1 (#connection-events) names unknown" in err


def test_a_rule_may_name_the_requirements_of_every_subject(
    specs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("client.yaml", "auth-endpoint.yaml"):
        shutil.copy(SPECS / name, specs_dir / name)
    _write(
        specs_dir, VALID.replace("[PROTO-CONN-05]", "[PROTO-CONN-05, CLIENT-CONN-01, AUTHEP-01]")
    )
    (page,) = load_docs_map(specs_dir)
    assert page.rules[0].requirements == ("PROTO-CONN-05", "CLIENT-CONN-01", "AUTHEP-01")
    assert main(["validate-specs", "--specs", str(specs_dir)]) == 0
    assert "docs map: 1 pages, 3 rules" in capsys.readouterr().out
    # Without the client's spec file its ids are unknown, as any other.
    (specs_dir / "client.yaml").unlink()
    with pytest.raises(SpecError, match=r"names unknown requirement\(s\) CLIENT-CONN-01$"):
        load_docs_map(specs_dir)


# The bundled map


@pytest.fixture(scope="module")
def bundled() -> tuple[DocsPage, ...]:
    return load_docs_map()


def test_the_bundled_map_loads_and_names_only_known_ids(bundled: tuple[DocsPage, ...]) -> None:
    assert bundled, "specs/docs holds the docs map"
    known = {r.id for r in load_specs(SPECS, subject=None).requirements}
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
# The same check as `conformance check-quotes` (conformance/quotes.py), which an auditor runs.

_DOCS_DIR = os.environ.get("PUSHER_DOCS_DIR")


@pytest.mark.skipif(not _DOCS_DIR, reason="PUSHER_DOCS_DIR is not set")
def test_the_quotes_are_verbatim_and_the_anchors_are_headings(
    bundled: tuple[DocsPage, ...],
) -> None:
    quoted = [
        Quoted(f"{page.name} rule {n}", page.url(rule), rule.quote)
        for page in bundled
        for n, rule in enumerate(page.rules, 1)
    ]
    assert list(check_quotes(Path(str(_DOCS_DIR)), quoted)) == []


@pytest.mark.parametrize("subject", SUBJECTS)
def test_every_stated_requirement_is_reached_from_the_docs(subject: Subject) -> None:
    # The map and the specs agree from both sides: a rule the docs state in words is a docs
    # sentence somewhere in the map, mapped to the requirement that tests it, whoever the
    # requirement certifies (a server, a client library, an app's auth endpoint).
    mapped = {rid for page in load_docs_map() for rule in page.rules for rid in rule.requirements}
    unmapped = [
        r.id
        for r in load_specs(subject=subject).requirements
        if r.basis == "stated" and r.status == "active" and r.id not in mapped
    ]
    assert unmapped == []


def test_every_subject_is_named_by_the_bundled_map(bundled: tuple[DocsPage, ...]) -> None:
    named = {rid for page in bundled for rule in page.rules for rid in rule.requirements}
    for subject in SUBJECTS:
        ids = {r.id for r in load_specs(subject=subject).requirements}
        assert ids & named, f"no docs sentence names a {subject} requirement"


def test_no_omission_puts_clients_or_auth_endpoints_off_as_a_separate_issue(
    bundled: tuple[DocsPage, ...],
) -> None:
    # Both are certified now (conformance client, conformance auth-endpoint): an omission about
    # them says what is not tested and why.
    stale = [
        (page.name, rule.anchor)
        for page in bundled
        for rule in page.rules
        if rule.omission
        and "separate issue" in rule.omission
        and re.search(r"client|auth(orization|entication)? endpoint", rule.omission, re.I)
    ]
    assert stale == []
