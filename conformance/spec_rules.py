"""The rules a set of spec files must keep beyond what ``schema.json`` can say about one file.

The schema sees one file at a time; these rules relate files to each other (unique areas,
unique requirement ids, one home file per id prefix, models defined once) or need arithmetic
the schema lacks (ids in numeric order). They live apart from the loader so that each stays
small enough to read, and each broken rule is a ``SpecError`` naming the file and the id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SpecError

if TYPE_CHECKING:
    from .spec import Check, SpecFile

__all__ = ["cross_check", "id_prefix", "id_sort_key", "merge_models"]


def id_prefix(requirement_id: str) -> str:
    """The part of an id that names its home file: everything before the final number."""
    return requirement_id.rsplit("-", 1)[0]


def id_sort_key(requirement_id: str) -> tuple[str, int]:
    """Numbers compare as numbers, so a prefix that reaches three digits (-100) still sorts
    after -99 instead of between -10 and -11."""
    prefix, number = requirement_id.rsplit("-", 1)
    return prefix, int(number)


def merge_models(files: Iterable[SpecFile]) -> dict[str, Any]:
    """Every file's ``models:`` in one mapping; a second definition of a name would leave it
    unclear which configuration a property runs with, so it is refused."""
    merged: dict[str, Any] = {}
    defined_in: dict[str, Path] = {}
    for spec_file in files:
        for name, config in spec_file.models.items():
            if name in defined_in:
                raise SpecError(
                    f"{spec_file.path.name}: model {name!r} is also defined in "
                    f"{defined_in[name].name}"
                )
            merged[name] = config
            defined_in[name] = spec_file.path
    return merged


def cross_check(
    files: Sequence[SpecFile], known_properties: set[str], subject: str | None = None
) -> None:
    """Refuse a spec set whose files are each valid but do not fit together.

    Duplicate ids are judged before the layout, so an id pasted into the wrong file is reported
    as the duplicate it is rather than as a misplaced prefix.
    """
    merge_models(files)
    _check_areas(files)
    _check_ids_and_checks(files, known_properties, subject)
    _check_layout(files)


def _check_areas(files: Sequence[SpecFile]) -> None:
    areas: dict[str, Path] = {}
    for spec_file in files:
        if spec_file.area in areas:
            raise SpecError(
                f"{spec_file.path.name}: area {spec_file.area!r} is also used by "
                f"{areas[spec_file.area].name}"
            )
        areas[spec_file.area] = spec_file.path


def _check_ids_and_checks(
    files: Sequence[SpecFile], known_properties: set[str], subject: str | None
) -> None:
    """``known_properties`` name the checks of ``subject``'s registry (None: every file's)."""
    seen: dict[str, str] = {}
    for spec_file in files:
        for requirement in spec_file.requirements:
            if requirement.id in seen:
                raise SpecError(
                    f"{spec_file.path.name}: requirement id {requirement.id} is also defined in "
                    f"{seen[requirement.id]}"
                )
            seen[requirement.id] = spec_file.path.name
            check_ids = [c.id for c in requirement.checks]
            duplicates = {c for c in check_ids if check_ids.count(c) > 1}
            if duplicates:
                raise SpecError(
                    f"{spec_file.path.name}: {requirement.id} has duplicate check id(s): "
                    f"{', '.join(sorted(duplicates))}"
                )
            for check in requirement.checks:
                if spec_file.subject == "server":
                    _check_needs(spec_file.path.name, requirement.capability, check)
                if (
                    check.property_name is not None
                    and known_properties
                    and (subject is None or spec_file.subject == subject)
                    and check.property_name not in known_properties
                ):
                    raise SpecError(
                        f"{spec_file.path.name}: {check.full_id} names unknown property "
                        f"{check.property_name!r} (known: {', '.join(sorted(known_properties))})"
                    )


def _check_needs(file_name: str, capability: str | None, check: Check) -> None:
    """A server check may need only what a target can declare, or what its ``nodes:`` give it
    (``cluster``, ``node_control``): a misspelt name would skip the check against every target,
    silently."""
    from .nodes import DERIVED_CAPABILITIES
    from .target import KNOWN_CAPABILITIES
    from .target_apps import TARGET_APP_FIELDS

    known = KNOWN_CAPABILITIES | set(TARGET_APP_FIELDS) | DERIVED_CAPABILITIES
    joined = capability.split("+") if capability else []
    for need in joined + list(check.capabilities):
        if need not in known:
            raise SpecError(
                f"{file_name}: {check.full_id} needs {need!r}, which no target can have "
                f"(known: {', '.join(sorted(known))})"
            )


def _check_layout(files: Sequence[SpecFile]) -> None:
    """A reader holding an id finds its file from the prefix alone, and its place in the file
    by reading down: so each prefix has exactly one declaring file, every requirement sits in
    the file that declares its prefix, and a file lists its requirements sorted by id."""
    homes: dict[str, Path] = {}
    for spec_file in files:
        for prefix in spec_file.prefixes:
            if prefix in homes:
                raise SpecError(
                    f"{spec_file.path.name}: id prefix {prefix} is also declared by "
                    f"{homes[prefix].name} (each prefix has one home file)"
                )
            homes[prefix] = spec_file.path
    for spec_file in files:
        previous: str | None = None
        for requirement in spec_file.requirements:
            prefix = id_prefix(requirement.id)
            if prefix not in spec_file.prefixes:
                home = homes.get(prefix)
                hint = f"it belongs in {home.name}" if home else "no spec file declares it"
                raise SpecError(
                    f"{spec_file.path.name}: requirement {requirement.id} has id prefix "
                    f"{prefix}, which this file does not declare in prefixes "
                    f"({', '.join(spec_file.prefixes)}); {hint}"
                )
            if previous is not None and id_sort_key(requirement.id) < id_sort_key(previous):
                raise SpecError(
                    f"{spec_file.path.name}: requirement {requirement.id} is out of order: it "
                    f"comes after {previous} (requirements are sorted by id, numerically "
                    f"within a prefix)"
                )
            previous = requirement.id
