"""The production-readiness verdict: the simulation's figures against the scenario's
thresholds. It is a judgement about capacity and recovery on this machine, not about the
protocol, so it never enters ``run``'s outcomes or exit code (``simulate`` has its own).

A generator that could not keep up measures itself, not the server: then the verdict says so
and is *inconclusive* rather than a fail of the target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .cluster import StoppedNode
from .ledger import Figures, percentile
from .scenario import Thresholds

__all__ = ["Criterion", "Generator", "Readiness", "judge"]

#: A worker above this share of one core, or with this much event-loop lag (p99, ms), was
#: not keeping up: its tabs read messages late and its figures are the generator's.
SATURATED_CPU = 0.9
SATURATED_LAG_MS = 250.0


@dataclass(frozen=True)
class Generator:
    """How the load generator itself fared during the measured phase."""

    workers: int
    cpu_share_p90: float
    lag_ms_p99: float

    @property
    def saturated(self) -> bool:
        return self.cpu_share_p90 > SATURATED_CPU or self.lag_ms_p99 > SATURATED_LAG_MS

    def explain(self) -> str:
        return (
            f"{self.workers} worker(s): CPU p90 {self.cpu_share_p90:.0%} of a core,"
            f" event-loop lag p99 {self.lag_ms_p99:.0f} ms"
            + (
                f" (over {SATURATED_CPU:.0%} or {SATURATED_LAG_MS:.0f} ms: the generator was the"
                " bottleneck; run with more --workers or fewer --users)"
                if self.saturated
                else ""
            )
        )

    @classmethod
    def from_samples(
        cls, workers: int, cpu_shares: Sequence[Sequence[float]], lags: Sequence[float]
    ) -> Generator:
        worst = max((percentile(s, 90) or 0.0 for s in cpu_shares), default=0.0)
        return cls(workers, worst, percentile(lags, 99) or 0.0)


@dataclass(frozen=True)
class Criterion:
    name: str
    measured: str
    bar: str
    #: None: not tested by this run (the scenario offered too little to tell).
    met: bool | None

    @property
    def shown(self) -> str:
        return {True: "yes", False: "no", None: "not tested"}[self.met]


@dataclass(frozen=True)
class Readiness:
    #: "ready", "not ready" or "inconclusive" (the generator was the bottleneck, or a
    #: criterion was not tested and none was missed).
    verdict: str
    criteria: tuple[Criterion, ...]
    note: str

    @property
    def exit_code(self) -> int:
        return {"ready": 0, "not ready": 1}.get(self.verdict, 3)


def judge(
    figures: Figures,
    bar: Thresholds,
    generator: Generator,
    *,
    offered_per_second: float,
    problems: Sequence[str] = (),
    stopped: Sequence[StoppedNode] = (),
) -> Readiness:
    """``offered_per_second``: the deliveries per second the scenario asks of the server; if
    that is below the throughput bar, the run cannot tell whether the server reaches it.
    ``problems``: what went wrong on the harness's side (a restart command that failed): then
    nothing missed can be laid at the server's door, and the verdict is inconclusive.
    ``stopped``: each node a scenario stopped, which must have gone down (a node that never
    exits holds up a deploy) and whose every tab must have been told 4200 and have come back
    through another node (no tab on it: not tested)."""
    connect_p99 = percentile(figures.connect_ms, 99)
    rate = figures.delivered_per_second
    throughput: bool | None = rate >= bar.delivered_per_second
    if offered_per_second < bar.delivered_per_second and not throughput:
        throughput = None
    criteria: tuple[Criterion, ...] = (
        Criterion(
            "connect time p99",
            "no connection" if connect_p99 is None else f"{connect_p99:.0f} ms",
            f"< {bar.connect_p99_ms:g} ms",
            connect_p99 is not None and connect_p99 < bar.connect_p99_ms,
        ),
        Criterion(
            "messages delivered per second",
            f"{rate:,.0f}/s",
            f">= {bar.delivered_per_second:,.0f}/s"
            + ("" if throughput is not None else f" (offered only {offered_per_second:,.0f}/s)"),
            throughput,
        ),
        Criterion(
            "users recovered after the faults",
            f"{figures.recovered_users}/{figures.users}",
            f">= {bar.recovered_share:.0%}",
            figures.recovered_share >= bar.recovered_share,
        ),
        Criterion(
            "lost for connected subscribers",
            f"{figures.lost} of {figures.owed}",
            f"<= {bar.lost}",
            figures.lost <= bar.lost,
        ),
        Criterion("delivered twice", str(figures.duplicates), "0", figures.duplicates == 0),
        Criterion("out of order", str(figures.out_of_order), "0", figures.out_of_order == 0),
    )
    criteria += tuple(c for node in stopped for c in _stopped_node_criteria(node))
    failed = [c.name for c in criteria if c.met is False]
    untested = [c.name for c in criteria if c.met is None]
    if problems:
        verdict = "inconclusive"
        note = "; ".join(problems) + (f" ({', '.join(failed)} missed)" if failed else "")
    elif not failed and not untested:
        verdict, note = "ready", "every criterion met"
    elif not failed:
        verdict, note = "inconclusive", f"not tested: {', '.join(untested)}"
    elif generator.saturated:
        verdict = "inconclusive"
        note = f"{', '.join(failed)} missed, but the load generator was saturated"
    else:
        verdict, note = "not ready", f"missed: {', '.join(failed)}"
    return Readiness(verdict, criteria, note)


def _stopped_node_criteria(node: StoppedNode) -> tuple[Criterion, Criterion, Criterion]:
    tested = node.tabs > 0
    down = node.down_after
    return (
        Criterion(
            f"node {node.node} down after the stop",
            "not by the end of the run" if down is None else f"in {down:.1f} s",
            "by the end of the run",
            down is not None,
        ),
        Criterion(
            f"node {node.node}'s tabs closed with 4200",
            f"{node.closed_4200}/{node.tabs}",
            "all",
            node.every_tab_closed if tested else None,
        ),
        Criterion(
            f"node {node.node}'s tabs back through another node",
            f"{node.came_back}/{node.tabs}",
            "all",
            node.every_tab_back if tested else None,
        ),
    )
