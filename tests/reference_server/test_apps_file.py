"""``--apps-file``: parsing, every refusal naming the file, the app and the field, and how
the apps' settings combine with the server-wide ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reference_server.apps_file import AppEntry, AppsFileError, load_apps_file, parse_apps
from reference_server.cli import main
from reference_server.config import ConfigError, ServerConfig, load_config

YAML = """\
apps:
  - id: 101
    key: first-key
    secret: first-secret
  - id: "102"
    key: second-key
    secret: second-secret
    enabled: false
    max_connections: 5
    client_events: true
    webhook_url: http://127.0.0.1:9000/hooks
    max_event_bytes: 20480
"""


def test_a_yaml_file_gives_every_app_with_its_settings(tmp_path: Path) -> None:
    path = tmp_path / "apps.yaml"
    path.write_text(YAML, encoding="utf-8")
    assert load_apps_file(str(path)) == (
        AppEntry("101", "first-key", "first-secret"),
        AppEntry(
            "102",
            "second-key",
            "second-secret",
            enabled=False,
            max_connections=5,
            client_events=True,
            webhook_url="http://127.0.0.1:9000/hooks",
            max_event_bytes=20480,
        ),
    )


def test_a_json_file_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "apps.json"
    path.write_text(json.dumps({"apps": [{"id": "1", "key": "k", "secret": "s"}]}))
    assert load_apps_file(str(path)) == (AppEntry("1", "k", "s"),)


def _app(**fields: object) -> dict[str, object]:
    return {"id": "7", "key": "k7", "secret": "s7", **fields}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"apps": [_app(colour="red")]}, "f.yaml: app 1 (id '7'): unknown field 'colour'"),
        ({"apps": [_app(enabled="yes")]}, "app 1 (id '7'): field 'enabled' must be true or false"),
        ({"apps": [_app(max_connections=-1)]}, "field 'max_connections' must be a whole number"),
        ({"apps": [_app(max_connections=True)]}, "field 'max_connections' must be a whole"),
        ({"apps": [_app(max_event_bytes=0)]}, "field 'max_event_bytes' must be a positive"),
        ({"apps": [_app(webhook_url="ftp://x")]}, "field 'webhook_url' must be an http://"),
        ({"apps": [_app(key="")]}, "field 'key' must be a non-empty string"),
        ({"apps": [{"id": "7", "key": "k"}]}, "app 1 (id '7'): missing field 'secret'"),
        ({"apps": [_app(), _app(key="other")]}, "app 2 (id '7'): field 'id' '7' is already used"),
        ({"apps": [_app(), _app(id="8")]}, "app 2 (id '8'): field 'key' 'k7' is already used"),
        ({"apps": ["not an app"]}, "f.yaml: app 1: must be a mapping of fields, got str"),
        ({"apps": []}, "f.yaml: apps must be a non-empty list"),
        ({"apps": [_app()], "more": 1}, "f.yaml: must be a mapping with one field, apps"),
        ([_app()], "f.yaml: must be a mapping with one field, apps"),
    ],
)
def test_each_mistake_is_one_line_naming_file_app_and_field(data: object, message: str) -> None:
    with pytest.raises(AppsFileError) as caught:
        parse_apps(data, "f.yaml")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_file_that_is_missing_or_not_yaml_is_named(tmp_path: Path) -> None:
    with pytest.raises(AppsFileError, match=r"nope\.yaml: cannot be read"):
        load_apps_file(str(tmp_path / "nope.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("apps: [", encoding="utf-8")
    with pytest.raises(AppsFileError, match=r"broken\.yaml: is not valid YAML or JSON"):
        load_apps_file(str(broken))


def test_the_flag_or_its_variable_loads_the_apps(tmp_path: Path) -> None:
    path = tmp_path / "apps.yaml"
    path.write_text(YAML, encoding="utf-8")
    by_flag = load_config(["--apps-file", str(path)], {})
    by_env = load_config([], {"PUSHER_REF_APPS_FILE": str(path)})
    assert by_flag == by_env
    assert [app.key for app in by_flag.apps] == ["first-key", "second-key"]


@pytest.mark.parametrize(
    ("argv", "environ", "named"),
    [
        (["--key", "k"], {}, "--key"),
        (["--app-id", "1"], {}, "--app-id"),
        ([], {"PUSHER_REF_APP_SECRET": "s"}, "PUSHER_REF_APP_SECRET"),
    ],
)
def test_one_app_credentials_beside_an_apps_file_are_refused(
    tmp_path: Path, argv: list[str], environ: dict[str, str], named: str
) -> None:
    path = tmp_path / "apps.yaml"
    path.write_text(YAML, encoding="utf-8")
    with pytest.raises(ConfigError, match=f"{named} cannot be used with it"):
        load_config(["--apps-file", str(path), *argv], environ)


def test_without_an_apps_file_the_one_app_is_the_flags_app() -> None:
    config = load_config(["--app-id", "9", "--key", "k", "--secret", "s"], {})
    assert config.apps == ()
    assert config.app_configs() == (config,)


def test_each_app_takes_the_server_wide_settings_it_does_not_set(tmp_path: Path) -> None:
    path = tmp_path / "apps.yaml"
    path.write_text(YAML, encoding="utf-8")
    config = load_config(
        ["--apps-file", str(path), "--max-event-bytes", "100", "--no-client-events"], {}
    )
    first, second = config.app_configs()
    assert (first.app_id, first.key, first.secret) == ("101", "first-key", "first-secret")
    assert (first.enabled, first.max_connections, first.max_event_bytes) == (True, None, 100)
    assert (first.client_events, first.webhook_url) == (False, None)
    assert (second.enabled, second.max_connections, second.max_event_bytes) == (False, 5, 20480)
    assert (second.client_events, second.webhook_url) == (True, "http://127.0.0.1:9000/hooks")
    assert first.apps == second.apps == ()
    assert first.port == second.port == ServerConfig().port


def test_a_bad_apps_file_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "apps.yaml"
    path.write_text("apps:\n  - {id: '1', key: k, secret: s, quota: 3}\n", encoding="utf-8")
    assert main(["--apps-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"--apps-file {path}: app 1 (id '1'): unknown field 'quota'" in err
