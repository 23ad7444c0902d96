"""Pusher signatures, written from the public auth-signature and HTTP API references.

The suite signs what it sends itself rather than trusting a client library, so that it can also
build requests that are wrong in exactly one way.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

__all__ = [
    "api_auth_params",
    "body_md5",
    "channel_auth",
    "hmac_sha256_hex",
    "sign_api_request",
    "string_to_sign",
]


def hmac_sha256_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def body_md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


def string_to_sign(method: str, path: str, params: Mapping[str, str]) -> str:
    """``METHOD\\npath\\nk=v&...``: keys lower-cased and sorted, ``auth_signature`` left out,
    values as they are (not URL-escaped)."""
    pairs = sorted((k.lower(), v) for k, v in params.items() if k.lower() != "auth_signature")
    query = "&".join(f"{k}={v}" for k, v in pairs)
    return f"{method.upper()}\n{path}\n{query}"


def api_auth_params(key: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The auth parameters of an HTTP API request before its signature: ``body_md5`` only
    when there is a body."""
    params = {"auth_key": key, "auth_timestamp": str(timestamp), "auth_version": "1.0"}
    if body:
        params["body_md5"] = body_md5(body)
    return params


def sign_api_request(secret: str, method: str, path: str, params: Mapping[str, str]) -> str:
    return hmac_sha256_hex(secret, string_to_sign(method, path, params))


def channel_auth(
    key: str, secret: str, socket_id: str, channel: str, channel_data: str = ""
) -> str:
    """The ``auth`` field of a subscribe: ``key:hex(HMAC(secret, socket_id:channel[:data]))``."""
    message = f"{socket_id}:{channel}" + (f":{channel_data}" if channel_data else "")
    return f"{key}:{hmac_sha256_hex(secret, message)}"
