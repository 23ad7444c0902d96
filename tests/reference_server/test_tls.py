"""TLS serving: --tls-cert/--tls-key (or their environment variables) make the one port speak
wss:// and https:// only; --plain-port redirects plain requests there; unusable files end the
start with one line and status 2."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from websockets.sync.client import connect

from reference_server.config import ConfigError, load_config


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    stranger = trustme.CA().issue_cert("127.0.0.1")
    files = {
        "cert": folder / "cert.pem",
        "key": folder / "key.pem",
        "ca": folder / "ca.pem",
        "other_key": folder / "other-key.pem",
        "junk": folder / "junk.pem",
    }
    server.cert_chain_pems[0].write_to_path(str(files["cert"]))
    server.private_key_pem.write_to_path(str(files["key"]))
    ca.cert_pem.write_to_path(str(files["ca"]))
    stranger.private_key_pem.write_to_path(str(files["other_key"]))
    files["junk"].write_text("not a certificate\n")
    return files


def _start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reference_server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def tls_server(pki: dict[str, Path]) -> Iterator[dict[str, object]]:
    process = _start(
        "--plain-port", "0", env={"PUSHER_REF_TLS_CERT": str(pki["cert"]),
                                  "PUSHER_REF_TLS_KEY": str(pki["key"])},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())
    finally:
        process.kill()
        process.communicate(timeout=5)


def _client(pki: dict[str, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki["ca"]))


def test_ready_line_names_the_tls_urls(tls_server: dict[str, object]) -> None:
    port, plain = tls_server["port"], tls_server["plain_port"]
    assert tls_server["ws_url"] == f"wss://127.0.0.1:{port}"
    assert tls_server["http_url"] == f"https://127.0.0.1:{port}"
    assert tls_server["tls"] is True
    assert isinstance(plain, int)
    assert plain != port
    assert tls_server["plain_url"] == f"http://127.0.0.1:{plain}"


def test_https_and_wss_on_the_one_port(tls_server: dict[str, object], pki: dict[str, Path]) -> None:
    context = _client(pki)
    with urllib.request.urlopen(f"{tls_server['http_url']}/health", context=context) as reply:
        assert json.load(reply) == {"status": "ok"}
    with connect(f"{tls_server['ws_url']}/app/app-key", ssl=context, open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["event"] == "pusher:connection_established"


def test_plain_http_on_the_tls_port_gets_no_http_answer(tls_server: dict[str, object]) -> None:
    with socket.create_connection(("127.0.0.1", int(str(tls_server["port"]))), timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            answer = s.recv(1024)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/")


@pytest.mark.parametrize(
    ("upgrade", "scheme"), [(True, "wss"), (False, "https")], ids=["websocket", "http"]
)
def test_the_plain_port_redirects_to_tls(
    tls_server: dict[str, object], upgrade: bool, scheme: str
) -> None:
    headers = "Upgrade: websocket\r\nConnection: Upgrade\r\n" if upgrade else ""
    request = f"GET /app/app-key?protocol=7 HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n"
    with socket.create_connection(("127.0.0.1", int(str(tls_server["plain_port"]))), 5) as s:
        s.sendall(request.encode())
        head = s.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 308")
    location = f"{scheme}://localhost:{tls_server['port']}/app/app-key?protocol=7"
    assert f"Location: {location}\r\n" in head


def test_config_from_flags_and_environment(pki: dict[str, Path]) -> None:
    config = load_config(
        ["--tls-cert", str(pki["cert"]), "--plain-port", "8080"],
        {"PUSHER_REF_TLS_KEY": str(pki["key"])},
    )
    assert (config.tls_cert, config.tls_key) == (str(pki["cert"]), str(pki["key"]))
    assert config.tls
    assert config.plain_port == 8080
    assert not load_config([], {}).tls


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--tls-cert", "CERT"], "--tls-cert needs --tls-key"),
        (["--tls-key", "KEY"], "--tls-key needs --tls-cert"),
        (["--tls-cert", "/nonexistent.pem", "--tls-key", "KEY"], "no such file"),
        (["--plain-port", "8080"], "needs --tls-cert and --tls-key"),
        (["--tls-cert", "CERT", "--tls-key", "KEY", "--port", "9000", "--plain-port", "9000"],
         "the TLS port itself"),
    ],
)  # fmt: skip
def test_config_mistakes(pki: dict[str, Path], args: list[str], says: str) -> None:
    real = [str(pki["cert"]) if a == "CERT" else str(pki["key"]) if a == "KEY" else a for a in args]
    with pytest.raises(ConfigError, match=says):
        load_config(real, {})


@pytest.mark.parametrize(
    ("cert", "key", "says"),
    [
        ("cert", "other_key", "the key does not belong to the certificate"),
        ("junk", "key", "no PEM certificate in the certificate file"),
        ("cert", "ca", "no PEM private key in the key file"),
    ],
)
def test_unusable_certificate_or_key_is_exit_2_one_line(
    pki: dict[str, Path], cert: str, key: str, says: str
) -> None:
    process = _start("--tls-cert", str(pki[cert]), "--tls-key", str(pki[key]))
    stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 2
    assert stdout == ""
    assert len(stderr.splitlines()) == 1, stderr
    assert says in stderr
    assert "Traceback" not in stderr
