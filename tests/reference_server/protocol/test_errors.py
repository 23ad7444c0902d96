from __future__ import annotations

import pytest

from reference_server.protocol import errors


@pytest.mark.parametrize(
    ("cls", "code", "close_code"),
    [
        (errors.UnknownAppKey, 4001, 4001),
        (errors.PongTimeout, 4201, 4201),
        (errors.ServerShuttingDown, 4200, 4200),
        (errors.UnsupportedFrame, None, 1003),
        (errors.InvalidMessage, None, None),
        (errors.InvalidChannelName, None, None),
        (errors.ExistingSubscription, None, None),
        (errors.UnsupportedChannel, None, None),
        (errors.SubscriptionRefused, None, None),
        (errors.UnknownEvent, None, None),
        (errors.ClientEventRefused, None, None),
    ],
)
def test_protocol_errors_carry_their_codes(
    cls: type[errors.ProtocolError], code: int | None, close_code: int | None
) -> None:
    exc = cls("why")
    assert (exc.code, exc.close_code, exc.message, str(exc)) == (code, close_code, "why", "why")
    assert isinstance(exc, errors.PusherError)


def test_only_the_binary_frame_close_is_unreported() -> None:
    assert not errors.UnsupportedFrame.reported
    assert errors.UnknownAppKey.reported


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (errors.BadRequest, 400),
        (errors.Unauthorized, 401),
        (errors.NotFound, 404),
        (errors.PayloadTooLarge, 413),
    ],
)
def test_http_errors_carry_their_status(cls: type[errors.HttpApiError], status: int) -> None:
    assert cls("x").status == status


def _protocol_errors() -> list[type[errors.ProtocolError]]:
    found: list[type[errors.ProtocolError]] = []
    pending = [errors.ProtocolError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending += cls.__subclasses__()
    return [cls for cls in found if cls.__module__ == errors.__name__]


def test_non_closing_errors_never_use_the_closing_code_ranges() -> None:
    """Clients read 4000-4299 as "this connection is over" (4000-4099 do not retry, 4100-4199
    retry later, 4200-4299 reconnect now): an error that leaves the connection open must not
    carry one."""
    for cls in _protocol_errors():
        if cls.close_code is None:
            assert cls.code is None or not 4000 <= cls.code <= 4299, cls
        elif cls.close_code >= 4000:
            # A Pusher close code is always explained in a pusher:error first.
            assert cls.reported, cls
