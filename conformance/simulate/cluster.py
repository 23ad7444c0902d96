"""A simulation against a cluster: which node each tab goes through, which nodes the publisher
posts through, and what the tabs of a stopped node went through.

A cluster is reached the way browsers reach one behind a load balancer: tab ``i`` starts on
node ``i mod N`` (round-robin), and each new connection of a tab, after one ends or fails,
goes to the next node in its turn. So a tab whose node is stopped comes back through
another one, and its records say which.

Pure code over the ledger's ``Life`` records; the sockets are the tab's, the signals the
coordinator's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import UsageError
from .ledger import Life

__all__ = [
    "GOING_AWAY",
    "StoppedNode",
    "check_stops",
    "first_node",
    "node_turn",
    "publish_nodes",
    "stopped_node_figures",
]

#: "Server going away; reconnect": what the issue asks of a draining node, which its clients
#: follow by reconnecting at once.
GOING_AWAY = 4200
#: How many tab ids a figure quotes as examples of what went wrong.
EXAMPLES = 5


def first_node(tab_number: int, nodes: int) -> int:
    """The node tab ``tab_number`` (counted over the whole run) connects to first."""
    return tab_number % nodes


def node_turn(first: int, nodes: int) -> tuple[int, ...]:
    """The nodes a tab tries, in turn, starting with ``first``."""
    return tuple((first + step) % nodes for step in range(nodes))


def publish_nodes(nodes: int, stopped: Iterable[int]) -> tuple[int, ...]:
    """The nodes the publisher posts through, round-robin: every node no incident stops.

    A node being stopped answers 503 while it drains; posting through it would count the
    harness's own choice as failed publishes. Spreading the others' turns means an event
    reaches most tabs from another node than the one that accepted it, and consecutive
    events from different nodes, so the order check covers the cross-node path too.
    """
    gone = set(stopped)
    live = tuple(n for n in range(nodes) if n not in gone)
    if not live:
        raise ValueError("every node is stopped: nothing is left to publish through")
    return live


def check_stops(
    scenario: str, stops: Sequence[int], nodes: int, stoppable: Iterable[int] | None
) -> None:
    """Refuse, with one line naming what is missing, a scenario whose ``stop_node`` incidents
    this cluster cannot carry out. ``nodes``: how many the target has (1: a single server);
    ``stoppable``: the nodes with a stop command, or None when the suite started them."""
    if not stops:
        return
    where = f"scenario {scenario!r} stops node {stops[0]}"
    if nodes < 2:
        raise UsageError(
            f"{where} of a cluster: give --bundled-nodes N (N >= 2), or a target file with"
            " nodes: (docs/simulate.md)"
        )
    for node in stops:
        if node >= nodes:
            raise UsageError(
                f"scenario {scenario!r} stops node {node}, but the cluster has {nodes} nodes"
                f" (0 to {nodes - 1})"
            )
    if len(set(stops)) < len(stops):
        raise UsageError(f"scenario {scenario!r} stops the same node twice")
    if len(set(stops)) >= nodes:
        raise UsageError(
            f"scenario {scenario!r} stops every node of the cluster: none is left to come back to"
        )
    if stoppable is not None:
        missing = sorted(set(stops) - set(stoppable))
        if missing:
            raise UsageError(
                f"scenario {scenario!r} stops node {missing[0]}, but the target file's"
                f" nodes[{missing[0]}] has no stop command (nodes: [{{ws_url, http_url,"
                " stop: COMMAND}, ...]; docs/simulate.md)"
            )


@dataclass(frozen=True)
class StoppedNode:
    """What the tabs connected through a node when it was stopped went through."""

    node: int
    stopped_at: float
    #: Seconds from being told to stop to down (its process exited, or its stop command
    #: returned); None: not by the end of the run.
    down_after: float | None
    #: Tabs with an established connection through the node at the moment it was stopped.
    tabs: int
    #: Of those, the tabs whose connection ended with close 4200.
    closed_4200: int
    #: Of those, the tabs subscribed again afterwards through another node.
    came_back: int
    #: Node -> how many of the tabs came back through it.
    back_through: Mapping[int, int] = field(default_factory=dict)
    #: From the close to subscribed to every channel again, per tab that came back.
    reconnect_ms: Sequence[float] = ()
    #: How the other tabs' connections ended (a few examples: tab id and how).
    not_closed_examples: Sequence[str] = ()
    not_back_examples: Sequence[str] = ()

    @property
    def every_tab_closed(self) -> bool:
        return self.tabs > 0 and self.closed_4200 == self.tabs

    @property
    def every_tab_back(self) -> bool:
        return self.tabs > 0 and self.came_back == self.tabs


def stopped_node_figures(
    lives: Iterable[Life],
    *,
    node: int,
    stopped_at: float,
    down_at: float | None,
    slots: Sequence[str],
) -> StoppedNode:
    """The figures of the tabs that were on ``node`` when it was stopped at ``stopped_at``
    (and down at ``down_at``, if it went down before the run ended)."""
    by_tab: dict[str, list[Life]] = {}
    for life in lives:
        by_tab.setdefault(life.tab, []).append(life)
    tabs = closed = back = 0
    through: dict[int, int] = {}
    waits: list[float] = []
    not_closed: list[str] = []
    not_back: list[str] = []
    for tab, tab_lives in sorted(by_tab.items()):
        tab_lives.sort(key=lambda life: life.number)
        on_node = next((life for life in tab_lives if _open_on(life, node, stopped_at)), None)
        if on_node is None:
            continue
        tabs += 1
        if on_node.close_code == GOING_AWAY:
            closed += 1
        elif len(not_closed) < EXAMPLES:
            not_closed.append(f"{tab}: {on_node.how or 'still open'}")
        later = (
            life
            for life in tab_lives
            if life.number > on_node.number and life.ready_at(slots) is not None
        )
        again = next(later, None)
        if again is None or again.node == node or on_node.ended is None:
            if len(not_back) < EXAMPLES:
                where = "nowhere" if again is None else f"node {again.node}"
                not_back.append(f"{tab}: back through {where}")
            continue
        back += 1
        assert again.node is not None  # a cluster's lives all name their node
        through[again.node] = through.get(again.node, 0) + 1
        ready = again.ready_at(slots)
        assert ready is not None
        waits.append((ready - on_node.ended) * 1000)
    return StoppedNode(
        node=node,
        stopped_at=stopped_at,
        down_after=None if down_at is None else down_at - stopped_at,
        tabs=tabs,
        closed_4200=closed,
        came_back=back,
        back_through=dict(sorted(through.items())),
        reconnect_ms=waits,
        not_closed_examples=not_closed,
        not_back_examples=not_back,
    )


def _open_on(life: Life, node: int, at: float) -> bool:
    """Whether ``life`` was an established connection through ``node`` at time ``at``."""
    return (
        life.node == node
        and life.established is not None
        and life.established <= at
        and (life.ended is None or life.ended >= at)
    )
