"""Malformed ``POST /apps/{id}/events`` requests, one strategy per kind, for
``http_malformed_request``.

Every strategy takes the bystanders' channels (public first) and the run's token: were a server
to accept a request it should refuse, the event would reach a bystander and carry the token.

The ci profile is seeded, so a strategy's combinators and their order decide which inputs a ci
run sends: reshaping one (even into an equivalent ``@composite``) changes the run's inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hypothesis import strategies as st

from ..errors import UsageError
from .malformed_inputs import HTTP_KINDS, NON_STRINGS, HttpInput, compact_json, nest

__all__ = ["HTTP_INPUTS", "HttpInputStrategy", "http_input_strategy"]

#: How a kind's strategy is made: ``(channels, token) -> strategy``.
HttpInputStrategy = Callable[[Sequence[str], str], st.SearchStrategy[HttpInput]]

#: In ``_event_body``'s ``fields``: leave this member out.
_DROP: Any = object()


def _event_body(
    channel: str, token: str, fields: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A trigger body, with ``fields`` replacing (``_DROP``: removing) some of its members."""
    body: dict[str, Any] = {"name": "robustness-refused", "channel": channel, "data": token}
    body.update(fields or {})
    return {k: v for k, v in body.items() if v is not _DROP}


def _members_as_json(channel: str, token: str) -> dict[str, str]:
    """A trigger body's members as raw JSON text, for bodies written out by hand (text a
    JSON encoder would refuse to produce)."""
    return {
        "name": '"robustness-refused"',
        "channel": compact_json(channel),
        "data": compact_json(token),
    }


def _object_text(members: Mapping[str, str]) -> str:
    return "{" + ",".join(f'"{k}":{v}' for k, v in members.items()) + "}"


def bad_json_requests(channels: Sequence[str], token: str) -> st.SearchStrategy[HttpInput]:
    """A correct body broken the ways hand-built JSON breaks, and a few bodies that are not
    JSON at all (invalid UTF-8 among them)."""
    good = compact_json(_event_body(channels[0], token))
    texts = st.sampled_from(
        [
            good[:-1],
            good + "x",
            good + "}",
            good.replace('"', "'"),
            good.replace(",", ",,", 1),
            good[:-1] + ",}",
            "",
            "{",
            "null",
            "not json",
            good.replace(":", "=", 1),
            "/* comment */" + good,
        ]
    )
    raw = texts.map(str.encode) | st.just(good.encode()[:-2] + b'\xff"}')
    return raw.map(lambda b: HttpInput("bad_json", b))


def wrong_content_type_requests(
    channels: Sequence[str], token: str
) -> st.SearchStrategy[HttpInput]:
    """A correct JSON body under another content type: refusing is legal, and so is reading
    the body as JSON anyway."""
    types = st.sampled_from(
        [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=robustness",
            "application/xml",
            "application/octet-stream",
            "image/png",
        ]
    )
    return st.tuples(types, st.sampled_from(list(channels))).map(
        lambda a: HttpInput(
            "wrong_content_type",
            compact_json(_event_body(a[1], token)).encode(),
            content_type=a[0],
            may_accept=True,
        )
    )


def requests_missing_fields(channels: Sequence[str], token: str) -> st.SearchStrategy[HttpInput]:
    """Without one, two or all of the members a trigger needs."""
    drops = st.sets(st.sampled_from(["name", "data", "channel"]), min_size=1)
    return st.tuples(drops, st.sampled_from(list(channels))).map(
        lambda a: HttpInput(
            "missing_fields",
            compact_json(_event_body(a[1], token, dict.fromkeys(a[0], _DROP))).encode(),
            note="without " + ", ".join(sorted(a[0])),
        )
    )


def wrong_type_requests(channels: Sequence[str], token: str) -> st.SearchStrategy[HttpInput]:
    """One member of the wrong type or shape (an empty name, a channel list of 101, a socket id
    that is not two numbers); the note says which member."""
    any_channel = st.sampled_from(list(channels))
    name = st.one_of(NON_STRINGS, st.just("")).map(lambda v: ("name", {"name": v}))
    data = NON_STRINGS.map(lambda v: ("data", {"data": v}))
    channel = st.one_of(NON_STRINGS, any_channel.map(lambda c: [c])).map(
        lambda v: ("channel", {"channel": v})
    )
    channels_field = st.one_of(
        any_channel,
        st.just([]),
        st.lists(st.integers(), min_size=1, max_size=3),
        any_channel.map(lambda c: [c, 1]),
        any_channel.map(lambda c: [c] * 101),
        st.dictionaries(st.text(max_size=3), any_channel, min_size=1, max_size=2),
    ).map(lambda v: ("channels", {"channel": _DROP, "channels": v}))
    both = any_channel.map(lambda c: ("channel and channels", {"channels": [c]}))
    socket_id = st.one_of(
        NON_STRINGS.filter(lambda v: v is not None),
        st.sampled_from(["", "abc", "1.2.3", "1.", ".1", "1 .2", "١٢٣.٤٥٦"]),
    ).map(lambda v: ("socket_id", {"socket_id": v}))
    return st.tuples(
        st.one_of(name, data, channel, channels_field, both, socket_id), any_channel
    ).map(
        lambda a: HttpInput(
            "wrong_types", compact_json(_event_body(a[1], token, a[0][1])).encode(), note=a[0][0]
        )
    )


def oversized_requests(channels: Sequence[str], token: str) -> st.SearchStrategy[HttpInput]:
    """Bodies past the API's 1 MB limit, up to 6 MB."""

    def big(size: int) -> HttpInput:
        body = compact_json(_event_body(channels[0], token + "a" * size)).encode()
        return HttpInput("oversized", body, note=f"{len(body)} bytes")

    return st.integers(1_100_000, 6_000_000).map(big)


def deeply_nested_requests(channels: Sequence[str], token: str) -> st.SearchStrategy[HttpInput]:
    """One member nested up to 100,000 levels deep (the body stays small)."""

    def deep(args: tuple[int, str, str]) -> HttpInput:
        depth, shape, where = args
        members = _members_as_json(channels[0], token)
        members[where] = nest(depth, shape)
        text = _object_text(members)
        return HttpInput(
            "deep_nesting", text.encode(), note=f"{depth} levels of {shape}s in {where}"
        )

    return st.tuples(
        st.integers(2, 100_000),
        st.sampled_from(["array", "object"]),
        st.sampled_from(["name", "data", "channel"]),
    ).map(deep)


def badly_signed_requests(channels: Sequence[str], token: str) -> st.SearchStrategy[HttpInput]:
    """A correct body whose signing is wrong: garbage signed correctly, a bad signature, or
    signing parameters left out."""
    body = compact_json(_event_body(channels[0], token)).encode()
    garbage_timestamps = st.one_of(
        st.sampled_from(["", "abc", "1e9", "-", "0x10", " 1", "1.5", "١٢٣٤٥٦٧٨٩٠", "NaN"]),
        st.integers(20, 6000).map(lambda n: "9" * n),
    )
    # Correctly signed, but with a value no server may accept. A wrong auth_key or an
    # unknown auth_version are left out: refusing those is HTTP-AUTH-06 (SHOULD) and
    # HTTP-AUTH-07 (unverifiable), not a robustness MUST.
    signed_garbage = st.one_of(
        garbage_timestamps.map(lambda t: (("auth_timestamp", t),)),
        st.sampled_from(["", "0" * 32, "x" * 32, "d41d8cd98f00b204e9800998ecf8427e"]).map(
            lambda m: (("body_md5", m),)
        ),
    ).map(lambda auth: HttpInput("bad_signing", body, auth=auth, note="signed garbage"))
    bad_signatures = st.one_of(
        st.sampled_from(["", "zz", "0" * 64, "g" * 64, "%", " "]),
        st.integers(65, 20_000).map(lambda n: "a" * n),
        st.text(max_size=70),
    ).map(
        lambda s: HttpInput(
            "bad_signing", body, auth=(("auth_signature", s),), note="bad signature"
        )
    )
    missing = st.sets(
        st.sampled_from(["auth_key", "auth_timestamp", "auth_version", "auth_signature"]),
        min_size=1,
    ).map(
        lambda names: HttpInput(
            "bad_signing",
            body,
            auth=tuple((n, None) for n in sorted(names)),
            note="missing " + ", ".join(sorted(names)),
        )
    )
    return st.one_of(signed_garbage, bad_signatures, missing)


def lone_surrogate_requests(channels: Sequence[str], token: str) -> st.SearchStrategy[HttpInput]:
    """Escaped lone surrogates in name, data or channel: valid JSON, not valid Unicode.
    Accepting and publishing (escaped) is legal in name and data, refusing with a 4xx too;
    a 5xx or a broken subscriber is not."""

    def surrogate(args: tuple[int, str, str]) -> HttpInput:
        code, where, channel = args
        members = _members_as_json(channel, token)
        members[where] = members[where][:-1] + f'\\u{code:04x}"'
        text = _object_text(members)
        return HttpInput(
            "lone_surrogate", text.encode(), may_accept=where != "channel", note=f"in {where}"
        )

    return st.tuples(
        st.integers(0xD800, 0xDFFF),
        st.sampled_from(["name", "data", "channel"]),
        st.sampled_from(list(channels)),
    ).map(surrogate)


#: The strategy of each HTTP kind, in ``HTTP_KINDS`` order.
HTTP_INPUTS: dict[str, HttpInputStrategy] = {
    "bad_json": bad_json_requests,
    "wrong_content_type": wrong_content_type_requests,
    "missing_fields": requests_missing_fields,
    "wrong_types": wrong_type_requests,
    "oversized": oversized_requests,
    "deep_nesting": deeply_nested_requests,
    "bad_signing": badly_signed_requests,
    "lone_surrogate": lone_surrogate_requests,
}


def http_input_strategy(
    kind: str, channels: Sequence[str], token: str
) -> st.SearchStrategy[HttpInput]:
    """Malformed ``POST /apps/{id}/events`` requests of one kind, publishing ``token`` to the
    bystanders' channels if anything were to accept them."""
    try:
        make = HTTP_INPUTS[kind]
    except KeyError:
        raise UsageError(
            f"unknown HTTP input kind {kind!r} (known: {', '.join(HTTP_KINDS)})"
        ) from None
    return make(channels, token)
