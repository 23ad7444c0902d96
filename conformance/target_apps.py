"""The other apps of a target's server: what a target file may declare besides its main app.

Some rules are about more than one app (isolation between apps, DELIV-07) or about an app in
a state the suite cannot bring about itself (disabled, or with a small connection quota,
PROTO-CONN-11). A target file declares such apps under ``second_app``, ``disabled_app`` and
``quota_app``; a requirement or check names the field where it would name a capability, and
is skipped (OPTIONAL_ABSENT) unless the target declares it.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UsageError

__all__ = ["TARGET_APP_FIELDS", "OtherApp", "bundled_apps", "parse_other_apps", "text_field"]

#: The target file's fields that declare another app of the same server.
TARGET_APP_FIELDS = ("second_app", "disabled_app", "quota_app")

#: Each app field's own fields, all required: a disabled app needs nothing but a key (nothing
#: is signed for it), a quota app its key and its quota.
_FIELD_KEYS = {
    "second_app": ("app_id", "key", "secret"),
    "disabled_app": ("key",),
    "quota_app": ("key", "max_connections"),
}

#: The largest quota a target may declare: the quota check opens that many connections.
MAX_QUOTA = 50


@dataclass(frozen=True)
class OtherApp:
    """An app of the target's server other than its main one; only what its field declares
    is set."""

    key: str
    app_id: str | None = None
    secret: str | None = None
    max_connections: int | None = None

    def wire(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def public(self) -> dict[str, Any]:
        """What a report may show: everything but the secret."""
        return {name: value for name, value in self.wire().items() if name != "secret"}


def text_field(value: object, what: str) -> str:
    """A target file's text field (an integer is taken as its digits, as YAML reads an app id).

    Raises:
        UsageError: naming the field and the value.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _other_app(name: str, value: object) -> OtherApp:
    keys = _FIELD_KEYS[name]
    if not isinstance(value, Mapping) or set(value) != set(keys):
        raise UsageError(f"{name} must be a mapping with {', '.join(keys)}, got {value!r}")
    fields: dict[str, Any] = {}
    for key in keys:
        item = value[key]
        if key != "max_connections":
            fields[key] = text_field(item, f"{name}.{key}")
        elif isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= MAX_QUOTA:
            raise UsageError(
                f"{name}.max_connections must be an integer from 1 to {MAX_QUOTA} (the check "
                f"opens that many connections), got {item!r}"
            )
        else:
            fields[key] = item
    return OtherApp(**fields)


def parse_other_apps(data: Mapping[str, Any]) -> dict[str, OtherApp]:
    """The app fields of a target file's mapping, checked; every app has a key of its own.

    Raises:
        UsageError: naming the field and what is wrong with it.
    """
    apps = {name: _other_app(name, data[name]) for name in TARGET_APP_FIELDS if name in data}
    keys = [data.get("key"), *(app.key for app in apps.values())]
    if len(set(keys)) != len(keys):
        raise UsageError(
            "the main app, second_app, disabled_app and quota_app must each have their own key"
        )
    return apps


def bundled_apps(quota: int) -> tuple[dict[str, Any], dict[str, OtherApp]]:
    """Fresh apps for the bundled server: its apps file's content (the main app first) and
    the other apps as the target declares them. Every app relays client events, as the main
    one always has for the client-event checks."""
    first_id = secrets.randbelow(900000) + 100000

    def app(offset: int, **extra: Any) -> dict[str, Any]:
        return {
            "id": str(first_id + offset),
            "key": secrets.token_hex(10),
            "secret": secrets.token_hex(16),
            "client_events": True,
            **extra,
        }

    main, second = app(0), app(1)
    disabled, quota_app = app(2, enabled=False), app(3, max_connections=quota)
    declared = {
        "second_app": OtherApp(key=second["key"], app_id=second["id"], secret=second["secret"]),
        "disabled_app": OtherApp(key=disabled["key"]),
        "quota_app": OtherApp(key=quota_app["key"], max_connections=quota),
    }
    return {"apps": [main, second, disabled, quota_app]}, declared
