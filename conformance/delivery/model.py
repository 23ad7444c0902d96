"""The expected state of a multi-user run, and the judge of what the connections saw.

Pure: no sockets, no clock. The driver tells the model what it did (a connection opened, a
subscription succeeded, an event was published) and hands the judge every frame each
connection received. The model never demands one outcome where the protocol allows several:
an event racing a subscribe or an unsubscribe may arrive or not (but at most once), events
from different publishers may interleave in any way, and items of one batch in any order.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ASPECTS",
    "Aspect",
    "DeliveryModel",
    "Judgement",
    "Published",
    "Received",
    "SessionTally",
    "Violation",
]

Aspect = Literal["exactly_once", "order", "exclusion", "no_leak", "presence", "channel_info"]
ASPECTS: tuple[Aspect, ...] = (
    "exactly_once",
    "order",
    "exclusion",
    "no_leak",
    "presence",
    "channel_info",
)
MEMBER_ADDED = "pusher_internal:member_added"
MEMBER_REMOVED = "pusher_internal:member_removed"
HTTP_PUBLISHER = "http"


@dataclass(frozen=True)
class Violation:
    aspect: Aspect
    message: str


@dataclass(frozen=True)
class Published:
    """One event on one channel, and who must, may and must not receive it."""

    token: str
    channel: str
    name: str
    data: str
    publisher: str
    #: Order among the publisher's publishes; items of one batch share a number.
    seq: int
    required: frozenset[str]
    optional: frozenset[str]
    excluded: frozenset[str]
    #: Every session of these connections may receive it (their tabs were changing).
    optional_conns: frozenset[str] = frozenset()
    #: Sessions of ``optional_conns`` closed before this moment (``DeliveryModel.now``) are
    #: not among them: they were gone before the changes began.
    flux_since: int = 0
    label: str = ""


@dataclass(frozen=True)
class Received:
    """What a connection saw, reduced to what the judge needs."""

    event: str
    channel: str | None
    data: object
    user_id: str | None = None


@dataclass
class SessionTally:
    """Per connection session: what it was owed and what it got."""

    conn: str
    user: str
    expected: int = 0
    delivered: int = 0
    optional_offered: int = 0
    optional_delivered: int = 0
    lost: int = 0
    duplicates: int = 0
    order_violations: int = 0
    leaks: int = 0


@dataclass(frozen=True)
class Judgement:
    violations: tuple[Violation, ...]
    tallies: Mapping[str, SessionTally]

    def of(self, aspects: Iterable[str]) -> list[Violation]:
        wanted = set(aspects)
        return [v for v in self.violations if v.aspect in wanted]


@dataclass
class _Session:
    id: str
    conn: str
    user: str
    open: bool = True
    channels: set[str] = field(default_factory=set)
    #: Every channel it was ever subscribed to.
    ever: set[str] = field(default_factory=set)
    closed_at: int | None = None


class DeliveryModel:
    """Sessions (one per opening of a connection slot), subscriptions, presence and every
    published event with its required/optional/excluded receivers."""

    def __init__(
        self, user_of: Mapping[str, str], presence: Iterable[str] = (), tag: str = ""
    ) -> None:
        self._user_of = dict(user_of)
        self._presence = frozenset(presence)
        self.tag = tag
        self.sessions: dict[str, _Session] = {}
        self.current: dict[str, str] = {}
        self._generation: Counter[str] = Counter()
        self.published: list[Published] = []
        self._by_key: dict[tuple[str, str], Published] = {}
        self._data_tokens: dict[str, str] = {}
        self._seq: Counter[str] = Counter()
        self.member_expected: Counter[tuple[str, str, str, str]] = Counter()
        self.violations: list[Violation] = []
        self._tokens = 0
        #: A step counter: it orders opens, closes and publishes as the model saw them.
        self.now = 0

    # -- connections ---------------------------------------------------------------------------

    def user(self, conn: str) -> str:
        return self._user_of[conn]

    def is_open(self, conn: str) -> bool:
        return conn in self.current

    def session_of(self, conn: str) -> str | None:
        return self.current.get(conn)

    def open(self, conn: str) -> str:
        if conn in self.current:
            raise ValueError(f"{conn} is already open")
        self._generation[conn] += 1
        session = f"{conn}#{self._generation[conn]}"
        self.sessions[session] = _Session(session, conn, self.user(conn))
        self.current[conn] = session
        return session

    def close(self, conn: str) -> None:
        session = self.current.pop(conn)
        state = self.sessions[session]
        for channel in sorted(state.channels):
            self._leave(state, channel)
        state.open = False
        self.now += 1
        state.closed_at = self.now

    # -- subscriptions -------------------------------------------------------------------------

    def channels_of(self, conn: str) -> set[str]:
        session = self.current.get(conn)
        return set(self.sessions[session].channels) if session else set()

    def subscribers(self, channel: str) -> set[str]:
        return {s.id for s in self.sessions.values() if s.open and channel in s.channels}

    def users(self, channel: str) -> set[str]:
        return {self.sessions[s].user for s in self.subscribers(channel)}

    def subscribed(self, conn: str, channel: str) -> set[str]:
        """The subscription succeeded. Returns the users the presence roster must list."""
        state = self.sessions[self.current[conn]]
        if channel in self._presence:
            first = state.user not in self.users(channel)
            if first:
                for other in self.subscribers(channel):
                    self.member_expected[(other, channel, MEMBER_ADDED, state.user)] += 1
        state.channels.add(channel)
        state.ever.add(channel)
        return self.users(channel)

    def unsubscribed(self, conn: str, channel: str) -> None:
        state = self.sessions[self.current[conn]]
        self._leave(state, channel)

    def _leave(self, state: _Session, channel: str) -> None:
        if channel not in state.channels:
            return
        state.channels.discard(channel)
        if channel in self._presence and state.user not in self.users(channel):
            for other in self.subscribers(channel):
                self.member_expected[(other, channel, MEMBER_REMOVED, state.user)] += 1

    # -- publishing ----------------------------------------------------------------------------

    def next_seq(self, publisher: str) -> int:
        self._seq[publisher] += 1
        return self._seq[publisher]

    def publish(
        self,
        channels: Sequence[str],
        *,
        name: str,
        publisher: str = HTTP_PUBLISHER,
        seq: int | None = None,
        exclude: str | None = None,
        racing: str | None = None,
        optional_conns: Iterable[str] = (),
        flux_since: int = 0,
        label: str = "",
    ) -> list[Published]:
        """Record one publish of one event to ``channels`` (one data text for all of them).

        ``exclude``: a session that must not receive it (socket_id exclusion, or the sender of
        a client event). ``racing``: a session whose subscription changes concurrently.
        ``optional_conns``: connections whose tabs are changing meanwhile.
        """
        self._tokens += 1
        token = f"e{self._tokens}"
        data = json.dumps({"run": self.tag, "event": token}, separators=(",", ":"))
        seq = seq if seq is not None else self.next_seq(publisher)
        flux = frozenset(optional_conns)
        self.now += 1
        optional = {
            s for s, state in self.sessions.items() if self._in_flux(state, flux, flux_since)
        }
        if racing is not None:
            optional.add(racing)
        excluded = {exclude} if exclude is not None else set()
        made = []
        for channel in channels:
            subscribers = self.subscribers(channel)
            published = Published(
                token=token,
                channel=channel,
                name=name,
                data=data,
                publisher=publisher,
                seq=seq,
                required=frozenset(subscribers - optional - excluded),
                optional=frozenset(optional - excluded),
                excluded=frozenset(excluded),
                optional_conns=flux,
                flux_since=flux_since,
                label=label,
            )
            self.published.append(published)
            self._by_key[(data, channel)] = published
            self._data_tokens[data] = token
            made.append(published)
        return made

    def retract(self, published: Sequence[Published]) -> None:
        """The publish was refused, so nothing of it is owed."""
        for item in published:
            self.published.remove(item)
            del self._by_key[(item.data, item.channel)]

    # -- judging -------------------------------------------------------------------------------

    def violation(self, aspect: Aspect, message: str) -> None:
        self.violations.append(Violation(aspect, message))

    def _who(self, session: str) -> str:
        state = self.sessions.get(session)
        return f"{session} (user {state.user})" if state else session

    @staticmethod
    def _in_flux(state: _Session, conns: frozenset[str], since: int) -> bool:
        return state.conn in conns and (state.closed_at is None or state.closed_at >= since)

    def _is_optional(self, published: Published, session: str) -> bool:
        state = self.sessions.get(session)
        return session in published.optional or (
            state is not None
            and self._in_flux(state, published.optional_conns, published.flux_since)
        )

    def judge(self, received: Mapping[str, Sequence[Received]]) -> Judgement:
        """Every invariant over everything the sessions in ``received`` saw."""
        violations = list(self.violations)
        tallies = {s: SessionTally(state.conn, state.user) for s, state in self.sessions.items()}
        counts: Counter[tuple[str, Published]] = Counter()
        orders: dict[tuple[str, str], list[Published]] = defaultdict(list)
        members: Counter[tuple[str, str, str, str]] = Counter()
        for session, frames in received.items():
            for frame in frames:
                if frame.event in (MEMBER_ADDED, MEMBER_REMOVED):
                    if frame.channel in self._presence:
                        key = (session, frame.channel, frame.event, str(frame.user_id))
                        members[key] += 1
                    continue
                if frame.event.startswith("pusher"):
                    continue
                lookup = (frame.data, str(frame.channel)) if isinstance(frame.data, str) else None
                published = self._by_key.get(lookup) if lookup else None
                if published is None:
                    violations.append(self._stray(session, frame))
                    continue
                if frame.event != published.name:
                    violations.append(
                        Violation(
                            "exactly_once",
                            f"{self._who(session)} received {self._describe(published)} "
                            f"named {frame.event!r}",
                        )
                    )
                    continue
                counts[(session, published)] += 1
                if counts[(session, published)] == 1:
                    orders[(session, published.channel)].append(published)
        for published in self.published:
            self._judge_event(published, counts, tallies, violations)
        for (session, published), n in counts.items():
            if (
                session not in published.required
                and session not in published.excluded
                and not self._is_optional(published, session)
            ):
                tallies[session].leaks += n
                violations.append(
                    Violation(
                        "no_leak",
                        f"{self._who(session)} received {self._describe(published)} although "
                        f"it was not subscribed to {published.channel} when it was published",
                    )
                )
        for (session, channel), seen in sorted(orders.items()):
            violations.extend(self._judge_order(session, channel, seen, tallies))
        for key in sorted(set(self.member_expected) | set(members)):
            want, got = self.member_expected[key], members[key]
            if want != got:
                session, channel, event, user = key
                violations.append(
                    Violation(
                        "presence",
                        f"{self._who(session)} received {got} {event.split(':')[1]} for user "
                        f"{user} on {channel}, expected {want}",
                    )
                )
        return Judgement(tuple(violations), tallies)

    def _describe(self, published: Published) -> str:
        by = "the HTTP API" if published.publisher == HTTP_PUBLISHER else published.publisher
        label = f", {published.label}" if published.label else ""
        return f"event {published.token} ({published.name} on {published.channel} by {by}{label})"

    def _stray(self, session: str, frame: Received) -> Violation:
        text = frame.data if isinstance(frame.data, str) else json.dumps(frame.data)
        if text in self._data_tokens:
            return Violation(
                "no_leak",
                f"{self._who(session)} received {self._data_tokens[text]} on {frame.channel}, "
                "a channel it was not published to",
            )
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        token = decoded.get("event") if isinstance(decoded, dict) else None
        if isinstance(token, str) and token in self._data_tokens.values():
            return Violation(
                "exactly_once",
                f"{self._who(session)} received {token} on {frame.channel} with its data "
                f"changed: {text[:120]!r}",
            )
        return Violation(
            "no_leak",
            f"{self._who(session)} received an event nobody published: {frame.event} on "
            f"{frame.channel} with data {text[:120]!r}",
        )

    def _judge_event(
        self,
        published: Published,
        counts: Counter[tuple[str, Published]],
        tallies: Mapping[str, SessionTally],
        violations: list[Violation],
    ) -> None:
        for session in sorted(published.required):
            n = counts[(session, published)]
            tally = tallies[session]
            tally.expected += 1
            tally.delivered += min(n, 1)
            if n == 0:
                tally.lost += 1
                violations.append(
                    Violation(
                        "exactly_once",
                        f"{self._who(session)} never received {self._describe(published)}, "
                        f"published while it was subscribed",
                    )
                )
            elif n > 1:
                tally.duplicates += n - 1
                violations.append(
                    Violation(
                        "exactly_once",
                        f"{self._who(session)} received {self._describe(published)} {n} times",
                    )
                )
        for session in sorted(s for s in tallies if self._is_optional(published, s)):
            if session in published.excluded:
                continue
            n = counts[(session, published)]
            tally = tallies[session]
            tally.optional_offered += 1
            tally.optional_delivered += min(n, 1)
            if n > 1:
                tally.duplicates += n - 1
                violations.append(
                    Violation(
                        "exactly_once",
                        f"{self._who(session)} received {self._describe(published)} {n} times "
                        "(it raced a subscription change, so once or not at all was legal)",
                    )
                )
        for session in sorted(published.excluded):
            n = counts[(session, published)]
            if n:
                tallies[session].leaks += n
                why = (
                    "its sender"
                    if published.publisher == session
                    else "the connection named by socket_id"
                )
                violations.append(
                    Violation(
                        "exclusion",
                        f"{self._who(session)} received {self._describe(published)} although it "
                        f"was excluded as {why}",
                    )
                )

    def _judge_order(
        self,
        session: str,
        channel: str,
        seen: Sequence[Published],
        tallies: Mapping[str, SessionTally],
    ) -> list[Violation]:
        """Events of one publisher on one channel arrive in publish order; a batch's items,
        sharing one number, in any order among themselves."""
        found = []
        latest: dict[str, Published] = {}
        for published in seen:
            before = latest.get(published.publisher)
            if before is not None and published.seq < before.seq:
                tallies[session].order_violations += 1
                found.append(
                    Violation(
                        "order",
                        f"{self._who(session)} received {self._describe(published)} after "
                        f"{before.token}, which its publisher sent later",
                    )
                )
                continue
            latest[published.publisher] = published
        return found
