"""Checking quoted docs sentences against a copy of the Pusher docs.

A stated requirement is only as good as its quote, so an auditor (or a reviewer of a spec
change) can hold every ``quote:`` to the docs' own markdown source: the quote must appear on the
page its ``source`` URL names, under a heading matching the URL's anchor. The docs are not
shipped with the suite; point it at a checkout of the public docs repository.

Pure functions over text; the command in cli.py does the reading.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["QuoteProblem", "Quoted", "check_quotes", "heading_keys", "normalise", "page_file"]

_DOCS_PREFIX = "/docs/"
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_TAG = re.compile(r"\{%.*?%\}|</?[A-Za-z][^>]*>")
#: MDX expressions that only quote text, as in ``versions {'< 6'}``.
_EXPRESSION = re.compile(r"\{'([^'{}]*)'\}")
_MARKUP = re.compile(r"[`*_>|\\]")
_HEADING = re.compile(r"^#{1,6}\s+(.*)$", re.MULTILINE)
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…)\s*")


@dataclass(frozen=True)
class Quoted:
    """One quote to check: who quotes it, the URL it claims, and the text."""

    owner: str
    url: str
    quote: str


@dataclass(frozen=True)
class QuoteProblem:
    owner: str
    problem: str


def normalise(text: str) -> str:
    """Text as a reader sees it: links to their words, markup, tags and case dropped, one space."""
    text = _LINK.sub(r"\1", text)
    text = _EXPRESSION.sub(r"\1", text)
    text = _TAG.sub(" ", text)
    text = _MARKUP.sub("", text)
    text = text.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(text.split()).lower()


def _key(text: str) -> str:
    """An anchor or heading reduced to letters and digits: slug rules differ between renderers."""
    return re.sub(r"[^a-z0-9]", "", normalise(text))


def heading_keys(markdown: str) -> set[str]:
    """Every heading's key; a repeated heading also under the renderers' ``-1``, ``-2``..."""
    keys: set[str] = set()
    seen: dict[str, int] = {}
    for heading in _HEADING.findall(markdown):
        key = _key(heading)
        count = seen.get(key, 0)
        keys.add(key + str(count) if count else key)
        seen[key] = count + 1
    return keys


def page_file(docs_root: Path, url: str) -> Path | None:
    """The markdown file behind a pusher.com/docs URL, in a checkout or its docs/ folder."""
    path = urlsplit(url).path
    if not path.startswith(_DOCS_PREFIX):
        return None
    relative = path[len(_DOCS_PREFIX) :].strip("/")
    for base in (docs_root / "docs", docs_root):
        for candidate in (base / f"{relative}.md", base / relative / "index.md"):
            if candidate.is_file():
                return candidate
    return None


def _fragments(quote: str) -> list[str]:
    return [f for f in (normalise(p) for p in _ELLIPSIS.split(quote)) if f]


def check_quotes(docs_root: Path, quotes: Iterable[Quoted]) -> Iterator[QuoteProblem]:
    """Every problem found: a page not in the checkout, an anchor with no heading, or a quote
    (each part between '...') not on the page."""
    pages: dict[Path, tuple[str, set[str]]] = {}
    for item in quotes:
        file = page_file(docs_root, item.url)
        if file is None:
            yield QuoteProblem(item.owner, f"no page for {item.url} under {docs_root}")
            continue
        if file not in pages:
            markdown = file.read_text(encoding="utf-8")
            pages[file] = (normalise(markdown), heading_keys(markdown))
        text, headings = pages[file]
        anchor = urlsplit(item.url).fragment
        if anchor and _key(anchor) not in headings:
            yield QuoteProblem(item.owner, f"no heading for #{anchor} on {file.name}")
        missing = [f for f in _fragments(item.quote) if f not in text]
        if missing:
            yield QuoteProblem(item.owner, f"not on {file.name}: {missing[0][:80]!r}")
