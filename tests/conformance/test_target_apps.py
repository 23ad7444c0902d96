"""The other apps a target declares (second_app, disabled_app, quota_app): parsing, the wire,
what reports show, the bundled server's generated apps, and the skip of a check that needs one
the target does not declare."""

from __future__ import annotations

import pytest

from conformance.errors import UsageError
from conformance.items import undeclared_need
from conformance.spec import Check, Requirement
from conformance.target import Target, target_from_mapping
from conformance.target_apps import TARGET_APP_FIELDS, OtherApp, bundled_apps

GOOD = {
    "ws_url": "ws://127.0.0.1:6001",
    "http_url": "http://127.0.0.1:6001",
    "app_id": 123,
    "key": "k",
    "secret": "s",
    "capabilities": ["client_events"],
}


OTHER_APPS = {
    "second_app": {"app_id": 124, "key": "k2", "secret": "s2"},
    "disabled_app": {"key": "k3"},
    "quota_app": {"key": "k4", "max_connections": 3},
}


def test_other_apps_are_declared_travel_on_the_wire_and_never_show_their_secrets() -> None:
    target = target_from_mapping({**GOOD, **OTHER_APPS})
    assert target.other_apps["second_app"] == OtherApp(key="k2", app_id="124", secret="s2")
    assert target.other_apps["quota_app"].max_connections == 3
    assert all(target.declares(name) for name in TARGET_APP_FIELDS)
    assert target.declares("client_events")
    assert not target.declares("webhooks")
    assert Target.from_wire(target.to_wire()) == target
    assert "s2" not in str(target.public())
    assert target.public()["other_apps"]["second_app"] == {
        "key": "k2",
        "app_id": "124",
        "max_connections": None,
    }
    assert not target_from_mapping(GOOD).declares("second_app")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"second_app": {"app_id": "1", "key": "k2"}}, "second_app must be a mapping with app_id"),
        ({"second_app": {**OTHER_APPS["second_app"], "secret": ""}}, "second_app.secret must be"),
        ({"disabled_app": "k3"}, "disabled_app must be a mapping with key"),
        ({"quota_app": {"key": "k4", "max_connections": 0}}, "from 1 to 50"),
        ({"quota_app": {"key": "k4", "max_connections": "3"}}, "from 1 to 50"),
        ({"disabled_app": {"key": "k"}}, "must each have their own key"),
    ],
)
def test_bad_other_apps(change: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        target_from_mapping({**GOOD, **change})


def test_a_check_needing_an_undeclared_app_or_capability_is_named_for_its_skip() -> None:
    requirement = Requirement(
        id="DELIV-07",
        area="delivery",
        level="MUST",
        title="t",
        statement="s",
        source="x",
        status="active",
        checks=(),
        capability="second_app",
    )
    check = Check("DELIV-07", "c", "t", "exchange", {}, capabilities=("client_events",))
    bare = target_from_mapping({**GOOD, "capabilities": []})
    assert undeclared_need(bare, requirement, check) == "target field 'second_app'"
    with_app = target_from_mapping({**GOOD, "capabilities": [], **OTHER_APPS})
    assert undeclared_need(with_app, requirement, check) == "capability 'client_events'"
    assert undeclared_need(target_from_mapping({**GOOD, **OTHER_APPS}), requirement, check) is None


def test_the_bundled_apps_are_fresh_distinct_and_declared_as_the_file_holds_them() -> None:
    content, declared = bundled_apps(3)
    main, second, disabled, quota = content["apps"]
    assert len({app["key"] for app in content["apps"]}) == 4
    assert len({app["id"] for app in content["apps"]}) == 4
    assert (disabled["enabled"], quota["max_connections"]) == (False, 3)
    assert declared["second_app"] == OtherApp(second["key"], second["id"], second["secret"])
    assert declared["disabled_app"] == OtherApp(disabled["key"])
    assert declared["quota_app"] == OtherApp(quota["key"], max_connections=3)
    assert bundled_apps(3)[0]["apps"][0]["key"] != main["key"]
