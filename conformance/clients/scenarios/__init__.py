"""The client checks, by topic: close codes, heartbeats, channels (auth, resubscription,
presence, client events), and behaviour the docs leave open (reported, not graded)."""

from __future__ import annotations

from .registry import SCENARIOS, Scenario, scenario_names

__all__ = ["SCENARIOS", "Scenario", "scenario_names"]
