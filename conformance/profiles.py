"""Hypothesis settings for the two run profiles.

``ci`` is for gates: a fixed seed and a small, bounded number of examples, so that two runs
against the same server do the same thing. ``thorough`` explores: many more examples, and a fresh
seed each run unless one is given (it is printed, so any run can be replayed).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hypothesis import HealthCheck, Phase, settings

from .errors import UsageError

__all__ = ["PROFILES", "Profile", "choose_seed", "hypothesis_settings", "profile_examples"]


@dataclass(frozen=True)
class Profile:
    name: str
    max_examples: int
    fixed_seed: bool


PROFILES = {
    "ci": Profile("ci", max_examples=12, fixed_seed=True),
    "thorough": Profile("thorough", max_examples=200, fixed_seed=False),
}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})") from None


def choose_seed(profile_name: str, seed: int | None) -> int:
    if seed is not None:
        return seed
    return 0 if profile(profile_name).fixed_seed else secrets.randbelow(2**32)


class _ExampleSettings(Protocol):
    @property
    def profile(self) -> str: ...

    @property
    def max_examples(self) -> int | None: ...


def profile_examples(settings: _ExampleSettings, params: Mapping[str, Any] | None) -> int:
    """How many examples a property check runs: ``--max-examples``, else the spec's own
    ``examples``, else the profile's."""
    if settings.max_examples is not None:
        return settings.max_examples
    examples = (params or {}).get("examples")
    if isinstance(examples, int) and examples > 0:
        return examples
    return profile(settings.profile).max_examples


def hypothesis_settings(profile_name: str, max_examples: int | None = None) -> settings:
    chosen = profile(profile_name)
    return settings(
        max_examples=max_examples or chosen.max_examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        report_multiple_bugs=False,
    )
