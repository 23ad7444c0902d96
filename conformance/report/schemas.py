"""The published schemas of the report files, for tools that check a report before trusting it:
``results.schema.json`` (JSON Schema, draft 2020-12) for results.json and ``junit.xsd`` (XML
Schema, the JUnit XML format) for junit.xml. They live in ``schemas/`` at the top of a checkout
and travel inside the installed suite as ``conformance/schemas``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["JUNIT", "RESULTS", "path"]

RESULTS = "results.schema.json"
JUNIT = "junit.xsd"


def path(name: str) -> Path:
    """One schema's file: the installed copy if there is one, else the checkout's."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "schemas" / name
    return installed if installed.is_file() else package.parent / "schemas" / name
