"""Fixtures the robustness tests share: reading the JSON a malformed input carries, and running
a robustness property against the bundled server with a fault switched on."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformance.bundled import start_bundled
from conformance.context import CheckContext, RunSettings
from conformance.loop import LoopThread
from conformance.properties import PROPERTIES
from conformance.spec import Check


class JsonReader:
    """What a test needs to know about a payload's JSON, without trusting the suite's own
    helpers (they are what is under test)."""

    #: What ``parse`` returns for text that is not JSON (``None`` is JSON's ``null``).
    NOT_JSON: Any = object()

    def parse(self, text: str | bytes) -> Any:
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return self.NOT_JSON

    @staticmethod
    def depth(text: str) -> int:
        """Deepest bracket nesting outside JSON strings (an iterative scan: the payloads are
        nested far beyond the recursion limit)."""
        depth = deepest = 0
        in_string = escaped = False
        for char in text:
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char in "[{":
                depth += 1
                deepest = max(deepest, depth)
            elif char in "]}":
                depth -= 1
        return deepest

    def has_lone_surrogate(self, value: Any) -> bool:
        if isinstance(value, str):
            return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
        if isinstance(value, dict):
            return any(
                self.has_lone_surrogate(k) or self.has_lone_surrogate(v) for k, v in value.items()
            )
        if isinstance(value, list):
            return any(self.has_lone_surrogate(v) for v in value)
        return False


@pytest.fixture(scope="session")
def json_reader() -> JsonReader:
    """Session-scoped, so that hypothesis tests may take it."""
    return JsonReader()


RunOnBundled = Callable[[str, str, dict[str, Any]], dict[str, int]]


@pytest.fixture
def run_on_bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunOnBundled:
    """Run property ``name`` with ``params`` against the bundled server with ``faults`` on;
    the check's stats, or the property's exception."""

    def run(faults: str, name: str, params: dict[str, Any]) -> dict[str, int]:
        monkeypatch.setenv("PUSHER_REF_FAULTS", faults)
        server = start_bundled(tmp_path / "server.log")
        try:
            with LoopThread() as runner:
                check = Check(
                    "ROBUST-T-01", "t", "t", "property", {}, property_name=name, params=params
                )
                ctx = CheckContext(server.target, RunSettings(), check, runner)
                try:
                    PROPERTIES[name].run(ctx, params)
                finally:
                    runner.run(ctx.aclose())
                return ctx.stats
        finally:
            server.stop()

    return run
