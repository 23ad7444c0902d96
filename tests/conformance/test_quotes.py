"""Quotes held to a copy of the docs: markup aside, every part of a quote must be on its page,
under a heading matching the URL's anchor."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.cli import main
from conformance.quotes import Quoted, check_quotes, heading_keys, normalise, page_file

PAGE = """\
# Pusher Channels Protocol

## System Events

#### `pusher:error` (Pusher Channels -> Client)

When an error occurs a `pusher:error` event will be **triggered**. See [codes](#error-codes).

> **Legacy protocols**: When using protocol versions {'< 6'}, a `pusher:error` event is also sent.

## Example JSON

## Example JSON
"""


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    page = tmp_path / "docs" / "channels" / "library_auth_reference"
    page.mkdir(parents=True)
    (page / "pusher-websockets-protocol.md").write_text(PAGE, encoding="utf-8")
    return tmp_path


URL = "https://pusher.com/docs/channels/library_auth_reference/pusher-websockets-protocol/"


def _problems(docs: Path, url: str, quote: str) -> list[str]:
    return [p.problem for p in check_quotes(docs, [Quoted("R-01", url, quote)])]


def test_markup_links_and_case_do_not_matter() -> None:
    assert normalise("A `pusher:error` is **Sent**, see [codes](#x).") == (
        "a pusher:error is sent, see codes."
    )


def test_a_quote_on_its_page_under_its_heading_is_found(docs: Path) -> None:
    quote = "When an error occurs a pusher:error event will be triggered."
    assert _problems(docs, URL + "#pusher-error-pusher-channels-client", quote) == []
    # An MDX expression does not swallow what follows it.
    assert _problems(docs, URL + "#system-events", "versions < 6, a pusher:error event") == []


def test_each_part_between_ellipses_is_looked_for(docs: Path) -> None:
    assert _problems(docs, URL + "#system-events", "When an error occurs ... is also sent.") == []
    [problem] = _problems(docs, URL + "#system-events", "When an error occurs ... never said.")
    assert "never said" in problem


def test_an_anchor_without_a_heading_or_a_missing_page_is_named(docs: Path) -> None:
    [problem] = _problems(docs, URL + "#no-such-heading", "When an error occurs")
    assert problem == "no heading for #no-such-heading on pusher-websockets-protocol.md"
    [problem] = _problems(docs, "https://pusher.com/docs/channels/nowhere/#x", "anything")
    assert problem.startswith("no page for")


def test_repeated_headings_take_numbered_anchors() -> None:
    keys = heading_keys(PAGE)
    assert {"examplejson", "examplejson1"} <= keys
    assert page_file(Path("/nonexistent"), URL) is None


def test_the_command_checks_the_bundled_specs(
    docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A copy of the docs with one page: every other quote of the bundled specs is not found.
    assert main(["check-quotes", str(docs)]) == 1
    out = capsys.readouterr().out
    assert "quotes found" in out
    assert main(["check-quotes", str(docs / "missing")]) == 2
