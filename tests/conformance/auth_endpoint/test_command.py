"""The command's mistakes: each ends with one line and status 2 (usage) or 3 (unreachable),
before any request is sent; and validate-specs holds the auth-endpoint specs to their checks."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cli import main
from example_auth_endpoint import CREDENTIALS_FILE, POLICY_FILE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _args(tmp_path: Path, **changes: str) -> list[str]:
    options = {
        "--url": f"http://127.0.0.1:{_free_port()}/pusher/auth",
        "--credentials": str(CREDENTIALS_FILE),
        "--policy": str(POLICY_FILE),
        "--app-key": "k",
        "--app-secret": "s",
        "--report-dir": str(tmp_path / "report"),
        "--as": "alice",
        **changes,
    }
    return ["auth-endpoint", *[part for pair in options.items() for part in pair]]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"--policy": "missing.yaml"}, "policy file not found: missing.yaml"),
        ({"--credentials": "missing.yaml"}, "credentials file not found"),
        ({"--as": "mallory"}, "--as mallory: not in the credentials file"),
        ({"--url": "ftp://example/auth"}, "--url: not an http(s) URL"),
        ({"--app-key": "a:b"}, "--app-key: a non-empty key without ':'"),
        ({"--examples": "-1"}, "must be 0 or more"),
    ],
)
def test_a_usage_mistake_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, str], message: str
) -> None:
    assert main(_args(tmp_path, **changes)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "report").exists()


def test_a_policy_that_is_not_yaml_is_a_usage_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("users: {alice: [", encoding="utf-8")
    assert main(_args(tmp_path, **{"--policy": str(bad)})) == 2
    assert "not valid YAML or JSON" in capsys.readouterr().err


def test_a_missing_required_option_is_a_usage_mistake(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["auth-endpoint", "--url", "http://127.0.0.1:1/a"]) == 2
    assert "required" in capsys.readouterr().err


def test_an_unreachable_endpoint_is_status_3_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conformance", *_args(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 3
    assert "auth endpoint unreachable: nothing answers at 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_validate_specs_checks_the_auth_endpoint_specs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate-specs"]) == 0
    out = capsys.readouterr().out
    assert "ok: auth-endpoint: 1 files, 13 requirements" in out


def test_validate_specs_refuses_an_unknown_auth_endpoint_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).resolve().parents[3] / "specs"
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("schema.json", "regression.schema.json", "connection.yaml"):
        (specs / name).write_text((root / name).read_text(encoding="utf-8"), encoding="utf-8")
    text = (root / "auth-endpoint.yaml").read_text(encoding="utf-8")
    (specs / "auth-endpoint.yaml").write_text(
        text.replace("property: user_auth_signed", "property: user_auth_signd"), encoding="utf-8"
    )
    assert main(["validate-specs", "--specs", str(specs)]) == 2
    assert "names unknown property 'user_auth_signd'" in capsys.readouterr().err
