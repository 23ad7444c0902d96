"""The docs map: every rule a public Pusher docs page states, sentence by sentence, with the
requirements that test it or the reason none does.

One file per docs page in ``specs/docs/`` (named after the page's slug), validated against
``specs/docs.schema.json`` and then checked against the requirements: each rule names at least
one existing requirement *or* gives an omission, never both. A rule may name requirements of
every subject (a server's, a client library's ``CLIENT-*``, an auth endpoint's ``AUTHEP-*``):
one sentence often binds both ends of the wire. An auditor reads it as "for this sentence of
the docs, these checks are the evidence", and the gaps (``omission: not yet tested: ...``) are
the catalogue's growth list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import SpecError
from .spec import default_specs_dir, load_yaml, validation_error

__all__ = [
    "DOCS_SCHEMA",
    "DOCS_SUBDIR",
    "DocsPage",
    "DocsRule",
    "MapCounts",
    "docs_paths",
    "load_docs_map",
]

#: Where the docs map lives, relative to the specs directory.
DOCS_SUBDIR = "docs"
#: Its schema, in the specs directory.
DOCS_SCHEMA = "docs.schema.json"

_NOT_YET = "not yet tested"


@dataclass(frozen=True)
class DocsRule:
    """One rule of a page: the sentence(s) stating it and what tests it."""

    anchor: str
    quote: str
    requirements: tuple[str, ...] = ()
    omission: str | None = None
    notes: str | None = None

    @property
    def mapped(self) -> bool:
        return bool(self.requirements)

    @property
    def not_yet_tested(self) -> bool:
        """An omission that admits a gap: the docs state it, no requirement tests it yet."""
        return self.omission is not None and self.omission.lower().startswith(_NOT_YET)


@dataclass(frozen=True)
class DocsPage:
    """One docs page and its rules, in the page's order."""

    path: Path
    page: str
    title: str
    rules: tuple[DocsRule, ...]
    description: str | None = None

    @property
    def name(self) -> str:
        """How errors and reports name the file: relative to the specs directory."""
        return f"{DOCS_SUBDIR}/{self.path.name}"

    def url(self, rule: DocsRule) -> str:
        """The rule's place on the public page."""
        return self.page + rule.anchor


@dataclass(frozen=True)
class MapCounts:
    """How the rules of some pages divide: mapped, omitted with a reason, or admitted gaps."""

    pages: int
    rules: int
    mapped: int
    not_yet_tested: int

    @property
    def omitted(self) -> int:
        """Omitted with a reason other than "not yet tested"."""
        return self.rules - self.mapped - self.not_yet_tested

    @classmethod
    def of(cls, pages: Iterable[DocsPage]) -> MapCounts:
        listed = list(pages)
        rules = [r for p in listed for r in p.rules]
        return cls(
            pages=len(listed),
            rules=len(rules),
            mapped=sum(1 for r in rules if r.mapped),
            not_yet_tested=sum(1 for r in rules if r.not_yet_tested),
        )


def docs_paths(specs_dir: Path) -> list[Path]:
    """The docs map's files in a specs directory, in load order (none if it has no ``docs/``)."""
    directory = specs_dir / DOCS_SUBDIR
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.yaml") if p.is_file())


def _validator(specs_dir: Path) -> jsonschema.Draft202012Validator:
    path = specs_dir / DOCS_SCHEMA
    if not path.is_file():
        raise SpecError(f"docs map schema not found: {path}")
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _flat(text: Any) -> str:
    return " ".join(str(text).split())


def _rule_name(index: int, raw: Any) -> str:
    anchor = raw.get("anchor") if isinstance(raw, dict) else None
    return f"rule {index + 1}" + (f" ({anchor})" if isinstance(anchor, str) and anchor else "")


def _schema_error(name: str, data: Any, validator: jsonschema.Draft202012Validator) -> None:
    error = validation_error(validator, data)
    if error is None:
        return
    # "at rules/3/quote: ..." reads better as "rule 4 (#anchor), at quote: ..."
    place, _, message = error.partition(": ")
    parts = place.removeprefix("at ").split("/")
    if len(parts) >= 2 and parts[0] == "rules" and parts[1].isdigit():
        index = int(parts[1])
        rule = _rule_name(index, data["rules"][index])
        rest = "/".join(parts[2:])
        raise SpecError(f"{name}: {rule}{f', at {rest}' if rest else ''}: {message}")
    raise SpecError(f"{name}: {error}")


def _parse(path: Path, data: Any, known: set[str]) -> DocsPage:
    name = f"{DOCS_SUBDIR}/{path.name}"
    *_, section, slug = str(data["page"]).rstrip("/").split("/")
    # Two sections may hold pages of one name (server_api/overview, pusher_cli/overview): the
    # section then goes in front.
    if path.stem not in (slug, f"{section}-{slug}"):
        raise SpecError(
            f"{name}: maps page {data['page']}: the file must be {slug}.yaml "
            f"(or {section}-{slug}.yaml)"
        )
    rules = []
    for index, raw in enumerate(data["rules"]):
        rule = _rule_name(index, raw)
        has_ids, has_omission = "requirements" in raw, "omission" in raw
        if has_ids == has_omission:
            which = "both requirements and omission" if has_ids else "neither requirements nor"
            raise SpecError(
                f"{name}: {rule} has {which}{'' if has_ids else ' omission'}: "
                "give exactly one of them"
            )
        ids = tuple(str(i) for i in raw.get("requirements", ()))
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise SpecError(f"{name}: {rule} names unknown requirement(s) {', '.join(unknown)}")
        rules.append(
            DocsRule(
                anchor=str(raw["anchor"]),
                quote=_flat(raw["quote"]),
                requirements=ids,
                omission=_flat(raw["omission"]) if has_omission else None,
                notes=_flat(raw["notes"]) if raw.get("notes") else None,
            )
        )
    return DocsPage(
        path=path,
        page=str(data["page"]),
        title=str(data["title"]),
        rules=tuple(rules),
        description=_flat(data["description"]) if data.get("description") else None,
    )


def load_docs_map(
    specs_dir: Path | None = None, *, requirement_ids: Iterable[str] | None = None
) -> tuple[DocsPage, ...]:
    """Load and validate every ``docs/*.yaml`` of ``specs_dir`` (the bundled specs by default).

    ``requirement_ids`` are the ids a rule may name; without them, the specs of ``specs_dir``
    are loaded to learn them, every subject's (a rule may name a server's, a client's and an
    auth endpoint's requirements). A specs directory without ``docs/`` has an empty map.
    Raises SpecError, with one line naming the file and the rule, for a file that is not valid
    YAML or not valid against the schema, a rule with both or neither of ``requirements`` and
    ``omission``, an unknown requirement id, a file not named after its page's slug (or
    ``<section>-<slug>``, when two sections have pages of one name), or two files for one
    page.
    """
    directory = (specs_dir or default_specs_dir()).resolve()
    paths = docs_paths(directory)
    if not paths:
        return ()
    if requirement_ids is None:
        from .spec import load_specs

        requirement_ids = (r.id for r in load_specs(directory, subject=None).requirements)
    known = set(requirement_ids)
    validator = _validator(directory)
    pages: list[DocsPage] = []
    for path in paths:
        name = f"{DOCS_SUBDIR}/{path.name}"
        try:
            data = load_yaml(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SpecError(f"{name}: not valid YAML: {first}") from None
        _schema_error(name, data, validator)
        page = _parse(path, data, known)
        for other in pages:
            if other.page == page.page:
                raise SpecError(f"{name}: page {page.page} is already mapped by {other.name}")
        pages.append(page)
    return tuple(pages)
