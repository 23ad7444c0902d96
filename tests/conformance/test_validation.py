"""Judging documents against a schema: one line per violation, each valid document judged once."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from conformance import validation
from conformance.validation import validation_error


def test_a_document_judged_valid_once_is_not_judged_again_and_odd_ones_still_are() -> None:
    validator = jsonschema.Draft202012Validator({"type": "object", "required": ["a"]})
    assert validation_error(validator, {"a": "\ud800 lone surrogate"}) is None
    assert validation_error(validator, {"a": 1}) is None
    assert validation_error(validator, {"b": 1}) == "at (top level): 'a' is a required property"
    assert validation_error(validator, {1: "x", "b": 2}) is not None  # keys of mixed types


def test_a_valid_verdict_outlives_the_process_and_an_edit_is_judged_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUSHER_CONFORMANCE_CACHE", str(tmp_path / "cache"))
    validator = jsonschema.Draft202012Validator({"type": "object", "required": ["a"]})
    assert validation_error(validator, {"a": "first process"}) is None
    assert len(list((tmp_path / "cache").iterdir())) == 1
    # A new process: nothing in memory, the verdict is read back without judging.
    monkeypatch.setattr(validation, "_FOUND_VALID", set())
    monkeypatch.setattr(validation, "_best_error", lambda errors: pytest.fail("judged again"))
    assert validation_error(validator, {"a": "first process"}) is None
    # Other bytes are judged, and a violation is never remembered.
    monkeypatch.undo()
    monkeypatch.setenv("PUSHER_CONFORMANCE_CACHE", str(tmp_path / "cache"))
    assert validation_error(validator, {"b": "edited"}) is not None
    assert validation_error(validator, {"b": "edited"}) is not None
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_a_cache_that_cannot_be_written_costs_only_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PUSHER_CONFORMANCE_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(validation, "_FOUND_VALID", set())
    validator = jsonschema.Draft202012Validator({"type": "object", "required": ["a"]})
    assert validation_error(validator, {"a": "unwritable"}) is None
    assert validation_error(validator, {"b": 1}) is not None
