"""A JSONL wire log per check: every frame and HTTP exchange, in order, with monotonic times.

It is the evidence an auditor reads when a check fails, so it records what was on the wire, not
what the suite made of it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Transcript"]

_MAX_TEXT = 4096


def _clip(text: str) -> str:
    if len(text) <= _MAX_TEXT:
        return text
    return f"{text[:_MAX_TEXT]}... [{len(text) - _MAX_TEXT} more characters]"


@dataclass
class Transcript:
    check_id: str
    started: float = field(default_factory=time.monotonic)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def record(self, kind: str, conn: str | None = None, **fields: Any) -> None:
        entry: dict[str, Any] = {"t": round(time.monotonic() - self.started, 6), "kind": kind}
        if conn is not None:
            entry["conn"] = conn
        for key, value in fields.items():
            entry[key] = _clip(value) if isinstance(value, str) else value
        self.entries.append(entry)

    def note(self, message: str) -> None:
        self.record("note", message=message)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for entry in self.entries:
                out.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    def tail(self, count: int = 12) -> list[str]:
        """The last entries as short lines, for a failure message."""
        lines = []
        for entry in self.entries[-count:]:
            rest = {k: v for k, v in entry.items() if k not in ("t", "kind", "conn")}
            conn = f" [{entry['conn']}]" if "conn" in entry else ""
            text = json.dumps(rest, ensure_ascii=False, default=str)
            if len(text) > 200:
                text = text[:197] + "..."
            lines.append(f"{entry['t']:9.3f}s {entry['kind']}{conn} {text}")
        return lines
