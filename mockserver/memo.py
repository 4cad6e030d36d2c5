"""Work reused for repeated requests: the bounded table behind every memory of the engine.

Test suites and load tests send the same body again and again. Parsing a body is a pure
function of its bytes, so the engine keeps, per body, the parsed request; a reply without
generated ids (tool-call or audio ids) is kept as a template (`templates`). Every table is a
`Bounded`: bounded in entries and in bytes, keeping only small bodies, and keeping a value only
from a key's second sighting (`Bounded.offer`), so one-off bodies cost nothing.

`cached` is the same table as a decorator, for the renderer's pure functions (encoded choices,
stream pieces, generated audio): `functools.lru_cache` bounds entries only, and one entry of a
long reply with logprobs can weigh tens of megabytes.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast

if TYPE_CHECKING:  # scenarios reads audio files through audio, which caches through memo
    from mockserver.request import ChatRequest
    from mockserver.scenarios import Reply

MAX_BODY = 64 * 1024
"""Bodies larger than this are not remembered (nor their replies)."""
MAX_BYTES = 32 * 1024 * 1024
"""What one table may hold in all, by default (keys and values, about)."""
SEEN = 8_192
"""First sightings noted per table (their hashes: about 0.5 MiB), then forgotten at once."""
ENTRY_BYTES = 256
"""What an entry costs besides the sizes its weight function counts."""
TEMPLATE_ID = "chatcmpl-mockserver-template-id"
"""The marked values templates are rendered with (chat: `templates`; `responses_api`)."""
TEMPLATE_CREATED = 1_000_000_000_000_000_007
TEMPLATE_REQUEST_ID = "req_mockserver-template-request-id"


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _unweighed(key: object, value: object) -> int:
    return 0


class Bounded(Generic[K, V]):
    """What is kept for keys; it forgets its oldest entries once it holds `size` of them, or once
    their weight (`weigh(key, value)` plus `ENTRY_BYTES` each, about their bytes) passes
    `max_bytes`. An entry heavier than an eighth of `max_bytes` is not kept at all.

    The engine's policy lives here too: `offer` says whether to keep a value for a key, which is
    from the key's second sighting on (the first only leaves a mark), and never for a body
    larger than `MAX_BODY`, so a stream of distinct bodies keeps nothing alive.

    An OrderedDict: dropping a plain dict's first key again and again makes finding the
    first key slower each time (the freed slots stay in front until the dict is rebuilt).
    Reads take no lock; writes do (replies render in worker threads too).
    """

    def __init__(
        self,
        size: int,
        max_bytes: int = MAX_BYTES,
        weigh: Callable[[K, V], int] = _unweighed,
    ) -> None:
        self._size = size
        self.max_bytes = max_bytes
        self._weigh = weigh
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._seen: set[int] = set()
        self._lock = threading.Lock()
        self.bytes = 0
        """What the entries held now weigh."""

    def get(self, key: K) -> V | None:
        """The value kept for `key`, or None (not seen, or seen once)."""
        found = self._items.get(key)
        return None if found is None else found[0]

    def offer(self, key: K, size: int) -> bool:
        """Whether to keep a value for `key` (a body of `size` bytes) now: on its second
        sighting yes; on the first, no, and the sighting is noted (its hash only: a stream of
        distinct bodies keeps none of them alive; two keys sharing a hash only make one of
        them kept a sighting early)."""
        if size > MAX_BODY:
            return False
        if key in self._items:
            return True
        mark = hash(key)
        seen = self._seen
        if mark in seen:
            return True
        if len(seen) >= SEEN:
            seen.clear()  # forgotten at once: those keys count from one again
        seen.add(mark)
        return False

    def put(self, key: K, value: V) -> None:
        self._store(key, value, self._weigh(key, value) + ENTRY_BYTES)

    def _store(self, key: K, value: V, weight: int) -> None:
        if weight > self.max_bytes // 8:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            while self._items and (
                len(self._items) >= self._size or self.bytes + weight > self.max_bytes
            ):
                _, (_, freed) = self._items.popitem(last=False)
                self.bytes -= freed
            self._items[key] = (value, weight)
            self.bytes += weight

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


P = ParamSpec("P")
R = TypeVar("R")


def cached(
    size: int, weigh: Callable[[Any], int], max_bytes: int = MAX_BYTES
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """`functools.lru_cache` for a pure function of hashable positional arguments, bounded in
    bytes too: `weigh(result)` is about the bytes a result holds (the arguments count as the
    lengths of the strings and bytes among them)."""

    def weigh_entry(key: tuple[Any, ...], value: Any) -> int:
        held = sum(len(a) for a in key if isinstance(a, str | bytes))
        return held + weigh(value)

    def wrap(function: Callable[P, R]) -> Callable[P, R]:
        table: Bounded[tuple[Any, ...], Any] = Bounded(size, max_bytes, weigh_entry)
        held = table._items  # read directly: this sits on the renderer's hot path

        @functools.wraps(function)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            if not kwargs and (found := held.get(args)) is not None:
                return cast(R, found[0])
            value = function(*args, **kwargs)
            if not kwargs:
                table.put(args, value)
            return value

        return call

    return wrap


def body_weight(key: bytes, value: object) -> int:
    """A remembered body: its bytes, about as much again for what was parsed from it, its
    messages' keys (`ChatRequest.message_keys`) and the `messages` normal key a recorded set
    computes (each about the body's size)."""
    return 4 * len(key)
