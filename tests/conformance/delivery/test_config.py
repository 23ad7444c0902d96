"""The model's knobs from specs/delivery.yaml: the bundled ones load for every profile, and each
mistake a spec author can make is a UsageError naming the key."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from conformance.delivery.config import RULES, Bounds, model_config
from conformance.errors import UsageError
from conformance.spec import default_specs_dir, load_yaml

RAW: dict[str, Any] = load_yaml((default_specs_dir() / "delivery.yaml").read_text())["models"][
    "delivery"
]
CLIENT_EVENTS = frozenset({"client_events"})


def raw() -> dict[str, Any]:
    return copy.deepcopy(RAW)


def test_the_ci_profile_loads() -> None:
    config = model_config(raw(), "ci", CLIENT_EVENTS)
    assert config.bounds == Bounds(
        users=3, connections=5, public=2, private=2, presence=2, burst=4, multi_channel=3, batch=4
    )
    assert (config.examples, config.steps, config.shrink_seconds) == (20, 40, 20.0)
    assert isinstance(config.shrink_seconds, float)
    assert set(config.weights) == set(RULES)
    assert config.weights["connect"] == 3
    assert config.weights["client_event"] == 2


def test_the_thorough_profile_overrides_the_bounds() -> None:
    config = model_config(raw(), "thorough", CLIENT_EVENTS)
    assert config.bounds == Bounds(
        users=4, connections=8, public=3, private=3, presence=3, burst=4, multi_channel=3, batch=4
    )
    assert (config.examples, config.steps, config.shrink_seconds) == (60, 80, 120.0)


def test_a_profile_may_override_one_channel_kind_only() -> None:
    spec = raw()
    spec["profiles"]["ci"]["bounds"] = {"channels": {"presence": 0}, "burst": 9}
    bounds = model_config(spec, "ci", CLIENT_EVENTS).bounds
    assert (bounds.public, bounds.private, bounds.presence, bounds.burst) == (2, 2, 0, 9)


def test_client_events_are_left_out_without_the_capability() -> None:
    config = model_config(raw(), "ci", frozenset())
    assert config.weights["client_event"] == 0
    assert config.weights["trigger"] == 3


def test_shrink_seconds_defaults_to_a_minute_and_takes_a_float() -> None:
    spec = raw()
    del spec["profiles"]["ci"]["shrink_seconds"]
    assert model_config(spec, "ci", CLIENT_EVENTS).shrink_seconds == 60.0
    spec["profiles"]["ci"]["shrink_seconds"] = 0.5
    assert model_config(spec, "ci", CLIENT_EVENTS).shrink_seconds == 0.5


def _set(spec: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = spec
    for key in parents:
        node = node.setdefault(key, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        ("rules.teleport", 1, "models.delivery.rules: unknown rule(s) teleport (known: connect,"),
        ("rules.trigger", 21, "models.delivery.rules.trigger must be a whole number from 0 to 20"),
        ("rules.trigger", -1, "rules.trigger must be a whole number from 0 to 20, not -1"),
        ("rules.connect", 0, "models.delivery.rules.connect must have a weight"),
        ("rules.connect", _DELETE, "models.delivery.rules.connect must have a weight"),
        ("rules", {}, "models.delivery.rules must map rule names to weights"),
        ("bounds.tabs", 2, "models.delivery.bounds: unknown bound(s) tabs (known: batch,"),
        ("bounds.channels.secret", 1, "models.delivery.bounds: unknown bound(s) secret"),
        ("bounds.channels", 3, "models.delivery.bounds.channels must map public/private"),
        ("bounds.users", 0, "models.delivery.bounds.users must be a whole number from 1 to 50"),
        ("bounds.users", True, "models.delivery.bounds.users must be a whole number"),
        ("bounds.connections", 101, "bounds.connections must be a whole number from 1 to 100"),
        ("bounds.channels.public", 21, "bounds.public must be a whole number from 0 to 20"),
        ("bounds.burst", 1, "models.delivery.bounds.burst must be a whole number from 2 to 50"),
        ("bounds.batch", 11, "models.delivery.bounds.batch must be a whole number from 2 to 10"),
        ("bounds.burst", _DELETE, "models.delivery.bounds is missing burst"),
        ("bounds", [], "models.delivery.bounds must be a mapping"),
        (
            "profiles.ci.bounds.connections",
            0,
            "models.delivery.profiles.ci.bounds.connections must be a whole number from 1",
        ),
        ("profiles.ci.bounds.tabs", 2, "models.delivery.profiles.ci.bounds: unknown bound(s)"),
        ("profiles.ci.seed", 3, "models.delivery.profiles.ci takes only bounds, examples,"),
        ("profiles.ci.examples", _DELETE, "profiles.ci.examples must be a whole number"),
        ("profiles.ci.steps", 0, "profiles.ci.steps must be a whole number from 1 to 10000"),
        ("profiles.ci.shrink_seconds", 0, "profiles.ci.shrink_seconds must be from 0 to 3600"),
        ("profiles.ci.shrink_seconds", -5, "profiles.ci.shrink_seconds must be from 0 to 3600"),
        ("profiles.ci.shrink_seconds", "60", "profiles.ci.shrink_seconds must be from 0 to 3600"),
        ("profiles.ci.shrink_seconds", True, "profiles.ci.shrink_seconds must be from 0 to 3600"),
        ("profiles.ci", None, "models.delivery.profiles.ci takes only"),
        ("profiles", {"thorough": {}}, "models.delivery.profiles has no entry for profile 'ci'"),
        ("teleport", 1, "models.delivery: unknown key(s) teleport"),
    ],
)
def test_mistakes_name_the_key(path: str, value: Any, fragment: str) -> None:
    spec = raw()
    _set(spec, path, value)
    with pytest.raises(UsageError) as raised:
        model_config(spec, "ci", CLIENT_EVENTS)
    assert fragment in str(raised.value)


def test_a_missing_profile_is_named() -> None:
    with pytest.raises(UsageError, match="profiles has no entry for profile 'nightly'"):
        model_config(raw(), "nightly", CLIENT_EVENTS)


@pytest.mark.parametrize("missing", [None, [], "delivery"])
def test_a_missing_model_is_named(missing: Any) -> None:
    with pytest.raises(UsageError, match=r"^models\.other is missing or not a mapping$"):
        model_config(missing, "ci", CLIENT_EVENTS, name="other")


def test_shrink_seconds_nan_is_refused() -> None:
    spec = raw()
    spec["profiles"]["ci"]["shrink_seconds"] = math.nan
    with pytest.raises(UsageError, match="shrink_seconds must be from 0 to 3600"):
        model_config(spec, "ci", CLIENT_EVENTS)


def test_bounds_without_any_channel_are_refused() -> None:
    spec = raw()
    spec["bounds"]["channels"] = {"public": 0, "private": 0, "presence": 0}
    with pytest.raises(UsageError, match="channels"):
        model_config(spec, "ci", CLIENT_EVENTS)


def test_bounds_name_the_slots_and_give_users_several_tabs() -> None:
    bounds = Bounds(
        users=2, connections=5, public=1, private=0, presence=2, burst=2, multi_channel=2, batch=2
    )
    assert bounds.channel_slots() == ["public0", "presence0", "presence1"]
    assert bounds.connection_slots() == ["c0", "c1", "c2", "c3", "c4"]
    assert bounds.user_of() == {"c0": "u0", "c1": "u1", "c2": "u0", "c3": "u1", "c4": "u0"}


def test_the_bundled_bounds_give_every_user_a_tab() -> None:
    for profile in ("ci", "thorough"):
        bounds = model_config(raw(), profile, CLIENT_EVENTS).bounds
        assert set(bounds.user_of().values()) == {f"u{i}" for i in range(bounds.users)}
        assert set(bounds.user_of()) == set(bounds.connection_slots())
