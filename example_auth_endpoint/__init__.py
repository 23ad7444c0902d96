"""An example app auth endpoint (aiohttp) for ``conformance auth-endpoint`` to certify, and a
deliberately faulty variant of it (``faults``), run with ``python -m example_auth_endpoint``.

``policy.yaml`` and ``credentials.yaml`` beside this file describe it to the certification
(docs/auth-endpoint-certification.md)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CREDENTIALS_FILE", "POLICY_FILE"]

#: The certification's view of the example: who may read what, and how each user logs in.
POLICY_FILE = Path(__file__).with_name("policy.yaml")
CREDENTIALS_FILE = Path(__file__).with_name("credentials.yaml")
