"""The auth-endpoint check registry: the checks ``specs/auth-endpoint.yaml`` names.

Each check sends requests through a ``CheckRun`` and judges each reply with one judge of
``judge.py``, so it tests one rule: a refusal's status is not the signature check's business
and a signature's key part is not the signature arithmetic's. That is what lets a faulty
endpoint fail exactly the requirement it breaks (tests/conformance/auth_endpoint).

A check function returns a one-line summary of what it tried (the report's message for a
pass), raises ``CheckFailed`` through the runner, ``PreconditionFailed`` when nothing it tried
could be judged, and ``NotApplicable`` when the setup gives it nothing to try.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import strategies as st

from ..errors import PreconditionFailed
from .files import Pattern, valid_channel_name
from .judge import (
    Endpoint,
    channel_string,
    judge_channel_signed,
    judge_client_error,
    judge_key,
    judge_own_id,
    judge_refusal_status,
    judge_unsigned,
    judge_user_signed,
    signed,
)
from .names import (
    FIXED_SOCKET_IDS,
    MALFORMED_SOCKET_IDS,
    granted_names,
    malformed_socket_ids,
    names_around,
    names_under,
    near_misses,
    socket_ids,
)
from .runner import AuthCheck, CheckRun, Judged, NotApplicable, failing

__all__ = ["CHECKS", "check_names"]

CheckFn = Callable[[CheckRun, Mapping[str, Any]], str]
CHECKS: dict[str, AuthCheck] = {}

_SOCKET = FIXED_SOCKET_IDS[0]


def _check(name: str, *params: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        CHECKS[name] = AuthCheck(name, frozenset(params), fn)
        return fn

    return register


def check_names() -> tuple[str, ...]:
    """The names a spec file of subject auth-endpoint may use (validate-specs holds it to
    them)."""
    return tuple(sorted(CHECKS))


def _granted(run: CheckRun, presence: bool | None = None) -> list[tuple[str, Pattern]]:
    """(user, pattern) for every pattern the certified users hold (of one channel type)."""
    policy = run.setup.policy
    return [
        (user, p)
        for user in run.setup.users
        for p in dict.fromkeys(policy.patterns_of(user))
        if presence is None or p.presence == presence
    ]


def _judged(run: CheckRun, what: str) -> str:
    judged = run.stats["judged"]
    if judged == 0:
        raise PreconditionFailed(f"nothing to judge: {what}")
    sent, reused = run.stats["requests_sent"], run.stats["replies_reused"]
    return f"{judged} replies judged ({sent} requests sent, {reused} replies of earlier checks)"


# Granted channels: the signature, the key part, the user's own id.


@_check("granted_channels_signed", "type")
def granted_channels_signed(run: CheckRun, params: Mapping[str, Any]) -> str:
    presence = params.get("type") == "presence"
    granted = _granted(run, presence)
    if not granted:
        kind = "presence" if presence else "private"
        raise NotApplicable(f"the policy grants the certified users no {kind} channel")
    setup = run.setup

    def body(item: tuple[str, str, str]) -> Judged:
        user, channel, socket_id = item
        if not setup.policy.allows(user, channel):
            return False
        request = run.channel_request(user, socket_id, channel)
        reply = run.send(request)
        problem = judge_channel_signed(
            reply, secret=setup.app_secret, socket_id=socket_id, channel=channel, presence=presence
        )
        return failing(request, problem)

    fixed = [
        (user, name, socket_id)
        for user, pattern in granted
        for name in granted_names(pattern)
        for socket_id in FIXED_SOCKET_IDS
    ]
    strategy = st.sampled_from(granted).flatmap(
        lambda pair: st.tuples(st.just(pair[0]), names_under([pair[1]]), socket_ids())
    )
    run.explore(fixed, strategy, body)
    return _judged(run, "no granted channel")


@_check("auth_key_is_app_key", "endpoint")
def auth_key_is_app_key(run: CheckRun, params: Mapping[str, Any]) -> str:
    endpoint: Endpoint = "user" if params.get("endpoint") == "user" else "channel"
    key = run.setup.app_key

    def body(item: tuple[str, str | None, str]) -> Judged:
        user, channel, socket_id = item
        if endpoint == "user":
            request = run.user_request(user, socket_id)
        else:
            request = run.channel_request(user, socket_id, channel)
        reply = run.send(request)
        if not signed(reply):
            return False
        return failing(request, judge_key(reply, key))

    if endpoint == "user":
        fixed: list[tuple[str, str | None, str]] = [
            (user, None, socket_id) for user in run.setup.users for socket_id in FIXED_SOCKET_IDS
        ]
    else:
        fixed = [(user, p.instance("x"), _SOCKET) for user, p in _granted(run)]
        if not fixed:
            raise NotApplicable("the policy grants the certified users no channel")
    run.explore(fixed, None, body)
    return _judged(run, "no request was signed, so no key part could be read")


def _spoofs(run: CheckRun, endpoint: Endpoint) -> list[tuple[tuple[str, str], ...]]:
    """Extra form fields that claim another identity (what a caller could add to the form)."""
    others = [u.id for u in run.setup.policy.users.values()] + ["0", "admin"]
    spoofs: list[tuple[tuple[str, str], ...]] = [()]
    for other in dict.fromkeys(others):
        if endpoint == "channel":
            data = json.dumps({"user_id": other, "user_info": {"name": "spoof"}})
            spoofs += [(("user_id", other),), (("channel_data", data),)]
        else:
            data = json.dumps({"id": other})
            spoofs += [(("id", other),), (("user_id", other),), (("user_data", data),)]
    return spoofs


@_check("own_id", "endpoint")
def own_id(run: CheckRun, params: Mapping[str, Any]) -> str:
    endpoint: Endpoint = "user" if params.get("endpoint") == "user" else "channel"
    policy = run.setup.policy
    spoofs = _spoofs(run, endpoint)

    def body(item: tuple[str, str, tuple[tuple[str, str], ...]]) -> Judged:
        user, channel, extra = item
        if endpoint == "user":
            request = run.user_request(user, _SOCKET, extra)
        else:
            request = run.channel_request(user, _SOCKET, channel, extra)
        reply = run.send(request)
        if not signed(reply):
            return False
        return failing(request, judge_own_id(reply, policy.users[user].id, endpoint))

    if endpoint == "user":
        targets = [(user, "") for user in run.setup.users]
    else:
        targets = [(user, p.instance("x")) for user, p in _granted(run, presence=True)]
        if not targets:
            raise NotApplicable("the policy grants the certified users no presence channel")
    fixed = [(user, channel, extra) for user, channel in targets for extra in spoofs]
    run.explore(fixed, None, body)
    return _judged(run, "no request was signed, so no id could be read")


@_check("user_auth_signed")
def user_auth_signed(run: CheckRun, params: Mapping[str, Any]) -> str:
    setup = run.setup

    def body(item: tuple[str, str]) -> Judged:
        user, socket_id = item
        request = run.user_request(user, socket_id)
        reply = run.send(request)
        return failing(
            request, judge_user_signed(reply, secret=setup.app_secret, socket_id=socket_id)
        )

    fixed = [(user, s) for user in setup.users for s in FIXED_SOCKET_IDS]
    strategy = st.tuples(st.sampled_from(setup.users), socket_ids())
    run.explore(fixed, strategy, body)
    return _judged(run, "no user")


# Refusals: what nobody may have, what a user may not have, what is malformed.


def _ungranted(run: CheckRun, user: str, name: str) -> bool:
    return valid_channel_name(name) and not run.setup.policy.allows(user, name)


def _candidates(run: CheckRun) -> list[str]:
    """Every pattern's near misses and every user's granted names: each user must be refused
    the ones the policy does not give them."""
    patterns = run.setup.policy.all_patterns()
    names = [n for p in patterns for n in granted_names(p)]
    names += [n for p in patterns for n in near_misses(p)]
    return list(dict.fromkeys(names))


@_check("ungranted_refused", "judge")
def ungranted_refused(run: CheckRun, params: Mapping[str, Any]) -> str:
    """A logged-in user's requests for channels the policy does not give them: no signature
    (``judge: signature``) and, refused, a 403 (``judge: status``)."""
    setup = run.setup
    by_status = params.get("judge") == "status"

    def body(item: tuple[str, str]) -> Judged:
        user, channel = item
        if not _ungranted(run, user, channel):
            return False
        request = run.channel_request(user, _SOCKET, channel)
        reply = run.send(request)
        if by_status:
            if signed(reply):
                return False
            return failing(request, judge_refusal_status(reply, (403,)))
        strings = (channel_string(_SOCKET, channel),)
        return failing(request, judge_unsigned(reply, secret=setup.app_secret, strings=strings))

    fixed = [(user, name) for user in setup.users for name in _candidates(run)]
    patterns = setup.policy.all_patterns()
    strategy = st.tuples(st.sampled_from(setup.users), names_around(patterns))
    run.explore(fixed, strategy, body)
    return _judged(run, "every request was signed, so no refusal could be judged")


@_check("anonymous_refused", "endpoint", "judge")
def anonymous_refused(run: CheckRun, params: Mapping[str, Any]) -> str:
    """Requests with no login (only the every_request headers and cookies): no signature, and
    a 401 or 403."""
    setup = run.setup
    endpoint: Endpoint = "user" if params.get("endpoint") == "user" else "channel"
    by_status = params.get("judge") == "status"

    def body(channel: str) -> Judged:
        if endpoint == "user":
            request = run.user_request(None, _SOCKET)
        else:
            request = run.channel_request(None, _SOCKET, channel)
        reply = run.send(request)
        if by_status:
            if signed(reply):
                return False
            return failing(request, judge_refusal_status(reply, (401, 403)))
        strings = (channel_string(_SOCKET, channel),) if endpoint == "channel" else ()
        return failing(request, judge_unsigned(reply, secret=setup.app_secret, strings=strings))

    patterns = setup.policy.all_patterns()
    fixed = [""] if endpoint == "user" else [n for p in patterns for n in granted_names(p)]
    run.explore(fixed, None if endpoint == "user" else names_under(patterns), body)
    return _judged(run, "every request was signed, so no refusal could be judged")


def _any_granted(run: CheckRun) -> tuple[str, str]:
    granted = _granted(run)
    if not granted:
        raise NotApplicable("the policy grants the certified users no channel")
    user, pattern = granted[0]
    return user, pattern.instance("x")


@_check("malformed_socket_id", "endpoint", "judge")
def malformed_socket_id(run: CheckRun, params: Mapping[str, Any]) -> str:
    """A socket id no server hands out, for a channel the user may read (or a sign-in): no
    signature (``judge: signature``), a 4xx (``judge: status``)."""
    setup = run.setup
    endpoint: Endpoint = "user" if params.get("endpoint") == "user" else "channel"
    by_status = params.get("judge") == "status"
    user, channel = (setup.users[0], "") if endpoint == "user" else _any_granted(run)

    def body(socket_id: str | None) -> Judged:
        if endpoint == "user":
            request = run.user_request(user, socket_id)
        else:
            request = run.channel_request(user, socket_id, channel)
        reply = run.send(request)
        if by_status:
            return not signed(reply) and failing(request, judge_client_error(reply))
        strings = (channel_string(socket_id or "", channel),) if endpoint == "channel" else ()
        return failing(request, judge_unsigned(reply, secret=setup.app_secret, strings=strings))

    run.explore(MALFORMED_SOCKET_IDS, malformed_socket_ids(), body)
    return _judged(run, "no malformed socket id")


@_check("malformed_channel_name", "judge")
def malformed_channel_name(run: CheckRun, params: Mapping[str, Any]) -> str:
    """Names the docs' rules refuse (characters, length, ``:``), most of them under a pattern
    the user holds, and a form without channel_name: no signature, a 4xx."""
    setup = run.setup
    by_status = params.get("judge") == "status"

    def body(item: tuple[str, str | None]) -> Judged:
        user, channel = item
        if channel is not None and valid_channel_name(channel):
            return False
        request = run.channel_request(user, _SOCKET, channel)
        reply = run.send(request)
        if by_status:
            return not signed(reply) and failing(request, judge_client_error(reply))
        strings = (channel_string(_SOCKET, channel or ""),)
        return failing(request, judge_unsigned(reply, secret=setup.app_secret, strings=strings))

    fixed: list[tuple[str, str | None]] = [(user, None) for user in setup.users]
    fixed += [(user, name) for user in setup.users for name in _candidates(run)]
    patterns = setup.policy.all_patterns()
    strategy = st.tuples(st.sampled_from(setup.users), names_around(patterns))
    run.explore(fixed, strategy, body)
    return _judged(run, "no malformed channel name")
