"""The client scenario registry: the names ``specs/client.yaml`` checks refer to.

A scenario is an async function of a ``Kit`` and the check's ``params``; it scripts the test
server and the driver and judges what the timeline shows. It is the client side's counterpart of
the server property registry (``conformance.properties``), kept apart because its checks run
against a different subject and need different things (a driver, a server of the suite's own).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import UsageError
from ..kit import Kit

__all__ = ["SCENARIOS", "Scenario", "scenario", "scenario_names"]

ScenarioFn = Callable[[Kit, Mapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    #: The params a check may give (any other is a spec error at run time).
    params: frozenset[str]
    #: Features from the driver's hello this scenario always needs.
    needs: frozenset[str]
    #: Seconds the scenario may take at most, driver start and stop aside.
    budget_s: float
    run: ScenarioFn

    def check_params(self, params: Mapping[str, Any], where: str) -> None:
        unknown = sorted(set(params) - self.params)
        if unknown:
            raise UsageError(
                f"{where}: scenario {self.name} takes no param(s) {', '.join(unknown)}"
                f" (known: {', '.join(sorted(self.params)) or 'none'})"
            )


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    name: str, *params: str, needs: tuple[str, ...] = (), budget_s: float = 15.0
) -> Callable[[ScenarioFn], ScenarioFn]:
    def register(fn: ScenarioFn) -> ScenarioFn:
        if name in SCENARIOS:
            raise RuntimeError(f"client scenario {name} registered twice")
        SCENARIOS[name] = Scenario(name, frozenset(params), frozenset(needs), budget_s, fn)
        return fn

    return register


def scenario_names() -> frozenset[str]:
    """Every registered name (importing ``conformance.clients.scenarios`` registers them)."""
    return frozenset(SCENARIOS)
