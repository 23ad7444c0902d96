"""The ``${...}`` variables of a check's exchange: how ``let:`` generators make them and how they
are substituted into the steps.

Kept apart from the connections on purpose: none of this touches a socket or the clock of an
event loop, so the template rules (whole-string values keep their type, keys are always text,
list items are reached by index) can be tested on plain dictionaries. The names generated here
are random so that concurrent runs against one server never share a channel.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import string
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

from .errors import UsageError
from .target import Target

__all__ = ["define", "lookup", "nonce", "render", "target_variables", "unique_channel"]

_TEMPLATE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")
_NAME_ALPHABET = string.ascii_lowercase + string.digits


def _random_text(length: int) -> str:
    # One read of the system's randomness for the whole text, not one per character: the
    # delivery model names thousands of channels and markers in a run.
    return "".join(
        _NAME_ALPHABET[byte % len(_NAME_ALPHABET)] for byte in secrets.token_bytes(length)
    )


def unique_channel(prefix: str) -> str:
    """A channel name no other run uses, within the allowed character set."""
    return prefix + _random_text(20)


def nonce() -> str:
    """A token that marks one payload, so that what arrives can be told from what an earlier
    example or another check left in flight."""
    return _random_text(16)


def target_variables(target: Target) -> dict[str, Any]:
    """What every exchange may name before it defines anything: ``${target.…}``."""
    variables: dict[str, Any] = {
        "key": target.key,
        "app_id": target.app_id,
        "max_event_bytes": target.max_event_bytes,
    }
    # The other apps the target declares (second_app, ...), without their secrets.
    for name, app in target.other_apps.items():
        variables[name] = {
            field: value
            for field, value in dataclasses.asdict(app).items()
            if value is not None and field != "secret"
        }
    return {"target": variables}


def define(variables: MutableMapping[str, Any], let: Mapping[str, Any], *, where: str) -> None:
    """Add each of a check's ``let:`` variables, in order (a later one may name an earlier one).
    ``where`` names the check in error messages."""
    for name, generator in let.items():
        variables[name] = _generate(variables, generator, where)


def _generate(variables: Mapping[str, Any], generator: Mapping[str, Any], where: str) -> Any:
    if "channel" in generator:
        prefix = render(generator["channel"], variables, where=where)
        if "count" in generator:
            return [unique_channel(prefix) for _ in range(int(generator["count"]))]
        return unique_channel(prefix)
    if "nonce" in generator:
        return nonce()
    if "repeat" in generator:
        length = generator["length"]
        if isinstance(length, Mapping):
            base = lookup(variables, length["var"], where=where)
            if isinstance(base, bool) or not isinstance(base, int):
                raise UsageError(f"length variable {length['var']!r} is not an integer")
            length = base + int(length.get("plus", 0))
        return str(generator["repeat"]) * (int(length) // len(generator["repeat"]))
    if "value" in generator:
        return render(generator["value"], variables, where=where)
    if "unix_time" in generator:
        return int(time.time()) + int(generator["unix_time"].get("plus", 0))
    raise UsageError(f"unknown let generator: {dict(generator)!r}")


def lookup(variables: Mapping[str, Any], dotted: str, *, where: str) -> Any:
    """The value of ``a.b.0``: mapping keys and list indexes, followed one part at a time."""
    head, *rest = dotted.split(".")
    if head not in variables:
        raise UsageError(f"undefined variable ${{{dotted}}} in {where}")
    value = variables[head]
    for part in rest:
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
            continue
        if not isinstance(value, Mapping) or part not in value:
            raise UsageError(f"undefined variable ${{{dotted}}} in {where}")
        value = value[part]
    return value


def render(value: Any, variables: Mapping[str, Any], *, where: str) -> Any:
    """Substitute ``${...}`` in every string of a (nested) value. A string that is one template
    and nothing else becomes the variable's value itself (a number stays a number, a list a
    list); inside longer text the value is spelled out."""
    if isinstance(value, str):
        whole = _TEMPLATE.fullmatch(value)
        if whole:
            return lookup(variables, whole.group(1), where=where)
        return _spell_out(value, variables, where)
    if isinstance(value, Mapping):
        # Keys are templated too (a pattern may name a generated channel), always as text.
        return {
            _spell_out(k, variables, where) if isinstance(k, str) else k: render(
                v, variables, where=where
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [render(v, variables, where=where) for v in value]
    return value


def _spell_out(text: str, variables: Mapping[str, Any], where: str) -> str:
    return _TEMPLATE.sub(lambda m: str(lookup(variables, m.group(1), where=where)), text)
