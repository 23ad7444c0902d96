"""The model's knobs, read from the spec: which rules run and how often, and how big a run is.

``specs/delivery.yaml`` names them under ``models: delivery:``; a profile (``ci``,
``thorough``) scales the bounds. Everything is validated here, so a typo in the YAML is a clear
error naming the key, not a surprise mid-run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

__all__ = ["RULES", "Bounds", "ModelConfig", "model_config"]

#: Every rule of the state machine, by its name in the YAML.
RULES = (
    "connect",
    "disconnect",
    "subscribe_public",
    "subscribe_private",
    "subscribe_presence",
    "subscribe_invalid_auth",
    "subscribe_racing",
    "unsubscribe",
    "unsubscribe_racing",
    "trigger",
    "trigger_multi",
    "trigger_burst",
    "trigger_excluding",
    "batch",
    "client_event",
    "query",
    "check",
)

_BOUND_LIMITS = {
    "users": (1, 50),
    "connections": (1, 100),
    "public": (0, 20),
    "private": (0, 20),
    "presence": (0, 20),
    "burst": (2, 50),
    "multi_channel": (2, 100),
    "batch": (2, 10),
}
_PROFILE_KEYS = {"examples", "steps", "shrink_seconds", "bounds"}


@dataclass(frozen=True)
class Bounds:
    users: int
    connections: int
    public: int
    private: int
    presence: int
    burst: int
    multi_channel: int
    batch: int

    def channel_slots(self) -> list[str]:
        return [
            f"{kind}{i}"
            for kind, count in (
                ("public", self.public),
                ("private", self.private),
                ("presence", self.presence),
            )
            for i in range(count)
        ]

    def connection_slots(self) -> list[str]:
        return [f"c{i}" for i in range(self.connections)]

    def user_of(self) -> dict[str, str]:
        """Connection slot ``ci`` belongs to user ``u(i mod users)``: users have several tabs."""
        return {f"c{i}": f"u{i % self.users}" for i in range(self.connections)}


@dataclass(frozen=True)
class ModelConfig:
    bounds: Bounds
    weights: Mapping[str, int]
    examples: int
    steps: int
    shrink_seconds: float


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{where} must be a whole number from {low} to {high}, not {value!r}")
    return value


def _bounds(raw: Any, where: str) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise UsageError(f"{where} must be a mapping")
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "channels":
            if not isinstance(value, Mapping):
                raise UsageError(f"{where}.channels must map public/private/presence to counts")
            for kind, count in value.items():
                flat[str(kind)] = count
        else:
            flat[str(key)] = value
    unknown = set(flat) - set(_BOUND_LIMITS)
    if unknown:
        raise UsageError(
            f"{where}: unknown bound(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(_BOUND_LIMITS))}, channels)"
        )
    return {k: _int(v, f"{where}.{k}", *_BOUND_LIMITS[k]) for k, v in flat.items()}


def model_config(
    raw: Any, profile: str, capabilities: frozenset[str], *, name: str = "delivery"
) -> ModelConfig:
    """The configuration of ``models: <name>`` for one profile and one target."""
    where = f"models.{name}"
    if not isinstance(raw, Mapping):
        raise UsageError(f"{where} is missing or not a mapping")
    unknown = set(raw) - {"bounds", "rules", "profiles"}
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    bounds = _bounds(raw.get("bounds", {}), f"{where}.bounds")
    profiles = raw.get("profiles", {})
    if not isinstance(profiles, Mapping) or profile not in profiles:
        raise UsageError(f"{where}.profiles has no entry for profile {profile!r}")
    chosen = profiles[profile]
    if not isinstance(chosen, Mapping) or set(chosen) - _PROFILE_KEYS:
        raise UsageError(
            f"{where}.profiles.{profile} takes only {', '.join(sorted(_PROFILE_KEYS))}"
        )
    bounds.update(_bounds(chosen.get("bounds", {}), f"{where}.profiles.{profile}.bounds"))
    missing = set(_BOUND_LIMITS) - set(bounds)
    if missing:
        raise UsageError(f"{where}.bounds is missing {', '.join(sorted(missing))}")
    if not bounds["public"] + bounds["private"] + bounds["presence"]:
        raise UsageError(f"{where}.bounds.channels must give the model at least one channel")
    rules = raw.get("rules")
    if not isinstance(rules, Mapping) or not rules:
        raise UsageError(f"{where}.rules must map rule names to weights")
    unknown = set(rules) - set(RULES)
    if unknown:
        raise UsageError(
            f"{where}.rules: unknown rule(s) {', '.join(sorted(map(str, unknown)))} "
            f"(known: {', '.join(RULES)})"
        )
    weights = {str(k): _int(v, f"{where}.rules.{k}", 0, 20) for k, v in rules.items()}
    if "client_events" not in capabilities:
        weights["client_event"] = 0
    if weights.get("connect", 0) == 0:
        raise UsageError(f"{where}.rules.connect must have a weight: nothing runs without it")
    shrink = chosen.get("shrink_seconds", 60)
    if (
        isinstance(shrink, bool)
        or not isinstance(shrink, int | float)
        or not 0 < shrink <= 3600  # also refuses NaN
    ):
        raise UsageError(f"{where}.profiles.{profile}.shrink_seconds must be from 0 to 3600")
    return ModelConfig(
        bounds=Bounds(**bounds),
        weights=weights,
        examples=_int(chosen.get("examples"), f"{where}.profiles.{profile}.examples", 1, 100_000),
        steps=_int(chosen.get("steps"), f"{where}.profiles.{profile}.steps", 1, 10_000),
        shrink_seconds=float(shrink),
    )
