"""Matching received JSON against the patterns written in specs.

Pure functions: a pattern and a value in, a list of human-readable mismatches out. An empty list
means the value matches. Mismatch texts name the path (``data.socket_id``) so that a failure
message tells an implementer exactly what was wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["OPERATORS", "is_operator_pattern", "match", "normalise_frame_pattern", "surely_differs"]

OPERATORS = frozenset(
    {
        "regex",
        "is",
        "int_min",
        "int_max",
        "len_min",
        "len_max",
        "json",
        "equals",
        "any_of",
        "not",
        "absent",
        "in",
    }
)

_MISSING = object()

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "object": (dict,),
    "array": (list,),
}


def is_operator_pattern(pattern: object) -> bool:
    """A mapping is an operator pattern when every key is an operator name."""
    return isinstance(pattern, Mapping) and bool(pattern) and all(k in OPERATORS for k in pattern)


def normalise_frame_pattern(pattern: Any) -> Any:
    """Expand the ``data_json: P`` sugar into ``data: {json: P}``."""
    if isinstance(pattern, Mapping) and "data_json" in pattern and not is_operator_pattern(pattern):
        expanded = {k: v for k, v in pattern.items() if k != "data_json"}
        expanded["data"] = {"json": pattern["data_json"]}
        return expanded
    return pattern


def _type_name(value: object) -> str:
    if value is _MISSING:
        return "missing"
    if isinstance(value, bool):
        return "boolean"
    for name, types in _JSON_TYPES.items():
        if name not in ("number", "boolean") and isinstance(value, types):
            return name
    if isinstance(value, float):
        return "number"
    return type(value).__name__


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False) if value is not _MISSING else "<missing>"
    return text if len(text) <= 80 else text[:77] + "..."


def _is_instance(value: object, type_name: str) -> bool:
    if type_name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    types = _JSON_TYPES.get(type_name)
    if types is None:
        raise ValueError(f"unknown type name in pattern: {type_name!r}")
    return isinstance(value, types)


def _match_operators(pattern: Mapping[str, Any], value: object, path: str) -> list[str]:
    problems: list[str] = []
    where = path or "value"
    if "absent" in pattern:
        if pattern["absent"] and value is not _MISSING:
            return [f"{where}: expected to be absent, got {_short(value)}"]
        if not pattern["absent"] and value is _MISSING:
            return [f"{where}: expected to be present"]
        if len(pattern) == 1:
            return []
    if value is _MISSING:
        # Only alternatives and negations can say something about a missing key.
        if set(pattern) <= {"any_of", "not", "absent"}:
            return _match_missing(pattern, where, path)
        return [f"{where}: missing"]
    if "is" in pattern and not _is_instance(value, pattern["is"]):
        problems.append(f"{where}: expected {pattern['is']}, got {_type_name(value)}")
    if "equals" in pattern and not _strict_equal(pattern["equals"], value):
        problems.append(
            f"{where}: expected exactly {_short(pattern['equals'])}, got {_short(value)}"
        )
    if "in" in pattern and not any(_strict_equal(v, value) for v in pattern["in"]):
        problems.append(f"{where}: expected one of {_short(pattern['in'])}, got {_short(value)}")
    if "regex" in pattern:
        if not isinstance(value, str):
            problems.append(f"{where}: expected a string matching {pattern['regex']!r}")
        elif re.search(pattern["regex"], value) is None:
            problems.append(f"{where}: {_short(value)} does not match {pattern['regex']!r}")
    for key, low in (("int_min", True), ("int_max", False)):
        if key in pattern:
            if not _is_instance(value, "integer"):
                problems.append(f"{where}: expected an integer, got {_type_name(value)}")
            elif not _within(value, pattern[key], low):  # type: ignore[arg-type]
                problems.append(f"{where}: {value} is not within {key} {pattern[key]}")
    for key, low in (("len_min", True), ("len_max", False)):
        if key in pattern:
            if not isinstance(value, str | list | dict):
                problems.append(f"{where}: expected a sized value, got {_type_name(value)}")
            elif not _within(len(value), pattern[key], low):
                problems.append(f"{where}: length {len(value)} is not within {key} {pattern[key]}")
    if "json" in pattern:
        if not isinstance(value, str):
            problems.append(f"{where}: expected a JSON-encoded string, got {_type_name(value)}")
        else:
            try:
                decoded = json.loads(value)
            except ValueError:
                problems.append(f"{where}: {_short(value)} is not valid JSON")
            else:
                problems.extend(_match(pattern["json"], decoded, f"{path}(json)"))
    if "any_of" in pattern:
        alternatives = [_match(p, value, path) for p in pattern["any_of"]]
        if all(alternatives):
            reasons = "; or ".join(a[0] for a in alternatives)
            problems.append(f"{where}: matches none of the alternatives ({reasons})")
    if "not" in pattern and not _match(pattern["not"], value, path):
        problems.append(f"{where}: {_short(value)} matches a forbidden pattern")
    return problems


def _within(value: int, bound: int, is_lower_bound: bool) -> bool:
    return value >= bound if is_lower_bound else value <= bound


def _match_missing(pattern: Mapping[str, Any], where: str, path: str) -> list[str]:
    problems: list[str] = []
    if "any_of" in pattern:
        alternatives = [_match(p, _MISSING, path) for p in pattern["any_of"]]
        if all(alternatives):
            problems.append(f"{where}: missing, and none of the alternatives allows that")
    if "not" in pattern and not _match(pattern["not"], _MISSING, path):
        problems.append(f"{where}: missing, which the pattern forbids")
    return problems


def _strict_equal(expected: object, actual: object) -> bool:
    """Equality that keeps JSON types apart: ``1`` is not ``true`` and not ``"1"``."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, Mapping):
        return (
            isinstance(actual, Mapping)
            and expected.keys() == actual.keys()
            and all(_strict_equal(expected[k], actual[k]) for k in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_strict_equal(e, a) for e, a in zip(expected, actual, strict=True))
        )
    numeric = (int, float)
    if isinstance(expected, numeric) and isinstance(actual, numeric):
        return expected == actual
    return type(expected) is type(actual) and expected == actual


def _match(pattern: Any, value: object, path: str) -> list[str]:
    if is_operator_pattern(pattern):
        return _match_operators(pattern, value, path)
    where = path or "value"
    if isinstance(pattern, Mapping):
        if value is _MISSING:
            return [f"{where}: missing"]
        if not isinstance(value, Mapping):
            return [f"{where}: expected an object, got {_type_name(value)}"]
        problems: list[str] = []
        for key, sub in normalise_frame_pattern(pattern).items():
            child = f"{path}.{key}" if path else str(key)
            problems.extend(_match(sub, value.get(key, _MISSING), child))
        return problems
    if isinstance(pattern, Sequence) and not isinstance(pattern, str):
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {_type_name(value)}"]
        if len(value) != len(pattern):
            return [f"{where}: expected {len(pattern)} items, got {len(value)}"]
        problems = []
        for i, (sub, item) in enumerate(zip(pattern, value, strict=True)):
            problems.extend(_match(sub, item, f"{path}[{i}]"))
        return problems
    if value is _MISSING:
        return [f"{where}: missing (expected {_short(pattern)})"]
    if not _strict_equal(pattern, value):
        return [f"{where}: expected {_short(pattern)}, got {_short(value)}"]
    return []


def match(pattern: Any, value: object) -> list[str]:
    """Return why ``value`` does not match ``pattern`` (empty when it matches)."""
    return _match(normalise_frame_pattern(pattern), value, "")


def surely_differs(pattern: Any, value: object) -> bool:
    """Whether a literal at the top of ``pattern`` (``name: member_added``) differs from
    ``value``'s: a mismatch found without describing it.

    A check that waits for one webhook scans every request the receiver got from every check
    running beside it, at every poll; describing each mismatch cost more than the rest of the
    scan. ``False`` says nothing: ``match`` decides."""
    pattern = normalise_frame_pattern(pattern)
    if not isinstance(pattern, Mapping) or is_operator_pattern(pattern):
        return False
    if not isinstance(value, Mapping):
        return True
    for key, sub in pattern.items():
        if isinstance(sub, str | int | float | bool) and not _strict_equal(
            sub, value.get(key, _MISSING)
        ):
            return True
    return False
