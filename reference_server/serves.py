"""Requirement marks: which requirements of ``specs/*.yaml`` a code path of the server serves.

A code path that implements a requirement says so with one call where it does the work::

    serves("PROTO-CONN-03")          # the unknown-key refusal
    serves("HTTP-AUTH-04", "AUTH-CH-01")

Off (the default), ``serves`` reads one module global and returns. On (``enable()``, which
``--serves-file PATH`` does), each call counts a hit for its mark: the calling function
(``file:qualified name``) and the ids. On SIGUSR1, or at exit if no SIGUSR1 came, ``finish``
appends one JSON line to the file: every mark in the package's source with its hit count,
the marks no input reached included (they are found by reading the source, not by running
it), and counting stops. A restarted server appends a line of its own; a reader adds the
lines up.

This module only counts; what the counts mean for a run is the conformance suite's business
(``conformance/server_marks.py``), which reads the file and never imports this package.
Faults (``faults/``) carry no marks: a code path a fault replaces is simply not hit.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Mark",
    "declared",
    "disable",
    "enable",
    "enabled",
    "finish",
    "hits",
    "serves",
    "write",
]

#: The package root; mark locations are given relative to its parent.
_PACKAGE = Path(__file__).resolve().parent
#: Folders whose code carries no marks (test-only faults).
_UNMARKED = frozenset({"faults"})

#: (code file, qualified function name, ids) -> hits; ``None`` while marking is off.
_hits: Counter[tuple[str, str, tuple[str, ...]]] | None = None


@dataclass(frozen=True)
class Mark:
    """One ``serves(...)`` call site: where it is, what it claims, how often it ran."""

    location: str
    ids: tuple[str, ...]
    hits: int = 0


def serves(*ids: str) -> None:
    """Record that the calling code path serves these requirement ids (when enabled)."""
    if _hits is None:
        return
    code = sys._getframe(1).f_code
    _hits[(code.co_filename, code.co_qualname, ids)] += 1


def enable() -> None:
    """Start counting (from zero)."""
    global _hits
    _hits = Counter()


def disable() -> None:
    global _hits
    _hits = None


def enabled() -> bool:
    return _hits is not None


def _location(filename: str, qualname: str) -> str:
    path = Path(filename).resolve()
    try:
        shown = path.relative_to(_PACKAGE.parent).as_posix()
    except ValueError:
        shown = path.as_posix()
    return f"{shown}:{qualname}"


def hits() -> dict[tuple[str, tuple[str, ...]], int]:
    """The hits so far, by (location, ids); empty when marking is off."""
    counted: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for (filename, qualname, ids), count in (_hits or {}).items():
        counted[(_location(filename, qualname), ids)] += count
    return dict(counted)


class _MarkFinder(ast.NodeVisitor):
    """The ``serves("ID", ...)`` calls of one module, with the qualified name of the function
    each is in (as ``co_qualname`` spells it, ``<locals>`` included)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.scope: list[str] = []
        self.found: list[tuple[str, tuple[str, ...]]] = []

    def _enter(self, name: str, node: ast.AST, function: bool) -> None:
        self.scope.append(name)
        if function:
            self.scope.append("<locals>")
        self.generic_visit(node)
        if function:
            self.scope.pop()
        self.scope.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._enter(node.name, node, function=False)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._enter(node.name, node, function=True)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._enter(node.name, node, function=True)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name == "serves":
            ids = [a.value for a in node.args if isinstance(a, ast.Constant)]
            if len(ids) != len(node.args) or not ids or not all(isinstance(i, str) for i in ids):
                raise ValueError(
                    f"{self.path}:{node.lineno}: serves() takes requirement ids as string literals"
                )
            scope = self.scope[:-1] if self.scope[-1:] == ["<locals>"] else self.scope
            self.found.append((".".join(scope) or "<module>", tuple(str(i) for i in ids)))
        self.generic_visit(node)


def _sources(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in _UNMARKED or path.name == "serves.py":
            continue
        yield path


def declared(root: Path = _PACKAGE) -> list[Mark]:
    """Every mark in the package's source, in file and line order (hits not counted).

    Raises:
        ValueError: a ``serves`` call whose ids are not string literals.
    """
    marks: dict[tuple[str, tuple[str, ...]], None] = {}
    for path in _sources(root):
        finder = _MarkFinder(path)
        finder.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for qualname, ids in finder.found:
            marks[(_location(str(path), qualname), ids)] = None
    return [Mark(location, ids) for location, ids in marks]


def write(path: str | Path) -> None:
    """Append this process's marks and hit counts to ``path`` as one JSON line: every
    declared mark (hits 0 included), then any hit of a mark the source scan did not find."""
    counted = hits()
    marks = [Mark(m.location, m.ids, counted.pop((m.location, m.ids), 0)) for m in declared()]
    marks += [Mark(location, ids, count) for (location, ids), count in sorted(counted.items())]
    line = {
        "pid": os.getpid(),
        "marks": [{"location": m.location, "ids": list(m.ids), "hits": m.hits} for m in marks],
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def finish(path: str | Path) -> None:
    """Write the counts and stop counting, so a later ``finish`` (at exit) writes nothing.

    The server does this on SIGUSR1, for a caller that wants the counts before it stops the
    server: the stop's own drain then does not count as something the run exercised.
    """
    if _hits is not None:
        write(path)
        disable()
