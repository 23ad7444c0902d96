"""Whether an app takes one more connection: its enabled flag and its connection quota.

The adapter counts the app's open connections; this module only decides, so the rule is the
same whatever keeps the count (one process today, a shared store tomorrow).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..serves import serves
from .errors import AppDisabled, OverConnectionQuota, ProtocolError

__all__ = ["Admission", "admission_refusal"]


@dataclass(frozen=True)
class Admission:
    """An app's own limits on who may connect."""

    enabled: bool = True
    #: Open connections the app may have at once; ``None``: no quota.
    max_connections: int | None = None


def admission_refusal(admission: Admission, open_connections: int) -> ProtocolError | None:
    """The error that refuses a new connection, or ``None`` to let it in.

    ``open_connections`` counts the app's established connections, not this one: a quota of N
    admits the N-th and refuses the one after. A disabled app is told so even when it is also
    full, since that is what the client can act on.
    """
    if not admission.enabled:
        serves("PROTO-CONN-11")
        return AppDisabled("Application disabled")
    limit = admission.max_connections
    if limit is not None and open_connections >= limit:
        serves("PROTO-CONN-11")
        return OverConnectionQuota(f"Application is over connection quota ({limit})")
    return None
