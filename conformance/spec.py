"""Loading the YAML specs: the single source of truth for requirements and their checks.

Every file is validated against ``specs/schema.json`` and then cross-checked by
``spec_rules`` (ids unique across files, each id prefix at home in the one file that declares
it, ids in order, properties known) so that a broken spec is a clear usage error naming the file
and the place, never a surprise at run time.

Regression cases (``specs/regressions/*.yaml``, validated against ``regression.schema.json``) are
counterexamples a property once found; each joins its requirement as one more property check, so
a server that regresses fails that requirement again on every run, whatever hypothesis draws.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml

from .errors import SpecError
from .provenance import Basis, Provenance, Variant, read_provenance
from .spec_rules import cross_check, merge_models
from .validation import validation_error

__all__ = [
    "REGRESSIONS_SUBDIR",
    "SUBJECTS",
    "Check",
    "Level",
    "RegressionCase",
    "Requirement",
    "SpecFile",
    "SpecSet",
    "default_specs_dir",
    "load_specs",
    "load_yaml",
    "regression_paths",
    "regression_validator",
    "validation_error",
]

Level = Literal["MUST", "SHOULD", "MAY"]

#: What a spec file certifies (its ``subject:``); ``conformance run`` certifies the server, and
#: each other subject has its own command and its own check registry.
Subject = Literal["server", "client", "auth-endpoint"]
SUBJECTS: tuple[Subject, ...] = ("server", "client", "auth-endpoint")

#: Where regression cases live, relative to the specs directory.
REGRESSIONS_SUBDIR = "regressions"


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
    #: The regression case file this check comes from (None: a check of a spec file).
    regression_file: Path | None = None
    #: What the target must declare for this check, on top of its requirement's capability:
    #: capabilities or app fields (``target.TARGET_APP_FIELDS``); else it is skipped.
    capabilities: tuple[str, ...] = ()

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
    #: What the requirement rests on (conformance/provenance.py).
    provenance: Provenance = field(default_factory=Provenance)
    #: ``graded: false``: behaviour the docs leave open, reported and never graded.
    graded: bool = True

    @property
    def basis(self) -> Basis:
        return self.provenance.basis

    @property
    def quote(self) -> str | None:
        return self.provenance.quote

    @property
    def reasoning(self) -> str | None:
        return self.provenance.reasoning

    @property
    def observed_in(self) -> tuple[str, ...]:
        return self.provenance.observed_in

    @property
    def variants(self) -> tuple[Variant, ...]:
        return self.provenance.variants


@dataclass(frozen=True)
class SpecFile:
    path: Path
    area: str
    title: str
    description: str | None
    requirements: tuple[Requirement, ...]
    #: ``models:``: configuration of model-based properties, name -> free-form object (the
    #: property that uses a model validates its inside).
    models: Mapping[str, Any] = field(default_factory=dict)
    #: ``prefixes:``: the id prefixes (``HTTP-EVT``) whose requirements live in this file and
    #: in no other.
    prefixes: tuple[str, ...] = ()
    #: ``subject:``: what the requirements certify (server unless the file says otherwise).
    subject: Subject = "server"


@dataclass(frozen=True)
class RegressionCase:
    """A saved counterexample; its check is also in its requirement's ``checks``."""

    path: Path
    check: Check
    found: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """How errors and listings name the file: relative to the specs directory."""
        return f"{REGRESSIONS_SUBDIR}/{self.path.name}"


@dataclass(frozen=True)
class SpecSet:
    files: tuple[SpecFile, ...]
    sha256: str
    regressions: tuple[RegressionCase, ...] = ()

    @property
    def models(self) -> dict[str, Any]:
        """Every file's ``models:`` merged; a name may be defined by one file only."""
        return merge_models(self.files)

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


class _FastSpecLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The same rules on libyaml's parser: loading the specs is on every run's path."""


for _loader in (_SpecLoader, _FastSpecLoader):
    _loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )


def load_yaml(text: str) -> Any:
    """Load spec or fixture YAML the way its authors read it.

    libyaml refuses some escapes that PyYAML's own emitter writes into saved regression
    cases (odd code points in quoted strings), so what it refuses is read again by the pure
    parser, which then has the last word."""
    try:
        return yaml.load(text, Loader=_FastSpecLoader)
    except yaml.YAMLError:
        return yaml.load(text, Loader=_SpecLoader)


def default_specs_dir() -> Path:
    """The bundled specs: ``conformance/specs`` when installed, ``specs/`` in a checkout."""
    here = Path(__file__).resolve().parent
    installed = here / "specs"
    return installed if (installed / "schema.json").is_file() else here.parent / "specs"


def _schema(specs_dir: Path, name: str = "schema.json") -> dict[str, Any]:
    schema_path = specs_dir / name
    if not schema_path.is_file():
        raise SpecError(f"spec schema not found: {schema_path}")
    loaded: dict[str, Any] = json.loads(schema_path.read_text(encoding="utf-8"))
    return loaded


def regression_validator(specs_dir: Path | None = None) -> jsonschema.Draft202012Validator:
    """The validator of regression case files (also used before saving one)."""
    directory = specs_dir or default_specs_dir()
    return jsonschema.Draft202012Validator(_schema(directory, "regression.schema.json"))


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
                capabilities=tuple(c.get("capabilities", ())),
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
                provenance=read_provenance(raw, f"{path.name}: {raw['id']}"),
                graded=bool(raw.get("graded", True)),
            )
        )
    return SpecFile(
        path=path,
        area=area,
        title=str(data["title"]),
        description=data.get("description"),
        requirements=tuple(requirements),
        models=dict(data.get("models", {})),
        prefixes=tuple(str(p) for p in data["prefixes"]),
        subject=data.get("subject", "server"),
    )


def _read_yaml(raw_bytes: bytes, name: str) -> Any:
    try:
        return load_yaml(raw_bytes.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecError(f"{name}: not valid YAML: {first}") from None


def regression_paths(specs_dir: Path) -> list[Path]:
    """The regression case files of a specs directory, in load order."""
    directory = specs_dir / REGRESSIONS_SUBDIR
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.yaml") if p.is_file())


def load_specs(
    specs_dir: Path | None = None,
    *,
    known_properties: Iterable[str] = (),
    regressions: Collection[str] | None = None,
    subject: Subject | None = "server",
) -> SpecSet:
    """Load and validate every ``*.yaml`` in ``specs_dir`` and the regression cases in its
    ``regressions/``.

    Every file is validated and cross-checked whatever its subject (ids stay unique across
    subjects, so a docs sentence or a report names one requirement), but the set holds only the
    files of ``subject`` (``None``: all of them), and ``known_properties`` are the check names
    of that subject's registry.

    ``regressions`` restricts the cases to these file names: an xdist worker loads exactly the
    ones the controller loaded, even if a check has saved a new one in between, because every
    worker must collect the same checks.
    """
    directory = (specs_dir or default_specs_dir()).resolve()
    if not directory.is_dir():
        raise SpecError(f"specs directory not found: {directory}")
    validator = jsonschema.Draft202012Validator(_schema(directory))
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise SpecError(f"no spec files (*.yaml) in {directory}")
    digest = hashlib.sha256()
    every_file = []
    for path in paths:
        raw_bytes = path.read_bytes()
        data = _read_yaml(raw_bytes, path.name)
        error = validation_error(validator, data)
        if error is not None:
            raise SpecError(f"{path.name}: {error}")
        parsed = _parse_file(path, data)
        every_file.append(parsed)
        if subject is None or parsed.subject == subject:
            digest.update(path.name.encode() + b"\0" + raw_bytes + b"\0")
    known = set(known_properties)
    cross_check(every_file, known, subject)
    files = [f for f in every_file if subject is None or f.subject == subject]
    if not files:
        raise SpecError(f"no spec files of subject {subject} in {directory}")
    spec_set = SpecSet(files=tuple(files), sha256="")
    case_paths = regression_paths(directory)
    if regressions is not None:
        wanted = set(regressions)
        missing = wanted - {p.name for p in case_paths}
        if missing:
            raise SpecError(
                f"regression case(s) gone from {directory / REGRESSIONS_SUBDIR}: "
                f"{', '.join(sorted(missing))}"
            )
        case_paths = [p for p in case_paths if p.name in wanted]
    cases = []
    if case_paths:
        case_validator = regression_validator(directory)
        for path in case_paths:
            raw_bytes = path.read_bytes()
            name = f"{REGRESSIONS_SUBDIR}/{path.name}"
            digest.update(name.encode() + b"\0" + raw_bytes + b"\0")
            cases.append(_parse_case(path, _read_yaml(raw_bytes, name), case_validator))
    elsewhere = {
        r.id
        for f in every_file
        if subject is not None and f.subject != subject
        for r in f.requirements
    }
    cases = [c for c in cases if c.check.requirement_id not in elsewhere]
    files = _attach(spec_set.files, cases, known)
    return SpecSet(files=tuple(files), sha256=digest.hexdigest(), regressions=tuple(cases))


def _parse_case(
    path: Path, data: Any, validator: jsonschema.Draft202012Validator
) -> RegressionCase:
    error = validation_error(validator, data)
    if error is not None:
        raise SpecError(f"{REGRESSIONS_SUBDIR}/{path.name}: {error}")
    check = Check(
        requirement_id=data["regression_of"],
        id=data["id"],
        title=data["title"],
        kind="property",
        let={},
        property_name=data["property"],
        params=data.get("params", {}),
        regression_file=path,
    )
    return RegressionCase(path, check, data.get("found", {}))


def _attach(
    files: Iterable[SpecFile], cases: list[RegressionCase], known_properties: set[str]
) -> list[SpecFile]:
    """Append each case's check to its requirement (which must exist and be active)."""
    owners = {r.id: (f, r) for f in files for r in f.requirements}
    added: dict[str, list[RegressionCase]] = {}
    for case in cases:
        check = case.check
        if check.requirement_id not in owners:
            raise SpecError(
                f"{case.name}: regression_of names unknown requirement {check.requirement_id}"
            )
        spec_file, requirement = owners[check.requirement_id]
        if requirement.status != "active":
            raise SpecError(
                f"{case.name}: requirement {requirement.id} ({spec_file.path.name}) is "
                f"{requirement.status}, not active: it runs no checks"
            )
        if any(c.id == check.id for c in requirement.checks):
            raise SpecError(
                f"{case.name}: {requirement.id} already has a check {check.id} "
                f"in {spec_file.path.name}"
            )
        for other in added.get(requirement.id, ()):
            if other.check.id == check.id:
                raise SpecError(
                    f"{case.name}: check id {check.full_id} is also used by {other.name}"
                )
        if known_properties and check.property_name not in known_properties:
            raise SpecError(
                f"{case.name}: names unknown property {check.property_name!r} "
                f"(known: {', '.join(sorted(known_properties))})"
            )
        added.setdefault(requirement.id, []).append(case)
    return [
        dataclasses.replace(
            spec_file,
            requirements=tuple(
                dataclasses.replace(
                    r, checks=r.checks + tuple(c.check for c in added.get(r.id, ()))
                )
                if r.id in added
                else r
                for r in spec_file.requirements
            ),
        )
        for spec_file in files
    ]
