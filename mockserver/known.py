"""Values met before, by their bytes: what validation built from each message and tool list,
and each message's normal key.

An agent sends its whole conversation again with every turn, and a replayed recording does the
same, so most messages of a request were in an earlier one. A message's `RequestMessage` (from
the common-shape validator) and its part of the `messages` key (`normal.item_key`)
are pure functions of its JSON value, so both are kept per message, keyed by the value as
orjson writes it back (0.1 us for a short message, against 1-2 us to validate it and a
sort-keyed `json.dumps` to key it).

A request's `tools` come again with every turn too: the names the common-shape check finds in
a list of function tools (their JSON schemas walked) are kept per list the same way.

The key is exact: equal keys are equal values (key order included: a message written with its
keys in another order is only a miss). That holds for what orjson itself read, and only such
bodies are keyed (`validation.decode_exact`): a body Python's decoder read may hold infinity,
which orjson writes as `null`. A value orjson cannot write (an integer past 64 bits) gets no
key and is validated every time. Bounded like `tokens.count`'s table: `MAX_BYTES` of
keys in all, cleared when full; a value longer than `MAX_VALUE` is not kept. Each dict
operation is atomic, so threads share the tables safely (the journal is read, and its requests
parsed again, in worker threads; in-process mocks answer in the test's threads); the byte
count they update is only about right then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from mockserver.normal import item_key
from mockserver.wire import JSON

if TYPE_CHECKING:  # request and validation read and write these tables
    from mockserver.request import RequestMessage
    from mockserver.validation.tools import Tools

__all__ = [
    "MAX_BYTES",
    "MAX_VALUE",
    "MESSAGES",
    "TOOLS",
    "clear",
    "items_key",
    "keep",
    "keep_tools",
    "key_of",
]

MAX_BYTES = 16 * 1024 * 1024
"""What the kept keys (of messages and tool lists) and messages' normal keys may weigh in all
(about as much again is held for the values), before every table is cleared."""
MAX_VALUE = 64 * 1024
"""A message or tool list whose key is longer than this is not kept."""
_ENTRY = 200
"""What an entry costs besides its key's bytes (the dict slot, the message object)."""

MESSAGES: dict[bytes, RequestMessage] = {}
"""What validation built, per message key: read directly on validation's hot path (a call
per message cost more than the lookup); written only through `keep`."""
TOOLS: dict[bytes | None, Tools] = {}  # None is never a key: `get(None)` gives None
"""What validation gave for a valid tool list of the common shape (its function names, and
the key itself), per list key."""
_keys: dict[bytes | None, str] = {}  # None is never a key: `get(None)` gives None
_held = [0]


def key_of(raw: JSON, _dumps: Callable[[Any], bytes] = orjson.dumps) -> bytes | None:
    """A message's or tool list's key (its value as orjson writes it), or None when it has
    none (orjson cannot write it, or it is longer than `MAX_VALUE`)."""
    try:
        key = _dumps(raw)
    except orjson.JSONEncodeError:
        return None
    return key if len(key) <= MAX_VALUE else None


def _charge(size: int) -> None:
    """Count an entry of `size` bytes, clearing every table first if it would not fit."""
    if _held[0] + size + _ENTRY > MAX_BYTES:
        clear()
    _held[0] += size + _ENTRY


def keep(key: bytes, built: RequestMessage) -> None:
    """Keep what validation built for a message (only a valid one of a common shape)."""
    _charge(len(key))
    MESSAGES[key] = built


def keep_tools(key: bytes, tools: Tools) -> None:
    """Keep what validation gave for a valid tool list of the common shape."""
    _charge(len(key))
    TOOLS[key] = tools


def items_key(keys: tuple[bytes | None, ...], raws: list[JSON]) -> tuple[str, ...]:
    """`normal.items_key(raws)`, from each message's normal key kept per message."""
    parts = tuple(map(_keys.get, keys))  # a C loop: a None key gives None too
    if all(parts):  # every one kept (a key is never empty; `None in` compares each)
        return parts  # type: ignore[return-value]  # no None in it
    return tuple(
        _normal_key(key, raw) if part is None else part
        for part, key, raw in zip(parts, keys, raws, strict=True)
    )


def _normal_key(key: bytes | None, raw: JSON) -> str:
    """One message's normal key, kept when it has a key."""
    found = item_key(raw)
    if key is not None:
        _charge(len(key) + len(found))
        _keys[key] = found
    return found


def clear() -> None:
    """Forget every kept value (when the tables are full; and a benchmark's fresh start)."""
    MESSAGES.clear()
    TOOLS.clear()
    _keys.clear()
    _held[0] = 0
