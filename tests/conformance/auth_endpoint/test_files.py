"""The credentials and policy files: what they mean, and one clear line for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.auth_endpoint.files import (
    Pattern,
    load_credentials,
    load_policy,
    valid_channel_name,
    valid_socket_id,
)
from conformance.errors import UsageError
from example_auth_endpoint import CREDENTIALS_FILE, POLICY_FILE


def _file(tmp_path: Path, text: str, name: str = "f.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_prefix_needs_one_more_character_and_matches_case_sensitively() -> None:
    admin = Pattern("private-admin.*")
    assert admin.is_prefix
    assert admin.stem == "private-admin."
    assert not admin.presence
    assert admin.matches("private-admin.x")
    for name in ("private-admin.", "private-admin", "private-adminX", "Private-admin.x"):
        assert not admin.matches(name), name
    exact = Pattern("presence-admins")
    assert exact.presence
    assert exact.matches("presence-admins")
    assert not exact.matches("presence-adminsX")
    assert exact.instance() == "presence-admins"
    assert admin.instance("y") == "private-admin.y"


def test_the_name_and_socket_id_rules() -> None:
    assert valid_channel_name("foo-bar_1234@=,.;")
    for name in ("", "a b", "a:b", "a#b", "a%2E", "\u0430", "x" * 165):
        assert not valid_channel_name(name), name
    assert valid_channel_name("x" * 164)
    assert valid_socket_id("1234.1234")
    for socket_id in ("", "1", "1.2.3", "a.b", "\uff11.\uff12", "\u0661.\u0662", "1.2\n"):
        assert not valid_socket_id(socket_id), socket_id


def test_the_example_files_load() -> None:
    policy = load_policy(POLICY_FILE)
    assert policy.users["alice"].id == "1001"
    assert policy.allows("alice", "private-admin.alerts")
    assert not policy.allows("bob", "private-admin.alerts")
    assert policy.allows("bob", "presence-room.42")  # everyone
    assert not policy.allows(None, "presence-room.42")  # but not the anonymous user
    assert not policy.allows("alice", "private-admin.a:b")  # never a malformed name
    assert len(policy.all_patterns()) == len(set(policy.all_patterns()))
    credentials = load_credentials(CREDENTIALS_FILE)
    assert credentials.login("alice").headers == {"Authorization": "Bearer alice-token"}
    assert credentials.login("bob").cookies == {"session": "bob-session"}
    assert credentials.login(None).headers == {}


def test_every_request_goes_with_each_user_and_alone_with_the_anonymous_one(
    tmp_path: Path,
) -> None:
    path = _file(
        tmp_path,
        '{"every_request": {"headers": {"X-CSRF-Token": "t"}},'
        ' "users": {"ann": {"cookies": {"session": "s"}, "headers": {"X-CSRF-Token": "u"}}}}',
    )
    credentials = load_credentials(path)
    assert credentials.login(None).headers == {"X-CSRF-Token": "t"}
    assert credentials.login("ann").headers == {"X-CSRF-Token": "u"}
    assert credentials.login("ann").cookies == {"session": "s"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users: [", "not valid YAML or JSON"),
        ("- a", "expected a mapping at the top level"),
        ("users: {}", "no users"),
        ("users: {ann: {id: '1', channels: [public-x]}}", "only private- and presence-"),
        ("users: {ann: {id: '1', channels: ['private-*x']}}", "'*' may only end a pattern"),
        ("users: {ann: {id: '1', channels: ['private-a b']}}", "not a valid channel name"),
        ("users: {ann: {channels: []}}", "id must be a non-empty string"),
        ("users: {ann: {id: '1', rules: []}}", "unknown key(s) rules"),
        ("users: {anonymous: {id: '1'}}", "not 'anonymous'"),
        ("groups: {}", "unknown key(s) groups"),
        ("users: {ann: {id: '1', channels: private-a}}", "expected a list of channel patterns"),
    ],
)
def test_a_broken_policy_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match="policy file") as caught:
        load_policy(_file(tmp_path, text))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users: {ann: {token: x}}", "unknown key(s) token"),
        ("users: {ann: {headers: {X: [1]}}}", "X must be a string"),
        ("users: {ann: {headers: [a]}}", "expected a mapping"),
        ("every_request: {}", "no users"),
    ],
)
def test_a_broken_credentials_file_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match="credentials file") as caught:
        load_credentials(_file(tmp_path, text))
    assert message in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="policy file not found"):
        load_policy(tmp_path / "nope.yaml")
