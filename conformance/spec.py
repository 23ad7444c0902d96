"""Loading the YAML specs: the single source of truth for requirements and their checks.

Every file is validated against ``specs/schema.json`` and then cross-checked (ids unique across
files, properties and step kinds known) so that a broken spec is a clear usage error naming the
file and the place, never a surprise at run time.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml

from .errors import SpecError

__all__ = [
    "Check",
    "Level",
    "Requirement",
    "SpecFile",
    "SpecSet",
    "default_specs_dir",
    "load_specs",
    "load_yaml",
]

Level = Literal["MUST", "SHOULD", "MAY"]


@dataclass(frozen=True)
class Check:
    requirement_id: str
    id: str
    title: str
    kind: Literal["exchange", "property"]
    let: Mapping[str, Any]
    exchange: tuple[Mapping[str, Any], ...] = ()
    property_name: str | None = None
    params: Mapping[str, Any] | None = None

    @property
    def full_id(self) -> str:
        return f"{self.requirement_id}/{self.id}"


@dataclass(frozen=True)
class Requirement:
    id: str
    area: str
    level: Level
    title: str
    statement: str
    source: str
    status: Literal["active", "unverifiable", "n/a"]
    checks: tuple[Check, ...]
    capability: str | None = None
    notes: str | None = None
    justification: str | None = None


@dataclass(frozen=True)
class SpecFile:
    path: Path
    area: str
    title: str
    description: str | None
    requirements: tuple[Requirement, ...]


@dataclass(frozen=True)
class SpecSet:
    files: tuple[SpecFile, ...]
    sha256: str

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        return tuple(r for f in self.files for r in f.requirements)

    def requirement(self, requirement_id: str) -> Requirement:
        for requirement in self.requirements:
            if requirement.id == requirement_id:
                return requirement
        raise KeyError(requirement_id)

    @property
    def checks(self) -> tuple[Check, ...]:
        return tuple(c for r in self.requirements for c in r.checks)


class _SpecLoader(yaml.SafeLoader):
    """YAML 1.2 booleans only: ``on:`` (a step argument) must stay the string "on"."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_yaml(text: str) -> Any:
    """Load spec or fixture YAML the way its authors read it."""
    return yaml.load(text, Loader=_SpecLoader)


def default_specs_dir() -> Path:
    """The bundled specs: ``conformance/specs`` when installed, ``specs/`` in a checkout."""
    here = Path(__file__).resolve().parent
    installed = here / "specs"
    return installed if (installed / "schema.json").is_file() else here.parent / "specs"


def _schema(specs_dir: Path) -> dict[str, Any]:
    schema_path = specs_dir / "schema.json"
    if not schema_path.is_file():
        raise SpecError(f"spec schema not found: {schema_path}")
    loaded: dict[str, Any] = json.loads(schema_path.read_text(encoding="utf-8"))
    return loaded


def _location(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return "/".join(parts) if parts else "(top level)"


def _best_error(errors: Iterable[jsonschema.ValidationError]) -> jsonschema.ValidationError | None:
    best: jsonschema.ValidationError | None = jsonschema.exceptions.best_match(errors)
    return best


def _parse_file(path: Path, data: Mapping[str, Any]) -> SpecFile:
    area = str(data["area"])
    requirements = []
    for raw in data["requirements"]:
        checks = tuple(
            Check(
                requirement_id=raw["id"],
                id=c["id"],
                title=c["title"],
                kind="exchange" if "exchange" in c else "property",
                let=c.get("let", {}),
                exchange=tuple(c.get("exchange", ())),
                property_name=c.get("property"),
                params=c.get("params", {}) if "property" in c else None,
            )
            for c in raw.get("checks", ())
        )
        requirements.append(
            Requirement(
                id=raw["id"],
                area=area,
                level=raw["level"],
                title=raw["title"],
                statement=" ".join(str(raw["statement"]).split()),
                source=raw["source"],
                status=raw.get("status", "active"),
                checks=checks,
                capability=raw.get("capability"),
                notes=" ".join(str(raw["notes"]).split()) if raw.get("notes") else None,
                justification=raw.get("justification"),
            )
        )
    return SpecFile(
        path=path,
        area=area,
        title=str(data["title"]),
        description=data.get("description"),
        requirements=tuple(requirements),
    )


def load_specs(
    specs_dir: Path | None = None,
    *,
    known_properties: Iterable[str] = (),
) -> SpecSet:
    """Load and validate every ``*.yaml`` in ``specs_dir``."""
    directory = (specs_dir or default_specs_dir()).resolve()
    if not directory.is_dir():
        raise SpecError(f"specs directory not found: {directory}")
    validator = jsonschema.Draft202012Validator(_schema(directory))
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise SpecError(f"no spec files (*.yaml) in {directory}")
    digest = hashlib.sha256()
    files = []
    for path in paths:
        raw_bytes = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + raw_bytes + b"\0")
        try:
            data = load_yaml(raw_bytes.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SpecError(f"{path.name}: not valid YAML: {first}") from None
        error = _best_error(validator.iter_errors(data))
        if error is not None:
            raise SpecError(f"{path.name}: at {_location(error)}: {error.message}")
        files.append(_parse_file(path, data))
    spec_set = SpecSet(files=tuple(files), sha256=digest.hexdigest())
    _cross_check(spec_set, set(known_properties))
    return spec_set


def _cross_check(spec_set: SpecSet, known_properties: set[str]) -> None:
    areas: dict[str, Path] = {}
    for spec_file in spec_set.files:
        if spec_file.area in areas:
            raise SpecError(
                f"{spec_file.path.name}: area {spec_file.area!r} is also used by "
                f"{areas[spec_file.area].name}"
            )
        areas[spec_file.area] = spec_file.path
    seen: dict[str, str] = {}
    for spec_file in spec_set.files:
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
                if (
                    check.property_name is not None
                    and known_properties
                    and check.property_name not in known_properties
                ):
                    raise SpecError(
                        f"{spec_file.path.name}: {check.full_id} names unknown property "
                        f"{check.property_name!r} (known: {', '.join(sorted(known_properties))})"
                    )
