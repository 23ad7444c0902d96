"""When a virtual tab tries again, modelled on what pusher-js does for each way a connection
ends (the close-code classes of the protocol docs; see docs/simulate.md).

Pure: the tab asks, this answers, so the policy is tested without a socket.
"""

from __future__ import annotations

import random

__all__ = ["retry_delay"]

#: pusher-js waits 1 s after a close it has no rule for, and after a failed attempt.
DEFAULT_DELAY = 1.0


def retry_delay(
    close_code: int | None, *, gave_up: bool = False, jitter: float = 0.0, rng: random.Random
) -> float | None:
    """Seconds to wait before the next connection, or None: never try again.

    ``close_code`` is the code the server closed with (None: no close frame, or no connection
    at all); ``gave_up`` means the tab itself dropped a link that stopped answering pings,
    which pusher-js follows with an immediate attempt. ``jitter`` adds up to that many
    seconds, drawn from ``rng`` (pusher-js adds none).
    """
    if gave_up:
        delay = 0.0
    elif close_code is None:
        delay = DEFAULT_DELAY
    elif 4000 <= close_code <= 4099:
        return None  # "the connection SHOULD NOT be re-established unchanged"
    elif 4200 <= close_code <= 4299:
        delay = 0.0  # "SHOULD be re-established immediately"
    else:
        delay = DEFAULT_DELAY  # 4100-4199 "at least 1 second"; anything else: 1 s
    return delay + (rng.uniform(0, jitter) if jitter > 0 else 0.0)
