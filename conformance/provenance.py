"""What a requirement rests on, as the loader reads it from a spec.

A verdict is only as good as its source: ``basis`` says whether the docs state the rule
(``quote``), whether it is our reading of them (``reasoning``), or whether real implementations
behave so (``observed_in``); ``variants`` are the behaviours seen in the wild where the reading
is disputed. The schema enforces which fields each basis needs; this module turns them into
typed values and refuses what a schema cannot judge (a pattern that does not compile).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import SpecError

__all__ = ["Basis", "Provenance", "Variant", "read_provenance"]

#: Only a stated requirement fails a server outright; the others are DISPUTED when a MUST is
#: broken (see outcomes.grade).
Basis = Literal["stated", "inferred", "observed"]


@dataclass(frozen=True)
class Variant:
    """A behaviour seen in the wild where the requirement's reading is disputed."""

    behaviour: str
    seen_in: tuple[str, ...]
    #: What client libraries do with this behaviour (which depend on it, which cannot use it).
    clients: str | None = None
    #: A pattern over a failed check's message that tells this behaviour apart: where it
    #: matches, the reports say the target behaves as this variant, with what clients make of it.
    recognised_by: str | None = None

    def seen_in_messages(self, messages: Iterable[str]) -> bool:
        if self.recognised_by is None:
            return False
        pattern = re.compile(self.recognised_by)
        return any(pattern.search(m) for m in messages)


@dataclass(frozen=True)
class Provenance:
    basis: Basis = "stated"
    #: Stated: the docs sentence(s), verbatim, from the page ``source`` names.
    quote: str | None = None
    #: Inferred: how the rule follows, and from what.
    reasoning: str | None = None
    #: Observed: the implementations that behave so.
    observed_in: tuple[str, ...] = ()
    variants: tuple[Variant, ...] = ()


def read_provenance(raw: Mapping[str, Any], where: str) -> Provenance:
    """A schema-valid requirement's provenance; ``where`` names it in errors (``file: id``)."""
    return Provenance(
        basis=raw.get("basis", "stated"),
        quote=_prose(raw.get("quote")),
        reasoning=_prose(raw.get("reasoning")),
        observed_in=tuple(str(x) for x in raw.get("observed_in", ())),
        variants=tuple(
            Variant(
                behaviour=_prose(v["behaviour"]) or "",
                seen_in=tuple(str(x) for x in v["seen_in"]),
                clients=_prose(v.get("clients")),
                recognised_by=_pattern(v.get("recognised_by"), where),
            )
            for v in raw.get("variants", ())
        ),
    )


def _pattern(text: object, where: str) -> str | None:
    """A variant's ``recognised_by``, compiled once here so a bad pattern is a spec error."""
    if text is None:
        return None
    try:
        re.compile(str(text))
    except re.error as exc:
        raise SpecError(
            f"{where}: a variant's recognised_by is not a regular expression ({exc})"
        ) from None
    return str(text)


def _prose(text: object) -> str | None:
    """Folded YAML prose as one line (None stays None)."""
    return " ".join(str(text).split()) if text else None
