"""Structured log records: an event name plus fields, rendered as JSON lines by the CLI."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["log", "logger"]

logger = logging.getLogger("reference_server")


def log(level: int, event: str, **fields: Any) -> None:
    """Emit one structured log record; the CLI renders it as a JSON line."""
    logger.log(level, event, extra={"fields": fields})
