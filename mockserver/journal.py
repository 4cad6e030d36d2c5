"""What the engine keeps of the requests it answered, bounded in entries and in bytes.

The journal holds each request's bytes, so its size is counted in bytes: once the entries pass
`EngineConfig.journal_bytes`, the oldest are dropped (and counted in `dropped`). A request larger
than the whole budget is kept without its body. `shown` reads a kept body for display so that
every value a client sent can be written as JSON: numbers JSON cannot hold as such (`1e999`,
which reads as infinity) are shown as the text they were sent as. The control API
(`journal_view`) gives the journal's JSON form.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mockserver.errors import ApiError
from mockserver.request import ChatRequest

if TYPE_CHECKING:
    from mockserver.engine import JournalEntry

ENTRY_OVERHEAD = 512
"""What an entry costs besides its body and headers (the entry, its tuple, the error)."""


class Journal:
    """Entries, oldest first, at most `entries` of them and `budget` bytes in all."""

    def __init__(self, entries: int, budget: int) -> None:
        self._items: deque[tuple[JournalEntry, int]] = deque()
        self._limit = entries
        self.budget = budget
        self.size = 0
        """The bytes the entries held now count for."""
        self.dropped = 0
        """How many entries were dropped to stay within the limits."""

    def add(self, entry: JournalEntry, size: int) -> None:
        """Keep `entry`, which counts for `size` bytes, dropping the oldest to make room."""
        while self._items and (len(self._items) >= self._limit or self.size + size > self.budget):
            _, freed = self._items.popleft()
            self.size -= freed
            self.dropped += 1
        self._items.append((entry, size))
        self.size += size

    def entries(self) -> list[JournalEntry]:
        return [entry for entry, _ in self._items]

    def __len__(self) -> int:
        return len(self._items)


def cost(raw: bytes, headers: Sequence[tuple[bytes, bytes]]) -> int:
    """The bytes an entry for this request counts for."""
    return len(raw) + sum(len(k) + len(v) for k, v in headers) + ENTRY_OVERHEAD


def _number(text: str) -> float | str:
    """A JSON number as Python reads it, or its text when Python would read infinity."""
    value = float(text)
    return value if math.isfinite(value) else text


def _integer(text: str) -> int | str:
    """An integer, or its text when it has more digits than Python converts."""
    try:
        return int(text)
    except ValueError:
        return text


_DECODER = json.JSONDecoder(parse_float=_number, parse_int=_integer, parse_constant=str)
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
"""ASCII out: a lone surrogate a client escaped (`\\ud800`) stays an escape, valid JSON."""


def shown(raw: bytes) -> Any:
    """The request body as the journal shows it: its JSON, with every number JSON cannot hold
    as a number (`1e999`, `NaN`) as the text it was sent as; None when the body is not JSON."""
    try:
        return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, RecursionError):
        return None


Reader = Callable[["JournalEntry", dict[str, Any]], ChatRequest]
"""Reads a journaled body again as it was read then (`engine.read_again`)."""


def unknown_fields(entry: JournalEntry, read: Reader) -> list[str]:
    """The fields of an entry's request that mockserver does not know, read again by `read`
    (the parsed request is not kept on the entry: the journal's byte budget counts bytes)."""
    body = shown(entry.raw) if entry.raw else None
    if not isinstance(body, dict):
        return []
    try:
        return list(read(entry, body).unknown_fields)
    except ApiError:
        return []
