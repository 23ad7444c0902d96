"""The robustness properties: tokens are swapped per example, and the properties really fail
against a server that breaks the rule (checked against the bundled server with a fault switched
on). What the strategies generate is tested in test_malformed_*_inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conformance.context import CheckContext, RunSettings
from conformance.errors import CheckFailed
from conformance.loop import LoopThread
from conformance.properties import PROPERTIES
from conformance.properties.malformed_inputs import WS_TEXT_KINDS, HttpInput, WsInput
from conformance.properties.robustness import _retoken
from conformance.refserver import start_bundled
from conformance.spec import Check

TOKEN = "robustness-0123456789abcdef"


def test_retoken_swaps_the_placeholder() -> None:
    other = "robustness-fedcba9876543210"
    ws = _retoken(WsInput("non_json", f"x{TOKEN}y"), TOKEN, other)
    assert ws.payload == f"x{other}y"
    http = _retoken(HttpInput("bad_json", f"{{{TOKEN}".encode()), TOKEN, other)
    assert http.body == f"{{{other}".encode()


def test_the_properties_are_registered() -> None:
    assert PROPERTIES["ws_malformed_input"].params == {"kinds", "assert", "examples"}
    assert PROPERTIES["http_malformed_request"].params == {"kinds", "assert", "examples"}


# -- against the bundled server ------------------------------------------------------------


def _run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faults: str, name: str, params: dict[str, Any]
) -> dict[str, int]:
    monkeypatch.setenv("PUSHER_REF_FAULTS", faults)
    server = start_bundled(tmp_path / "server.log")
    try:
        with LoopThread() as runner:
            check = Check(
                "ROBUST-T-01", "t", "t", "property", {}, property_name=name, params=params
            )
            ctx = CheckContext(server.target, RunSettings(), check, runner)
            try:
                PROPERTIES[name].run(ctx, params)
            finally:
                runner.run(ctx.aclose())
            return ctx.stats
    finally:
        server.stop()


def test_ws_property_passes_on_the_clean_server_and_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = _run(
        tmp_path, monkeypatch, "", "ws_malformed_input",
        {"assert": ["sender", "liveness", "isolation"], "kinds": list(WS_TEXT_KINDS),
         "examples": 5},
    )  # fmt: skip
    assert stats["malformed_inputs"] >= 5


@pytest.mark.parametrize(
    ("fault", "name", "params", "words"),
    [
        ("malformed_error_broadcast", "ws_malformed_input", {"assert": ["isolation"]},
         "should never see"),
        ("invalid_json_closes", "ws_malformed_input",
         {"assert": ["sender"], "kinds": ["non_json"]}, "closed the connection"),
        ("oversized_body_500", "http_malformed_request",
         {"assert": ["status"], "kinds": ["oversized"]}, "HTTP 500"),
    ],
)  # fmt: skip
def test_the_property_fails_against_a_broken_server(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    name: str,
    params: dict[str, Any],
    words: str,
) -> None:
    with pytest.raises(CheckFailed, match=words):
        _run(tmp_path, monkeypatch, fault, name, {**params, "examples": 4})
