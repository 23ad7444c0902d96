"""The time-stamped record of one client check: the scripted server's side of the wire, the
auth endpoints' requests, the driver's commands and reports, and the scenario's own notes.

Scenarios judge a client by *when* things happened (a reconnect 1 s after a 4100 close, a ping
after the activity timeout), so every entry carries the monotonic time since the check began,
and waits are expressed over entries: "the first entry after index N matching this, within T
seconds". The same entries are the check's transcript (JSON lines, the format of the server
checks' wire logs), so the evidence an auditor reads is exactly what the verdict was drawn from.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..transcript import Transcript

__all__ = ["Entry", "Match", "Timeline", "kind_is"]

Entry = dict[str, Any]
Match = Callable[[Entry], bool]


class Timeline:
    """Entries in the order they happened; ``wait_for`` wakes on each new one."""

    def __init__(self, check_id: str) -> None:
        self.transcript = Transcript(check_id)
        self._changed = asyncio.Event()

    @property
    def entries(self) -> list[Entry]:
        return self.transcript.entries

    def now(self) -> float:
        """Seconds since the check began, on the entries' clock."""
        return time.monotonic() - self.transcript.started

    def record(self, kind: str, conn: str | None = None, **fields: Any) -> Entry:
        self.transcript.record(kind, conn, **fields)
        self._changed.set()
        return self.entries[-1]

    def note(self, message: str) -> None:
        self.record("note", message=message)

    def mark(self) -> int:
        """An index to search from: only entries recorded after this call."""
        return len(self.entries)

    def find(self, match: Match, since: int = 0) -> Entry | None:
        for entry in self.entries[since:]:
            if match(entry):
                return entry
        return None

    def find_all(self, match: Match, since: int = 0) -> list[Entry]:
        return [e for e in self.entries[since:] if match(e)]

    async def wait_for(self, match: Match, timeout: float, since: int = 0) -> Entry | None:
        """The first entry from ``since`` on that matches, waiting at most ``timeout`` seconds
        for it; None if none came."""
        deadline = time.monotonic() + max(timeout, 0.0)
        checked = since
        while True:
            for entry in self.entries[checked:]:
                if match(entry):
                    return entry
            checked = len(self.entries)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def write(self, path: Path) -> None:
        self.transcript.write(path)

    def tail(self, count: int = 12) -> list[str]:
        return self.transcript.tail(count)


def kind_is(kind: str, **fields: Any) -> Match:
    """A matcher: entries of ``kind`` whose named fields equal the given values."""

    def match(entry: Entry) -> bool:
        return entry.get("kind") == kind and all(entry.get(k) == v for k, v in fields.items())

    return match
