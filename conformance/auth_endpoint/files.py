"""The two files a certification of an auth endpoint reads: who logs in how, and who may read what.

The suite cannot know an app's users or its rules, so the operator writes them down:

- the **credentials** file gives, per user, the headers and/or cookies that log that user in
  (a session cookie, a bearer token), and optionally what every request carries (a CSRF token);
  the anonymous user is implied: it sends only that;
- the **policy** file gives each user's id and the channels they may read, as exact names or
  prefix patterns (``private-admin.*``: the prefix and one or more further characters).

Both are YAML (JSON is YAML too). Every mistake is a ``UsageError`` naming the file and the
place, so a certification never starts on a misread policy: a policy read wrong would grade
the endpoint against rules nobody wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import UsageError

__all__ = [
    "CHANNEL_NAME_MAX",
    "Credentials",
    "Login",
    "Pattern",
    "Policy",
    "PolicyUser",
    "load_credentials",
    "load_policy",
    "valid_channel_name",
    "valid_socket_id",
]

#: The docs' limit on a channel name's length, prefix included (channels page).
CHANNEL_NAME_MAX = 164
#: The characters the docs allow in a channel name: letters, digits and ``_ - = @ , . ;``.
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9_\-=@,.;]+")
#: A socket id as the protocol hands them out (``123.456``), ASCII digits only: ``\d`` would
#: also take other scripts' digits, which Python's ``int`` reads but no server issues.
_SOCKET_ID = re.compile(r"[0-9]+\.[0-9]+")
_USER_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_CHANNEL_TYPES = ("private-", "presence-")


def valid_channel_name(name: str) -> bool:
    return len(name) <= CHANNEL_NAME_MAX and _CHANNEL_NAME.fullmatch(name) is not None


def valid_socket_id(socket_id: str) -> bool:
    return _SOCKET_ID.fullmatch(socket_id) is not None


@dataclass(frozen=True)
class Pattern:
    """One entry of a policy: an exact channel name, or a prefix ending in ``*``."""

    text: str

    @property
    def is_prefix(self) -> bool:
        return self.text.endswith("*")

    @property
    def stem(self) -> str:
        """The name, or the prefix without its ``*``."""
        return self.text[:-1] if self.is_prefix else self.text

    @property
    def presence(self) -> bool:
        return self.stem.startswith("presence-")

    def matches(self, name: str) -> bool:
        """Case-sensitive, and a prefix needs at least one more character: ``private-admin.``
        itself is not under ``private-admin.*``."""
        if self.is_prefix:
            return name.startswith(self.stem) and len(name) > len(self.stem)
        return name == self.text

    def instance(self, rest: str = "x") -> str:
        """A channel name this pattern grants (``rest`` completes a prefix)."""
        return self.stem + rest if self.is_prefix else self.text


@dataclass(frozen=True)
class PolicyUser:
    name: str
    #: The id the endpoint must put in this user's presence channel_data and user_data.
    id: str
    patterns: tuple[Pattern, ...]


@dataclass(frozen=True)
class Policy:
    users: Mapping[str, PolicyUser]
    #: Granted to every user the policy lists (never to the anonymous one).
    everyone: tuple[Pattern, ...] = ()

    def patterns_of(self, user: str | None) -> tuple[Pattern, ...]:
        if user is None:
            return ()
        return self.users[user].patterns + self.everyone

    def allows(self, user: str | None, channel: str) -> bool:
        """Whether the endpoint must sign ``channel`` for ``user`` (None: nobody logged in).
        A name the docs' rules refuse is never allowed, whatever pattern it falls under."""
        return valid_channel_name(channel) and any(
            p.matches(channel) for p in self.patterns_of(user)
        )

    def all_patterns(self) -> tuple[Pattern, ...]:
        """Every pattern of every user, each once, in file order."""
        seen = dict.fromkeys(p for u in self.users.values() for p in u.patterns)
        seen.update(dict.fromkeys(self.everyone))
        return tuple(seen)


@dataclass(frozen=True)
class Login:
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)

    def merged(self, other: Login) -> Login:
        return Login({**self.headers, **other.headers}, {**self.cookies, **other.cookies})


@dataclass(frozen=True)
class Credentials:
    users: Mapping[str, Login]
    #: Sent with every request, the anonymous one's too (a CSRF token, an API gateway key).
    every_request: Login = field(default_factory=Login)

    def login(self, user: str | None) -> Login:
        """What a request as ``user`` carries; ``None`` is the anonymous user."""
        if user is None:
            return self.every_request
        return self.every_request.merged(self.users[user])


def _read(path: Path, what: str) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what} file {path}: cannot be read ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{what} file {path}: not valid YAML or JSON: {first}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{what} file {path}: expected a mapping at the top level")
    return data


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a mapping")
    return value


def _string_map(value: Any, where: str) -> dict[str, str]:
    data = _mapping(value, where)
    out = {}
    for key, item in data.items():
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise UsageError(f"{where}: {key} must be a string")
        out[str(key)] = str(item)
    return out


def _login(value: Any, where: str) -> Login:
    data = _mapping(value, where)
    unknown = set(data) - {"headers", "cookies"}
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (headers, cookies)")
    return Login(
        _string_map(data.get("headers"), f"{where}.headers"),
        _string_map(data.get("cookies"), f"{where}.cookies"),
    )


def _user_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name) or name == "anonymous":
        raise UsageError(
            f"{where}: user name {name!r} must be letters, digits, _ . - and not 'anonymous'"
        )
    return name


def load_credentials(path: Path) -> Credentials:
    data = _read(path, "credentials")
    where = f"credentials file {path}"
    unknown = set(data) - {"users", "every_request"}
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    users = {
        _user_name(name, where): _login(entry, f"{where}: users.{name}")
        for name, entry in _mapping(data.get("users"), f"{where}: users").items()
    }
    if not users:
        raise UsageError(f"{where}: no users")
    return Credentials(users, _login(data.get("every_request"), f"{where}: every_request"))


def _pattern(text: Any, where: str) -> Pattern:
    if not isinstance(text, str) or not text:
        raise UsageError(f"{where}: a channel pattern must be a non-empty string")
    pattern = Pattern(text)
    if "*" in pattern.stem:
        raise UsageError(f"{where}: {text!r}: '*' may only end a pattern")
    if not pattern.stem.startswith(_CHANNEL_TYPES):
        raise UsageError(
            f"{where}: {text!r}: only private- and presence- channels need authorization"
        )
    if not valid_channel_name(pattern.instance()):
        raise UsageError(f"{where}: {text!r} is not a valid channel name (channels page rules)")
    return pattern


def _patterns(value: Any, where: str) -> tuple[Pattern, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise UsageError(f"{where}: expected a list of channel patterns")
    return tuple(_pattern(item, where) for item in value)


def load_policy(path: Path) -> Policy:
    data = _read(path, "policy")
    where = f"policy file {path}"
    unknown = set(data) - {"users", "everyone"}
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    users = {}
    for name, entry in _mapping(data.get("users"), f"{where}: users").items():
        user_where = f"{where}: users.{name}"
        entry = _mapping(entry, user_where)
        extra = set(entry) - {"id", "channels"}
        if extra:
            raise UsageError(f"{user_where}: unknown key(s) {', '.join(sorted(extra))}")
        user_id = entry.get("id")
        if not isinstance(user_id, str | int) or isinstance(user_id, bool) or user_id == "":
            raise UsageError(f"{user_where}: id must be a non-empty string")
        name = _user_name(name, where)
        users[name] = PolicyUser(name, str(user_id), _patterns(entry.get("channels"), user_where))
    if not users:
        raise UsageError(f"{where}: no users")
    return Policy(users, _patterns(data.get("everyone"), f"{where}: everyone"))
