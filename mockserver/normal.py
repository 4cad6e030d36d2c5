"""JSON as the API reads it: the normal form `messages:` conditions compare, and its hash key.

A null member is the same as an absent one, a content list holding one text part is the same as
that text, key order never matters, `1` equals `1.0` and `true` is not `1`. `normal_json` gives
the normal form (recordings write it); `normal_key` gives a string equal for two values exactly
when `json_difference` finds no difference between their normal forms, so equality can be a
hash lookup; `items_key` gives the same for a list, item by item.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

from mockserver.wire import JSON

__all__ = [
    "ItemsKey",
    "item_key",
    "items_key",
    "joined",
    "json_difference",
    "json_holds",
    "normal_json",
    "normal_key",
    "show",
    "show_text",
]


def normal_json(value: JSON) -> JSON:
    """`value` with null members dropped and one-text-part contents read as their text."""
    return _normal(value, whole=False)


def normal_key(value: JSON) -> str:
    """A string that two values share exactly when their normal forms do not differ.

    Most values are in normal form already: their text is then the key, and building the
    normal form (the costly part for a long conversation) is skipped. `_maybe_not_normal`
    finds every text whose value may not be (a null member, a content list, a whole float);
    a string that merely looks like one only sends that value the slow way.
    """
    if type(value) is list:  # `content: null` on assistant messages is common: drop it cheaply
        value = [_without_nulls(v) if type(v) is dict else v for v in value]
    text = _dumps(value)
    if not _maybe_not_normal(text):
        return text
    return _dumps(_normal(value, whole=True))


ItemsKey = tuple[str, ...] | str
"""A list's `items_key`, or a value's `normal_key` (for a list, the items' keys joined)."""


def items_key(value: list[JSON]) -> tuple[str, ...]:
    """Each item's `normal_key`: two lists share a normal form exactly when these tuples are
    equal (the normal form of a list is the list of its items' normal forms), and
    `joined(items_key(value)) == normal_key(value)`. `known` keeps each message's, so a
    conversation sent again is looked up with no 2 kB text built and hashed."""
    return tuple([item_key(v) for v in value])


def item_key(value: JSON) -> str:
    """A list item's part of `items_key`: its `normal_key`, a mapping's null members dropped
    first, as `normal_key` drops them for a list's items (`content: null` costs nothing)."""
    return normal_key(_without_nulls(value) if type(value) is dict else value)


def joined(items: tuple[str, ...]) -> str:
    """The `normal_key` of the list whose `items_key` is `items`."""
    return "[" + ",".join(items) + "]"


def _without_nulls(value: dict[str, JSON]) -> dict[str, JSON]:
    return {k: v for k, v in value.items() if v is not None} if None in value.values() else value


_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
_MAKE_ENCODER: Callable[..., Callable[[JSON, int], Iterable[str]]] | None = getattr(
    json.encoder, "c_make_encoder", None
)
_C_ENCODE = (
    None
    if _MAKE_ENCODER is None
    else _MAKE_ENCODER(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, True
    )
)
"""`_ENCODER`'s C encoder, made once: `JSONEncoder.encode` makes one per call, which cost a
microsecond a message when each message is keyed alone (`items_key`). No check for cycles:
JSON read from a request or a YAML file has none."""


def _dumps(value: JSON) -> str:
    """`value` as `_ENCODER.encode` writes it."""
    if _C_ENCODE is None or type(value) is str:
        return _ENCODER.encode(value)
    return "".join(_C_ENCODE(value, 0))


_WHOLE_FLOAT = re.compile(r"\d\.0(?!\d)")


def _maybe_not_normal(text: str) -> bool:
    """Substring tests first (a regex over a long conversation cost 15 us): a null member, a
    content list, a float written with an exponent (whole ones from 1e16 up are `1e+16`), a
    float ending in `.0`."""
    return (
        ":null" in text
        or '"content":[' in text
        or "e+" in text
        or (".0" in text and _WHOLE_FLOAT.search(text) is not None)
    )


def _normal(value: JSON, *, whole: bool) -> JSON:
    """The normal form; with `whole`, floats holding a whole number become ints too (`1.0` and
    `1` must give one key, while `json.dumps` writes them differently).

    Written for speed (a recorded conversation's messages are normalised on every request):
    strings and ints, most of the leaves, are taken as they are without a call.
    """
    kind = type(value)
    if kind is dict:
        return _mapping(value, whole)
    if kind is list:
        return [v if type(v) is str else _normal(v, whole=whole) for v in value]
    if whole and kind is float and value.is_integer():
        return int(value)
    return value


def _mapping(value: dict[str, JSON], whole: bool) -> dict[str, JSON]:
    out: dict[str, JSON] = {}
    for key, item in value.items():
        kind = type(item)
        if kind is str or kind is int or kind is bool:
            out[key] = item
        elif item is not None:
            out[key] = _normal(item, whole=whole)
    content = out.get("content")
    if type(content) is list and len(content) == 1:
        part = content[0]
        if type(part) is dict and part.keys() == {"type", "text"}:
            out["content"] = part["text"] if part["type"] == "text" else content
    return out


def json_holds(actual: JSON, expected: JSON) -> bool:
    """JSON equality, except that a mapping only needs the keys it gives (recursively).

    1 equals 1.0, but true is not 1.
    """
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and json_holds(actual[key], value) for key, value in expected.items()
        )
    return actual == expected and isinstance(actual, bool) == isinstance(expected, bool)


def show_text(text: str | None) -> str:
    """A text for messages: quoted, cut when long, "nothing" for None."""
    if text is None:
        return "nothing"
    return repr(text if len(text) <= 60 else text[:57] + "...")


def show(value: JSON) -> str:
    """A JSON value for messages: strings as `show_text` does, the rest as short JSON."""
    if isinstance(value, str):
        return show_text(value)
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _mapping_difference(actual: JSON, expected: dict[str, JSON], path: str) -> str | None:
    if not isinstance(actual, dict):
        return f"expected {path} to be a mapping, got {show(actual)}"
    for key, value in expected.items():
        if key not in actual:
            return f"expected {path}.{key}, the request has none"
        found = json_difference(actual[key], value, f"{path}.{key}")
        if found is not None:
            return found
    extra = [k for k in actual if k not in expected]
    return f"the request has {path}.{extra[0]}, which the scenario has not" if extra else None


def _list_difference(actual: JSON, expected: list[JSON], path: str) -> str | None:
    if not isinstance(actual, list):
        return f"expected {path} to be a list, got {show(actual)}"
    for n, (a, e) in enumerate(zip(actual, expected, strict=False)):
        found = json_difference(a, e, f"{path}[{n}]")
        if found is not None:
            return found
    if len(actual) != len(expected):
        return f"expected {len(expected)} items in {path}, got {len(actual)}"
    return None


def json_difference(actual: JSON, expected: JSON, path: str) -> str | None:
    """Where two JSON values differ (`1` equals `1.0`, `true` is not `1`), or None if equal."""
    if isinstance(expected, dict):
        return _mapping_difference(actual, expected, path)
    if isinstance(expected, list):
        return _list_difference(actual, expected, path)
    if actual == expected and isinstance(actual, bool) == isinstance(expected, bool):
        return None
    return f"expected {path} {show(expected)}, got {show(actual)}"
