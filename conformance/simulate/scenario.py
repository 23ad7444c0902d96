"""Simulation scenarios: what virtual users do, what goes wrong meanwhile, and what a
production-ready server must achieve, read from the ``load:`` section of a scenario file in
``fixtures/scenarios/``.

A scenario file is shared with the delivery checks (``channels`` and ``alerts`` mean the same
thing to both); only ``load:`` is the simulation's own. Everything is checked here, as a whole,
so a mistake ends as one line naming the file and the field, before a socket is opened.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..delivery.scenario import read_alerts, read_channels, scenarios_dir
from ..errors import UsageError
from ..proxy.faults import Fault, ProxyScheduleError, Resume, Stall, fault_from_params
from ..spec import load_yaml

__all__ = [
    "ClientBehaviour",
    "Incident",
    "SimScenario",
    "Thresholds",
    "find_scenario",
    "load_sim_scenario",
    "sim_scenario_from_mapping",
]

_LOAD_KEYS = {
    "users", "tabs", "ramp_seconds", "duration_seconds", "settle_seconds",
    "publish_per_second", "delivery_grace_seconds", "client", "network", "incidents",
    "thresholds",
}  # fmt: skip
_CLIENT_KEYS = {"activity_timeout", "pong_timeout", "retry_jitter_seconds"}
_NETWORK_KEYS = {"latency_ms", "jitter_ms", "bytes_per_second"}
_THRESHOLD_KEYS = {"connect_p99_ms", "delivered_per_second", "recovered_share", "lost"}
_INCIDENT_KEYS = {"at", "share", "fault", "for", "restart", "stop_node"}


@dataclass(frozen=True)
class ClientBehaviour:
    """How a virtual tab behaves, modelled on pusher-js; an app may shorten its timers.

    pusher-js pings after ``min(activity_timeout, server's activity_timeout)`` s without an
    inbound message and gives the link up when no pong comes within ``pong_timeout``; its
    retries have no jitter (every client returns at the same instant), which is the default.
    """

    activity_timeout: float = 120.0
    pong_timeout: float = 30.0
    retry_jitter_seconds: float = 0.0


@dataclass(frozen=True)
class Thresholds:
    """The production-readiness bar; the defaults are the production guide's success
    criteria (connect p99 under 1 s, at least 1,000 messages/s, everyone back, nothing lost)."""

    connect_p99_ms: float = 1000.0
    delivered_per_second: float = 1000.0
    recovered_share: float = 1.0
    lost: int = 0


@dataclass(frozen=True)
class Incident:
    """Something that happens ``at`` seconds into the measured phase: a server restart, the
    stop of one node of a cluster (SIGTERM, not restarted: its tabs must move to the others),
    or a proxy fault on a seeded ``share`` of the tabs (lifted after ``lasts`` s for a stall)."""

    at: float
    restart: bool = False
    #: The node (counted from 0, in the target's ``nodes:``) that is stopped.
    stop_node: int | None = None
    fault: Fault | None = None
    share: float = 0.0
    lasts: float | None = None

    def lift(self) -> Fault | None:
        """What ends the incident: a ``Resume`` after a stall with ``for``, else nothing."""
        return Resume() if isinstance(self.fault, Stall) and self.lasts is not None else None

    def describe(self) -> str:
        if self.restart:
            return f"t+{self.at:g}s restart the server"
        if self.stop_node is not None:
            return f"t+{self.at:g}s stop node {self.stop_node}"
        assert self.fault is not None
        lasting = f" for {self.lasts:g}s" if self.lasts is not None else ""
        return f"t+{self.at:g}s {self.fault.name}{lasting} on {self.share:.0%} of tabs"


@dataclass(frozen=True)
class SimScenario:
    name: str
    title: str
    description: str
    #: Channel slot -> channel name (a run appends ``.<run id>``).
    channels: Mapping[str, str]
    #: (event name, channel slot), published in this order, cycling.
    alerts: tuple[tuple[str, str], ...]
    users: int = 100
    tabs: int = 2
    ramp_seconds: float = 10.0
    duration_seconds: float = 30.0
    settle_seconds: float = 3.0
    publish_per_second: float = 1.0
    #: An event counts as owed to a tab only if its connection was healthy this long after the
    #: publish was acknowledged: what was in flight when a link died is not the server's loss.
    delivery_grace_seconds: float = 1.0
    client: ClientBehaviour = field(default_factory=ClientBehaviour)
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    bytes_per_second: int = 0
    incidents: tuple[Incident, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def offered_per_second(self) -> float:
        """Deliveries per second the scenario asks for: every tab subscribes every channel,
        so each published event goes to every tab."""
        return self.publish_per_second * self.users * self.tabs

    @property
    def restarts(self) -> bool:
        return any(i.restart for i in self.incidents)

    @property
    def stopped_nodes(self) -> tuple[int, ...]:
        """The nodes an incident stops, in the order they are stopped."""
        timed = sorted((i.at, i.stop_node) for i in self.incidents if i.stop_node is not None)
        return tuple(node for _, node in timed)

    def resized(self, users: int | None, tabs: int | None, duration: float | None) -> SimScenario:
        """The same scenario with the command line's sizes, checked like the file's."""
        changes: dict[str, Any] = {}
        if users is not None:
            changes["users"] = _count(users, "--users", 1, 100_000)
        if tabs is not None:
            changes["tabs"] = _count(tabs, "--tabs", 1, 20)
        if duration is not None:
            changes["duration_seconds"] = _seconds(duration, "--duration", low=1)
        if not changes:
            return self
        scenario = dataclasses.replace(self, **changes)
        _incidents_fit(scenario, "the command line")
        return scenario


def find_scenario(name_or_path: str) -> Path:
    """A bundled scenario by name (``restart-under-load``) or a file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise UsageError(f"no scenario file at {name_or_path}")
        return path
    bundled = scenarios_dir() / f"{name_or_path}.yaml"
    if bundled.is_file():
        return bundled
    known = sorted(p.stem for p in scenarios_dir().glob("*.yaml"))
    raise UsageError(f"unknown scenario {name_or_path!r} (bundled: {', '.join(known)})")


def load_sim_scenario(name_or_path: str) -> SimScenario:
    path = find_scenario(name_or_path)
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except Exception as exc:  # a YAML error of any kind is the file's fault
        raise UsageError(f"{path.name}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return sim_scenario_from_mapping(raw, source=path.name)


def sim_scenario_from_mapping(raw: object, *, source: str) -> SimScenario:
    if not isinstance(raw, Mapping):
        raise UsageError(f"{source}: a scenario is a mapping")
    channels = read_channels(raw, source)
    for slot, channel in channels.items():
        if channel.startswith("private-encrypted-"):
            raise UsageError(
                f"{source}: channel {slot!r}: the tabs cannot read an encrypted channel's"
                " sequence numbers, so a simulation uses public and private channels"
            )
        if channel.startswith("presence-"):
            raise UsageError(
                f"{source}: channel {slot!r}: presence channels hold at most 100 members,"
                " so a simulation uses public and private channels"
            )
    alerts = read_alerts(raw, channels, source)
    load = raw.get("load")
    if not isinstance(load, Mapping):
        raise UsageError(f"{source}: no 'load' section: this scenario is not for simulate")
    where = f"{source}: load"
    _known(load, _LOAD_KEYS, where)
    client = _mapping(load, "client", where)
    _known(client, _CLIENT_KEYS, f"{where}.client")
    network = _mapping(load, "network", where)
    _known(network, _NETWORK_KEYS, f"{where}.network")
    limits = _mapping(load, "thresholds", where)
    _known(limits, _THRESHOLD_KEYS, f"{where}.thresholds")
    defaults = ClientBehaviour()
    bar = Thresholds()
    scenario = SimScenario(
        name=str(raw.get("scenario") or Path(source).stem),
        title=str(raw.get("title", raw.get("scenario", source))),
        description=str(raw.get("description", "")),
        channels=channels,
        alerts=tuple(alerts),
        users=_count(load.get("users", 100), f"{where}.users", 1, 100_000),
        tabs=_count(load.get("tabs", 2), f"{where}.tabs", 1, 20),
        ramp_seconds=_seconds(load.get("ramp_seconds", 10), f"{where}.ramp_seconds"),
        duration_seconds=_seconds(
            load.get("duration_seconds", 30), f"{where}.duration_seconds", low=1
        ),
        settle_seconds=_seconds(load.get("settle_seconds", 3), f"{where}.settle_seconds"),
        publish_per_second=_seconds(
            load.get("publish_per_second", 1), f"{where}.publish_per_second", low=0.01
        ),
        delivery_grace_seconds=_seconds(
            load.get("delivery_grace_seconds", 1), f"{where}.delivery_grace_seconds"
        ),
        client=ClientBehaviour(
            activity_timeout=_seconds(
                client.get("activity_timeout", defaults.activity_timeout),
                f"{where}.client.activity_timeout",
                low=0.5,
            ),
            pong_timeout=_seconds(
                client.get("pong_timeout", defaults.pong_timeout),
                f"{where}.client.pong_timeout",
                low=0.5,
            ),
            retry_jitter_seconds=_seconds(
                client.get("retry_jitter_seconds", 0), f"{where}.client.retry_jitter_seconds"
            ),
        ),
        latency_ms=_seconds(network.get("latency_ms", 0), f"{where}.network.latency_ms"),
        jitter_ms=_seconds(network.get("jitter_ms", 0), f"{where}.network.jitter_ms"),
        bytes_per_second=_count(
            network.get("bytes_per_second", 0), f"{where}.network.bytes_per_second", 0, 10**12
        ),
        incidents=tuple(
            _incident(item, f"{where}.incidents[{n}]")
            for n, item in enumerate(_list(load, "incidents", where))
        ),
        thresholds=Thresholds(
            connect_p99_ms=_seconds(
                limits.get("connect_p99_ms", bar.connect_p99_ms),
                f"{where}.thresholds.connect_p99_ms",
            ),
            delivered_per_second=_seconds(
                limits.get("delivered_per_second", bar.delivered_per_second),
                f"{where}.thresholds.delivered_per_second",
            ),
            recovered_share=_share(
                limits.get("recovered_share", bar.recovered_share),
                f"{where}.thresholds.recovered_share",
            ),
            lost=_count(limits.get("lost", bar.lost), f"{where}.thresholds.lost", 0, 10**12),
        ),
    )
    _incidents_fit(scenario, source)
    return scenario


def _incident(raw: object, where: str) -> Incident:
    if not isinstance(raw, Mapping):
        raise UsageError(
            f"{where}: an incident is a mapping with at and restart, stop_node or fault"
        )
    at = _seconds(raw.get("at"), f"{where}.at")
    if "stop_node" in raw:
        extra = sorted(str(k) for k in set(raw) - {"at", "stop_node"})
        if extra:
            raise UsageError(f"{where}: a stop_node takes only 'at' (not {', '.join(extra)})")
        node = _count(raw["stop_node"], f"{where}.stop_node", 0, 99)
        return Incident(at=at, stop_node=node)
    if raw.get("restart") is True:
        extra = sorted(str(k) for k in set(raw) - {"at", "restart"})
        if extra:
            raise UsageError(f"{where}: a restart takes only 'at' (not {', '.join(extra)})")
        return Incident(at=at, restart=True)
    if "restart" in raw:
        raise UsageError(f"{where}.restart must be true (or left out), got {raw['restart']!r}")
    name = raw.get("fault")
    if not isinstance(name, str):
        raise UsageError(
            f"{where}: give 'restart: true', 'stop_node: N' or a proxy 'fault' (docs/proxy.md)"
        )
    params = {str(k): v for k, v in raw.items() if k not in _INCIDENT_KEYS}
    try:
        fault = fault_from_params(name, params)
    except ProxyScheduleError as exc:
        raise UsageError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise UsageError(f"{where}: {name}: {exc}") from None
    lasts = None
    if "for" in raw:
        if not isinstance(fault, Stall):
            raise UsageError(f"{where}: 'for' applies to a stall only (a {name} cannot be lifted)")
        lasts = _seconds(raw["for"], f"{where}.for", low=0.1)
    return Incident(
        at=at, fault=fault, share=_share(raw.get("share", 0), f"{where}.share"), lasts=lasts
    )


def _incidents_fit(scenario: SimScenario, source: str) -> None:
    for incident in scenario.incidents:
        if incident.at >= scenario.duration_seconds:
            raise UsageError(
                f"{source}: incident '{incident.describe()}' comes at or after the end of the"
                f" measured phase ({scenario.duration_seconds:g}s)"
            )
        if incident.fault is not None and incident.share <= 0:
            raise UsageError(f"{source}: incident '{incident.describe()}' needs a share above 0")


def _known(raw: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in set(raw) - known)
    if unknown:
        raise UsageError(
            f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )


def _mapping(raw: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}.{key} must be a mapping, got {value!r}")
    return value


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise UsageError(f"{where}.{key} must be a list, got {value!r}")
    return value


def _count(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{where} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _seconds(value: object, where: str, *, low: float = 0.0) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not low <= value < math.inf
    ):
        raise UsageError(f"{where} must be a number of at least {low:g}, got {value!r}")
    return float(value)


def _share(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise UsageError(f"{where} must be a fraction from 0 to 1, got {value!r}")
    return float(value)
