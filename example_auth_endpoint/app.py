"""A small app's auth endpoints, written the way the docs' examples are, with the checks they
leave out put back in: a login, per-channel rules, input validation.

The app has two users, logged in by a bearer token (``Authorization: Bearer alice-token``) or
a session cookie (``session=bob-session``), and these rules, in the spirit of Laravel's
``routes/channels.php``:

- ``private-user.{id}``: only the user with that id;
- ``private-admin.*`` and ``presence-admins``: administrators only;
- ``presence-room.*`` and ``private-news``: every logged-in user.

``POST /pusher/auth`` authorizes channels (presence with ``{"user_id", "user_info"}``) and
``POST /pusher/user-auth`` signs users in. Each decision is a method of ``ExampleAuthApp`` so
that ``faults.FaultyAuthApp`` can break one at a time without this module knowing; the
certification's view of these rules is ``policy.yaml`` beside this file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = [
    "APP_KEY",
    "APP_SECRET",
    "GRANTS",
    "USERS",
    "ExampleAuthApp",
    "Grant",
    "User",
    "build_app",
]

APP_KEY = "example-key"
APP_SECRET = "example-secret"
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9_\-=@,.;]{1,164}")
_SOCKET_ID = re.compile(r"[0-9]+\.[0-9]+")


@dataclass(frozen=True)
class User:
    id: str
    name: str
    admin: bool = False


#: Login token (bearer token or session cookie) -> user.
USERS: Mapping[str, User] = {
    "alice-token": User("1001", "Alice", admin=True),
    "alice-session": User("1001", "Alice", admin=True),
    "bob-token": User("1002", "Bob"),
    "bob-session": User("1002", "Bob"),
}


@dataclass(frozen=True)
class Grant:
    """One channel rule: an exact name or a prefix ending in ``*``; ``{id}`` stands for the
    user's own id."""

    pattern: str
    admins_only: bool = False

    def for_user(self, user: User) -> str:
        return self.pattern.replace("{id}", user.id)


GRANTS = (
    Grant("private-user.{id}"),
    Grant("private-admin.*", admins_only=True),
    Grant("presence-admins", admins_only=True),
    Grant("presence-room.*"),
    Grant("private-news"),
)


class ExampleAuthApp:
    """The endpoints' decisions, one method each."""

    def __init__(self, key: str = APP_KEY, secret: str = APP_SECRET) -> None:
        self.key = key
        self.secret = secret

    # Who is asking.

    def current_user(self, request: web.Request) -> User | None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        token = token or request.cookies.get("session")
        return USERS.get(token) if token else None

    # What they ask for.

    def socket_id_ok(self, socket_id: str) -> bool:
        return _SOCKET_ID.fullmatch(socket_id) is not None

    def channel_name_ok(self, channel: str) -> bool:
        return _CHANNEL_NAME.fullmatch(channel) is not None

    def grant_matches(self, pattern: str, channel: str) -> bool:
        if pattern.endswith("*"):
            return channel.startswith(pattern[:-1]) and len(channel) > len(pattern) - 1
        return channel == pattern

    def may_read(self, user: User, channel: str) -> bool:
        return any(
            self.grant_matches(grant.for_user(user), channel)
            for grant in GRANTS
            if user.admin or not grant.admins_only
        )

    # What they get.

    def presence_data(self, user: User, form: Mapping[str, str]) -> dict[str, Any]:
        return {"user_id": user.id, "user_info": {"name": user.name}}

    def user_data(self, user: User, form: Mapping[str, str]) -> dict[str, Any]:
        return {"id": user.id, "user_info": {"name": user.name}}

    def sign(self, string: str) -> str:
        digest = hmac.new(self.secret.encode(), string.encode(), hashlib.sha256).hexdigest()
        return f"{self.key}:{digest}"

    def channel_auth(
        self, socket_id: str, channel: str, channel_data: str | None
    ) -> dict[str, str]:
        if channel_data is None:
            return {"auth": self.sign(f"{socket_id}:{channel}")}
        return {
            "auth": self.sign(f"{socket_id}:{channel}:{channel_data}"),
            "channel_data": channel_data,
        }

    def user_auth(self, socket_id: str, user_data: str) -> dict[str, str]:
        return {"auth": self.sign(f"{socket_id}::user::{user_data}"), "user_data": user_data}

    def refuse_forbidden(self) -> web.Response:
        return web.Response(status=403, text="Forbidden")

    # The handlers.

    async def authorize(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        user = self.current_user(request)
        if user is None:
            return web.Response(status=403, text="Forbidden")
        socket_id = form.get("socket_id", "")
        channel = form.get("channel_name", "")
        if not self.socket_id_ok(socket_id):
            return web.Response(status=400, text="Invalid socket_id")
        if not self.channel_name_ok(channel):
            return web.Response(status=400, text="Invalid channel_name")
        if not self.may_read(user, channel):
            return self.refuse_forbidden()
        data = None
        if channel.startswith("presence-"):
            data = _compact(self.presence_data(user, form))
        return web.json_response(self.channel_auth(socket_id, channel, data))

    async def authenticate(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        user = self.current_user(request)
        if user is None:
            return web.Response(status=403, text="Forbidden")
        socket_id = form.get("socket_id", "")
        if not self.socket_id_ok(socket_id):
            return web.Response(status=400, text="Invalid socket_id")
        return web.json_response(self.user_auth(socket_id, _compact(self.user_data(user, form))))


def _compact(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def build_app(auth: ExampleAuthApp | None = None) -> web.Application:
    """The aiohttp application; ``auth`` defaults to the correct endpoints."""
    endpoints = auth or ExampleAuthApp()
    app = web.Application()
    app.router.add_post("/pusher/auth", endpoints.authorize)
    app.router.add_post("/pusher/user-auth", endpoints.authenticate)
    return app
