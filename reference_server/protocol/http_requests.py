"""HTTP API requests and their authentication: steps 1-6 of every endpoint.

Checks run in the documented order (docs/reference-server.md, "HTTP API"), so that a request
breaking several rules is always refused for the first one: the app id in the path, then the
auth parameters, key, version, timestamp, body MD5 and signature. GET requests sign their
query and have no body, hence no ``body_md5``. The clock is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..serves import serves
from .errors import NotFound, Unauthorized
from .signing import body_md5, sign_http_request, signatures_match

__all__ = [
    "AUTH_PARAMS",
    "ApiLimits",
    "AppCredentials",
    "HttpRequest",
    "RequestAuthenticator",
]

#: The query parameters that sign a request (``body_md5`` besides, when there is a body).
AUTH_PARAMS = ("auth_key", "auth_timestamp", "auth_version", "auth_signature")
_INTEGER = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class AppCredentials:
    app_id: str
    key: str
    secret: str


@dataclass(frozen=True)
class ApiLimits:
    """Hosted Pusher's documented limits; only ``max_event_bytes`` is configurable."""

    max_event_bytes: int = 10240
    max_body_bytes: int = 1024 * 1024
    max_name_length: int = 200
    max_channels: int = 100
    #: Events in one ``batch_events`` request (multi-tenant clusters).
    max_batch_events: int = 10
    #: Seconds ``auth_timestamp`` may differ from the server clock.
    timestamp_tolerance: int = 600


@dataclass(frozen=True)
class HttpRequest:
    """The parts of an HTTP request that signing and validation look at."""

    method: str
    path: str
    #: Decoded query parameters, in request order, repeats kept.
    query: tuple[tuple[str, str], ...]
    body: bytes

    def param(self, name: str) -> str | None:
        """First value of a query parameter, as aiohttp's ``MultiDict.get`` would give."""
        for key, value in self.query:
            if key == name:
                return value
        return None


class RequestAuthenticator:
    """Steps 1-6 for one app; each check is a method so a variant can change just that one."""

    def __init__(self, app: AppCredentials, limits: ApiLimits) -> None:
        self.app = app
        self.limits = limits

    def validate(self, app_id: str, request: HttpRequest, now: float) -> None:
        """Steps 1-6, shared by every endpoint: app id, then ``authenticate``.

        Raises:
            HttpApiError: a subclass carrying the status of the first check that fails.
        """
        self.check_app(app_id)
        self.authenticate(request, now)

    def check_app(self, app_id: str) -> None:
        """Step 1: the app id in the path.

        Raises:
            NotFound: an unknown app id.
        """
        if app_id != self.app.app_id:
            serves("HTTP-GEN-04")
            raise NotFound(f"Unknown app id {app_id}")

    def authenticate(self, request: HttpRequest, now: float) -> None:
        """Steps 2-6: auth parameters, key, version, timestamp, body MD5 and signature.

        Raises:
            Unauthorized: for the first check that fails.
        """
        params = {name: request.param(name) for name in (*AUTH_PARAMS, "body_md5")}
        for name in AUTH_PARAMS:
            if params[name] is None:
                serves("HTTP-AUTH-01")
                raise Unauthorized(f"Missing {name}")
        if request.body and params["body_md5"] is None:
            serves("HTTP-AUTH-01", "HTTP-AUTH-05")
            raise Unauthorized("Missing body_md5")
        key, version = params["auth_key"], params["auth_version"]
        timestamp, signature = params["auth_timestamp"], params["auth_signature"]
        assert key is not None
        assert timestamp is not None
        assert signature is not None
        self._check_key(key)
        if version != "1.0":
            serves("HTTP-AUTH-07")
            raise Unauthorized(f"Unsupported auth_version {version}")
        self._check_timestamp(timestamp, now)
        given_md5 = params["body_md5"]
        if given_md5 is not None:
            self._check_body_md5(request.body, given_md5)
        serves("HTTP-AUTH-02")
        self._check_signature(request, signature)

    def _check_key(self, key: str) -> None:
        if key != self.app.key:
            serves("HTTP-AUTH-06")
            raise Unauthorized(f"Unknown auth_key {key}")

    def _check_timestamp(self, timestamp: str, now: float) -> None:
        if _INTEGER.fullmatch(timestamp) is None:
            serves("HTTP-AUTH-03")
            raise Unauthorized("auth_timestamp must be an integer")
        tolerance = self.limits.timestamp_tolerance
        # Over 18 digits is far outside any window (and int() refuses over 4300 digits).
        if len(timestamp) > 18 or abs(now - int(timestamp)) > tolerance:
            serves("HTTP-AUTH-03")
            raise Unauthorized(
                f"Timestamp expired: given {timestamp[:20]}, now {int(now)}; "
                f"tolerance is {tolerance} s"
            )

    def _check_body_md5(self, body: bytes, given: str) -> None:
        if not signatures_match(body_md5(body), given):
            serves("HTTP-AUTH-05")
            raise Unauthorized("body_md5 does not match the body")

    def _check_signature(self, request: HttpRequest, signature: str) -> None:
        expected = sign_http_request(self.app.secret, request.method, request.path, request.query)
        if not signatures_match(expected, signature):
            serves("HTTP-AUTH-04")
            raise Unauthorized("Invalid auth_signature")
