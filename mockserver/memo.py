"""Work reused for repeated requests: parsed bodies, and replies rendered once as templates.

Test suites and load tests send the same body again and again. Parsing a body is a pure
function of its bytes, and a reply without generated ids (tool-call or audio ids) differs from
one response to the next only in its completion id, `created` and `x-request-id`. So the engine
keeps, per body, the parsed request and the rendered reply with marked places for those three
values, and fills them in: the same bytes as rendering afresh (a test checks it), for a fraction
of the work. Both tables are bounded and keep only small bodies.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from mockserver.outcome import Frame, Headers, Outcome

MAX_BODY = 64 * 1024
"""Bodies larger than this are not remembered (nor their replies)."""
TEMPLATE_ID = "chatcmpl-mockserver-template-id"
TEMPLATE_CREATED = 1_000_000_000_000_000_007
TEMPLATE_REQUEST_ID = "req_mockserver-template-request-id"
# Unescaped quotes only occur as JSON syntax, never inside a string value, so these cannot
# match anything a scenario's text puts in a reply.
_ID = f'"id":"{TEMPLATE_ID}"'.encode()
_CREATED = f'"created":{TEMPLATE_CREATED}'.encode()

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Bounded(Generic[K, V]):
    """A dict that forgets its oldest entry once it holds `size` of them."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self._size:
            del self._items[next(iter(self._items))]
        self._items[key] = value

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True)
class Template:
    """A reply rendered with `TEMPLATE_*` values, ready to be filled in per response."""

    outcome: Outcome

    def fill(self, completion_id: str, created: int, request_id: str) -> Outcome:
        marked = self.outcome
        fresh_id = f'"id":"{completion_id}"'.encode()
        fresh_created = f'"created":{created}'.encode()
        headers: Headers = [
            (k, request_id.encode()) if k == b"x-request-id" else (k, v) for k, v in marked.headers
        ]
        if marked.frames is None:
            body = marked.body.replace(_ID, fresh_id).replace(_CREATED, fresh_created)
            return Outcome(marked.status, headers, body, delay=marked.delay)
        frames = tuple(
            Frame(f.delay, f.data.replace(_ID, fresh_id).replace(_CREATED, fresh_created), f.abort)
            for f in marked.frames
        )
        return Outcome(marked.status, headers, frames=frames, delay=marked.delay)
