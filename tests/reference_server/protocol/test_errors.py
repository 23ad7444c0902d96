from __future__ import annotations

import pytest

from reference_server.protocol import errors


@pytest.mark.parametrize(
    ("cls", "code", "close_code"),
    [
        (errors.UnknownAppKey, 4001, 4001),
        (errors.PongTimeout, 4201, 4201),
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
