"""HMAC-SHA256 and MD5 helpers shared by channel auth and HTTP API request signing.

Pusher docs, "Auth signatures": the signature is the hex HMAC-SHA256 of a string to sign,
keyed with the app secret. REST API: the string is ``METHOD\\nPATH\\nQUERY`` where QUERY is
every parameter except ``auth_signature``, keys lower-cased, sorted, joined with ``&``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

__all__ = [
    "body_md5",
    "canonical_query",
    "channel_string_to_sign",
    "hmac_sha256_hex",
    "http_string_to_sign",
    "sign_channel",
    "sign_http_request",
    "sign_user",
    "signatures_match",
    "user_string_to_sign",
]


def hmac_sha256_hex(secret: str, message: str) -> str:
    """Hex HMAC-SHA256 of ``message`` keyed with ``secret`` (both UTF-8; a lone surrogate, which
    escaped JSON can carry, is encoded as is rather than crashing)."""
    return hmac.new(
        secret.encode(), message.encode("utf-8", "surrogatepass"), hashlib.sha256
    ).hexdigest()


def signatures_match(expected: str, given: str) -> bool:
    """Compare in constant time; UTF-8 first because ``compare_digest`` refuses non-ASCII str."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))


def channel_string_to_sign(socket_id: str, channel: str, channel_data: str | None = None) -> str:
    """``socket_id:channel`` plus ``:channel_data`` for presence channels."""
    if channel_data is None:
        return f"{socket_id}:{channel}"
    return f"{socket_id}:{channel}:{channel_data}"


def sign_channel(secret: str, socket_id: str, channel: str, channel_data: str | None = None) -> str:
    """The hex signature part of a channel ``auth`` value (``key:signature``)."""
    return hmac_sha256_hex(secret, channel_string_to_sign(socket_id, channel, channel_data))


def user_string_to_sign(socket_id: str, user_data: str) -> str:
    """Pusher docs, "Auth signatures", user authentication: ``socket_id::user::user_data``."""
    return f"{socket_id}::user::{user_data}"


def sign_user(secret: str, socket_id: str, user_data: str) -> str:
    """The hex signature part of a ``pusher:signin`` ``auth`` value (``key:signature``)."""
    return hmac_sha256_hex(secret, user_string_to_sign(socket_id, user_data))


def body_md5(body: bytes) -> str:
    """Hex MD5 of the raw request body, as sent in ``body_md5``."""
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Every parameter but ``auth_signature``, keys lower-cased and sorted, values as given.

    Values are the decoded ones, not re-escaped, as the official libraries sign them.
    """
    pairs = [(key.lower(), value) for key, value in params if key.lower() != "auth_signature"]
    pairs.sort(key=lambda pair: pair[0])
    return "&".join(f"{key}={value}" for key, value in pairs)


def http_string_to_sign(method: str, path: str, params: Iterable[tuple[str, str]]) -> str:
    return f"{method.upper()}\n{path}\n{canonical_query(params)}"


def sign_http_request(
    secret: str, method: str, path: str, params: Iterable[tuple[str, str]]
) -> str:
    """The ``auth_signature`` a correct client sends for this request."""
    return hmac_sha256_hex(secret, http_string_to_sign(method, path, params))
