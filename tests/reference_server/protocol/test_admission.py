from __future__ import annotations

import pytest

from reference_server.protocol.admission import Admission, admission_refusal
from reference_server.protocol.errors import AppDisabled, OverConnectionQuota


def test_an_enabled_app_without_quota_takes_every_connection() -> None:
    assert admission_refusal(Admission(), 0) is None
    assert admission_refusal(Admission(), 10**6) is None


@pytest.mark.parametrize("open_connections", [0, 5])
def test_a_disabled_app_refuses_with_4003(open_connections: int) -> None:
    refusal = admission_refusal(Admission(enabled=False, max_connections=1), open_connections)
    assert isinstance(refusal, AppDisabled)
    assert (refusal.code, refusal.close_code) == (4003, 4003)


def test_the_quota_admits_up_to_its_size_and_refuses_the_next_with_4004() -> None:
    admission = Admission(max_connections=2)
    assert admission_refusal(admission, 0) is None
    assert admission_refusal(admission, 1) is None
    refusal = admission_refusal(admission, 2)
    assert isinstance(refusal, OverConnectionQuota)
    assert (refusal.code, refusal.close_code) == (4004, 4004)


def test_a_quota_of_zero_refuses_every_connection() -> None:
    assert isinstance(admission_refusal(Admission(max_connections=0), 0), OverConnectionQuota)
