"""Work reused for repeated requests: parsed bodies, and replies rendered once as templates.

Test suites and load tests send the same body again and again. Parsing a body is a pure
function of its bytes, and a reply without generated ids (tool-call or audio ids) differs from
one response to the next only in its completion id, `created` and `x-request-id`. So the engine
keeps, per body, the parsed request and the rendered reply with marked places for those three
values, and fills them in: the same bytes as rendering afresh (a test checks it), for a fraction
of the work. Both tables are bounded, keep only small bodies, and keep a value only from a
body's second sighting (`Bounded.offer`), so one-off bodies cost nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from mockserver.outcome import Frame, Headers, Outcome
from mockserver.request import ChatRequest
from mockserver.scenarios import Reply

MAX_BODY = 64 * 1024
"""Bodies larger than this are not remembered (nor their replies)."""
TEMPLATE_ID = "chatcmpl-mockserver-template-id"
TEMPLATE_CREATED = 1_000_000_000_000_000_007
TEMPLATE_REQUEST_ID = "req_mockserver-template-request-id"


def _stamp(completion_id: str, obj: str, created: int) -> bytes:
    """How a completion or chunk starts: `"id":...,"object":...,"created":...`."""
    return f'"id":"{completion_id}","object":"{obj}","created":{created}'.encode()


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Seen:
    """The mark a key's first sighting leaves: a value pays off from the second."""


_SEEN = _Seen()


class Bounded(Generic[K, V]):
    """What is kept for keys seen more than once; it forgets its oldest entry past `size`.

    The policy lives here: `offer` says whether to keep a value for a key, which is from the
    key's second sighting on (the first only leaves a mark), and never for a body larger than
    `MAX_BODY`, so a stream of distinct bodies keeps nothing alive.

    An OrderedDict: dropping a plain dict's first key again and again makes finding the
    first key slower each time (the freed slots stay in front until the dict is rebuilt).
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V | _Seen] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value kept for `key`, or None (not seen, or seen once)."""
        value = self._items.get(key)
        return None if value is None or isinstance(value, _Seen) else value

    def offer(self, key: K, size: int) -> bool:
        """Whether to keep a value for `key` (a body of `size` bytes) now: on its second
        sighting yes; on the first, no, and the sighting is noted."""
        if size > MAX_BODY:
            return False
        if key in self._items:
            return True
        self._store(key, _SEEN)
        return False

    def put(self, key: K, value: V) -> None:
        self._store(key, value)

    def _store(self, key: K, value: V | _Seen) -> None:
        if key not in self._items and len(self._items) >= self._size:
            self._items.popitem(last=False)
        self._items[key] = value

    def __len__(self) -> int:
        return len(self._items)


def templatable(request: ChatRequest, reply: Reply) -> bool:
    """Whether the reply makes no ids of its own (tool calls, audio): then only the completion
    id, `created` and `x-request-id` differ between responses, and a template serves."""
    if "audio" in request.modalities:
        return False
    return all(
        choice.audio is None
        and choice.function_call is None
        and all(call.id for call in choice.tool_calls)
        for choice in reply.choices
    )


@dataclass(frozen=True, slots=True)
class Template:
    """A reply rendered with the `TEMPLATE_*` values, cut where they stand.

    Every completion and chunk starts with `"id":...,"object":...,"created":...`; the template
    keeps the pieces between those starts, and a response joins them with its own. Unescaped
    quotes only occur as JSON syntax, never inside a string, so no scenario text can look like
    that start.
    """

    status: int
    head: Headers
    tail: Headers
    request_id: bool
    """Whether the headers carry the generated `x-request-id` (a scenario may pin or drop it)."""
    delay: float
    object: str
    body: tuple[bytes, ...]
    frames: tuple[tuple[float, tuple[bytes, ...], bool], ...] | None

    @classmethod
    def of(cls, outcome: Outcome) -> Template:
        streamed = outcome.frames is not None
        obj = "chat.completion.chunk" if streamed else "chat.completion"
        mark = _stamp(TEMPLATE_ID, obj, TEMPLATE_CREATED)
        frames = None
        if outcome.frames is not None:
            frames = tuple((f.delay, tuple(f.data.split(mark)), f.abort) for f in outcome.frames)
        slot = (b"x-request-id", TEMPLATE_REQUEST_ID.encode())
        at = outcome.headers.index(slot) if slot in outcome.headers else None
        return cls(
            status=outcome.status,
            head=outcome.headers if at is None else outcome.headers[:at],
            tail=[] if at is None else outcome.headers[at + 1 :],
            request_id=at is not None,
            delay=outcome.delay,
            object=obj,
            body=tuple(outcome.body.split(mark)),
            frames=frames,
        )

    def fill(self, completion_id: str, created: int, request_id: str) -> Outcome:
        stamp = _stamp(completion_id, self.object, created)
        headers: Headers = self.head
        if self.request_id:
            headers = [*self.head, (b"x-request-id", request_id.encode()), *self.tail]
        if self.frames is None:
            return Outcome(self.status, headers, stamp.join(self.body), delay=self.delay)
        frames = tuple(
            Frame(delay, stamp.join(pieces), abort) for delay, pieces, abort in self.frames
        )
        return Outcome(self.status, headers, frames=frames, delay=self.delay)
