"""The timeline: waits that wake on new entries and end at their deadline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from conformance.clients.timeline import Timeline, kind_is


def test_wait_for_wakes_on_a_later_entry_and_honours_since() -> None:
    async def scenario() -> tuple[object, object, float]:
        timeline = Timeline("t")
        timeline.record("a", n=1)
        since = timeline.mark()
        asyncio.get_running_loop().call_later(0.05, lambda: timeline.record("a", n=2))
        found = await timeline.wait_for(kind_is("a"), 1.0, since)
        started = timeline.now()
        missing = await timeline.wait_for(kind_is("b"), 0.1)
        return found, missing, timeline.now() - started

    found, missing, waited = asyncio.run(scenario())
    assert isinstance(found, dict)
    assert found["n"] == 2
    assert missing is None
    assert 0.08 <= waited < 1.0


def test_written_transcript_is_json_lines(tmp_path: Path) -> None:
    timeline = Timeline("t")
    timeline.record("open", "c1", tls=False)
    timeline.note("hello")
    timeline.write(tmp_path / "t.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["open", "note"]
    assert lines[0]["conn"] == "c1"
