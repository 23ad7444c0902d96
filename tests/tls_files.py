"""Test certificates, made when a test asks (trustme): none is ever committed.

The CA is fresh each time, so a certificate that leaked from a test run is trusted by nothing.
"""

from __future__ import annotations

from pathlib import Path

import trustme

from conformance.bundled import BundledTls

__all__ = ["make_tls"]


def make_tls(folder: Path, *, plain_port: bool = False) -> BundledTls:
    """A CA and a server certificate for 127.0.0.1 and localhost, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = folder / "server.pem", folder / "server.key", folder / "ca.pem"
    server.cert_chain_pems[0].write_to_path(str(cert))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(cert), append=True)
    server.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    return BundledTls(cert, key, ca_file, plain_port=plain_port)
