"""The channel names and socket ids a certification tries: fixed lists and hypothesis strategies.

Authorization bugs live at the edges of a rule: ``startswith`` where equality was meant, a
prefix checked without its separator, a case-folded comparison, a name trimmed or decoded
before the check but signed as sent, a ``:`` that shifts what the signature covers. The fixed
lists walk those edges for every pattern of the policy, so every run tries them; the
strategies then wander further (random suffixes and edits) and shrink what they find to a
minimal name. Which names a user must get signed is the policy's business (``Policy.allows``),
not this module's: it only proposes names.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence

from hypothesis import strategies as st

from .files import CHANNEL_NAME_MAX, Pattern, valid_socket_id

__all__ = [
    "FIXED_SOCKET_IDS",
    "MALFORMED_SOCKET_IDS",
    "VALID_CHANNEL_CHARS",
    "granted_names",
    "malformed_socket_ids",
    "names_around",
    "near_misses",
    "socket_ids",
]

#: The characters the docs allow in a channel name.
VALID_CHANNEL_CHARS = string.ascii_letters + string.digits + "_-=@,.;"
#: Characters an edit may bring in: a few letters and digits, the docs' punctuation (where
#: separators get confused), and what must not reach a signature (``:`` extends the signed
#: string, ``#`` is reserved, whitespace, ``%`` from an encoding, look-alike letters from
#: other scripts, a full-width dot). Few letters, so the rest come up often.
_EDIT_CHARS = "xX0_-=@,.;:# \t\n%*/\u0430\u0435\u043e\uff0e\u00e9\x00"
#: Latin letters and a Cyrillic look-alike of each.
_LOOK_ALIKES = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441"}
_TYPES = ("private-encrypted-", "private-", "presence-")

FIXED_SOCKET_IDS = ("1234.1234", "1.1", "987654321.123456789")
#: Socket ids no connection is ever given; ``None`` leaves the field out of the form.
MALFORMED_SOCKET_IDS: tuple[str | None, ...] = (
    None,
    "",
    "1",
    "1.",
    ".1",
    "1.2.3",
    "abc.def",
    "1.2 ",
    " 1.2",
    "1.2\n",
    "-1.2",
    "+1.2",
    "1,2",
    "1:2",
    "1.2:private-x",
    "0x1.0x2",
    "\uff11.\uff12",  # full-width digits: int() reads them, no server issues them
    "\u0661.\u0662",  # Arabic-Indic digits, likewise
    "1.2%00",
    "1." + "x" * 1000,
)


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _split_type(name: str) -> tuple[str, str]:
    for prefix in _TYPES:
        if name.startswith(prefix):
            return prefix, name[len(prefix) :]
    return "", name


def _look_alike(name: str) -> str:
    kind, rest = _split_type(name)
    for index, char in enumerate(rest):
        if char in _LOOK_ALIKES:
            return kind + rest[:index] + _LOOK_ALIKES[char] + rest[index + 1 :]
    return kind + "\u0430" + rest


def _percent_encoded(name: str) -> str:
    kind, rest = _split_type(name)
    for index, char in enumerate(rest):
        if not char.isalnum():
            return kind + rest[:index] + f"%{ord(char):02X}" + rest[index + 1 :]
    return kind + f"%{ord(rest[0]):02X}" + rest[1:] if rest else name + "%2E"


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def near_misses(pattern: Pattern) -> tuple[str, ...]:
    """Names just beside ``pattern``: what a sloppy rule grants by mistake (valid names), and
    what a lenient reader turns into a granted name before checking (invalid ones)."""
    name = pattern.instance("x")
    kind, rest = _split_type(name)
    other_type = {"private-": "presence-", "presence-": "private-"}.get(kind, "private-")
    misses = [
        name + "X",
        name + ".",
        name + "-x",
        name + "," + name,
        name.upper(),
        name[:1].upper() + name[1:],
        name[:-1] + name[-1].swapcase(),
        other_type + rest,
        "private-encrypted-" + rest,
        " " + name,
        name + " ",
        name + "\t",
        name + "\n",
        _percent_encoded(name),
        name + "%00",
        _look_alike(name),
        kind + _full_width(rest),
        name + ':{"user_id":"0"}',
        name + ":x",
        name + "#x",
        name + "x" * (CHANNEL_NAME_MAX - len(name) + 1),
    ]
    if pattern.is_prefix:
        stem = pattern.stem
        misses += [
            stem,
            stem[:-1],
            stem[:-1] + "X",
            stem[:-1] + "-x" if stem[-1] != "-" else stem[:-1] + ".x",
            stem.upper() + "x",
            " " + stem + "x",
        ]
    else:
        misses += [name[:-1], name + name[-1]]
    return _unique(m for m in misses if m)


def granted_names(pattern: Pattern) -> tuple[str, ...]:
    """Names ``pattern`` grants: its instance, and for a prefix a one-character and a
    longest-possible completion (the length limit is part of the name rules)."""
    if not pattern.is_prefix:
        return (pattern.text,)
    longest = pattern.stem + "y" * (CHANNEL_NAME_MAX - len(pattern.stem))
    return _unique((pattern.instance("x"), pattern.stem + "1", longest))


def _suffix(pattern: Pattern) -> st.SearchStrategy[str]:
    if not pattern.is_prefix:
        return st.just(pattern.text)
    room = max(0, CHANNEL_NAME_MAX - len(pattern.stem))
    return st.text(VALID_CHANNEL_CHARS, min_size=1, max_size=min(room, 24)).map(
        lambda rest: pattern.stem + rest
    )


def names_under(patterns: Sequence[Pattern]) -> st.SearchStrategy[str]:
    """Names the patterns grant, with random completions of the prefixes."""
    return st.sampled_from(list(patterns)).flatmap(_suffix)


_Edit = tuple[str, int, str]


def _apply(name: str, edits: Sequence[_Edit]) -> str:
    for kind, position, char in edits:
        at = position % (len(name) + 1)
        if kind == "insert":
            name = name[:at] + char + name[at:]
        elif kind == "delete" and name:
            name = name[: max(0, at - 1)] + name[at:]
        elif kind == "case":
            name = name[:at] + name[at : at + 1].swapcase() + name[at + 1 :]
        elif kind == "append":
            name = name + char
        elif kind == "long":
            name = name + char * (CHANNEL_NAME_MAX + 1 - len(name))
    return name


def names_around(patterns: Sequence[Pattern]) -> st.SearchStrategy[str]:
    """Names near the patterns: a granted or bare-prefix name with up to three edits
    (insert, delete, change case, append, pad past the length limit)."""
    bases = st.sampled_from(list(patterns)).flatmap(
        lambda p: st.one_of(_suffix(p), st.just(p.stem), st.just(p.stem[:-1] or p.stem))
    )
    edit = st.tuples(
        st.sampled_from(["insert", "delete", "case", "append", "long"]),
        st.integers(0, CHANNEL_NAME_MAX),
        st.sampled_from(list(_EDIT_CHARS)),
    )
    return st.tuples(bases, st.lists(edit, max_size=3)).map(lambda pair: _apply(*pair))


def socket_ids() -> st.SearchStrategy[str]:
    """Socket ids of the form servers hand out: ``<digits>.<digits>``."""
    part = st.integers(min_value=0, max_value=10**15)
    return st.tuples(part, part).map(lambda pair: f"{pair[0]}.{pair[1]}")


def malformed_socket_ids() -> st.SearchStrategy[str]:
    """Socket ids no server hands out: digits, dots and a few intruders in any order."""
    alphabet = "0123456789.:-+ ,ex\n%\uff11\u0661"
    return st.text(alphabet, max_size=30).filter(lambda s: not valid_socket_id(s))
