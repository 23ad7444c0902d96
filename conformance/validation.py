"""Judging a YAML document against a JSON Schema, for the spec files, the docs map and the
regression cases: one clear line naming the place of the most relevant violation, and each
document judged once, however often it is loaded.

A verdict of "valid" is remembered by the digest of the schema and the document, in this
process and in a cache directory (``$PUSHER_CONFORMANCE_CACHE``, else the user's cache
directory): every ``conformance`` run loads the same specs, and judging them is most of a
load's cost. The digest covers every byte judged, so an edited spec or schema is judged
again; a violation is never cached, so its message is always fresh."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema

__all__ = ["validation_error"]


#: (schema, document) digests already found valid in this process. One run loads its specs
#: several times (the CLI, the plugin, each report with a docs section), and the schema
#: validation is most of a load's cost: the same bytes need not be judged twice.
_FOUND_VALID: set[tuple[str, str]] = set()


def _cache_dir() -> Path:
    explicit = os.environ.get("PUSHER_CONFORMANCE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pusher-conformance" / "valid"


def _remembered(key: tuple[str, str]) -> bool:
    if key in _FOUND_VALID:
        return True
    try:
        found = (_cache_dir() / f"{key[0][:32]}-{key[1]}").is_file()
    except (OSError, RuntimeError):  # no home directory, unreadable cache: judge it
        return False
    if found:
        _FOUND_VALID.add(key)
    return found


def _remember(key: tuple[str, str]) -> None:
    _FOUND_VALID.add(key)
    # A cache that cannot be written only costs the next process the judging again.
    with contextlib.suppress(OSError, RuntimeError):
        directory = _cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{key[0][:32]}-{key[1]}").touch()


def _digest(data: Any) -> str | None:
    """None for data that has no canonical JSON text (keys of mixed types): judged each time."""
    try:
        text = json.dumps(data, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def validation_error(validator: jsonschema.Draft202012Validator, data: Any) -> str | None:
    """The most relevant schema violation as "at PLACE: MESSAGE", or None if ``data`` is valid."""
    schema, document = _digest(validator.schema), _digest(data)
    key = (schema, document) if schema is not None and document is not None else None
    if key is not None and _remembered(key):
        return None
    error = _best_error(validator.iter_errors(data))
    if error is None:
        if key is not None:
            _remember(key)
        return None
    return f"at {_location(error)}: {error.message}"


def _location(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return "/".join(parts) if parts else "(top level)"


def _best_error(errors: Iterable[jsonschema.ValidationError]) -> jsonschema.ValidationError | None:
    best: jsonschema.ValidationError | None = jsonschema.exceptions.best_match(errors)
    return best
