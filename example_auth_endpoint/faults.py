"""Deliberate bugs in the example endpoints, each one way an auth endpoint goes wrong in the
wild, so the certification's own tests can prove each is caught by the requirement it breaks
(``fixtures/auth_endpoint_faults.yaml`` names it).

They live here, not in ``app.py``: ``FaultyAuthApp`` overrides one decision of
``ExampleAuthApp`` per fault, and the correct app never runs this code.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from .app import ExampleAuthApp, User

__all__ = ["Fault", "FaultyAuthApp", "parse_faults"]

#: Another app's credentials, for the faults that sign with the wrong ones.
OTHER_KEY = "other-app-key"
OTHER_SECRET = "other-app-secret"
#: Whom an endpoint that lets anybody in takes an anonymous caller for.
GUEST = User("guest", "Guest")


class Fault(enum.StrEnum):
    #: Exact rules matched with startswith: private-user.1001 grants private-user.1001X.
    PREFIX_MATCH = "prefix_match"
    #: Prefix rules checked without their separator: private-admin.* grants private-adminX.
    PATTERN_WITHOUT_DOT = "pattern_without_dot"
    #: Channel names compared case-insensitively: private-user.1002 grants PRIVATE-USER.1002.
    CASE_INSENSITIVE_MATCH = "case_insensitive_match"
    #: Every logged-in user may read every channel (the docs' "Don't do this in production!").
    POLICY_IGNORED = "policy_ignored"
    #: No login is taken for a guest who gets what every user gets, on both endpoints.
    ANONYMOUS_AS_GUEST = "anonymous_as_guest"
    #: A request without a login crashes: 500.
    ANONYMOUS_500 = "anonymous_500"
    #: A refused channel is answered 200 with an error body.
    REFUSAL_200 = "refusal_200"
    #: Presence channel_data takes user_id from the request's form when there is one.
    USER_ID_FROM_REQUEST = "user_id_from_request"
    #: A malformed socket_id is caught by an exception nobody handles: 500.
    MALFORMED_SOCKET_ID_500 = "malformed_socket_id_500"
    #: Any socket_id is signed.
    SOCKET_ID_UNVALIDATED = "socket_id_unvalidated"
    #: Any channel name under a granted pattern is signed (':' included).
    CHANNEL_NAME_UNVALIDATED = "channel_name_unvalidated"
    #: The name is stripped of whitespace for the checks but signed as sent.
    NAME_TRIMMED_FOR_CHECKS = "name_trimmed_for_checks"
    #: Signatures made with another app's secret.
    WRONG_SECRET = "wrong_secret"
    #: auth names another app's key (the signature itself is right).
    OTHER_APP_KEY = "other_app_key"
    #: Presence signatures cover socket_id:channel only.
    PRESENCE_DATA_UNSIGNED = "presence_data_unsigned"
    #: channel_data signed compact but returned re-encoded with spaces.
    CHANNEL_DATA_REENCODED = "channel_data_reencoded"
    #: Channel auth cached per channel: the first socket_id's signature for everyone after.
    CACHED_PER_CHANNEL = "cached_per_channel"
    #: Sign-in signed over socket_id:user:user_data (one colon each side).
    USER_AUTH_SINGLE_COLON = "user_auth_single_colon"
    #: Sign-in user_data takes its id from the request's form when there is one.
    USER_AUTH_ID_FROM_REQUEST = "user_auth_id_from_request"


def parse_faults(text: str) -> frozenset[Fault]:
    """``a,b`` -> the faults; an unknown name is a ``ValueError`` listing the known ones."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = {f.value: f for f in Fault}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(unknown)} (known: {', '.join(known)})")
    return frozenset(known[n] for n in names)


class FaultyAuthApp(ExampleAuthApp):
    def __init__(self, faults: Iterable[Fault], **kwargs: str) -> None:
        super().__init__(**kwargs)
        self.faults = frozenset(faults)
        self._cache: dict[tuple[str, str | None], dict[str, str]] = {}

    def current_user(self, request: web.Request) -> User | None:
        user = super().current_user(request)
        if user is None and Fault.ANONYMOUS_AS_GUEST in self.faults:
            return GUEST
        if user is None and Fault.ANONYMOUS_500 in self.faults:
            raise web.HTTPInternalServerError(text="'NoneType' object has no attribute 'id'")
        return user

    def socket_id_ok(self, socket_id: str) -> bool:
        if Fault.SOCKET_ID_UNVALIDATED in self.faults:
            return True
        valid = super().socket_id_ok(socket_id)
        if not valid and Fault.MALFORMED_SOCKET_ID_500 in self.faults:
            raise web.HTTPInternalServerError(text=f"invalid literal for int(): {socket_id!r}")
        return valid

    def channel_name_ok(self, channel: str) -> bool:
        if Fault.CHANNEL_NAME_UNVALIDATED in self.faults:
            return True
        if Fault.NAME_TRIMMED_FOR_CHECKS in self.faults:
            channel = channel.strip()
        return super().channel_name_ok(channel)

    def grant_matches(self, pattern: str, channel: str) -> bool:
        if Fault.CASE_INSENSITIVE_MATCH in self.faults:
            pattern, channel = pattern.lower(), channel.lower()
        if Fault.PREFIX_MATCH in self.faults and not pattern.endswith("*"):
            return channel.startswith(pattern)
        if Fault.PATTERN_WITHOUT_DOT in self.faults and pattern.endswith(".*"):
            return channel.startswith(pattern[:-2]) and channel != pattern[:-2]
        return super().grant_matches(pattern, channel)

    def may_read(self, user: User, channel: str) -> bool:
        if Fault.POLICY_IGNORED in self.faults:
            return True
        if Fault.NAME_TRIMMED_FOR_CHECKS in self.faults:
            channel = channel.strip()
        return super().may_read(user, channel)

    def refuse_forbidden(self) -> web.Response:
        if Fault.REFUSAL_200 in self.faults:
            return web.json_response({"error": "forbidden"})
        return super().refuse_forbidden()

    def presence_data(self, user: User, form: Mapping[str, str]) -> dict[str, Any]:
        data = super().presence_data(user, form)
        if Fault.USER_ID_FROM_REQUEST in self.faults and form.get("user_id"):
            data["user_id"] = form["user_id"]
        return data

    def user_data(self, user: User, form: Mapping[str, str]) -> dict[str, Any]:
        data = super().user_data(user, form)
        claimed = form.get("id") or form.get("user_id")
        if Fault.USER_AUTH_ID_FROM_REQUEST in self.faults and claimed:
            data["id"] = claimed
        return data

    def sign(self, string: str) -> str:
        key, signature = super().sign(string).split(":", 1)
        if Fault.WRONG_SECRET in self.faults:
            signature = ExampleAuthApp(OTHER_KEY, OTHER_SECRET).sign(string).split(":", 1)[1]
        if Fault.OTHER_APP_KEY in self.faults:
            key = OTHER_KEY
        return f"{key}:{signature}"

    def channel_auth(
        self, socket_id: str, channel: str, channel_data: str | None
    ) -> dict[str, str]:
        if Fault.CACHED_PER_CHANNEL in self.faults:
            cached = self._cache.setdefault(
                (channel, channel_data), self._channel_auth(socket_id, channel, channel_data)
            )
            return dict(cached)
        return self._channel_auth(socket_id, channel, channel_data)

    def _channel_auth(
        self, socket_id: str, channel: str, channel_data: str | None
    ) -> dict[str, str]:
        reply = super().channel_auth(socket_id, channel, channel_data)
        if channel_data is None:
            return reply
        if Fault.PRESENCE_DATA_UNSIGNED in self.faults:
            reply["auth"] = self.sign(f"{socket_id}:{channel}")
        if Fault.CHANNEL_DATA_REENCODED in self.faults:
            reply["channel_data"] = json.dumps(json.loads(channel_data))
        return reply

    def user_auth(self, socket_id: str, user_data: str) -> dict[str, str]:
        if Fault.USER_AUTH_SINGLE_COLON in self.faults:
            return {"auth": self.sign(f"{socket_id}:user:{user_data}"), "user_data": user_data}
        return super().user_auth(socket_id, user_data)
