"""Named scenarios: fixed workloads from ``fixtures/scenarios/``, judged by the delivery model
and reported as figures an auditor can read (per user: delivered/expected, duplicates, order).

A scenario is a plan, not an exploration: rounds in which one publisher broadcasts alerts
while some tabs leave or come back. Which tabs churn is drawn from the run's seed, so the
``ci`` profile plays the same scenario every time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..context import CheckContext
from ..errors import UsageError
from ..spec import load_yaml
from ..templates import nonce
from .driver import DeliveryDriver
from .machine import judge_and_raise
from .model import Judgement
from .operations import Check, Connect, Disconnect, Operation, Subscribe, Unsubscribe

__all__ = [
    "Scenario",
    "load_scenario",
    "read_alerts",
    "read_channels",
    "run_scenario",
    "scenarios_dir",
]


@dataclass(frozen=True)
class Alert:
    event: str
    channel: str


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    channels: Mapping[str, str]
    alerts: tuple[Alert, ...]
    users: tuple[tuple[str, int], ...]
    rounds: int
    alerts_per_round: int
    churn_per_round: int
    leave_by: tuple[str, ...]

    def tabs(self) -> dict[str, str]:
        """Connection slot -> user id: ``c0..`` in the order of the users and their tabs."""
        slots: dict[str, str] = {}
        for user, tabs in self.users:
            for _ in range(tabs):
                slots[f"c{len(slots)}"] = user
        return slots


def scenarios_dir() -> Path:
    """The bundled scenarios: ``conformance/scenarios`` installed, ``fixtures/scenarios`` in a
    checkout."""
    here = Path(__file__).resolve().parent.parent
    installed = here / "scenarios"
    return installed if installed.is_dir() else here.parent / "fixtures" / "scenarios"


def _count(raw: Mapping[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{where}: {key} must be a whole number from {low} to {high}")
    return value


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key)
    if not isinstance(value, list) or not value:
        raise UsageError(f"{where}: {key} must be a non-empty list")
    return value


def read_channels(raw: Mapping[str, Any], where: str) -> dict[str, str]:
    """A scenario's ``channels``: slot -> channel name (shared with simulations)."""
    channels = raw.get("channels")
    if not isinstance(channels, Mapping) or not channels:
        raise UsageError(f"{where}: channels must map slots to channel names")
    for slot, channel in channels.items():
        if not isinstance(channel, str) or not channel.strip():
            raise UsageError(f"{where}: channel {slot!r} has no name")
    return {str(k): str(v) for k, v in channels.items()}


def read_alerts(
    raw: Mapping[str, Any], channels: Mapping[str, str], where: str
) -> list[tuple[str, str]]:
    """A scenario's ``alerts``: (event name, channel slot), in order (shared with simulations)."""
    alerts = []
    for item in _list(raw, "alerts", where):
        event = item.get("event") if isinstance(item, Mapping) else None
        slot = item.get("channel") if isinstance(item, Mapping) else None
        if not isinstance(slot, Hashable):  # a list: ``in channels`` would raise TypeError
            slot = None
        if not isinstance(event, str) or not event or slot is None or str(slot) not in channels:
            raise UsageError(f"{where}: an alert needs an event and one of the channel slots")
        alerts.append((event, str(slot)))
    return alerts


def load_scenario(name: str, directory: Path | None = None) -> Scenario:
    directory = directory or scenarios_dir()
    path = directory / f"{name}.yaml"
    if not name or not path.is_file():
        known = sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []
        raise UsageError(f"unknown scenario {name!r} (known: {', '.join(known) or 'none'})")
    where = path.name
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except Exception as exc:  # a YAML error of any kind is the file's fault
        raise UsageError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, Mapping):
        raise UsageError(f"{where}: a scenario is a mapping")
    channels = read_channels(raw, where)
    alerts = [Alert(event, slot) for event, slot in read_alerts(raw, channels, where)]
    users = []
    for item in _list(raw, "users", where):
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            raise UsageError(f"{where}: a user needs an id and a number of tabs")
        users.append((item["id"], _count(item, "tabs", where, 1, 20)))
    leave_by = tuple(_list(raw, "leave_by", where) if "leave_by" in raw else ["unsubscribe"])
    if not set(leave_by) <= {"unsubscribe", "close"}:
        raise UsageError(f"{where}: leave_by takes unsubscribe and close")
    return Scenario(
        name=name,
        title=str(raw.get("title", name)),
        channels=channels,
        alerts=tuple(alerts),
        users=tuple(users),
        rounds=_count(raw, "rounds", where, 1, 1000),
        alerts_per_round=_count(raw, "alerts_per_round", where, 1, 1000),
        churn_per_round=_count(raw, "churn_per_round", where, 0, 100),
        leave_by=leave_by,
    )


class _Run:
    def __init__(self, ctx: CheckContext, scenario: Scenario) -> None:
        self.ctx = ctx
        self.scenario = scenario
        self.tabs = scenario.tabs()
        tag = nonce()[:10]
        self.driver = DeliveryDriver(
            ctx,
            self.tabs,
            list(scenario.channels),
            channel_names={slot: f"{name}.{tag}" for slot, name in scenario.channels.items()},
            users={u: u for u, _ in scenario.users},
            tag=tag,
        )
        self.random = random.Random(f"{ctx.settings.seed}:{scenario.name}")
        self.published = 0

    def _joined(self, conn: str) -> bool:
        return self.driver.model.channels_of(conn) == set(self.scenario.channels)

    async def _join(self, conn: str) -> None:
        if not self.driver.model.is_open(conn):
            await self.driver.apply(Connect(conn))
        for slot in self.scenario.channels:
            await self.driver.apply(Subscribe(conn, slot))

    async def _leave(self, conn: str, how: str) -> None:
        if how == "close":
            await self.driver.apply(Disconnect(conn))
            return
        for slot in self.scenario.channels:
            await self.driver.apply(Unsubscribe(conn, slot))

    async def _broadcast(self, count: int, churning: frozenset[str], since: int) -> None:
        for _ in range(count):
            alert = self.scenario.alerts[self.published % len(self.scenario.alerts)]
            self.published += 1
            published = self.driver.model.publish(
                [alert.channel],
                name=alert.event,
                optional_conns=churning,
                flux_since=since,
                label=f"alert {self.published}",
            )
            await self.driver.send_trigger(published, None)

    async def _churn(self, conns: list[str]) -> None:
        for conn in conns:
            if self._joined(conn):
                await self._leave(conn, self.random.choice(self.scenario.leave_by))
            else:
                await self._join(conn)

    async def play(self) -> Judgement:
        for conn in self.tabs:
            await self._join(conn)
        slots = list(self.tabs)
        for _ in range(self.scenario.rounds):
            churn = self.random.sample(slots, min(self.scenario.churn_per_round, len(slots)))
            since = self.driver.model.now
            await asyncio.gather(
                self._broadcast(self.scenario.alerts_per_round, frozenset(churn), since),
                self._churn(churn),
            )
        judgement = await self.driver.apply(Check())
        assert judgement is not None
        return judgement

    def figures(self, judgement: Judgement) -> dict[str, Any]:
        columns = [
            "user", "tabs", "delivered", "expected", "lost", "duplicates",
            "order violations", "leaks", "delivered while joining or leaving",
        ]  # fmt: skip
        rows = []
        totals = dict.fromkeys(
            ("delivered", "expected", "lost", "duplicates", "order_violations", "leaks"), 0
        )
        for user, tabs in self.scenario.users:
            mine = [t for t in judgement.tallies.values() if t.user == user]
            row = {
                "delivered": sum(t.delivered for t in mine),
                "expected": sum(t.expected for t in mine),
                "lost": sum(t.lost for t in mine),
                "duplicates": sum(t.duplicates for t in mine),
                "order_violations": sum(t.order_violations for t in mine),
                "leaks": sum(t.leaks for t in mine),
            }
            optional = (
                f"{sum(t.optional_delivered for t in mine)}/{sum(t.optional_offered for t in mine)}"
            )
            for key, value in row.items():
                totals[key] += value
            rows.append([user, tabs, *row.values(), optional])
        return {
            "title": f"{self.scenario.name} scenario: {self.scenario.title}",
            "summary": {"alerts_published": self.published, **totals},
            "table": {"columns": columns, "rows": rows},
        }


def run_scenario(ctx: CheckContext, name: str, aspects: set[str]) -> None:
    scenario = load_scenario(name)
    run = _Run(ctx, scenario)

    async def play() -> Judgement:
        try:
            return await run.play()
        finally:
            await run.driver.aclose()

    judgement = ctx.run(play())
    ctx.figures.update(run.figures(judgement))
    steps: list[Operation] = [*run.driver.log]
    if not isinstance(steps[-1], Check):
        steps.append(Check())
    judge_and_raise(ctx, judgement, aspects, steps)
