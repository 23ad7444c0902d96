"""What the virtual users felt, computed from what was published and what each connection saw.

Pure code over plain records, so every figure is tested without a socket. A tab's connection
is a ``Life``: opened, established, subscribed to each channel, ended (how and when), and the
sequence numbers it received. The publisher's ``Publication`` records say what was sent when,
and whether the server accepted it.

What counts as *owed* is the heart of it. The protocol has no history, so an event published
while a tab was away is not the server's loss. An event is owed to a connection that was
subscribed to its channel before it was published, if either

- a later event on that channel arrived on that connection (the publisher sends one event at
  a time, so the server had this one first: missing it is a gap), or
- the connection stayed open to the end of the run, with no fault injected on it by then,
  until at least ``grace`` seconds after the server acknowledged the event.

What was published around the moment a connection ended early is not judged: it may have been
in flight, or queued behind a close the server had already decided on, and a client cannot
tell which (a server closing thousands of sockets writes the last close seconds after it
decided it).
Owed and never received is *lost*; received twice by a tab, across its connections, is a
*duplicate*; on one connection and channel, a lower sequence number after a higher one is
*out of order* (the publisher sends one event at a time, so the server's order is the
sequence order).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Figures",
    "Life",
    "NodeFigures",
    "Publication",
    "UserFigures",
    "percentile",
    "tally",
]


@dataclass(frozen=True)
class Publication:
    seq: int
    slot: str
    sent: float
    #: When the server answered 2xx; None: the publish failed (refused, timed out, not 2xx).
    acked: float | None


@dataclass(frozen=True)
class Life:
    """One connection of one tab, as the tab saw it (wall-clock seconds)."""

    tab: str
    user: str
    number: int
    opened: float
    established: float | None = None
    subscribed: Mapping[str, float] = field(default_factory=dict)
    ended: float | None = None
    #: How it ended: "end of run", "close 4200 <reason>", "no pong", "refused: ...", ...
    how: str = ""
    close_code: int | None = None
    #: When the simulation injected a network fault on it, if it did.
    faulted: float | None = None
    received: Mapping[str, Sequence[int]] = field(default_factory=dict)
    #: The node of a cluster it went through (counted from 0); None: a single server.
    node: int | None = None

    def ready_at(self, slots: Iterable[str]) -> float | None:
        """When it was subscribed to every channel, if it ever was."""
        times = [self.subscribed.get(slot) for slot in slots]
        return None if any(t is None for t in times) else max(t for t in times if t is not None)

    def healthy_until(self, run_end: float) -> float:
        end = self.ended if self.ended is not None else run_end
        return min(end, self.faulted) if self.faulted is not None else end

    def to_dict(self) -> dict[str, Any]:
        return {
            "tab": self.tab, "user": self.user, "number": self.number, "opened": self.opened,
            "established": self.established, "subscribed": dict(self.subscribed),
            "ended": self.ended, "how": self.how, "close_code": self.close_code,
            "faulted": self.faulted, "received": {k: list(v) for k, v in self.received.items()},
            "node": self.node,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Life:
        return cls(**{**data, "subscribed": dict(data["subscribed"])})


@dataclass(frozen=True)
class UserFigures:
    user: str
    connect_ms: float | None
    worst_reconnect_ms: float | None
    owed: int
    lost: int
    duplicates: int
    out_of_order: int
    recovered: bool


@dataclass(frozen=True)
class NodeFigures:
    """What the connections through one node of a cluster got: a node that forwards nothing,
    or forwards twice, shows here even when the others hide it in the totals."""

    connections: int = 0
    owed: int = 0
    lost: int = 0
    #: A second copy that arrived on a connection through this node.
    duplicates: int = 0
    out_of_order: int = 0


@dataclass(frozen=True)
class Figures:
    users: int
    tabs: int
    connections: int
    connect_ms: Sequence[float]
    reconnect_ms: Sequence[float]
    latency_ms: Sequence[float]
    published: int
    publish_failed: int
    owed: int
    delivered: int
    lost: int
    duplicates: int
    out_of_order: int
    received_total: int
    window_seconds: float
    #: Deliveries owed to nobody: events a tab did not see because it was away.
    unseen_while_away: int
    recovered_users: int
    refused_tabs: int
    closes: Mapping[str, int]
    per_user: Sequence[UserFigures]
    #: Node -> what its connections got; empty against a single server.
    per_node: Mapping[int, NodeFigures] = field(default_factory=dict)

    @property
    def delivered_per_second(self) -> float:
        return self.received_total / self.window_seconds if self.window_seconds > 0 else 0.0

    @property
    def recovered_share(self) -> float:
        return self.recovered_users / self.users if self.users else 1.0

    def slowest_user(self) -> UserFigures | None:
        """The user who waited longest: for a reconnect, or else to connect."""
        if not self.per_user:
            return None
        return max(
            self.per_user,
            key=lambda u: (
                not u.recovered,
                u.worst_reconnect_ms if u.worst_reconnect_ms is not None else -1.0,
                u.connect_ms if u.connect_ms is not None else math.inf,
            ),
        )


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def tally(
    lives: Iterable[Life],
    publications: Sequence[Publication],
    *,
    slots: Sequence[str],
    run_end: float,
    window: tuple[float, float],
    grace: float,
    latency_ms: Sequence[float] = (),
) -> Figures:
    by_tab: dict[str, list[Life]] = {}
    for life in lives:
        by_tab.setdefault(life.tab, []).append(life)
    accepted = [p for p in publications if p.acked is not None]
    totals = _Totals()
    users: dict[str, list[_TabResult]] = {}
    for tab_lives in by_tab.values():
        tab_lives.sort(key=lambda life: life.number)
        result = _tab(tab_lives, accepted, slots, run_end, grace, totals)
        users.setdefault(tab_lives[0].user, []).append(result)
    per_user = [_user(user, results) for user, results in sorted(users.items())]
    return Figures(
        users=len(users),
        tabs=len(by_tab),
        connections=totals.connections,
        connect_ms=totals.connect_ms,
        reconnect_ms=totals.reconnect_ms,
        latency_ms=list(latency_ms),
        published=len(accepted),
        publish_failed=len(publications) - len(accepted),
        owed=totals.owed,
        delivered=totals.owed - totals.lost,
        lost=totals.lost,
        duplicates=totals.duplicates,
        out_of_order=totals.out_of_order,
        received_total=totals.received,
        window_seconds=max(0.0, window[1] - window[0]),
        unseen_while_away=totals.unseen,
        recovered_users=sum(1 for u in per_user if u.recovered),
        refused_tabs=totals.refused,
        closes=dict(sorted(totals.closes.items())),
        per_user=per_user,
        per_node={n: NodeFigures(**vars(c)) for n, c in sorted(totals.per_node.items())},
    )


@dataclass
class _Totals:
    connections: int = 0
    owed: int = 0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    received: int = 0
    unseen: int = 0
    refused: int = 0
    connect_ms: list[float] = field(default_factory=list)
    reconnect_ms: list[float] = field(default_factory=list)
    closes: dict[str, int] = field(default_factory=dict)
    per_node: dict[int, _NodeCount] = field(default_factory=dict)


@dataclass
class _NodeCount:
    """``NodeFigures`` while the tally counts them."""

    connections: int = 0
    owed: int = 0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0


@dataclass
class _TabResult:
    connect_ms: float | None = None
    reconnect_ms: list[float] = field(default_factory=list)
    owed: int = 0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    recovered: bool = True


def _tab(
    lives: list[Life],
    accepted: Sequence[Publication],
    slots: Sequence[str],
    run_end: float,
    grace: float,
    totals: _Totals,
) -> _TabResult:
    result = _TabResult()
    seen: set[tuple[str, int]] = set()
    down_since: float | None = None
    for life in lives:
        totals.connections += 1
        # Against a single server the node figures are not kept: they would repeat the totals.
        node = (
            totals.per_node.setdefault(life.node, _NodeCount())
            if life.node is not None
            else _NodeCount()
        )
        node.connections += 1
        if life.established is not None and result.connect_ms is None:
            # A tab's connect time runs from its first attempt to its first handshake, failed
            # attempts included; what later connections take is its reconnect time.
            result.connect_ms = (life.established - lives[0].opened) * 1000
            totals.connect_ms.append(result.connect_ms)
        ready = life.ready_at(slots)
        if ready is not None and down_since is not None:
            wait = (ready - down_since) * 1000
            result.reconnect_ms.append(wait)
            totals.reconnect_ms.append(wait)
            down_since = None
        ended_early = life.how != "end of run" and life.ended is not None
        if ended_early and life.established is not None and down_since is None:
            down_since = life.ended
        if life.close_code is not None:
            key = str(life.close_code)
            totals.closes[key] = totals.closes.get(key, 0) + 1
        elif life.how and life.how != "end of run":
            key = life.how.split(":")[0]
            totals.closes[key] = totals.closes.get(key, 0) + 1
        # Owed by its tail only if it lasted: see the module's docstring.
        healthy = life.healthy_until(run_end) if life.how in ("", "end of run") else -math.inf
        for slot in slots:
            got = life.received.get(slot, ())
            totals.received += len(got)
            highest = 0
            for seq in got:
                if seq < highest:
                    result.out_of_order += 1
                    node.out_of_order += 1
                highest = max(highest, seq)
                if (slot, seq) in seen:
                    result.duplicates += 1
                    node.duplicates += 1
                seen.add((slot, seq))
            since = life.subscribed.get(slot)
            if since is None:
                continue
            got_set = set(got)
            last_seq = max(got, default=0)
            for p in accepted:
                if p.slot != slot or p.sent < since or p.acked is None:
                    continue
                if p.seq > last_seq and p.acked + grace > healthy:
                    continue
                result.owed += 1
                node.owed += 1
                if p.seq not in got_set:
                    result.lost += 1
                    node.lost += 1
    last = lives[-1]
    if last.how.startswith("refused"):
        totals.refused += 1
    result.recovered = last.ready_at(slots) is not None and last.how in ("", "end of run")
    # What the tab never saw, less what it lost: a lost event was owed, not missed while away.
    unseen = {(p.slot, p.seq) for p in accepted if p.slot in slots} - seen
    totals.unseen += max(0, len(unseen) - result.lost)
    totals.owed += result.owed
    totals.lost += result.lost
    totals.duplicates += result.duplicates
    totals.out_of_order += result.out_of_order
    return result


def _user(user: str, results: list[_TabResult]) -> UserFigures:
    connects = [r.connect_ms for r in results if r.connect_ms is not None]
    reconnects = [ms for r in results for ms in r.reconnect_ms]
    return UserFigures(
        user=user,
        connect_ms=max(connects) if connects else None,
        worst_reconnect_ms=max(reconnects) if reconnects else None,
        owed=sum(r.owed for r in results),
        lost=sum(r.lost for r in results),
        duplicates=sum(r.duplicates for r in results),
        out_of_order=sum(r.out_of_order for r in results),
        recovered=all(r.recovered for r in results),
    )
