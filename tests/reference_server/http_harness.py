"""Signed HTTP API requests and the core's HTTP API objects, real or fault-switched, for the
server's HTTP API tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from reference_server.faults import Fault
from reference_server.faults.http_api import (
    ChannelQueriesWithFaults,
    EventParserWithFaults,
    PublisherWithFaults,
    RequestAuthenticatorWithFaults,
)
from reference_server.protocol.channels import ChannelRegistry
from reference_server.protocol.errors import HttpApiError
from reference_server.protocol.http_events import BatchPlan, EventParser, TriggerEvent
from reference_server.protocol.http_publish import Publisher
from reference_server.protocol.http_queries import ChannelQueries
from reference_server.protocol.http_requests import (
    ApiLimits,
    AppCredentials,
    HttpRequest,
    RequestAuthenticator,
)
from reference_server.protocol.presence import Member
from reference_server.protocol.signing import body_md5, sign_http_request

APP = AppCredentials("3", "278d425bdf160c739803", "7ad3773142a6692b25b8")
NOW = 1353088179
PATH = "/apps/3/events"
BATCH_PATH = "/apps/3/batch_events"
LIMITS = ApiLimits()
GOOD = {"name": "foo", "channel": "a", "data": "{}"}


def registry_with_presence() -> ChannelRegistry:
    """Users u1 (two connections) and u2 in ``presence-p``; two subscribers of ``pub``."""
    registry = ChannelRegistry()
    for socket_id, user in [("1.1", "u1"), ("1.2", "u1"), ("1.3", "u2")]:
        registry.subscribe("presence-p", socket_id)
        registry.presence.join("presence-p", socket_id, Member(user))
    registry.subscribe("pub", "1.1")
    registry.subscribe("pub", "1.4")
    return registry


def signed(
    body: bytes | dict[str, Any] = GOOD,
    /,
    *,
    drop: Iterable[str] = (),
    path: str = PATH,
    secret: str = APP.secret,
    **overrides: str,
) -> HttpRequest:
    """A correctly signed request, then altered: ``overrides`` and ``drop`` apply after signing
    unless they name a parameter that is itself signed, in which case the signature covers them.
    """
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    params = {
        "auth_key": APP.key,
        "auth_timestamp": str(NOW),
        "auth_version": "1.0",
        "body_md5": body_md5(raw),
    }
    if not raw:
        del params["body_md5"]
    params.update({k: v for k, v in overrides.items() if k != "auth_signature"})
    for name in drop:
        params.pop(name, None)
    query = list(params.items())
    signature = overrides.get("auth_signature", sign_http_request(secret, "POST", path, query))
    if "auth_signature" not in drop:
        query.append(("auth_signature", signature))
    return HttpRequest("POST", path, tuple(query), raw)


def signed_get(path: str, **params: str) -> HttpRequest:
    query = [
        ("auth_key", APP.key),
        ("auth_timestamp", str(NOW)),
        ("auth_version", "1.0"),
        *params.items(),
    ]
    query.append(("auth_signature", sign_http_request(APP.secret, "GET", path, query)))
    return HttpRequest("GET", path, tuple(query), b"")


def authenticator(
    faults: Iterable[Fault] = (), *, limits: ApiLimits = LIMITS
) -> RequestAuthenticator:
    active = frozenset(faults)
    if active:
        return RequestAuthenticatorWithFaults(APP, limits, active)
    return RequestAuthenticator(APP, limits)


def parser(faults: Iterable[Fault] = (), *, limits: ApiLimits = LIMITS) -> EventParser:
    active = frozenset(faults)
    return EventParserWithFaults(limits, active) if active else EventParser(limits)


def publisher(registry: ChannelRegistry, faults: Iterable[Fault] = ()) -> Publisher:
    active = frozenset(faults)
    return PublisherWithFaults(registry, active) if active else Publisher(registry)


def queries(registry: ChannelRegistry, faults: Iterable[Fault] = ()) -> ChannelQueries:
    active = frozenset(faults)
    return ChannelQueriesWithFaults(registry, active) if active else ChannelQueries(registry)


def validate(
    request: HttpRequest,
    faults: Iterable[Fault] = (),
    *,
    app_id: str = "3",
    now: float = NOW,
    limits: ApiLimits = LIMITS,
) -> TriggerEvent:
    """A trigger as the server checks it: authentication, then the event."""
    authenticator(faults, limits=limits).validate(app_id, request, now)
    return parser(faults, limits=limits).trigger(request)


def refused(request: HttpRequest, faults: Iterable[Fault] = (), **kwargs: Any) -> HttpApiError:
    with pytest.raises(HttpApiError) as info:
        validate(request, faults, **kwargs)
    return info.value


def validate_batch(request: HttpRequest, faults: Iterable[Fault] = ()) -> BatchPlan:
    """A batch as the server checks it: authentication, then the items."""
    authenticator(faults).validate("3", request, NOW)
    return parser(faults).batch(request.body)
