"""``--apps-file``: several apps on one server, each with its own credentials and limits.

The file is YAML (JSON is YAML too)::

    apps:
      - id: "101"
        key: first-key
        secret: first-secret
      - id: "102"
        key: second-key
        secret: second-secret
        enabled: false            # every connection is refused with 4003
        max_connections: 100      # the 101st open connection is refused with 4004
        client_events: true
        webhook_url: http://127.0.0.1:9000/hooks
        max_event_bytes: 20480

Everything is checked before the server starts: a wrong type, an unknown field, a duplicate
id or key is one ``ConfigError`` naming the file, the app and the field, so a typo never
becomes an app that silently behaves differently from what its owner wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["APP_FIELDS", "AppEntry", "AppsFileError", "load_apps_file"]


class AppsFileError(ValueError):
    """One line naming the file, the app and the field that is wrong."""


@dataclass(frozen=True)
class AppEntry:
    """One app of the file; ``None`` settings take the server-wide value."""

    app_id: str
    key: str
    secret: str
    enabled: bool = True
    max_connections: int | None = None
    client_events: bool | None = None
    webhook_url: str | None = None
    max_event_bytes: int | None = None


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _app_id(value: object) -> str:
    # Pusher app ids are numbers; YAML reads an unquoted one as an integer.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return _text(value)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be a whole number, 0 or more")
    return value


def _positive(value: object) -> int:
    if _count(value) == 0:
        raise ValueError("must be a positive whole number")
    assert isinstance(value, int)
    return value


def _url(value: object) -> str:
    # The same rule as --webhook-url; imported late because config imports this module.
    from .config import _http_url

    return _http_url(_text(value))


#: Field name -> (attribute of AppEntry, converter); the first three are required.
APP_FIELDS: dict[str, tuple[str, Callable[[object], Any]]] = {
    "id": ("app_id", _app_id),
    "key": ("key", _text),
    "secret": ("secret", _text),
    "enabled": ("enabled", _flag),
    "max_connections": ("max_connections", _count),
    "client_events": ("client_events", _flag),
    "webhook_url": ("webhook_url", _url),
    "max_event_bytes": ("max_event_bytes", _positive),
}
_REQUIRED = ("id", "key", "secret")


def _entry(raw: object, where: str) -> AppEntry:
    if not isinstance(raw, Mapping):
        raise AppsFileError(f"{where}: must be a mapping of fields, got {type(raw).__name__}")
    unknown = sorted(str(name) for name in raw if name not in APP_FIELDS)
    if unknown:
        raise AppsFileError(
            f"{where}: unknown field {unknown[0]!r} (known: {', '.join(APP_FIELDS)})"
        )
    for name in _REQUIRED:
        if name not in raw:
            raise AppsFileError(f"{where}: missing field {name!r}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        attribute, convert = APP_FIELDS[name]
        try:
            values[attribute] = convert(value)
        except ValueError as exc:
            raise AppsFileError(f"{where}: field {name!r} {exc} (got {value!r})") from None
    return AppEntry(**values)


def parse_apps(data: object, file: str) -> tuple[AppEntry, ...]:
    """The apps of a loaded file, checked.

    Raises:
        AppsFileError: naming the file, the app (by position and id) and the field.
    """
    if not isinstance(data, Mapping) or set(data) != {"apps"}:
        raise AppsFileError(f"{file}: must be a mapping with one field, apps: [...]")
    raw_apps = data["apps"]
    if not isinstance(raw_apps, list) or not raw_apps:
        raise AppsFileError(f"{file}: apps must be a non-empty list of apps")
    apps: list[AppEntry] = []
    seen: dict[str, dict[str, int]] = {"id": {}, "key": {}}
    for number, raw in enumerate(raw_apps, start=1):
        label = raw.get("id") if isinstance(raw, Mapping) else None
        where = f"{file}: app {number}" + (f" (id {label!r})" if label is not None else "")
        entry = _entry(raw, where)
        for field, value in (("id", entry.app_id), ("key", entry.key)):
            if value in seen[field]:
                raise AppsFileError(
                    f"{where}: field {field!r} {value!r} is already used by app "
                    f"{seen[field][value]}"
                )
            seen[field][value] = number
        apps.append(entry)
    return tuple(apps)


def load_apps_file(path: str) -> tuple[AppEntry, ...]:
    """Read and check an apps file.

    Raises:
        AppsFileError: the file cannot be read, is not YAML, or describes apps wrongly.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise AppsFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise AppsFileError(f"{path}: is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AppsFileError(f"{path}: is not valid YAML or JSON: {first}") from None
    return parse_apps(data, path)
