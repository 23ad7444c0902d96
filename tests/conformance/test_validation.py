"""Judging documents against a schema: one line per violation, each valid document judged once."""

from __future__ import annotations

import jsonschema

from conformance.validation import validation_error


def test_a_document_judged_valid_once_is_not_judged_again_and_odd_ones_still_are() -> None:
    validator = jsonschema.Draft202012Validator({"type": "object", "required": ["a"]})
    assert validation_error(validator, {"a": "\ud800 lone surrogate"}) is None
    assert validation_error(validator, {"a": 1}) is None
    assert validation_error(validator, {"b": 1}) == "at (top level): 'a' is a required property"
    assert validation_error(validator, {1: "x", "b": 2}) is not None  # keys of mixed types
