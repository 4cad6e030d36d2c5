"""Chat replies kept as templates, found again by what rendering them read from the request.

A rendered reply is a function of the scenario's reply and of the few request fields the
renderer reads (`stream`, `n`, `logprobs`, `model`, `stop` ...), never of the rest of the body:
the messages count only through `prompt_tokens`. So the engine renders a reply through a
`_Reading` stand-in that notes the fields read, and keeps the result as a `Template` under
those fields' values. Every later request that reads the same, however its messages or its
`user` differ, is filled in from it: its completion id, `created`, `x-request-id` and prompt
token count (and the totals made from it) go into marked places. A load test's distinct
bodies and a replayed recording's growing conversations are answered without rendering.

Why this is safe: rendering is deterministic in what it reads, so two requests that agree on
every field one rendering read take the same path and read the same fields. The prompt count
is the one value that is not in the key; the template is rendered with two different marked
counts and kept only if filling the first gives the second byte for byte (so a count that
decided anything, or reply text that looks like the mark, is caught). A rendering that reads
something unhashable (the raw body, metadata) is not kept.

Kept from a key's second sighting (the first time a reply renders, its fields are learned),
bounded in entries and bytes by `memo.Bounded`; each template holds its reply, so a reply
object's id reused after its scenario was removed never finds a stale template.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from mockserver import memo
from mockserver.memo import TEMPLATE_CREATED, TEMPLATE_ID, TEMPLATE_REQUEST_ID
from mockserver.outcome import Frame, Headers, Outcome
from mockserver.request import ChatRequest
from mockserver.scenarios import Reply, Scenario

__all__ = ["Template", "Templates"]

_PROMPT = 4_000_000_000_000_000
"""The prompt token count a template is rendered with; numbers within 10**9 of it are slots."""
_CHECK = 7_000_000_000_000_000
"""The second marked count: the template filled with it must give that rendering."""
_SLOT_DIGITS = re.compile(rb"(?<![\d.])(4000000\d{9})(?![\d.eE])")
_MAX_READS = 8
"""Field sets kept per reply (a stream and a plain request read different ones)."""
_NOTED = "_mockserver_template"
_NOTED_BYTES = 8 * 1024
"""The largest template noted on a request (the engine keeps up to 1,024 parsed requests)."""
_MAX_REPLIES = 16_384
"""Replies (times stream offsets) whose field sets are kept."""

# Segments: literal bytes at even positions; between them a slot: None for the stamp
# (`"id":...,"object":...,"created":...`), an int for the prompt count plus that int.
Segments = tuple[bytes | int | None, ...]
Marked = Callable[[Scenario, Reply, int, ChatRequest], Outcome]
"""Renders a scenario's reply (at a stream offset) for a request with the marked stamp and
request id."""


def _stamp(completion_id: str, obj: str, created: int) -> bytes:
    return f'"id":"{completion_id}","object":"{obj}","created":{created}'.encode()


def _segments(data: bytes, mark: bytes) -> Segments:
    """`data` cut at the stamp and at the prompt-count slots."""
    out: list[bytes | int | None] = []
    for n, piece in enumerate(data.split(mark)):
        if n:
            out.append(None)
        cut = _SLOT_DIGITS.split(piece)
        out.append(cut[0])
        for i in range(1, len(cut), 2):
            out += (int(cut[i]) - _PROMPT, cut[i + 1])
    return tuple(out)


def _format(segments: Segments) -> tuple[bytes, tuple[int | None, ...]]:
    """`segments` as one bytes format (`%b` for the stamp, `%d` for a count) and its slots."""
    literals = (cast(bytes, s).replace(b"%", b"%%") for s in segments[::2])
    slots = tuple(cast(int | None, s) for s in segments[1::2])
    marks = [b"%b" if s is None else b"%d" for s in slots]
    out = [next(literals)]
    for mark, literal in zip(marks, literals, strict=True):
        out += (mark, literal)
    return b"".join(out), slots


@dataclass(frozen=True, slots=True)
class _Body:
    """One body or frame of a template: filled by `stamp.join(pieces)` when the stamp is its
    only slot, else by one bytes format."""

    pieces: tuple[bytes, ...] | None
    format: bytes
    slots: tuple[int | None, ...]
    size: int

    @classmethod
    def of(cls, data: bytes, mark: bytes) -> _Body:
        segments = _segments(data, mark)
        literals = cast(tuple[bytes, ...], segments[::2])
        counted = any(s is not None for s in segments[1::2])
        fmt, slots = _format(segments) if counted else (b"", ())
        return cls(None if counted else literals, fmt, slots, sum(map(len, literals)))

    def fill(self, stamp: bytes, prompt: int) -> bytes:
        if self.pieces is not None:
            return stamp.join(self.pieces)
        return self.format % tuple([stamp if s is None else prompt + s for s in self.slots])

    def counted(self, prompt: int) -> _Body:
        """This body with `prompt` written in: the stamp is then its only slot (JSON writes
        no raw NUL, so one stands for the stamp while cutting)."""
        if self.pieces is not None:
            return self
        pieces = tuple(self.fill(b"\0", prompt).split(b"\0"))
        return _Body(pieces, b"", (), self.size)

    def weight(self) -> int:
        return self.size + 64


@dataclass(frozen=True, slots=True)
class Template:
    """A reply rendered with the marked values, cut where they stand (see the module doc).

    Unescaped quotes only occur as JSON syntax, never inside a string, so no scenario text can
    look like the stamp; text that looks like a marked count fails the check in `Templates`.
    """

    reply: Reply
    status: int
    head: Headers
    tail: Headers
    request_id: bool
    """Whether the headers carry the generated `x-request-id` (a scenario may pin or drop it)."""
    delay: float
    object: str
    body: _Body
    frames: tuple[tuple[float, _Body, bool], ...] | None
    held: int
    """About the bytes the template holds."""

    @classmethod
    def of(cls, reply: Reply, outcome: Outcome) -> Template:
        streamed = outcome.frames is not None
        obj = "chat.completion.chunk" if streamed else "chat.completion"
        mark = _stamp(TEMPLATE_ID, obj, TEMPLATE_CREATED)
        frames = None
        if outcome.frames is not None:
            frames = tuple((f.delay, _Body.of(f.data, mark), f.abort) for f in outcome.frames)
        slot = (b"x-request-id", TEMPLATE_REQUEST_ID.encode())
        at = outcome.headers.index(slot) if slot in outcome.headers else None
        body = _Body.of(outcome.body, mark)
        held = body.weight() + sum(f.weight() for _, f, _ in frames or ())
        held += sum(len(k) + len(v) for k, v in outcome.headers)
        return cls(
            reply=reply,
            status=outcome.status,
            head=outcome.headers if at is None else outcome.headers[:at],
            tail=[] if at is None else outcome.headers[at + 1 :],
            request_id=at is not None,
            delay=outcome.delay,
            object=obj,
            body=body,
            frames=frames,
            held=held,
        )

    def counted(self, prompt: int) -> Template:
        """This template for one prompt token count (filled faster: one join a body)."""
        frames = None
        if self.frames is not None:
            frames = tuple(
                (delay, body.counted(prompt), abort) for delay, body, abort in self.frames
            )
        return replace(self, body=self.body.counted(prompt), frames=frames)

    def fill(self, completion_id: str, created: int, request_id: str, prompt: int) -> Outcome:
        stamp = _stamp(completion_id, self.object, created)
        headers: Headers = self.head
        if self.request_id:
            headers = [*self.head, (b"x-request-id", request_id.encode()), *self.tail]
        if self.frames is None:
            return Outcome(self.status, headers, self.body.fill(stamp, prompt), delay=self.delay)
        frames = tuple(
            Frame(delay, body.fill(stamp, prompt), abort) for delay, body, abort in self.frames
        )
        return Outcome(self.status, headers, frames=frames, delay=self.delay)


def _same(a: Outcome, b: Outcome) -> bool:
    return (
        a.status == b.status
        and a.headers == b.headers
        and a.body == b.body
        and a.delay == b.delay
        and list(a.frames or ()) == list(b.frames or ())
    )


class _Reading:
    """A request that notes which fields are read, and gives a marked prompt token count to a
    renderer that has not read the messages or the body (one that has, such as vLLM's
    `prompt_token_ids`, may size things by it: it gets the real count, which is then keyed)."""

    __slots__ = ("_names", "_prompt", "_request")

    def __init__(self, request: ChatRequest, prompt: int) -> None:
        self._request = request
        self._prompt = prompt
        self._names: dict[str, None] = {}

    def __getattr__(self, name: str) -> Any:
        if name == "prompt_tokens" and not self._names.keys() & _SIZING:
            return self._prompt
        self._names[name] = None
        return getattr(self._request, name)


_SIZING = frozenset({"messages", "body"})


@dataclass(frozen=True, slots=True)
class _Reads:
    names: tuple[str, ...]
    values: Callable[[ChatRequest], Any]

    @classmethod
    def of(cls, names: tuple[str, ...]) -> _Reads:
        getter: Callable[[ChatRequest], Any]
        if len(names) > 1:
            getter = operator.attrgetter(*names)
        elif names:
            one = operator.attrgetter(names[0])
            getter = lambda request: (one(request),)  # noqa: E731
        else:
            getter = lambda _: ()  # noqa: E731
        return cls(names, getter)

    def key(self, request: ChatRequest, reply: Reply, offset: int, raw: bytes) -> Key:
        """What a template is kept under: the values read, or the body itself when a value
        read cannot be hashed (the body, metadata): then only that body finds it again."""
        values = self.values(request)
        try:
            hash(values)
        except TypeError:
            values = raw
        return (id(reply), offset, self.names, values)


def _size(key: Key, raw: bytes) -> int:
    """What `memo.Bounded.offer` is told a key weighs: the body, when the body is the key (so
    a body over `memo.MAX_BODY` is never kept), else a few field values."""
    return len(raw) if key[3] is raw else 64


class _Unkept:
    """What the table holds for a key whose rendering cannot be a template."""


_UNKEPT = _Unkept()
Key = tuple[int, int, tuple[str, ...], Any]


def _weigh(key: Key, value: Template | _Unkept) -> int:
    return value.held if isinstance(value, Template) else 0


class Templates:
    """The engine's templates for chat replies (see the module doc)."""

    def __init__(self, marked: Marked, size: int = 1024, max_bytes: int = memo.MAX_BYTES) -> None:
        self._marked = marked
        self.table: memo.Bounded[Key, Template | _Unkept] = memo.Bounded(size, max_bytes, _weigh)
        self._reads: dict[tuple[int, int], tuple[_Reads, ...]] = {}
        """Per reply and stream offset, the field sets its renderings read (`_MAX_REPLIES`)."""

    def __len__(self) -> int:
        return len(self.table)

    def find(
        self,
        request: ChatRequest,
        at: Scenario,
        reply: Reply,
        offset: int,
        raw: bytes,
    ) -> Template | None:
        """The template answering `request` with `reply`, made now if this is the second time
        its fields were seen (or the first time the reply renders); None: render afresh.

        A small template is also noted on the request itself: a body seen again is parsed
        once (the engine keeps its request), so its next answer skips the lookup."""
        noted: tuple[Reply, int, Template, bool] | None = request.__dict__.get(_NOTED)
        if noted is not None and noted[0] is reply and noted[1] == offset:
            if noted[3]:
                return noted[2]
            counted = noted[2].counted(request.prompt_tokens)  # its count is the request's
            request.__dict__[_NOTED] = (reply, offset, counted, True)
            return counted
        found = self._find(request, at, reply, offset, raw)
        if found is not None and found.held <= _NOTED_BYTES:
            request.__dict__[_NOTED] = (reply, offset, found, False)
        return found

    def _find(
        self,
        request: ChatRequest,
        at: Scenario,
        reply: Reply,
        offset: int,
        raw: bytes,
    ) -> Template | None:
        for reads in self._reads.get((id(reply), offset), ()):
            key = reads.key(request, reply, offset, raw)
            found = self.table.get(key)
            if found is not None:
                return found if isinstance(found, Template) and found.reply is reply else None
            if self.table.offer(key, _size(key, raw)) and memo.templatable(request, reply):
                return self._make(request, at, reply, offset, raw)
        return None

    def _make(
        self,
        request: ChatRequest,
        at: Scenario,
        reply: Reply,
        offset: int,
        raw: bytes,
    ) -> Template | None:
        reading = _Reading(request, _PROMPT)
        template: Template | _Unkept = Template.of(
            reply, self._marked(at, reply, offset, cast(ChatRequest, reading))
        )
        check = self._marked(at, reply, offset, cast(ChatRequest, _Reading(request, _CHECK)))
        filled = cast(Template, template).fill(
            TEMPLATE_ID, TEMPLATE_CREATED, TEMPLATE_REQUEST_ID, _CHECK
        )
        if not _same(filled, check):
            template = _UNKEPT
        reads = self._learn(reading, reply, offset)
        key = reads.key(request, reply, offset, raw)
        if _size(key, raw) <= memo.MAX_BODY:
            self.table.put(key, template)
        return template if isinstance(template, Template) else None

    def reading(self, request: ChatRequest, reply: Reply, offset: int) -> ChatRequest:
        """What to render `reply` for: the request, or, the first time the reply renders, a
        stand-in noting what is read (pass it to `learned` after rendering)."""
        if (id(reply), offset) in self._reads or not memo.templatable(request, reply):
            return request
        return cast(ChatRequest, _Reading(request, request.prompt_tokens))

    def learned(self, reading: ChatRequest, reply: Reply, offset: int, raw: bytes) -> None:
        """Keep what rendering through `reading` read; this counts as the first sighting of
        its key, so the next request that reads the same makes the template."""
        if isinstance(reading, _Reading):
            key = self._learn(reading, reply, offset).key(reading._request, reply, offset, raw)
            self.table.offer(key, _size(key, raw))

    def _learn(self, reading: _Reading, reply: Reply, offset: int) -> _Reads:
        reads = _Reads.of(tuple(reading._names))
        known = self._reads.get((id(reply), offset), ())
        if all(r.names != reads.names for r in known) and len(known) < _MAX_READS:
            if len(self._reads) >= _MAX_REPLIES:
                self._reads.clear()  # learned again on the next rendering of each
            self._reads[(id(reply), offset)] = (*known, reads)
        return reads
