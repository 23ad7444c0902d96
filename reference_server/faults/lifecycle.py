"""Faults in the handshake, the heartbeat and the handling of malformed input."""

from __future__ import annotations

import json

from ..protocol import frames
from ..protocol.errors import (
    AppDisabled,
    InvalidJson,
    InvalidMessage,
    OverConnectionQuota,
    ProtocolError,
)
from ..protocol.lifecycle import SendBinary, State
from .catalogue import Fault
from .connection import ConnectionWithFaults

__all__ = ["LifecycleFaults"]


class LifecycleFaults(ConnectionWithFaults):
    def _knows_app_key(self, app_key: str) -> bool:
        return self.has(Fault.UNKNOWN_KEY_ACCEPTED) or super()._knows_app_key(app_key)

    def open(
        self, app_key: str, now: float, protocol: int | None = None, open_connections: int = 0
    ) -> None:
        if (
            self.has(Fault.UNKNOWN_KEY_CLOSE_4009)
            and self.state is State.CONNECTING
            and not self._knows_app_key(app_key)
        ):
            # Refused with the "unauthorized, do not reconnect" code meant for other errors.
            message = f"App key {app_key} does not exist"
            self._send(frames.error(message, 4009))
            self._close(4009, message)
            return
        super().open(app_key, now, protocol, open_connections)

    def _admission_refusal(self, open_connections: int) -> ProtocolError | None:
        refusal = super()._admission_refusal(open_connections)
        if isinstance(refusal, AppDisabled) and self.has(Fault.DISABLED_APP_ACCEPTED):
            # A switched-off app greeted like any other.
            return None
        if isinstance(refusal, OverConnectionQuota) and self.has(Fault.QUOTA_IGNORED):
            # The quota read but never enforced.
            return None
        return refusal

    def _supports_protocol(self, protocol: int | None) -> bool:
        # Protocols 1 to 3 greeted like any other.
        return self.has(Fault.OLD_PROTOCOL_ACCEPTED) or super()._supports_protocol(protocol)

    def _fail(self, exc: ProtocolError) -> None:
        if (
            self.has(Fault.NO_ERROR_BEFORE_CLOSE_LEGACY)
            and exc.close_code is not None
            and self._legacy_protocol()
        ):
            # A client of protocol < 6 gets the close alone, as a protocol 6+ client may.
            self._close(exc.close_code, exc.message)
            return
        super()._fail(exc)

    def _established_frame(self, socket_id: str) -> str:
        frame = super()._established_frame(socket_id)
        if not self.has(Fault.ESTABLISHED_DATA_AS_OBJECT):
            return frame
        # ``data`` embedded as an object instead of the JSON string of one.
        decoded = json.loads(frame)
        decoded["data"] = json.loads(decoded["data"])
        return frames.compact_json(decoded)

    def _pong(self) -> None:
        if self.has(Fault.NO_PONG):
            return
        if self.has(Fault.PONG_AS_BINARY):
            self._outgoing.append(SendBinary(frames.PONG.encode()))
            return
        super()._pong()

    def receive_ping(self, payload: bytes, now: float) -> None:
        if self.has(Fault.WS_PING_IGNORED):
            self._activity(now)
            return
        super().receive_ping(payload, now)

    def _ping(self) -> None:
        # ``no_idle_ping``: the pong timer still runs, only the frame is missing.
        if not self.has(Fault.NO_IDLE_PING):
            super()._ping()

    def _pong_deadline(self, ping_sent_at: float) -> float | None:
        if self.has(Fault.PONG_TIMEOUT_NOT_ENFORCED):
            return None
        return super()._pong_deadline(ping_sent_at)

    def receive_binary(self, data: bytes, now: float) -> None:
        if self.state is State.OPEN:
            self.malformed_inputs += 1
        if self.has(Fault.BINARY_FRAME_CLOSE_1011):
            if self._activity(now):
                self._close(1011, "Internal error")
            return
        super().receive_binary(data, now)

    def _malformed(self, exc: InvalidMessage) -> None:
        self.malformed_inputs += 1
        if self.has(Fault.INVALID_JSON_CLOSES) and isinstance(exc, InvalidJson):
            self._close(1008, exc.message)
            return
        if self.has(Fault.MALFORMED_ERROR_BROADCAST) and self.socket_id is not None:
            others = {
                target
                for channel in self._subscriptions
                for target in self._registry.targets(channel, exclude=self.socket_id)
            }
            self._deliver(frames.error(exc.message, exc.code), tuple(sorted(others)))
        super()._malformed(exc)
