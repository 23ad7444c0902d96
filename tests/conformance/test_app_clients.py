"""A check's view of the target's apps: which credentials a step's ``app:`` and a
connection's app resolve to."""

from __future__ import annotations

import pytest

from conformance.app_clients import CheckApps
from conformance.errors import PreconditionFailed, UsageError
from conformance.httpclient import ApiClient
from conformance.target import Target
from conformance.target_apps import OtherApp
from conformance.transcript import Transcript

MAIN = Target("t", "ws://127.0.0.1:1", "http://127.0.0.1:1", "1", "main-key", "main-secret")
WITH_APPS = Target(
    "t",
    "ws://127.0.0.1:1",
    "http://127.0.0.1:1",
    "1",
    "main-key",
    "main-secret",
    other_apps={
        "second_app": OtherApp(key="k2", app_id="2", secret="s2"),
        "disabled_app": OtherApp(key="off"),
    },
)


def _apps(target: Target) -> CheckApps:
    transcript = Transcript("X-01/c")
    return CheckApps(target, ApiClient(target, transcript, 1.0), transcript)


def test_an_undeclared_app_is_an_unmet_precondition_and_an_unknown_one_a_usage_error() -> None:
    apps = _apps(MAIN)
    with pytest.raises(PreconditionFailed, match="the target declares no second_app"):
        apps.other("second")
    with pytest.raises(UsageError, match="unknown app 'third'"):
        apps.other("third")


def test_connections_sign_as_the_app_they_were_opened_to() -> None:
    apps = _apps(WITH_APPS)
    assert apps.opened("a", None) is None
    assert apps.opened("b", "second") == "k2"
    assert apps.of_connection("a") == WITH_APPS
    second = apps.of_connection("b")
    assert (second.app_id, second.key, second.secret) == ("2", "k2", "s2")
    assert second.ws_url == WITH_APPS.ws_url
    # Reopened to the main app, the name signs as the main app again.
    assert apps.opened("b", None) is None
    assert apps.of_connection("b") == WITH_APPS


def test_an_app_declared_with_a_key_alone_keeps_the_main_apps_id_and_secret() -> None:
    disabled = _apps(WITH_APPS).target_for("disabled")
    assert (disabled.key, disabled.app_id, disabled.secret) == ("off", "1", "main-secret")


def test_each_app_has_one_api_client_and_the_main_app_the_checks_own() -> None:
    transcript = Transcript("X-01/c")
    main_api = ApiClient(WITH_APPS, transcript, 1.0)
    apps = CheckApps(WITH_APPS, main_api, transcript)
    assert apps.api(None, 1.0) is main_api
    second = apps.api("second", 1.0)
    assert second is apps.api("second", 1.0)
    assert (second.target.app_id, second.target.secret) == ("2", "s2")
