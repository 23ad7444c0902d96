"""results.json: the machine-readable record of a run, for tools that compare runs or archive a
certification. Its layout is a contract with those tools, so it carries SCHEMA_VERSION, which
changes whenever a field is renamed or removed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UsageError
from ..provenance import Variant
from ..results import RunReport
from ..spec import Requirement
from . import baseline_section, coverage_section

__all__ = ["FILE_NAME", "SCHEMA_VERSION", "provenance", "read", "render", "to_dict", "write"]

FILE_NAME = "results.json"
SCHEMA_VERSION = 1


def provenance(requirement: Requirement) -> dict[str, Any]:
    """What a requirement rests on, as readers of results.json see it (empty parts left out)."""
    data: dict[str, Any] = {"basis": requirement.basis}
    if requirement.quote:
        data["quote"] = requirement.quote
    if requirement.reasoning:
        data["reasoning"] = requirement.reasoning
    if requirement.observed_in:
        data["observed_in"] = list(requirement.observed_in)
    if requirement.variants:
        data["variants"] = [_variant(v) for v in requirement.variants]
    return data


def _variant(variant: Variant) -> dict[str, Any]:
    return {
        "behaviour": variant.behaviour,
        "seen_in": list(variant.seen_in),
        "clients": variant.clients,
    }


def to_dict(report: RunReport) -> dict[str, Any]:
    """The report as plain JSON data.

    Optional check fields (stats, figures) appear only when a check reported some, so results
    written before they existed and results written after look the same for ordinary checks.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "suite": {
            "name": "pusher-conformance",
            "version": __version__,
            "specs_sha256": report.specs.sha256,
        },
        "run": dict(report.run),
        "target": dict(report.target),
        "exit_code": int(report.exit),
        "executed_checks": report.executed_checks,
        "totals": dict(sorted(report.totals.items())),
        "requirements": [
            {
                "id": v.requirement.id,
                "area": v.requirement.area,
                "level": v.requirement.level,
                "title": v.requirement.title,
                "statement": v.requirement.statement,
                "source": v.requirement.source,
                **provenance(v.requirement),
                **(
                    {"variants_shown": [_variant(x) for x in v.variants_shown]}
                    if v.variants_shown
                    else {}
                ),
                "capability": v.requirement.capability,
                "notes": v.requirement.notes,
                "outcome": v.outcome.value,
                "checks": [
                    {
                        "id": c.check_id,
                        "outcome": c.outcome.value,
                        "message": c.message,
                        "duration_s": round(c.duration_s, 3),
                        "transcript": c.transcript,
                        "replay": c.replay,
                        **({"stats": dict(c.stats)} if c.stats else {}),
                        **({"figures": c.figures} if c.figures else {}),
                    }
                    for c in v.checks
                ],
            }
            for v in report.verdicts
        ],
        **(
            {"baseline": baseline_section.as_json(report.baseline)}
            if report.baseline is not None
            else {}
        ),
        "not_covered": [
            {
                "id": r.id,
                "area": r.area,
                "level": r.level,
                "title": r.title,
                "status": r.status,
                "justification": r.justification,
                "source": r.source,
                **provenance(r),
            }
            for r in report.not_covered
        ],
        "coverage": coverage_section.as_json(report),
    }


def render(report: RunReport) -> str:
    """Indented and unescaped (``ensure_ascii=False``) so a person can read the file too."""
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"


def write(report: RunReport, path: Path) -> None:
    path.write_text(render(report), encoding="utf-8")


def read(path: str | Path) -> dict[str, Any]:
    """A results.json this suite can read, checked enough for tools that compare runs (one
    line naming the file when it is not)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("requirements"), list):
        raise UsageError(f"{path}: not a results.json (no list of requirements)")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise UsageError(
            f"{path}: results schema_version {data.get('schema_version')!r}; this suite reads"
            f" {SCHEMA_VERSION}"
        )
    for item in data["requirements"]:
        if not isinstance(item, dict) or not all(k in item for k in ("id", "level", "outcome")):
            raise UsageError(f"{path}: a requirement entry lacks id, level or outcome")
    return data
