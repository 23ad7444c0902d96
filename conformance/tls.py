"""Whom the suite trusts when it talks to a wss:// or https:// target.

Staging servers and the bundled server under test certificates are signed by a private CA that
the system store does not hold. ``--ca-file`` (or a target file's ``ca_file``) names that CA;
verification stays on, host names included: a check that passed only because verification was
off would certify a deployment its real clients cannot reach.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

from .errors import UsageError

__all__ = ["check_ca_file", "client_context"]


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


@functools.cache
def _load(path: str) -> ssl.SSLContext:
    # On top of the system store: a health URL behind a public certificate still verifies.
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=path)
    return context


def client_context(ca_file: str | None) -> ssl.SSLContext | None:
    """The context for a TLS connection to the target: ``None`` without a CA file, so that the
    client libraries keep their own defaults (the system store). Contexts are built once per
    file: loading a store on every connection would cost more than the handshake."""
    if ca_file is None:
        return None
    return _load(str(Path(ca_file).resolve()))
