"""Every channel-auth tamper yields a subscription a correct server must refuse, and every
generated invalid name really is outside the grammar."""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from hashlib import sha256
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.context import CheckContext, RunSettings
from conformance.errors import CheckFailed
from conformance.properties.channel_auth import (
    CHANNEL_TAMPERS,
    PRESENCE_ONLY,
    _invalid_names,
    tampered_subscription,
)
from conformance.spec import Check
from conformance.target import target_from_mapping

TARGET = target_from_mapping(
    {"ws_url": "ws://127.0.0.1:1", "http_url": "http://127.0.0.1:1", "app_id": "42",
     "key": "the-key", "secret": "the-secret"}
)  # fmt: skip
# Used with fullmatch: a "^...$" pattern with match() lets a name with a trailing newline through.
GRAMMAR = re.compile(r"[A-Za-z0-9_\-=@,.;]{1,164}")


def _accepted(data: dict[str, str], socket_id: str) -> bool:
    """What a correct server decides about this subscribe."""
    channel, auth = data["channel"], data.get("auth")
    if not auth or ":" not in auth:
        return False
    key, signature = auth.split(":", 1)
    message = f"{socket_id}:{channel}"
    if channel.startswith("presence-"):
        message += ":" + data.get("channel_data", "")
    expected = hmac.new(TARGET.secret.encode(), message.encode(), sha256).hexdigest()
    return key == TARGET.key and hmac.compare_digest(signature, expected)


@pytest.fixture(scope="module")
def ctx() -> CheckContext:
    with asyncio.Runner() as runner:
        return CheckContext(TARGET, RunSettings(), Check("R-01", "c", "t", "property", {}), runner)


@pytest.mark.parametrize("prefix", ["private-", "presence-", "private-encrypted-"])
def test_a_signed_subscription_is_accepted(ctx: CheckContext, prefix: str) -> None:
    ctx.variables["c1"] = {"socket_id": "1.2"}
    data = {"user_id": "u"} if prefix == "presence-" else None
    signed = ctx.sign_channel("c1", prefix + "x", data)
    assert _accepted({"channel": prefix + "x", **signed}, "1.2")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["private-", "presence-", "private-encrypted-"]),
    st.sampled_from(CHANNEL_TAMPERS),
    st.integers(0, 10**6),
)
def test_every_tamper_is_refused(ctx: CheckContext, prefix: str, kind: str, detail: int) -> None:
    if kind in PRESENCE_ONLY and prefix != "presence-":
        return
    data = tampered_subscription(ctx, kind, detail, prefix + "chan", "1.2", "3.4")
    assert not _accepted(data, "1.2"), kind


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_invalid_names_are_outside_the_grammar(data: Any) -> None:
    name = data.draw(_invalid_names(["bad_character", "too_long", "empty"], 164))
    assert GRAMMAR.fullmatch(name) is None
    json.dumps({"channel": name})


def test_a_trailing_newline_is_outside_the_grammar() -> None:
    assert GRAMMAR.fullmatch("0\n") is None


TAMPER_PARAMS = {"prefix": "private-", "tamper": ["missing_auth", "empty_auth"], "examples": 8}


def test_a_close_after_refusing_is_not_a_leak(run_on_bundled: Any) -> None:
    # The server closes on every missing auth: each example after such a close judges a
    # freshly opened connection, and nothing was confirmed or delivered.
    run_on_bundled("private_auth_missing_closes", "channel_auth_tamper", TAMPER_PARAMS)


def test_an_accepted_subscription_still_fails(run_on_bundled: Any) -> None:
    with pytest.raises(CheckFailed, match="should have been refused"):
        run_on_bundled("private_without_auth_accepted", "channel_auth_tamper", TAMPER_PARAMS)
