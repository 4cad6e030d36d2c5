"""Background responses (`background: true`): what a poll sees while one is "running".

A background response is matched, rendered and stored when it is created, as any other; what
is kept here is only its progress: the create call answers `queued`, the first `GET` answers
`in_progress`, and the `GET`s after it the finished response once the reply's `delay_ms` has
passed since the create call (the reply's generation time). `POST .../cancel` of a queued or
running one makes it `cancelled` (its output dropped), as the live API does.

Bounded: at most `MAX_PENDING` responses are in progress at once; past that the oldest counts as
finished. Thread-safe; `clear` runs with the engine's `reset`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from mockserver.wire import JSON

MAX_PENDING = 10_000
"""The most background responses in progress at once (each costs a few dozen bytes here)."""


def snapshot(final: dict[str, JSON], status: str) -> dict[str, JSON]:
    """The response as a poll sees it before it finished (`queued`, `in_progress`), or after a
    cancel (`cancelled`): no output, no usage, not completed."""
    out = dict(final)
    out.update(status=status, output=[], completed_at=None, incomplete_details=None)
    out.pop("usage", None)  # not nullable in OpenAI's schema: absent until there is one
    return out


class Pending:
    """The background responses in progress: their id, when they finish, whether polled yet."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._running: OrderedDict[str, tuple[float, bool]] = OrderedDict()

    def start(self, response_id: str, seconds: float) -> None:
        with self._lock:
            while len(self._running) >= MAX_PENDING:
                self._running.popitem(last=False)
            self._running[response_id] = (self._clock() + seconds, False)

    def poll(self, response_id: str) -> str | None:
        """The status a `GET` sees now (`in_progress`), or None once it finished (or if it was
        never a background response)."""
        with self._lock:
            found = self._running.get(response_id)
            if found is None:
                return None
            due, polled = found
            if polled and self._clock() >= due:
                del self._running[response_id]
                return None
            self._running[response_id] = (due, True)
            return "in_progress"

    def stop(self, response_id: str) -> bool:
        """Forget a response in progress (cancelled or deleted); whether it was one."""
        with self._lock:
            return self._running.pop(response_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._running.clear()

    def __len__(self) -> int:
        return len(self._running)
