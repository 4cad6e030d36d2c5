"""What the engine keeps of the requests it answered, bounded in entries and in bytes.

The journal holds each request's bytes, so its size is counted in bytes: once the entries pass
`EngineConfig.journal_bytes`, the oldest are dropped (and counted in `dropped`). A request larger
than the whole budget is kept without its body. `shown` reads a kept body for display so that
every value a client sent can be written as JSON: numbers JSON cannot hold as such (`1e999`,
which reads as infinity) are shown as the text they were sent as. The control API
(`journal_view`) gives the journal's JSON form.

A request the server answers also gets a `Meter` (set in `METER` by the ASGI app for the
request's task, kept on its entry by the engine): when it was received, when its first and last
body bytes were handed to the server (or the client went away), and the reply as sent, cut to
`SHOWN_REPLY` bytes. The kept reply counts toward the journal's byte budget from the next entry
on (`Journal.add` counts the replies sent since the last one).

Header pairs are kept packed (`pack_headers`): one bytes object, not a tuple of tuples of bytes.
An entry lives for thousands of requests, and every object it holds is freed long after, out
of the processor's caches, and its memory handed to a new request cold: under load each object
an entry kept cost the server about a quarter of a microsecond a request.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from itertools import chain
from typing import TYPE_CHECKING, Any, overload

from mockserver.errors import ApiError
from mockserver.outcome import Frame, Headers, Outcome
from mockserver.request import ChatRequest

if TYPE_CHECKING:
    from mockserver.engine import JournalEntry

ENTRY_OVERHEAD = 512
"""What an entry costs besides its body and headers (the entry, its tuple, the error)."""
HEADER_COST = 128
"""What a kept reply's header counts for in the journal's byte budget (an estimate: response
headers are short, and counting each one's bytes cost a tenth of the send path)."""
SHOWN_REPLY = 64 * 1024
"""The most bytes of a reply the journal keeps to show (the page, `GET /_mockserver/journal`):
a longer body, or stream past this many bytes, is kept cut, with the size it had."""


_SEP = b"\x00"


class PackedHeaders(Sequence[tuple[bytes, bytes]]):
    """Header pairs kept as one bytes object (names and values joined by NULs), read as the
    pairs they were. Made by `pack_headers`, which never packs a name or value holding a NUL."""

    __slots__ = ("packed",)

    def __init__(self, packed: bytes) -> None:
        self.packed = packed

    def _pairs(self) -> tuple[tuple[bytes, bytes], ...]:
        if not self.packed:  # (one pair of empty name and value packs to one NUL)
            return ()
        parts = self.packed.split(_SEP)
        return tuple(zip(parts[::2], parts[1::2], strict=True))

    def __len__(self) -> int:
        return (self.packed.count(_SEP) + 1) // 2

    @overload
    def __getitem__(self, index: int) -> tuple[bytes, bytes]: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[tuple[bytes, bytes], ...]: ...
    def __getitem__(
        self, index: int | slice
    ) -> tuple[bytes, bytes] | tuple[tuple[bytes, bytes], ...]:
        return self._pairs()[index]

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._pairs())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedHeaders):
            return self.packed == other.packed
        if isinstance(other, (tuple, list)):
            try:
                return self._pairs() == tuple(map(tuple, other))
            except TypeError:  # not a sequence of pairs
                return False
        return NotImplemented

    def __hash__(self) -> int:  # equal to the tuple of its pairs, so hashed as that tuple
        return hash(self._pairs())

    def __repr__(self) -> str:
        return f"PackedHeaders({self._pairs()!r})"


KeptHeaders = bytes | tuple[tuple[bytes, bytes], ...]
"""Header pairs as a journal keeps them: packed into one bytes object, or a tuple of pairs."""


def pack_headers(headers: Sequence[tuple[bytes, bytes]]) -> KeptHeaders:
    """`headers` as one object to keep: packed (see `unpack`), or as given (a tuple) when
    empty, when a name or value holds a NUL (which the packing uses), or when one is not
    bytes."""
    if not headers:
        return ()
    try:
        packed = _SEP.join(chain.from_iterable(headers))
    except TypeError:  # a caller's `str` header (the engine's API takes bytes): kept as given
        return tuple((name, value) for name, value in headers)
    if packed.count(_SEP) != 2 * len(headers) - 1:
        return tuple((name, value) for name, value in headers)
    return packed


def unpack(kept: KeptHeaders | Sequence[tuple[bytes, bytes]]) -> Sequence[tuple[bytes, bytes]]:
    """Kept headers read as their pairs (a view made when asked, not kept itself)."""
    return PackedHeaders(kept) if isinstance(kept, bytes) else kept


class Meter:
    """What the server measured of one request: `received` (wall clock, seconds since the
    epoch), `start`, `first` and `end` (`time.perf_counter`: the request's arrival, its first and
    its last body byte handed to the server), `gone` (the client went away before the end), and
    the reply as sent: `status`, `headers`, `shown` (the body, or the frames sent, cut to
    `SHOWN_REPLY` bytes) and `size` (all the bytes of body sent)."""

    __slots__ = (
        "_headers",
        "charges",
        "end",
        "first",
        "gone",
        "kept",
        "received",
        "shown",
        "size",
        "start",
        "status",
    )

    first: float | None
    gone: bool
    """Set with `end` (by `sent`): read them only when `end` is not None."""
    status: int
    _headers: KeptHeaders
    size: int
    """Set with `shown` (by `sent`): read them only when `shown` is not None."""

    def __init__(self, received: float, start: float) -> None:
        self.received = received
        self.start = start
        self.end: float | None = None
        self.shown: bytes | tuple[Frame, ...] | None = None
        self.kept = 0
        """The bytes the kept reply counts for in its journal."""
        self.charges: Charges | None = None
        """The `Journal.charges` of the journal holding this meter's entry (None once it
        dropped it): not the journal itself, which would make each entry a reference cycle,
        freed only by the garbage collector."""

    @property
    def headers(self) -> Sequence[tuple[bytes, bytes]]:
        """The reply's headers as sent (kept packed: `pack_headers`)."""
        return unpack(self._headers)

    def sent(  # noqa: PLR0917 - called once per request from the send path
        self,
        outcome: Outcome,
        headers: Headers,
        frames: int | None,
        first: float | None,
        end: float,
        gone: bool = False,
    ) -> None:
        """The reply went out (`frames`: how many of a stream's frames were sent): keep it,
        cut, and charge it to the journal."""
        self.first = first
        self.gone = gone
        self.end = end  # last: a reader in another thread takes `end` to mean the others are set
        self.status, self._headers = outcome.status, pack_headers(headers)
        shown: bytes | tuple[Frame, ...]
        if outcome.frames is None:
            body = outcome.body
            self.size = len(body)
            shown = body if len(body) <= SHOWN_REPLY else body[:SHOWN_REPLY]
            kept = len(shown) + ENTRY_OVERHEAD
        else:
            shown, self.size, kept = _cut_frames(outcome.frames, frames or 0)
            kept += ENTRY_OVERHEAD + 64 * len(shown)  # each Frame kept
        kept += HEADER_COST * len(headers)
        charges = self.charges
        if charges is not None:  # else no entry (or it is gone already): keep nothing
            self.shown = shown
            charges.append((self, kept))  # counted at the journal's next `add`


def _cut_frames(frames: Sequence[Frame], count: int) -> tuple[tuple[Frame, ...], int, int]:
    """The first `count` frames cut to `SHOWN_REPLY` bytes of data, their whole size and the
    bytes kept."""
    size = kept = 0
    shown: list[Frame] = []
    for frame in frames[:count]:
        data = frame.data
        size += len(data)
        if kept < SHOWN_REPLY:
            if kept + len(data) > SHOWN_REPLY:
                frame = Frame(frame.delay, data[: SHOWN_REPLY - kept])  # noqa: PLW2901
            shown.append(frame)
            kept += len(frame.data)
    return tuple(shown), size, kept


Charges = deque[tuple[Meter, int]]
"""Replies sent and the bytes each keeps, for their journal to count."""

METER: ContextVar[Meter | None] = ContextVar("mockserver_meter", default=None)
"""The meter of the request being answered (the ASGI app sets it for each request's task)."""


class Journal:
    """Entries, oldest first, at most `entries` of them and `budget` bytes in all."""

    def __init__(self, entries: int, budget: int) -> None:
        self._items: deque[JournalEntry] = deque()
        """Oldest first; each counts for `cost` of its bytes and headers, worked out again when
        it goes (a pair of the entry and its size was two more objects kept per entry)."""
        self._limit = entries
        self.budget = budget
        self.size = 0
        """The bytes the entries held now count for."""
        self.dropped = 0
        """How many entries were dropped to stay within the limits."""
        self.charges: Charges = deque()
        """Replies sent since the last `add` and the bytes each keeps: appended from the
        thread that sent the reply (a deque's append is atomic), counted by `add`, which the
        engine calls under its lock, so the journal needs no lock of its own."""

    def add(self, entry: JournalEntry) -> None:
        """Keep `entry` (it counts for `entry.cost()` bytes, and its meter's
        kept reply), dropping the oldest to make room; count the replies sent since the last
        call."""
        charges = self.charges
        while charges:
            sent, kept = charges.popleft()
            if sent.charges is charges:
                sent.kept = kept
                self.size += kept
        meter = entry.meter
        if meter is not None:
            meter.charges = charges
            self.size += meter.kept  # an entry carried over to a new journal (`take_state`)
        size = entry.cost()
        items = self._items
        if len(items) >= self._limit or self.size + size > self.budget:
            self._make_room(size)
        items.append(entry)
        self.size += size

    def _make_room(self, size: int) -> None:
        """Drop the oldest entries until one more of `size` bytes fits; an entry frees its own
        bytes and its meter's kept reply."""
        items = self._items
        while items and (len(items) >= self._limit or self.size + size > self.budget):
            entry = items.popleft()
            freed = entry.cost()
            meter = entry.meter
            if meter is not None and meter.charges is self.charges:
                freed += meter.kept
                meter.charges = None
                meter.shown = None
            self.size -= freed
            self.dropped += 1

    def entries(self) -> list[JournalEntry]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


def cost(raw: bytes, headers: KeptHeaders | Sequence[tuple[bytes, bytes]]) -> int:
    """The bytes an entry for this request counts for."""
    if isinstance(headers, PackedHeaders):  # counted as kept, NULs included
        headers = headers.packed
    if isinstance(headers, bytes):
        return len(raw) + len(headers) + ENTRY_OVERHEAD
    return len(raw) + sum(map(len, chain.from_iterable(headers))) + ENTRY_OVERHEAD


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
