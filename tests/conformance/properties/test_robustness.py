"""The stage both robustness properties share: fresh channels, tokens swapped per example, and
the ``assert``/``kinds`` parameters checked before anything is sent."""

from __future__ import annotations

import re

import pytest

from conformance.errors import UsageError
from conformance.properties.malformed_inputs import HttpInput, WsInput
from conformance.properties.robustness import Stage, chosen_asserts, chosen_kinds, retoken

TOKEN = "robustness-0123456789abcdef"


def test_retoken_swaps_the_placeholder() -> None:
    other = "robustness-fedcba9876543210"
    ws = retoken(WsInput("non_json", f"x{TOKEN}y"), TOKEN, other)
    assert ws.payload == f"x{other}y"
    binary = WsInput("binary", TOKEN.encode())
    assert retoken(binary, TOKEN, other) is binary
    http = retoken(HttpInput("bad_json", f"{{{TOKEN}".encode()), TOKEN, other)
    assert http.body == f"{{{other}".encode()


def test_a_fresh_stage_names_channels_no_other_run_uses() -> None:
    one, two = Stage.fresh(), Stage.fresh("127.0.9.9")
    assert re.fullmatch(r"robustness-[a-z0-9]{20}", one.public)
    assert re.fullmatch(r"private-robustness-[a-z0-9]{20}", one.private)
    assert re.fullmatch(r"robustness-[a-z0-9]{16}", one.token)
    assert one.channels == [one.public, one.private]
    assert one.source is None
    assert two.source == "127.0.9.9"
    assert {one.public, one.private, one.token}.isdisjoint({two.public, two.private, two.token})


def test_asserts_and_kinds_default_to_all_and_refuse_strangers() -> None:
    known = ("status", "service")
    assert chosen_asserts({}, known) == frozenset(known)
    assert chosen_asserts({"assert": "status"}, known) == {"status"}
    with pytest.raises(UsageError, match="assert takes status, service"):
        chosen_asserts({"assert": ["sender"]}, known)
    with pytest.raises(UsageError, match="assert takes"):
        chosen_asserts({"assert": []}, known)
    assert chosen_kinds({}, ("a", "b")) == ["a", "b"]
    assert chosen_kinds({"kinds": ["b"]}, ("a", "b")) == ["b"]
    with pytest.raises(UsageError, match="kinds takes a, b"):
        chosen_kinds({"kinds": ["c"]}, ("a", "b"))
