from __future__ import annotations

from reference_server.protocol.users import UserRegistry


def test_sign_in_and_out() -> None:
    users = UserRegistry()
    users.sign_in("1.1", "u")
    users.sign_in("1.2", "u")
    users.sign_in("1.3", "v")
    assert users.sockets_of("u") == ("1.1", "1.2")
    assert users.user_of("1.3") == "v"
    users.sign_in("1.3", "u")  # Re-signing as another user moves the socket.
    assert users.sockets_of("v") == ()
    users.sign_out("1.1")
    users.sign_out("1.1")
    assert users.sockets_of("u") == ("1.2", "1.3")
    assert users.user_of("1.1") is None
    users.sign_out("1.2")
    users.sign_out("1.3")
    assert len(users) == 0
