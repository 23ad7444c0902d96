"""Channel authorisation and user sign-in: checking the ``auth`` a client sends.

Pusher docs, "Auth signatures": ``auth`` is ``"<app key>:<signature>"``, the signature being
the lower-case hex HMAC-SHA256, keyed with the app secret, of ``socket_id:channel_name`` (plus
``:channel_data`` on presence channels) or, for sign-in, ``socket_id::user::user_data``.
Signatures are compared in constant time.
"""

from __future__ import annotations

from ..serves import serves
from .errors import SigninRefused, SubscriptionRefused
from .messages import json_object
from .signing import (
    channel_string_to_sign,
    hmac_sha256_hex,
    signatures_match,
    user_string_to_sign,
)

__all__ = ["check_channel_auth", "check_signin", "invalid_channel_signature"]


def _signature_part(auth: str, app_key: str) -> str:
    key, sep, signature = auth.partition(":")
    if not sep:
        raise SubscriptionRefused("Invalid auth: expected <app key>:<signature>")
    if key != app_key:
        serves("AUTH-CH-03")
        raise SubscriptionRefused(f"Invalid key in subscription auth data: {key!r}")
    return signature


def invalid_channel_signature(string_to_sign: str, signature: str) -> SubscriptionRefused:
    """The refusal of a subscribe whose signature is wrong; it names what should be signed."""
    return SubscriptionRefused(
        f"Invalid signature: Expected HMAC SHA256 hex digest of {string_to_sign}, "
        f"but got {signature}"
    )


def check_channel_auth(
    auth: str | None,
    *,
    app_key: str,
    secret: str,
    socket_id: str,
    channel: str,
    channel_data: str | None = None,
) -> None:
    """Check a private, encrypted or presence subscription's ``auth``.

    ``channel_data`` is the exact string sent, for presence channels; ``None`` otherwise.

    Raises:
        SubscriptionRefused: missing or empty auth, another key, or a wrong signature.
    """
    if not auth:
        serves("CHAN-SUB-03")
        raise SubscriptionRefused(f"Missing auth for channel {channel}")
    signature = _signature_part(auth, app_key)
    string_to_sign = channel_string_to_sign(socket_id, channel, channel_data)
    if not signatures_match(hmac_sha256_hex(secret, string_to_sign), signature):
        serves("AUTH-CH-01", "AUTH-CH-02", "RECON-09")
        raise invalid_channel_signature(string_to_sign, signature)


def check_signin(
    auth: str | None,
    user_data: str | None,
    *,
    app_key: str,
    secret: str,
    socket_id: str,
) -> str:
    """Check a ``pusher:signin`` and return the user id from ``user_data``.

    Raises:
        SigninRefused: missing fields, bad key or signature, or ``user_data`` that is not a
            JSON object with a non-empty string ``id``.
    """
    if user_data is None:
        raise SigninRefused("pusher:signin needs user_data")
    if not auth:
        raise SigninRefused("pusher:signin needs auth")
    serves("AUTH-USER-01")
    signed = user_string_to_sign(socket_id, user_data)
    if not signatures_match(f"{app_key}:{hmac_sha256_hex(secret, signed)}", auth):
        serves("AUTH-USER-01", "AUTH-USER-02")
        raise SigninRefused(f"Invalid signature: Expected HMAC SHA256 hex digest of {signed}")
    user = json_object(user_data)
    if user is None:
        raise SigninRefused("user_data must be a JSON object")
    user_id = user.get("id")
    if not isinstance(user_id, str) or not user_id:
        raise SigninRefused("user_data needs a non-empty string id")
    serves("AUTH-USER-03")
    return user_id
