from __future__ import annotations

import json

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from reference_server.protocol.errors import SubscriptionRefused
from reference_server.protocol.presence import (
    MAX_MEMBERS,
    Joined,
    Left,
    Member,
    PresenceChannel,
    PresenceRegistry,
    parse_channel_data,
)


class TestChannelData:
    @pytest.mark.parametrize(
        ("text", "member"),
        [
            ('{"user_id":"u"}', Member("u")),
            ('{"user_id":"u","user_info":{"name":"N"}}', Member("u", {"name": "N"})),
            ('{"user_id":10,"user_info":[1]}', Member(10, [1])),
            (json.dumps({"user_id": "x" * 128}), Member("x" * 128)),
        ],
    )
    def test_valid(self, text: str, member: Member) -> None:
        assert parse_channel_data(text) == member

    @pytest.mark.parametrize(
        "text",
        [
            None,
            "",
            "nope",
            "[]",
            "{}",
            '{"user_id":""}',
            '{"user_id":null}',
            '{"user_id":true}',
            '{"user_id":1.5}',
            '{"user_id":{"a":1}}',
            json.dumps({"user_id": "x" * 129}),
            json.dumps({"user_id": "u", "user_info": "x" * 1024}),
        ],
    )
    def test_invalid(self, text: str | None) -> None:
        with pytest.raises(SubscriptionRefused):
            parse_channel_data(text)

    def test_integer_ids_key_by_their_string_form(self) -> None:
        assert Member(10).key == "10"


class TestPresenceChannel:
    def test_members_are_users_not_connections(self) -> None:
        channel = PresenceChannel()
        alice, bob = Member("a", {"n": 1}), Member("b")
        assert channel.join("1.1", alice) == Joined(alice, first=True)
        assert channel.join("1.2", Member("a", {"n": 2})) == Joined(alice, first=False)
        assert channel.join("1.3", bob) == Joined(bob, first=True)
        assert channel.roster() == {
            "ids": ["a", "b"],
            "hash": {"a": {"n": 1}, "b": None},
            "count": 2,
        }
        assert channel.leave("1.1") == Left(alice, last=False)
        assert channel.leave("1.1") is None
        assert channel.leave("1.2") == Left(alice, last=True)
        assert channel.roster() == {"ids": ["b"], "hash": {"b": None}, "count": 1}
        assert len(channel) == 1

    def test_joining_twice_with_one_socket_keeps_the_first(self) -> None:
        channel = PresenceChannel()
        channel.join("1.1", Member("a"))
        assert channel.join("1.1", Member("b")) == Joined(Member("a"), first=False)
        assert channel.member_of("1.1") == Member("a")
        assert channel.member_of("9.9") is None

    def test_member_limit_is_on_distinct_users(self) -> None:
        channel = PresenceChannel()
        for n in range(MAX_MEMBERS):
            channel.join(f"1.{n}", Member(str(n)))
        assert not channel.has_room_for("new")
        assert channel.has_room_for("0")

    def test_registry_drops_empty_channels(self) -> None:
        registry = PresenceRegistry()
        registry.join("presence-a", "1.1", Member("a"))
        assert list(registry) == ["presence-a"]
        assert registry.leave("presence-b", "1.1") is None
        registry.leave("presence-a", "1.1")
        assert list(registry) == []
        assert len(registry.get("presence-a")) == 0


SOCKETS = [f"1.{n}" for n in range(5)]
USERS = ["u1", "u2", "u3"]


class PresenceMachine(RuleBasedStateMachine):
    """Connections join and leave one channel; compare with a dict of sets."""

    def __init__(self) -> None:
        super().__init__()
        self.channel = PresenceChannel()
        self.model: dict[str, set[str]] = {}

    def user_of(self, socket_id: str) -> str | None:
        return next((u for u, s in self.model.items() if socket_id in s), None)

    @rule(socket_id=st.sampled_from(SOCKETS), user=st.sampled_from(USERS))
    def join(self, socket_id: str, user: str) -> None:
        joined = self.channel.join(socket_id, Member(user, {"u": user}))
        current = self.user_of(socket_id)
        if current is not None:
            assert joined == Joined(Member(current, {"u": current}), first=False)
            return
        assert joined.first == (user not in self.model)
        self.model.setdefault(user, set()).add(socket_id)

    @rule(socket_id=st.sampled_from(SOCKETS))
    def leave(self, socket_id: str) -> None:
        left = self.channel.leave(socket_id)
        user = self.user_of(socket_id)
        if user is None:
            assert left is None
            return
        self.model[user].discard(socket_id)
        assert left is not None
        assert left.member.user_id == user
        assert left.last == (not self.model[user])
        if not self.model[user]:
            del self.model[user]

    @invariant()
    def roster_matches(self) -> None:
        roster = self.channel.roster()
        assert set(roster["ids"]) == set(self.model)
        assert roster["count"] == len(self.model) == len(roster["ids"])
        assert roster["hash"] == {u: {"u": u} for u in self.model}
        assert {u: set(s) for u, s in self.channel.connections.items()} == self.model


TestPresenceMachine = PresenceMachine.TestCase
TestPresenceMachine.settings = settings(max_examples=60, stateful_step_count=30)
