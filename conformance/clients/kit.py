"""What a client scenario works with: the scripted server, the driver and the timeline, and the
few steps every scenario repeats (connect and wait until connected, find the next connection,
wait for a report), each with a deadline.

A scenario raises ``CheckFailed`` when the client broke the rule, ``PreconditionFailed`` when
the situation the rule is about could not be set up (the client never connected in the first
place), and ``NotApplicable`` when the library lacks what the check needs. Timer tolerances
come from the client's declared settings (``Settings``), so a client configured with a long
activity timeout is not judged by a short one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import CheckFailed, PreconditionFailed
from .driver_link import Driver, Hello, NotApplicable, Reply
from .scripted_server import Link, ScriptedServer
from .timeline import Entry, Match, Timeline, kind_is

__all__ = ["Kit", "Settings", "report_is"]

#: How long the client gets to open its first connection and report ``connected``.
CONNECT_WITHIN_S = 5.0


@dataclass(frozen=True)
class Settings:
    """The client's effective timers in milliseconds (None: the driver did not say)."""

    activity_timeout_ms: int | None = None
    pong_timeout_ms: int | None = None

    @classmethod
    def of(cls, reply: Reply, hello: Hello) -> Settings:
        declared = reply.fields.get("settings")
        values: dict[str, int | None] = {}
        for name in ("activity_timeout_ms", "pong_timeout_ms"):
            value = declared.get(name) if isinstance(declared, dict) else None
            if not isinstance(value, int | float):
                value = hello.defaults.get(name)
            values[name] = int(value) if isinstance(value, int | float) and value > 0 else None
        return cls(**values)


def report_is(type_: str, **fields: Any) -> Match:
    """A matcher for the driver's reports of ``type_`` with these field values."""

    def match(entry: Entry) -> bool:
        return (
            entry.get("kind") == "report"
            and entry.get("type") == type_
            and all(entry.get(k) == v for k, v in fields.items())
        )

    return match


class Kit:
    def __init__(
        self, server: ScriptedServer, driver: Driver, hello: Hello, timeline: Timeline
    ) -> None:
        self.server = server
        self.driver = driver
        self.hello = hello
        self.timeline = timeline
        self.settings = Settings()
        #: Reported in every format, pass or fail (results.normalize_figures).
        self.figures: dict[str, Any] = {}

    # --- the driver -----------------------------------------------------------------------

    def need(self, *features: str) -> None:
        missing = sorted(set(features) - self.hello.features)
        if missing:
            raise NotApplicable(f"the driver does not declare {', '.join(missing)}")

    async def command(self, do: str, **fields: Any) -> Reply:
        """A command that must succeed: ``unsupported`` makes the check not applicable,
        ``failed`` inconclusive."""
        reply = await self.driver.command(do, **fields)
        if reply.type == "unsupported":
            raise NotApplicable(f"the driver cannot {do}: {reply.why or 'unsupported'}")
        if reply.type == "failed":
            raise PreconditionFailed(f"the driver's {do} failed: {reply.why or 'no reason given'}")
        return reply

    def connect_fields(self, *, tls: bool) -> dict[str, Any]:
        """The ``connect`` command's fields for this check's server."""
        return {
            "key": self.server.app.key,
            "host": "127.0.0.1",
            "ws_port": self.server.ws_port,
            "wss_port": self.server.wss_port,
            "tls": tls,
            "channel_auth_endpoint": self.server.channel_auth_endpoint,
            "user_auth_endpoint": self.server.user_auth_endpoint,
        }

    async def connect(
        self,
        *,
        tls: bool = False,
        activity_timeout_ms: int | None = None,
        pong_timeout_ms: int | None = None,
        wait_connected: bool = True,
    ) -> Link:
        """Have the client connect, and return its first connection once it is connected."""
        since = self.timeline.mark()
        fields = self.connect_fields(tls=tls)
        if activity_timeout_ms is not None:
            fields["activity_timeout_ms"] = activity_timeout_ms
        if pong_timeout_ms is not None:
            fields["pong_timeout_ms"] = pong_timeout_ms
        reply = await self.command("connect", **fields)
        self.settings = Settings.of(reply, self.hello)
        link = await self.next_link(since, CONNECT_WITHIN_S)
        if link is None:
            raise PreconditionFailed(
                f"the client opened no connection within {CONNECT_WITHIN_S:.0f} s of connect"
            )
        if wait_connected:
            await self.expect(
                report_is("state", current="connected"),
                CONNECT_WITHIN_S,
                since,
                "the client never reported connected",
                precondition=True,
            )
        return link

    # --- the server -----------------------------------------------------------------------

    def link(self, name: str) -> Link:
        for link in self.server.links:
            if link.name == name:
                return link
        raise KeyError(name)

    async def next_link(self, since: int, within: float) -> Link | None:
        """The first connection opened after ``since``, waiting at most ``within`` seconds."""
        entry = await self.timeline.wait_for(kind_is("open"), within, since)
        return self.link(str(entry["conn"])) if entry is not None else None

    def handshakes(self, since: int = 0) -> list[Entry]:
        return self.timeline.find_all(kind_is("handshake"), since)

    # --- waiting and judging --------------------------------------------------------------

    async def wait(self, match: Match, within: float, since: int = 0) -> Entry | None:
        return await self.timeline.wait_for(match, within, since)

    async def expect(
        self,
        match: Match,
        within: float,
        since: int,
        failure: str,
        *,
        precondition: bool = False,
    ) -> Entry:
        """The matching entry, or the check ends with ``failure`` (a precondition's failure
        makes it inconclusive instead)."""
        entry = await self.timeline.wait_for(match, within, since)
        if entry is None:
            raise (PreconditionFailed if precondition else CheckFailed)(failure)
        return entry

    def frames(self, conn: str, since: int = 0, **fields: Any) -> list[Entry]:
        """The client's frames on connection ``conn`` whose fields match."""
        return self.timeline.find_all(kind_is("recv", conn=conn, **fields), since)

    def summary(self, title: str, **numbers: Any) -> None:
        """One line of figures every report format shows, pass or fail."""
        self.figures = {"title": title, "summary": dict(numbers)}

    def table(self, columns: list[str], rows: list[list[Any]]) -> None:
        self.figures["table"] = {"columns": columns, "rows": rows}


def ensure(condition: bool, failure: str) -> None:
    """Fail the check with ``failure`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(failure)
