"""The delivery model and its judge, fed by hand: what a perfect server delivers passes, and
each way a server can go wrong is reported under its own aspect."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.delivery.model import (
    MEMBER_ADDED,
    MEMBER_REMOVED,
    DeliveryModel,
    Judgement,
    Published,
    Received,
)

#: c0 and c2 are two tabs of u0.
USERS = {"c0": "u0", "c1": "u1", "c2": "u0", "c3": "u2"}


def make(presence: tuple[str, ...] = ()) -> DeliveryModel:
    return DeliveryModel(USERS, presence=presence, tag="t")


def joined(model: DeliveryModel, conn: str, *channels: str) -> str:
    """Open ``conn`` (if needed) and subscribe it to ``channels``; its session."""
    session = model.session_of(conn) or model.open(conn)
    for channel in channels:
        model.subscribed(conn, channel)
    return session


def got(published: Published, times: int = 1, *, channel: str | None = None) -> list[Received]:
    """``times`` copies of ``published`` as a connection sees it (on ``channel`` if given)."""
    where = channel or published.channel
    return [Received(published.name, where, published.data)] * times


def member(event: str, channel: str, user: str) -> Received:
    return Received(event, channel, None, user)


def aspects(judgement: Judgement) -> list[str]:
    return [v.aspect for v in judgement.violations]


def messages(judgement: Judgement) -> str:
    return "\n".join(v.message for v in judgement.violations)


# -- sessions -----------------------------------------------------------------------------------


def test_each_opening_of_a_slot_is_a_new_session() -> None:
    model = make()
    assert model.open("c0") == "c0#1"
    with pytest.raises(ValueError, match="already open"):
        model.open("c0")
    model.subscribed("c0", "public0")
    model.close("c0")
    assert not model.is_open("c0")
    assert model.session_of("c0") is None
    assert model.channels_of("c0") == set()
    assert model.open("c0") == "c0#2"
    assert model.channels_of("c0") == set()
    assert model.subscribers("public0") == set()


# -- exactly once -------------------------------------------------------------------------------


def test_every_subscriber_receiving_once_is_clean() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    s1 = joined(model, "c1", "public0")
    (e1,) = model.publish(["public0"], name="ev")
    assert e1.required == {s0, s1}
    judgement = model.judge({s0: got(e1), s1: got(e1)})
    assert judgement.violations == ()
    assert (judgement.tallies[s0].expected, judgement.tallies[s0].delivered) == (1, 1)
    assert judgement.tallies[s0].user == "u0"
    assert judgement.tallies[s1].conn == "c1"


def test_a_lost_event_is_an_exactly_once_violation() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    s1 = joined(model, "c1", "public0")
    (e1,) = model.publish(["public0"], name="ev")
    judgement = model.judge({s0: got(e1), s1: []})
    assert aspects(judgement) == ["exactly_once"]
    assert messages(judgement) == (
        "c1#1 (user u1) never received event e1 (ev on public0 by the HTTP API), "
        "published while it was subscribed"
    )
    tally = judgement.tallies[s1]
    assert (tally.expected, tally.delivered, tally.lost) == (1, 0, 1)


def test_a_session_missing_from_what_was_received_lost_everything() -> None:
    model = make()
    joined(model, "c0", "public0")
    model.publish(["public0"], name="ev")
    assert aspects(model.judge({})) == ["exactly_once"]


def test_a_duplicate_is_an_exactly_once_violation() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    (e1,) = model.publish(["public0"], name="ev", label="alert 1")
    judgement = model.judge({s0: got(e1, 3)})
    assert aspects(judgement) == ["exactly_once"]
    assert "received event e1 (ev on public0 by the HTTP API, alert 1) 3 times" in messages(
        judgement
    )
    tally = judgement.tallies[s0]
    assert (tally.expected, tally.delivered, tally.duplicates, tally.lost) == (1, 1, 2, 0)


def test_an_event_published_while_subscribed_stays_owed_after_unsubscribing() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    (e1,) = model.publish(["public0"], name="ev")
    model.unsubscribed("c0", "public0")
    model.close("c0")
    assert aspects(model.judge({s0: []})) == ["exactly_once"]
    assert model.judge({s0: got(e1)}).violations == ()


def test_changed_data_is_an_exactly_once_violation() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    (e1,) = model.publish(["public0"], name="ev")
    changed = json.dumps({**json.loads(e1.data), "extra": 1})
    judgement = model.judge({s0: [Received("ev", "public0", changed)]})
    assert aspects(judgement) == ["exactly_once", "exactly_once"]
    assert "received e1 on public0 with its data changed" in messages(judgement)
    assert "never received event e1" in messages(judgement)


def test_data_sent_as_an_object_is_changed_data() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    (e1,) = model.publish(["public0"], name="ev")
    judgement = model.judge({s0: [Received("ev", "public0", json.loads(e1.data))]})
    assert "with its data changed" in messages(judgement)


def test_a_renamed_event_is_an_exactly_once_violation() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    (e1,) = model.publish(["public0"], name="ev")
    judgement = model.judge({s0: [Received("other", "public0", e1.data)]})
    assert aspects(judgement) == ["exactly_once", "exactly_once"]
    assert "received event e1 (ev on public0 by the HTTP API) named 'other'" in messages(judgement)


def test_protocol_events_are_not_judged() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    (e1,) = model.publish(["public0"], name="ev")
    frames = [
        Received("pusher_internal:subscription_succeeded", "public0", "{}"),
        Received("pusher:pong", None, "{}"),
        *got(e1),
    ]
    assert model.judge({s0: frames}).violations == ()


# -- no leak --------------------------------------------------------------------------------------


def test_never_subscribed_session_receiving_is_a_leak() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    s1 = joined(model, "c1")
    (e1,) = model.publish(["public0"], name="ev")
    judgement = model.judge({s0: got(e1), s1: got(e1)})
    assert aspects(judgement) == ["no_leak"]
    assert messages(judgement) == (
        "c1#1 (user u1) received event e1 (ev on public0 by the HTTP API) although it was not "
        "subscribed to public0 when it was published"
    )
    assert judgement.tallies[s1].leaks == 1
    assert judgement.tallies[s1].expected == 0


def test_unsubscribed_session_receiving_is_a_leak() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    model.unsubscribed("c0", "public0")
    (e1,) = model.publish(["public0"], name="ev")
    judgement = model.judge({s0: got(e1, 2)})
    assert aspects(judgement) == ["no_leak"]
    assert judgement.tallies[s0].leaks == 2


def test_subscribing_after_the_publish_is_not_owed_and_must_not_receive_it() -> None:
    model = make()
    s0 = joined(model, "c0")
    (e1,) = model.publish(["public0"], name="ev")
    model.subscribed("c0", "public0")
    assert e1.required == frozenset()
    assert model.judge({s0: []}).violations == ()
    assert aspects(model.judge({s0: got(e1)})) == ["no_leak"]


def test_closed_session_receiving_is_a_leak() -> None:
    model = make()
    old = joined(model, "c0", "public0")
    model.close("c0")
    new = joined(model, "c0", "public0")
    (e1,) = model.publish(["public0"], name="ev")
    assert e1.required == {new}
    judgement = model.judge({old: got(e1), new: got(e1)})
    assert aspects(judgement) == ["no_leak"]
    assert messages(judgement).startswith("c0#1 (user u0) received event e1")


def test_an_event_on_a_channel_it_was_not_published_to_is_a_leak() -> None:
    model = make()
    s0 = joined(model, "c0", "public0", "public1")
    (e1,) = model.publish(["public0"], name="ev")
    (e2,) = model.publish(["public1"], name="ev")
    judgement = model.judge({s0: [*got(e1), *got(e2), *got(e1, channel="public1")]})
    assert aspects(judgement) == ["no_leak"]
    assert messages(judgement) == (
        "c0#1 (user u0) received e1 on public1, a channel it was not published to"
    )


def test_an_event_on_a_channel_nothing_was_published_to_is_a_leak() -> None:
    model = make()
    s0 = joined(model, "c0", "public0", "public1")
    (e1,) = model.publish(["public0"], name="ev")
    judgement = model.judge({s0: [*got(e1), *got(e1, channel="public1")]})
    assert aspects(judgement) == ["no_leak"]


def test_an_event_nobody_published_is_a_leak() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    (e1,) = model.publish(["public0"], name="ev")
    judgement = model.judge({s0: [*got(e1), Received("ev", "public0", "hello")]})
    assert aspects(judgement) == ["no_leak"]
    assert "received an event nobody published: ev on public0 with data 'hello'" in messages(
        judgement
    )


# -- exclusion ------------------------------------------------------------------------------------


def test_the_socket_id_excluded_session_must_not_receive_it() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    s1 = joined(model, "c1", "public0")
    (e1,) = model.publish(["public0"], name="ev", exclude=s1)
    assert e1.required == {s0}
    assert e1.excluded == {s1}
    assert model.judge({s0: got(e1), s1: []}).violations == ()
    judgement = model.judge({s0: got(e1), s1: got(e1)})
    assert aspects(judgement) == ["exclusion"]
    assert messages(judgement) == (
        "c1#1 (user u1) received event e1 (ev on public0 by the HTTP API) although it was "
        "excluded as the connection named by socket_id"
    )
    assert judgement.tallies[s1].leaks == 1
    assert judgement.tallies[s1].expected == 0
    # The others are still owed it.
    assert aspects(model.judge({s0: [], s1: []})) == ["exactly_once"]


def test_the_client_event_sender_must_not_receive_its_own_event() -> None:
    model = make()
    s0 = joined(model, "c0", "private0")
    s1 = joined(model, "c1", "private0")
    (e1,) = model.publish(["private0"], name="client-ev", publisher=s0, exclude=s0)
    assert e1.required == {s1}
    assert model.judge({s0: [], s1: got(e1)}).violations == ()
    judgement = model.judge({s0: got(e1), s1: got(e1)})
    assert aspects(judgement) == ["exclusion"]
    assert messages(judgement) == (
        "c0#1 (user u0) received event e1 (client-ev on private0 by c0#1) although it was "
        "excluded as its sender"
    )


# -- racing and churn -----------------------------------------------------------------------------


@pytest.mark.parametrize("copies", [0, 1])
def test_a_racing_subscribe_may_get_the_event_or_not(copies: int) -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    s1 = joined(model, "c1")
    (e1,) = model.publish(["public0"], name="ev", racing=s1)
    model.subscribed("c1", "public0")
    assert e1.optional == {s1}
    judgement = model.judge({s0: got(e1), s1: got(e1, copies)})
    assert judgement.violations == ()
    tally = judgement.tallies[s1]
    assert (tally.expected, tally.optional_offered, tally.optional_delivered) == (0, 1, copies)


def test_a_racing_subscribe_must_not_get_two_copies() -> None:
    model = make()
    s1 = joined(model, "c1")
    (e1,) = model.publish(["public0"], name="ev", racing=s1)
    model.subscribed("c1", "public0")
    judgement = model.judge({s1: got(e1, 2)})
    assert aspects(judgement) == ["exactly_once"]
    assert "2 times (it raced a subscription change" in messages(judgement)
    assert judgement.tallies[s1].duplicates == 1


@pytest.mark.parametrize("copies", [0, 1])
def test_a_racing_unsubscribe_may_get_the_event_or_not(copies: int) -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    (e1,) = model.publish(["public0"], name="ev", racing=s0)
    model.unsubscribed("c0", "public0")
    assert e1.required == frozenset()
    assert model.judge({s0: got(e1, copies)}).violations == ()


def test_every_session_of_a_churning_connection_is_optional() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    s1 = joined(model, "c1", "public0")
    (e1,) = model.publish(["public0"], name="ev", optional_conns={"c1"})
    assert e1.required == {s0}
    assert e1.optional == {s1}
    model.close("c1")
    again = joined(model, "c1", "public0")  # the tab came back while the alert was in flight
    for copies in (0, 1):
        judgement = model.judge({s0: got(e1), s1: got(e1, copies), again: got(e1, copies)})
        assert judgement.violations == ()
    judgement = model.judge({s0: got(e1), s1: got(e1), again: got(e1, 2)})
    assert aspects(judgement) == ["exactly_once"]
    assert messages(judgement).startswith("c1#2 (user u1) received event e1")
    assert judgement.tallies[s1].optional_offered == 1
    assert judgement.tallies[again].optional_delivered == 1
    # A connection that was not churning is still judged strictly.
    assert aspects(model.judge({s0: [], s1: [], again: []})) == ["exactly_once"]


# -- order ----------------------------------------------------------------------------------------


def test_one_publishers_events_received_in_reverse_are_an_order_violation() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    (e1,) = model.publish(["public0"], name="ev")
    (e2,) = model.publish(["public0"], name="ev")
    assert model.judge({s0: [*got(e1), *got(e2)]}).violations == ()
    judgement = model.judge({s0: [*got(e2), *got(e1)]})
    assert aspects(judgement) == ["order"]
    assert messages(judgement) == (
        "c0#1 (user u0) received event e1 (ev on public0 by the HTTP API) after e2, which its "
        "publisher sent later"
    )
    assert judgement.tallies[s0].order_violations == 1


def test_order_is_per_channel() -> None:
    model = make()
    s0 = joined(model, "c0", "public0", "public1")
    (e1,) = model.publish(["public0"], name="ev")
    (e2,) = model.publish(["public1"], name="ev")
    assert model.judge({s0: [*got(e2), *got(e1)]}).violations == ()


def test_different_publishers_may_interleave() -> None:
    model = make()
    s0 = joined(model, "c0", "private0")
    s1 = joined(model, "c1", "private0")
    s3 = joined(model, "c3", "private0")
    (h1,) = model.publish(["private0"], name="ev")
    (a1,) = model.publish(["private0"], name="client-ev", publisher=s0, exclude=s0)
    (h2,) = model.publish(["private0"], name="ev")
    (a2,) = model.publish(["private0"], name="client-ev", publisher=s0, exclude=s0)
    s0_saw = [*got(h1), *got(h2)]
    s3_saw = [*got(a1), *got(h1), *got(a2), *got(h2)]
    interleaved = [*got(a1), *got(a2), *got(h1), *got(h2)]
    assert model.judge({s0: s0_saw, s1: interleaved, s3: s3_saw}).violations == ()
    reversed_a = [*got(a2), *got(h1), *got(a1), *got(h2)]
    judgement = model.judge({s0: s0_saw, s1: reversed_a, s3: s3_saw})
    assert aspects(judgement) == ["order"]
    assert "c1#1 (user u1) received event e2 (client-ev on private0 by c0#1) after e4" in (
        messages(judgement)
    )


def test_items_of_one_batch_may_arrive_in_any_order() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    seq = model.next_seq("http")
    (b1,) = model.publish(["public0"], name="ev", seq=seq)
    (b2,) = model.publish(["public0"], name="ev", seq=seq)
    (e3,) = model.publish(["public0"], name="ev")
    assert b1.seq == b2.seq < e3.seq
    assert model.judge({s0: [*got(b2), *got(b1), *got(e3)]}).violations == ()
    judgement = model.judge({s0: [*got(b2), *got(e3), *got(b1)]})
    assert aspects(judgement) == ["order"]
    assert "received event e1" in messages(judgement)


# -- multi-channel publishes ----------------------------------------------------------------------


def test_a_multi_channel_publish_is_owed_once_per_channel() -> None:
    model = make()
    s0 = joined(model, "c0", "public0", "private0")
    s1 = joined(model, "c1", "public1")
    made = model.publish(["public0", "private0", "public1"], name="ev")
    assert [p.channel for p in made] == ["public0", "private0", "public1"]
    assert len({p.data for p in made}) == 1
    assert len({p.token for p in made}) == 1
    assert len({p.seq for p in made}) == 1
    assert model.published == made
    on_public0, on_private0, on_public1 = made
    assert on_public0.required == {s0}
    assert on_public1.required == {s1}
    judgement = model.judge({s0: [*got(on_public0), *got(on_private0)], s1: got(on_public1)})
    assert judgement.violations == ()
    assert judgement.tallies[s0].expected == 2
    judgement = model.judge({s0: got(on_public0, 2), s1: got(on_public1)})
    assert aspects(judgement) == ["exactly_once", "exactly_once"]
    assert "c0#1 (user u0) never received event e1 (ev on private0" in messages(judgement)
    assert "c0#1 (user u0) received event e1 (ev on public0 by the HTTP API) 2 times" in (
        messages(judgement)
    )


# -- presence -------------------------------------------------------------------------------------


def test_member_events_follow_users_not_tabs() -> None:
    model = make(presence=("presence0",))
    s0 = joined(model, "c0")
    s1 = joined(model, "c1")
    s2 = joined(model, "c2")
    s3 = joined(model, "c3")
    assert model.subscribed("c0", "presence0") == {"u0"}
    assert model.subscribed("c1", "presence0") == {"u0", "u1"}
    assert model.subscribed("c2", "presence0") == {"u0", "u1"}  # u0's second tab
    assert model.subscribed("c3", "presence0") == {"u0", "u1", "u2"}
    model.unsubscribed("c0", "presence0")  # u0 still has c2 there: nobody hears of it
    model.close("c2")  # u0's last tab leaves
    model.unsubscribed("c3", "presence0")
    assert model.member_expected == {
        (s0, "presence0", MEMBER_ADDED, "u1"): 1,
        (s0, "presence0", MEMBER_ADDED, "u2"): 1,
        (s1, "presence0", MEMBER_ADDED, "u2"): 1,
        (s2, "presence0", MEMBER_ADDED, "u2"): 1,
        (s1, "presence0", MEMBER_REMOVED, "u0"): 1,
        (s3, "presence0", MEMBER_REMOVED, "u0"): 1,
        (s1, "presence0", MEMBER_REMOVED, "u2"): 1,
    }
    right = {
        s0: [member(MEMBER_ADDED, "presence0", "u1"), member(MEMBER_ADDED, "presence0", "u2")],
        s1: [
            member(MEMBER_ADDED, "presence0", "u2"),
            member(MEMBER_REMOVED, "presence0", "u0"),
            member(MEMBER_REMOVED, "presence0", "u2"),
        ],
        s2: [member(MEMBER_ADDED, "presence0", "u2")],
        s3: [member(MEMBER_REMOVED, "presence0", "u0")],
    }
    assert model.judge(right).violations == ()

    wrong = {**right, s1: [member(MEMBER_ADDED, "presence0", "u2")]}
    wrong[s3] = [*right[s3], member(MEMBER_ADDED, "presence0", "u0")]
    judgement = model.judge(wrong)
    assert aspects(judgement) == ["presence", "presence", "presence"]
    text = messages(judgement)
    assert "c1#1 (user u1) received 0 member_removed for user u0 on presence0, expected 1" in text
    assert "c1#1 (user u1) received 0 member_removed for user u2 on presence0, expected 1" in text
    assert "c3#1 (user u2) received 1 member_added for user u0 on presence0, expected 0" in text


def test_closing_the_last_tab_removes_the_member() -> None:
    model = make(presence=("presence0",))
    s0 = joined(model, "c0", "presence0")
    s1 = joined(model, "c1", "presence0")
    model.close("c1")
    assert model.users("presence0") == {"u0"}
    joined_and_left = [
        member(MEMBER_ADDED, "presence0", "u1"),
        member(MEMBER_REMOVED, "presence0", "u1"),
    ]
    assert model.judge({s0: joined_and_left, s1: []}).violations == ()
    judgement = model.judge({s0: [member(MEMBER_ADDED, "presence0", "u1")] * 2, s1: []})
    assert aspects(judgement) == ["presence", "presence"]
    assert "received 2 member_added for user u1 on presence0, expected 1" in messages(judgement)
    assert "received 0 member_removed for user u1 on presence0, expected 1" in messages(judgement)


def test_member_events_outside_presence_channels_are_not_judged() -> None:
    model = make(presence=("presence0",))
    s0 = joined(model, "c0", "private0")
    judgement = model.judge({s0: [member(MEMBER_ADDED, "private0", "u9")]})
    assert judgement.violations == ()


def test_subscribed_lists_the_users_of_any_channel() -> None:
    model = make()
    joined(model, "c0")
    joined(model, "c2")
    assert model.subscribed("c0", "public0") == {"u0"}
    assert model.subscribed("c2", "public0") == {"u0"}
    assert model.member_expected == {}


# -- bookkeeping ----------------------------------------------------------------------------------


def test_a_retracted_publish_is_owed_to_nobody() -> None:
    model = make()
    s0 = joined(model, "c0", "public0", "public1")
    (kept,) = model.publish(["public0"], name="ev")
    refused = model.publish(["public0", "public1"], name="ev")
    model.retract(refused)
    assert model.published == [kept]
    assert model.judge({s0: got(kept)}).violations == ()
    assert model.judge({s0: got(kept)}).tallies[s0].expected == 1


def test_violations_noted_by_the_driver_are_judged_and_filtered_by_aspect() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    (e1,) = model.publish(["public0"], name="ev")
    model.violation("channel_info", "occupied is False")
    judgement = model.judge({s0: got(e1, 2)})
    assert aspects(judgement) == ["channel_info", "exactly_once"]
    assert [v.message for v in judgement.of(["channel_info", "order"])] == ["occupied is False"]
    assert judgement.of(["presence"]) == []


def test_tallies_add_up_over_a_mixed_run() -> None:
    model = make()
    s0 = joined(model, "c0", "public0")
    s1 = joined(model, "c1")
    e1, e2, e3 = (model.publish(["public0"], name="ev")[0] for _ in range(3))
    (r4,) = model.publish(["public0"], name="ev", racing=s1)
    judgement = model.judge({s0: [*got(e3), *got(e1), *got(e1)], s1: [*got(e2), *got(r4)]})
    t0, t1 = judgement.tallies[s0], judgement.tallies[s1]
    assert (t0.expected, t0.delivered, t0.lost, t0.duplicates, t0.order_violations) == (
        4,
        2,
        2,
        1,
        1,
    )
    assert (t1.expected, t1.leaks, t1.optional_offered, t1.optional_delivered) == (0, 1, 1, 1)
    assert sorted(aspects(judgement)) == [
        "exactly_once",
        "exactly_once",
        "exactly_once",
        "no_leak",
        "order",
    ]


# -- a perfect server passes ----------------------------------------------------------------------

CONNS = sorted(USERS)
CHANNELS = ["public0", "private0", "presence0", "presence1"]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("toggle"), st.sampled_from(CONNS), st.just("")),
        st.tuples(st.just("sub"), st.sampled_from(CONNS), st.sampled_from(CHANNELS)),
        st.tuples(st.just("publish"), st.sampled_from(CONNS), st.sampled_from(CHANNELS)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_a_perfect_server_passes_and_one_lost_frame_fails(
    ops: list[tuple[str, str, str]],
) -> None:
    """A server written independently of the model (rosters by counting tabs) delivers exactly
    what the protocol says: the judge finds nothing; remove one owed frame and it finds it."""
    model = make(presence=("presence0", "presence1"))
    received: dict[str, list[Received]] = defaultdict(list)
    where: dict[str, set[str]] = defaultdict(set)  # session -> channels
    owed: list[tuple[str, Received]] = []

    def others(channel: str, but: str) -> list[str]:
        return [s for s, chs in where.items() if channel in chs and s != but]

    def tabs(channel: str, user: str) -> int:
        return sum(1 for s, chs in where.items() if channel in chs and USERS[s[:2]] == user)

    def leave(session: str, channel: str) -> None:
        where[session].discard(channel)
        user = USERS[session[:2]]
        if channel.startswith("presence") and tabs(channel, user) == 0:
            for other in others(channel, session):
                received[other].append(member(MEMBER_REMOVED, channel, user))

    for op, conn, channel in ops:
        session = model.session_of(conn)
        if op == "toggle":
            if session is None:
                received.setdefault(model.open(conn), [])
            else:
                for subscribed in sorted(where[session]):
                    leave(session, subscribed)
                del where[session]
                model.close(conn)
        elif op == "sub" and session is not None:
            if channel in where[session]:
                model.unsubscribed(conn, channel)
                leave(session, channel)
                continue
            user = USERS[conn]
            if channel.startswith("presence") and tabs(channel, user) == 0:
                for other in others(channel, session):
                    received[other].append(member(MEMBER_ADDED, channel, user))
            where[session].add(channel)
            roster = model.subscribed(conn, channel)
            assert roster == {USERS[s[:2]] for s, chs in where.items() if channel in chs}
        elif op == "publish":
            (published,) = model.publish([channel], name="ev")
            for other in others(channel, ""):
                frame = got(published)[0]
                received[other].append(frame)
                owed.append((other, frame))

    judgement = model.judge(received)
    assert judgement.violations == ()
    if owed:
        session, frame = owed[-1]
        received[session].remove(frame)
        assert aspects(model.judge(received)) == ["exactly_once"]
