"""Hypothesis settings for the two run profiles.

``ci`` is for gates: a fixed seed and a small, bounded number of examples, so that two runs
against the same server do the same thing. ``thorough`` explores: many more examples, and a fresh
seed each run unless one is given (it is printed, so any run can be replayed).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.errors import HypothesisSideeffectWarning

from .errors import UsageError

__all__ = [
    "PROFILES",
    "Profile",
    "choose_seed",
    "hypothesis_settings",
    "prepare_hypothesis",
    "profile_examples",
    "shrinking_capped",
]


@dataclass(frozen=True)
class Profile:
    name: str
    max_examples: int
    fixed_seed: bool
    #: The most seconds a property may spend shrinking a counterexample it found. Shrinking
    #: explains a failure and finds nothing new; every attempt replays over the network.
    shrink_seconds: float


PROFILES = {
    "ci": Profile("ci", max_examples=12, fixed_seed=True, shrink_seconds=30.0),
    "thorough": Profile("thorough", max_examples=200, fixed_seed=False, shrink_seconds=240.0),
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


_SHRINK_LOCK = threading.Lock()
_SHRINK_CAPS: list[float] = []
_SHRINK_DEFAULT: list[float] = []


@contextlib.contextmanager
def shrinking_capped(seconds: float) -> Iterator[None]:
    """Bound hypothesis's shrinking to ``seconds`` while inside.

    Hypothesis reads one module constant for every test in the process, and checks run side
    by side each ask for their own bound: the lowest bound in force applies, and the original
    value comes back when the last one leaves."""
    from hypothesis.internal.conjecture import engine

    if not hasattr(engine, "MAX_SHRINKING_SECONDS"):  # a hypothesis without the knob
        yield
        return
    with _SHRINK_LOCK:
        if not _SHRINK_CAPS:
            _SHRINK_DEFAULT[:] = [float(engine.MAX_SHRINKING_SECONDS)]
        _SHRINK_CAPS.append(seconds)
        engine.MAX_SHRINKING_SECONDS = min(_SHRINK_CAPS)  # type: ignore[assignment]
    try:
        yield
    finally:
        with _SHRINK_LOCK:
            _SHRINK_CAPS.remove(seconds)
            bound = min(_SHRINK_CAPS) if _SHRINK_CAPS else _SHRINK_DEFAULT[0]
            engine.MAX_SHRINKING_SECONDS = bound  # type: ignore[assignment]


def _default_cache_dir() -> Path | None:
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return None  # the user chose where hypothesis keeps its files
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg) / "pusher-conformance"
    try:
        return Path.home() / ".cache" / "pusher-conformance"
    except RuntimeError:  # no home directory: hypothesis keeps its default
        return None


def prepare_hypothesis(cache_dir: str | None) -> None:
    """Make hypothesis's once-per-machine work happen once, before checks run side by side.

    On its first draw of text hypothesis builds a table of every Unicode character, and it reads
    the constants out of every local module's source (ours, in an editable install). Both are
    cached under its home directory, by default ``.hypothesis/`` in the working directory: a run
    from a fresh directory rebuilt them, and every check that started side by side before the
    first was done rebuilt them too (measured: 10 to 15 CPU-seconds a run, doubling the run's
    CPU). So the cache lives with the user's other caches, and one draw in this thread fills it
    before any check starts."""
    chosen = Path(cache_dir) if cache_dir else _default_cache_dir()
    if chosen is not None:
        set_hypothesis_home_dir(chosen)

    @settings(max_examples=1, database=None, phases=(Phase.generate,), deadline=None)
    @given(st.text(min_size=1))
    def draw_once(_: str) -> None:
        pass

    # Hypothesis warns that work done while pytest configures slows every test down; here that
    # work is the point (done once, up front), and the warning would only alarm a user.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HypothesisSideeffectWarning)
        draw_once()
