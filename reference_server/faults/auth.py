"""Faults in checking the signatures of private, presence and encrypted subscribes and of
sign-in.

The two signing faults accept, besides the right signature, one over a string missing a part,
so correct clients still subscribe and only the checks of the rule broken can tell.
"""

from __future__ import annotations

from ..protocol.auth import check_channel_auth, invalid_channel_signature
from ..protocol.errors import SubscriptionRefused
from ..protocol.signing import (
    channel_string_to_sign,
    hmac_sha256_hex,
    signatures_match,
    user_string_to_sign,
)
from .catalogue import Fault, FaultSet

__all__ = ["check_channel_auth_with_faults", "correct_signin_auth"]

#: The faults ``check_channel_auth_with_faults`` implements.
_SIGNING_FAULTS = frozenset(
    {
        Fault.AUTH_KEY_PART_IGNORED,
        Fault.AUTH_SOCKET_ID_IGNORED,
        Fault.PRESENCE_CHANNEL_DATA_UNSIGNED,
    }
)


def check_channel_auth_with_faults(
    auth: str | None,
    *,
    app_key: str,
    secret: str,
    socket_id: str,
    channel: str,
    channel_data: str | None,
    faults: FaultSet,
) -> None:
    """``check_channel_auth`` under ``auth_key_part_ignored`` (Reverb's behaviour: the
    signature is whatever follows the first ``:``), ``auth_socket_id_ignored`` and
    ``presence_channel_data_unsigned``.

    Raises:
        SubscriptionRefused: as the core would, with the same messages.
    """
    if not faults & _SIGNING_FAULTS:
        check_channel_auth(
            auth,
            app_key=app_key,
            secret=secret,
            socket_id=socket_id,
            channel=channel,
            channel_data=channel_data,
        )
        return
    if not auth:
        raise SubscriptionRefused(f"Missing auth for channel {channel}")
    key, sep, signature = auth.partition(":")
    if Fault.AUTH_KEY_PART_IGNORED in faults:
        signature = signature if sep else auth
    elif not sep:
        raise SubscriptionRefused("Invalid auth: expected <app key>:<signature>")
    elif key != app_key:
        raise SubscriptionRefused(f"Invalid key in subscription auth data: {key!r}")
    string_to_sign = channel_string_to_sign(socket_id, channel, channel_data)
    candidates = [string_to_sign]
    if Fault.AUTH_SOCKET_ID_IGNORED in faults:
        candidates.append(channel if channel_data is None else f"{channel}:{channel_data}")
    if Fault.PRESENCE_CHANNEL_DATA_UNSIGNED in faults and channel_data is not None:
        candidates.append(channel_string_to_sign(socket_id, channel))
    # Every candidate is compared, so timing does not tell which one matched.
    results = [signatures_match(hmac_sha256_hex(secret, s), signature) for s in candidates]
    if not any(results):
        raise invalid_channel_signature(string_to_sign, signature)


def correct_signin_auth(app_key: str, secret: str, socket_id: str, user_data: str) -> str:
    """The ``auth`` a correct ``pusher:signin`` carries; ``signin_signature_unchecked`` hands
    it to the core in place of the one sent, so every other sign-in rule still applies."""
    signed = user_string_to_sign(socket_id, user_data)
    return f"{app_key}:{hmac_sha256_hex(secret, signed)}"
