"""The responses kept with `store: true`, for `GET`/`DELETE /v1/responses/{id}`, `input_items`
and `previous_response_id`.

Bounded in bytes (`MAX_STORED_BYTES`, what the kept JSON weighs): when a new response would
go over, the oldest are forgotten, as the journal forgets its oldest entries; a response larger
than the whole bound is not kept (its id is then unknown, as an expired one is). Thread-safe;
`clear` runs with the engine's `reset`.

A response filled from a template (`template`) is kept as the template's holes and its own
values: its bytes are made when it is read back (which most kept responses never are), so
keeping it costs a request next to nothing. It still counts what its JSON weighs.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from mockserver.responses_api.holes import Holes

MAX_STORED_BYTES = 64 * 1024 * 1024
"""What the stored responses may weigh in all, by default (their JSON, encoded)."""
HOLE_BYTES = 64
"""What a value filled in a hole counts for (no id or timestamp is longer)."""


@dataclass(frozen=True, slots=True)
class Shape:
    """What the responses filled from one template share: the JSON of the response and of
    every input item it was answered from (earlier turns included), with holes for their
    values, and what that JSON weighs (each hole counted as `HOLE_BYTES`)."""

    response_json: Holes
    items_json: Holes
    size: int

    @classmethod
    def of(cls, response_json: Holes, items_json: Holes) -> Shape:
        holes = response_json.holes + items_json.holes
        size = response_json.size + items_json.size + HOLE_BYTES * holes
        return cls(response_json, items_json, size)


class Stored(NamedTuple):
    """One kept response: its shape and the values that fill it, joined by NUL bytes (no id
    or timestamp holds one). A tuple of a shape and one bytes object: one is made per request,
    and kept by the thousand (a frozen dataclass takes twice as long to make, and a list of
    values is four more objects to keep)."""

    shape: Shape
    packed: bytes

    @classmethod
    def of(cls, response: bytes, input_items: bytes) -> Stored:
        """A response kept as its bytes."""
        return cls(Shape.of(Holes.plain(response), Holes.plain(input_items)), b"")

    @property
    def size(self) -> int:
        return self.shape.size

    @property
    def response(self) -> bytes:
        return self.shape.response_json.fill(self.packed.split(b"\0"))

    @property
    def input_items(self) -> bytes:
        return self.shape.items_json.fill(self.packed.split(b"\0"))


class ResponseStore:
    """The kept responses by id, oldest first: a dict, and the ids in the order they were kept
    (a deque: forgetting the oldest is cheap, where a dict's first key is found slower and
    slower as keys are taken from its front). A deleted id's place in the deque goes stale
    (counted in `_stale`, skipped when reached); the deque is rebuilt when stale places
    outnumber the kept ids."""

    def __init__(self, limit: int = MAX_STORED_BYTES) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._kept: dict[str, Stored] = {}
        self._order: deque[str] = deque()
        self._stale: dict[str, int] = {}
        self._bytes = 0
        self.dropped = 0
        """How many responses were forgotten to stay under the bound."""

    def put(self, response_id: str, stored: Stored) -> None:
        """Keep a response; one kept again (a cancel, a replayed recording) is counted once
        and stays as old as it was."""
        size = stored.shape.size
        kept = self._kept
        with self._lock:
            if size > self.limit:
                self.dropped += 1
                return
            old = kept.get(response_id)
            if old is None:
                self._order.append(response_id)
            else:
                self._bytes -= old.shape.size
            if self._bytes + size > self.limit:
                self._make_room(response_id, size)
            kept[response_id] = stored
            self._bytes += size

    def _make_room(self, keep: str, size: int) -> None:
        """Forget the oldest responses (not `keep`, the one being kept) until `size` fits."""
        order, stale = self._order, self._stale
        passed = False
        while self._bytes + size > self.limit and order:
            victim = order.popleft()
            if stale.get(victim):
                stale[victim] -= 1
                if not stale[victim]:
                    del stale[victim]
            elif victim == keep:
                passed = True
            else:
                self._bytes -= self._kept.pop(victim).shape.size
                self.dropped += 1
        if passed:
            order.appendleft(keep)

    def get(self, response_id: str) -> Stored | None:
        return self._kept.get(response_id)  # one dict read: atomic

    def delete(self, response_id: str) -> bool:
        with self._lock:
            gone = self._kept.pop(response_id, None)
            if gone is None:
                return False
            self._bytes -= gone.shape.size
            self._stale[response_id] = self._stale.get(response_id, 0) + 1
            if len(self._order) > 2 * len(self._kept) + 64:  # mostly stale: rebuild
                self._order = deque(self._kept)
                self._stale.clear()
            return True

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._order.clear()
            self._stale.clear()
            self._bytes = 0
            self.dropped = 0

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def size(self) -> int:
        """The bytes kept now."""
        return self._bytes
