"""Judging a YAML document against a JSON Schema, for the spec files, the docs map and the
regression cases: one clear line naming the place of the most relevant violation, and each
document judged once per process, however often it is loaded."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import jsonschema

__all__ = ["validation_error"]


#: (schema, document) digests already found valid in this process. One run loads its specs
#: several times (the CLI, the plugin, each report with a docs section), and the schema
#: validation is most of a load's cost: the same bytes need not be judged twice.
_FOUND_VALID: set[tuple[str, str]] = set()


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
    if key is not None and key in _FOUND_VALID:
        return None
    error = _best_error(validator.iter_errors(data))
    if error is None:
        if key is not None:
            _FOUND_VALID.add(key)
        return None
    return f"at {_location(error)}: {error.message}"


def _location(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return "/".join(parts) if parts else "(top level)"


def _best_error(errors: Iterable[jsonschema.ValidationError]) -> jsonschema.ValidationError | None:
    best: jsonschema.ValidationError | None = jsonschema.exceptions.best_match(errors)
    return best
