"""What a request to an auth endpoint deserves, and whether the reply gave it: pure functions.

Nothing here does I/O, so each rule of the certification is a function of (request, reply,
app credentials) that the unit tests hold to the docs' worked examples without a server. The
signatures come from the suite's own ``conformance.signing``: the endpoint is judged by the
same arithmetic the suite signs its own subscriptions with.

A judge returns ``None`` when the reply keeps its rule and a sentence saying what is wrong
otherwise. A judge that only applies to some replies (the key part of a signed reply, the
status of a refusal) returns ``None`` for the others: each rule has exactly one judge, so a
fault in the endpoint shows up under the one requirement it breaks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..signing import hmac_sha256_hex

__all__ = [
    "Endpoint",
    "Reply",
    "Request",
    "channel_string",
    "judge_channel_signed",
    "judge_client_error",
    "judge_key",
    "judge_own_id",
    "judge_refusal_status",
    "judge_unsigned",
    "judge_user_signed",
    "signed",
    "user_string",
]

Endpoint = Literal["channel", "user"]

#: How much of a reply's body a message quotes.
_SHOWN = 160


@dataclass(frozen=True)
class Request:
    """One POST as pusher-js sends it: form fields, logged in as ``user`` (None: nobody)."""

    endpoint: Endpoint
    user: str | None
    form: tuple[tuple[str, str], ...]

    def field(self, name: str) -> str | None:
        return next((v for k, v in self.form if k == name), None)

    def describe(self) -> str:
        who = f"as {self.user}" if self.user else "anonymously"
        fields = " ".join(f"{k}={_short(v)!r}" for k, v in self.form)
        return f"{self.endpoint} auth {who}: {fields}"


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: str

    def json_object(self) -> Mapping[str, Any] | None:
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def describe(self) -> str:
        return f"HTTP {self.status} {_short(self.body)!r}"


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + f"...({len(text)} chars)"


def channel_string(socket_id: str, channel: str, channel_data: str | None = None) -> str:
    """``socket_id:channel_name``, plus ``:channel_data`` for a presence channel."""
    base = f"{socket_id}:{channel}"
    return base if channel_data is None else f"{base}:{channel_data}"


def user_string(socket_id: str, user_data: str) -> str:
    """``socket_id::user::user_data``, the string a sign-in signature covers."""
    return f"{socket_id}::user::{user_data}"


def signed(reply: Reply) -> bool:
    """Whether the reply hands out an ``auth`` string, whatever its status."""
    body = reply.json_object()
    return body is not None and isinstance(body.get("auth"), str) and body["auth"] != ""


def _auth_parts(reply: Reply) -> tuple[Mapping[str, Any], str, str] | str:
    """(body, key, signature) of a signing reply, or what keeps it from being one."""
    if reply.status != 200:
        return f"no signature: {reply.describe()}"
    body = reply.json_object()
    if body is None:
        return f"the body is not a JSON object: {reply.describe()}"
    auth = body.get("auth")
    if not isinstance(auth, str):
        return f"the body has no auth string: {reply.describe()}"
    key, colon, signature = auth.partition(":")
    if not colon:
        return f"auth is not <key>:<signature>: {auth!r}"
    return body, key, signature


def _compare(signature: str, secret: str, string: str) -> str | None:
    expected = hmac_sha256_hex(secret, string)
    if signature == expected:
        return None
    return (
        f"the signature is not HMAC-SHA256(app secret, {_short(string)!r}): "
        f"got {signature!r}, expected {expected!r}"
    )


def judge_channel_signed(
    reply: Reply, *, secret: str, socket_id: str, channel: str, presence: bool
) -> str | None:
    """A channel the user may read: 200, ``auth`` = key:signature over ``socket_id:channel``
    (``:channel_data`` appended on presence, where channel_data is a JSON object in a string,
    returned as signed). The key part is ``judge_key``'s."""
    parts = _auth_parts(reply)
    if isinstance(parts, str):
        return parts
    body, _, signature = parts
    if not presence:
        return _compare(signature, secret, channel_string(socket_id, channel))
    data = body.get("channel_data")
    if not isinstance(data, str):
        return f"a presence reply needs channel_data as a JSON string: {reply.describe()}"
    if not isinstance(_json_object(data), dict):
        return f"channel_data is not a JSON-encoded object: {data!r}"
    return _compare(signature, secret, channel_string(socket_id, channel, data))


def judge_user_signed(reply: Reply, *, secret: str, socket_id: str) -> str | None:
    """A sign-in: 200, ``auth`` over ``socket_id::user::user_data`` with user_data returned as
    signed, a JSON object whose ``id`` is a non-empty string."""
    parts = _auth_parts(reply)
    if isinstance(parts, str):
        return parts
    body, _, signature = parts
    data = body.get("user_data")
    if not isinstance(data, str):
        return f"the reply needs user_data as a JSON string: {reply.describe()}"
    user = _json_object(data)
    if not isinstance(user, dict):
        return f"user_data is not a JSON-encoded object: {data!r}"
    if not isinstance(user.get("id"), str) or not user["id"]:
        return f"user_data has no non-empty string id: {data!r}"
    return _compare(signature, secret, user_string(socket_id, data))


def judge_key(reply: Reply, key: str) -> str | None:
    """The key part of a signing reply is the app's key (another app's key makes the server
    look the signature up under the wrong app)."""
    if not signed(reply):
        return None
    body = reply.json_object() or {}
    got = str(body["auth"]).partition(":")[0]
    return None if got == key else f"auth names key {got!r}, not the app's key {key!r}"


def judge_own_id(reply: Reply, expected_id: str, endpoint: Endpoint) -> str | None:
    """The user id in a signing reply's channel_data (``user_id``) or user_data (``id``) is the
    logged-in user's. A number equal to the id passes: the docs' own presence example signs
    ``"user_id": 10``."""
    if not signed(reply):
        return None
    field, member = ("channel_data", "user_id") if endpoint == "channel" else ("user_data", "id")
    body = reply.json_object() or {}
    data = _json_object(body.get(field))
    if not isinstance(data, dict) or member not in data:
        return f"the reply's {field} has no {member}: {reply.describe()}"
    got = data[member]
    if isinstance(got, bool) or not isinstance(got, str | int) or str(got) != expected_id:
        return f"{field} names {member} {got!r}, not the logged-in user's id {expected_id!r}"
    return None


def judge_unsigned(reply: Reply, *, secret: str, strings: Iterable[str]) -> str | None:
    """A refusal hands out nothing that authorizes: no ``auth`` in the body, nor any signature
    over the request's strings anywhere in it (an error page that quotes one still leaks it)."""
    if signed(reply):
        return f"signed: {reply.describe()}"
    for string in strings:
        if hmac_sha256_hex(secret, string) in reply.body:
            return f"the body carries the signature of {_short(string)!r}: {reply.describe()}"
    return None


def judge_refusal_status(reply: Reply, allowed: Iterable[int]) -> str | None:
    """A reply that signs nothing carries one of the ``allowed`` statuses (403; 401 also where
    nobody is logged in). A reply that signs is ``judge_unsigned``'s finding, not this one's."""
    statuses = tuple(allowed)
    if signed(reply) or reply.status in statuses:
        return None
    wanted = " or ".join(str(s) for s in statuses)
    return f"refused with HTTP {reply.status}, not {wanted}: {reply.describe()}"


def judge_client_error(reply: Reply) -> str | None:
    """Malformed input is the client's error: a 4xx, never a 5xx (nor a 2xx or 3xx that signs
    nothing). A reply that signs is ``judge_unsigned``'s finding."""
    if signed(reply) or 400 <= reply.status < 500:
        return None
    return f"answered malformed input with HTTP {reply.status}, not 4xx: {reply.describe()}"


def _json_object(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
