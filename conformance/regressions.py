"""Saving a property's counterexample as a regression case.

hypothesis shrinks a failure to a small input, but the next run draws other inputs and may never
meet it again. Saved as ``regressions/<REQ-ID>-<hash8>.yaml`` next to the specs, the input runs
on every later run as a plain check of its requirement (``spec.load_specs`` attaches it), so a
fixed bug that comes back fails the same requirement again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .context import CheckContext
from .errors import SpecError
from .spec import REGRESSIONS_SUBDIR, load_yaml, regression_validator, validation_error

__all__ = [
    "DEFAULT_TITLE",
    "case_hash",
    "found_info",
    "render_case",
    "save_counterexample",
    "save_regression_case",
]

DEFAULT_TITLE = "Counterexample found by a property"

_HEADER = (
    "# A counterexample a property found, saved by pusher-conformance. It runs as check\n"
    "# {full_id} on every run; commit it, and keep it after the bug is fixed.\n"
)


def _plain(value: Any, what: str) -> Any:
    """``value`` as plain JSON data (lists, not tuples), or a SpecError naming ``what``."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise SpecError(f"regression case: {what} are not JSON data: {exc}") from None


def case_hash(params: Mapping[str, Any]) -> str:
    """Eight hex digits naming a counterexample: the same params give the same name."""
    # ASCII escapes: a generated counterexample may hold lone surrogates, which UTF-8 cannot.
    canonical = json.dumps(_plain(dict(params), "params"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:8]


def render_case(
    requirement_id: str,
    property_name: str,
    params: Mapping[str, Any],
    *,
    title: str = DEFAULT_TITLE,
    found: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A regression case as the file holds it; ``property_name`` replays ``params``."""
    return {
        "regression_of": requirement_id,
        "id": f"regression-{case_hash(params)}",
        "title": title,
        "found": _plain(dict(found or {}), "found"),
        "property": property_name,
        "params": _plain(dict(params), "params"),
    }


def found_info(ctx: CheckContext, failure: str) -> dict[str, Any]:
    """How this check found the case: enough to tell where it came from, nothing it needs."""
    return {
        "check": ctx.check.full_id,
        "profile": ctx.settings.profile,
        "seed": ctx.settings.seed,
        "target": ctx.target.name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "failure": failure if len(failure) <= 2000 else failure[:2000] + "...",
    }


def _same_case(path: Path, case: Mapping[str, Any]) -> bool:
    try:
        existing = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(existing, dict) and all(
        existing.get(key) == case.get(key) for key in ("regression_of", "property", "params")
    )


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and a rename: a reader (another worker's load, a crash
    halfway) sees the old file or the whole new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_regression_case(directory: Path, case: Mapping[str, Any]) -> Path:
    """Save ``case`` (see ``render_case``) as ``directory/<REQ-ID>-<hash8>.yaml``; return its path.

    The file name and the check id come from a hash of the params. A file that already holds
    the same counterexample is left as it is (the first finding is the one on record); another
    one under that name (a hash collision) moves this case to ``-2``, ``-3``... Raises SpecError
    if the case would not load as a regression case, OSError if it cannot be written.
    """
    data = _plain(dict(case), "case")
    error = validation_error(regression_validator(), data)
    if error is not None:
        raise SpecError(f"regression case: {error}")
    requirement_id = data["regression_of"]
    digest = case_hash(data.get("params", {}))
    for attempt in range(1, 100):
        suffix = digest if attempt == 1 else f"{digest}-{attempt}"
        path = directory / f"{requirement_id}-{suffix}.yaml"
        data["id"] = f"regression-{suffix}"
        if path.exists():
            if _same_case(path, data):
                return path
            continue
        header = _HEADER.format(full_id=f"{requirement_id}/{data['id']}")
        body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        _write_atomic(path, header + body)
        return path
    raise SpecError(
        f"regression case: too many files named {requirement_id}-{digest}* in {directory}"
    )


def save_counterexample(
    ctx: CheckContext,
    property_name: str,
    params: Mapping[str, Any],
    *,
    failure: str,
    title: str = DEFAULT_TITLE,
) -> Path | None:
    """Save what ``ctx``'s check found as a regression case of its requirement, where the run
    keeps them (``--regressions-dir``), with a copy in the report directory for CI artifacts.

    Returns the saved path, or None when the run saves none (``--no-save-regressions``) or the
    file could not be written (the check's wire log then says why): a failing check must
    still report its failure.
    """
    directory = ctx.settings.regressions_dir
    if directory is None:
        return None
    case = render_case(
        ctx.check.requirement_id,
        property_name,
        params,
        title=title,
        found=found_info(ctx, failure),
    )
    try:
        path = save_regression_case(directory, case)
        report_copy = (ctx.settings.report_dir / REGRESSIONS_SUBDIR).resolve()
        if report_copy != path.parent.resolve():
            _write_atomic(report_copy / path.name, path.read_text(encoding="utf-8"))
    except OSError as exc:
        ctx.transcript.note(f"could not save the regression case in {directory}: {exc}")
        return None
    ctx.transcript.note(f"regression case saved: {path}")
    return path
