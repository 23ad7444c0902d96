"""Whom the suite trusts when it talks to a wss:// or https:// target.

Staging servers and the bundled server under test certificates are signed by a private CA that
the system store does not hold. ``--ca-file`` (or a target file's ``ca_file``) names that CA;
verification stays on, host names included: a check that passed only because verification was
off would certify a deployment its real clients cannot reach.

``--insecure`` turns verification off all the same, for a deployment whose CA the user cannot
get at (a test box behind a self-signed certificate). It is never silent: every command that
takes it prints ``insecure_warning`` and the reports say the certificate was not verified.
"""

from __future__ import annotations

import functools
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from .errors import TargetUnreachable, UsageError

__all__ = [
    "check_ca_file",
    "check_trusted",
    "client_context",
    "insecure_warning",
    "refuse_both_trust_choices",
]


def check_ca_file(path: str) -> str:
    """The absolute path, once it is known to hold certificates the standard library can load, so a
    wrong path ends a run before it starts (status 2) instead of failing every check."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"CA file not found: {path}")
    try:
        _load(str(file.resolve()))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise UsageError(f"CA file {path} holds no usable PEM certificate: {exc}") from None
    return str(file.resolve())


def refuse_both_trust_choices(ca_file: str | None, insecure: bool) -> None:
    """A CA to verify against and no verification at all cannot both be meant."""
    if ca_file and insecure:
        raise UsageError(
            "give either --ca-file (verify against this CA) or --insecure (verify nothing),"
            " not both"
        )


def insecure_warning(url: str) -> str:
    """The one line every command prints when ``--insecure`` is on."""
    return (
        f"warning: --insecure: the TLS certificate of {url} is NOT verified; anyone on the"
        " path could stand in for it, and real clients may refuse what this run accepts"
    )


@functools.cache
def _load(path: str) -> ssl.SSLContext:
    # On top of the system store: a health URL behind a public certificate still verifies.
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=path)
    return context


@functools.cache
def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def client_context(ca_file: str | None, *, insecure: bool = False) -> ssl.SSLContext | None:
    """The context for a TLS connection to the target: ``None`` without a CA file, so that the
    client libraries keep their own defaults (the system store); one that checks nothing with
    ``insecure``. Contexts are built once per file: loading a store on every connection would
    cost more than the handshake."""
    if insecure:
        return _unverified()
    if ca_file is None:
        return None
    return _load(str(Path(ca_file).resolve()))


def check_trusted(url: str, context: ssl.SSLContext | None, timeout: float = 3.0) -> None:
    """Fail fast, with one line, when a ``wss://`` or ``https://`` URL's certificate is not
    trusted: otherwise every check would fail on its own handshake, each saying less.

    Raises:
        TargetUnreachable: the certificate did not verify, or the TLS handshake failed.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("wss", "https"):
        return
    host, port = parts.hostname or "", parts.port or 443
    checking = context or ssl.create_default_context()
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            checking.wrap_socket(sock, server_hostname=host),
        ):
            pass
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or exc.reason or str(exc)
        raise TargetUnreachable(
            f"target's TLS certificate at {host}:{port} ({url}) is not trusted: {reason}; give"
            " --ca-file PEM (the CA that signed it) or, to skip verification, --insecure"
        ) from None
    except ssl.SSLError as exc:
        raise TargetUnreachable(
            f"TLS handshake with {host}:{port} ({url}) failed: {exc.reason or exc}"
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise TargetUnreachable(f"target unreachable: {host}:{port} ({url}): {reason}") from None
