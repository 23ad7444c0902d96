"""Signed-in users: which connections are signed in as whom (``pusher:signin``).

Server-to-user publishes and ``terminate_connections`` are routed through this index.
"""

from __future__ import annotations

__all__ = ["UserRegistry"]


class UserRegistry:
    """User id <-> socket ids; a socket is signed in as at most one user."""

    def __init__(self) -> None:
        self._sockets: dict[str, dict[str, None]] = {}
        self._users: dict[str, str] = {}

    def sign_in(self, socket_id: str, user_id: str) -> None:
        """Record a sign-in; signing in as another user first signs the socket out."""
        self.sign_out(socket_id)
        self._users[socket_id] = user_id
        self._sockets.setdefault(user_id, {})[socket_id] = None

    def sign_out(self, socket_id: str) -> None:
        user_id = self._users.pop(socket_id, None)
        if user_id is None:
            return
        sockets = self._sockets[user_id]
        del sockets[socket_id]
        if not sockets:
            del self._sockets[user_id]

    def user_of(self, socket_id: str) -> str | None:
        return self._users.get(socket_id)

    def sockets_of(self, user_id: str) -> tuple[str, ...]:
        """Connections signed in as ``user_id``, in sign-in order."""
        return tuple(self._sockets.get(user_id, ()))

    def __len__(self) -> int:
        return len(self._sockets)
