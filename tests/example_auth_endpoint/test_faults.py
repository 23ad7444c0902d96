"""The example's fault switches: parsed by name, refused with the known names listed."""

from __future__ import annotations

import pytest

from example_auth_endpoint.__main__ import main
from example_auth_endpoint.faults import Fault, parse_faults


def test_fault_names_parse() -> None:
    assert parse_faults("") == frozenset()
    assert parse_faults(" prefix_match, wrong_secret ") == {Fault.PREFIX_MATCH, Fault.WRONG_SECRET}
    with pytest.raises(ValueError, match=r"unknown fault\(s\) nope \(known: prefix_match"):
        parse_faults("prefix_match,nope")


def test_the_server_refuses_an_unknown_fault(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--faults", "nope"]) == 2
    assert "unknown fault(s) nope" in capsys.readouterr().err
