"""Named scenarios: the bundled admin-alerts plan loads as written, and a broken scenario file
is a UsageError naming the file and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.delivery.scenario import Alert, load_scenario, scenarios_dir
from conformance.errors import UsageError

GOOD: dict[str, Any] = {
    "title": "Small",
    "channels": {"news": "private-news", "room": "presence-room"},
    "alerts": [{"event": "news.posted", "channel": "news"}],
    "users": [{"id": "ann", "tabs": 2}, {"id": "bob", "tabs": 1}],
    "rounds": 2,
    "alerts_per_round": 3,
    "churn_per_round": 1,
}


def write(directory: Path, name: str, content: Any) -> Path:
    path = directory / f"{name}.yaml"
    text = content if isinstance(content, str) else yaml.safe_dump(content)
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, **changes: Any) -> Any:
    content = {**GOOD, **changes}
    for key, value in changes.items():
        if value is None:
            del content[key]
    write(tmp_path, "case", content)
    return load_scenario("case", tmp_path)


def test_the_bundled_scenarios_directory_holds_admin_alerts() -> None:
    assert (scenarios_dir() / "admin-alerts.yaml").is_file()


def test_admin_alerts_loads_as_written() -> None:
    scenario = load_scenario("admin-alerts")
    assert scenario.name == "admin-alerts"
    assert scenario.title == "Admin dashboard alerts"
    assert dict(scenario.channels) == {
        "notifications": "private-admin.notifications",
        "health": "private-admin.health-alerts",
        "security": "private-admin.security",
    }
    assert scenario.alerts == (
        Alert("admin.notification", "notifications"),
        Alert("health.alert", "health"),
        Alert("admin.notification", "security"),
        Alert("health.alert", "health"),
    )
    assert scenario.users == (
        ("admin-ana", 3),
        ("admin-ben", 2),
        ("admin-chi", 2),
        ("admin-dev", 1),
    )
    assert (scenario.rounds, scenario.alerts_per_round, scenario.churn_per_round) == (20, 8, 2)
    assert scenario.leave_by == ("unsubscribe", "close")


def test_tabs_number_the_connections_in_user_order() -> None:
    assert load_scenario("admin-alerts").tabs() == {
        "c0": "admin-ana",
        "c1": "admin-ana",
        "c2": "admin-ana",
        "c3": "admin-ben",
        "c4": "admin-ben",
        "c5": "admin-chi",
        "c6": "admin-chi",
        "c7": "admin-dev",
    }


def test_a_small_scenario_from_another_directory(tmp_path: Path) -> None:
    scenario = load(tmp_path)
    assert scenario.name == "case"
    assert scenario.title == "Small"
    assert scenario.tabs() == {"c0": "ann", "c1": "ann", "c2": "bob"}
    assert scenario.alerts == (Alert("news.posted", "news"),)
    assert scenario.leave_by == ("unsubscribe",)  # the default
    assert load(tmp_path, title=None).title == "case"
    assert load(tmp_path, leave_by=["close"]).leave_by == ("close",)


def test_an_unknown_scenario_lists_the_known_ones(tmp_path: Path) -> None:
    write(tmp_path, "beta", GOOD)
    write(tmp_path, "alpha", GOOD)
    with pytest.raises(UsageError) as raised:
        load_scenario("gamma", tmp_path)
    assert str(raised.value) == "unknown scenario 'gamma' (known: alpha, beta)"
    with pytest.raises(UsageError, match=r"unknown scenario '' \(known: alpha, beta\)"):
        load_scenario("", tmp_path)


def test_an_unknown_scenario_in_an_empty_or_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^unknown scenario 'x' \(known: none\)$"):
        load_scenario("x", tmp_path)
    with pytest.raises(UsageError, match=r"^unknown scenario 'x' \(known: none\)$"):
        load_scenario("x", tmp_path / "nowhere")


def test_an_unknown_bundled_scenario_names_admin_alerts() -> None:
    with pytest.raises(UsageError, match=r"unknown scenario 'admin' \(known: .*admin-alerts"):
        load_scenario("admin")


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"users": None}, "case.yaml: users must be a non-empty list"),
        ({"users": []}, "case.yaml: users must be a non-empty list"),
        ({"users": [{"tabs": 2}]}, "case.yaml: a user needs an id and a number of tabs"),
        ({"users": [{"id": 7, "tabs": 2}]}, "a user needs an id"),
        ({"users": ["ann"]}, "a user needs an id"),
        ({"users": [{"id": "ann"}]}, "case.yaml: tabs must be a whole number from 1 to 20"),
        ({"users": [{"id": "ann", "tabs": 21}]}, "tabs must be a whole number from 1 to 20"),
        ({"users": [{"id": "ann", "tabs": "two"}]}, "tabs must be a whole number"),
        ({"alerts": [{"event": "x", "channel": "weather"}]}, "an alert needs an event and one"),
        ({"alerts": [{"event": "x"}]}, "case.yaml: an alert needs an event and one"),
        ({"alerts": ["x"]}, "an alert needs an event and one of the channel slots"),
        ({"alerts": []}, "case.yaml: alerts must be a non-empty list"),
        ({"channels": None}, "case.yaml: channels must map slots to channel names"),
        ({"channels": ["private-news"]}, "channels must map slots to channel names"),
        ({"channels": {"news": 5}}, "case.yaml: channel 'news' has no name"),
        ({"leave_by": ["teleport"]}, "case.yaml: leave_by takes unsubscribe and close"),
        ({"leave_by": ["close", "vanish"]}, "leave_by takes unsubscribe and close"),
        ({"rounds": None}, "case.yaml: rounds must be a whole number from 1 to 1000"),
        ({"rounds": -1}, "rounds must be a whole number from 1 to 1000"),
        ({"alerts_per_round": True}, "alerts_per_round must be a whole number"),
        ({"churn_per_round": 101}, "churn_per_round must be a whole number from 0 to 100"),
    ],
)
def test_mistakes_are_usage_errors(tmp_path: Path, changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(UsageError) as raised:
        load(tmp_path, **changes)
    assert fragment in str(raised.value)


def test_a_file_that_is_not_a_mapping_or_not_yaml(tmp_path: Path) -> None:
    write(tmp_path, "listed", "- 1\n- 2\n")
    with pytest.raises(UsageError, match=r"^listed\.yaml: a scenario is a mapping$"):
        load_scenario("listed", tmp_path)
    write(tmp_path, "broken", "channels: [unclosed\n")
    with pytest.raises(UsageError, match=r"^broken\.yaml: not valid YAML: "):
        load_scenario("broken", tmp_path)


def test_an_alert_without_an_event_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="an alert needs an event"):
        load(tmp_path, alerts=[{"channel": "news"}])


def test_an_empty_channel_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="channel 'news' has no name"):
        load(tmp_path, channels={"news": ""})


@pytest.mark.parametrize("changes", [{"leave_by": 5}, {"users": 3}, {"alerts": 1}])
def test_scalars_where_lists_belong_are_usage_errors(
    tmp_path: Path, changes: dict[str, Any]
) -> None:
    with pytest.raises(UsageError):
        load(tmp_path, **changes)
