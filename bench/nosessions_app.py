"""Bench only: `mockserver serve` with the session seam taken out (target mockserver-nosessions).

The same command line, engine, control API and ASGI app as `python -m mockserver serve`, except
that `MockApp._api` is replaced by a copy without the session lookup: no test of each request
header against `x-mockserver-session`, and no `if session is not None` branch. Comparing this
target with `mockserver` in one run measures what sessions cost a request that carries none.
The copy must stay `MockApp._api` minus the `SEAM` lines: on any other difference this script
refuses to run and says so, so the comparison cannot drift.

    python bench/nosessions_app.py serve DIR --port 0 --seed 1
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from typing import Any

from mockserver import app as mockapp
from mockserver.app import (
    METER,
    OFF_LOOP_BODY,
    Meter,
    MockApp,
    Receive,
    Scope,
    Send,
    _perf,
    _wall,
    read_body,
    send_outcome,
    too_large,
)
from mockserver.cli import main
from mockserver.outcome import Outcome

SEAM = (
    '            if name == b"x-mockserver-session" and session is None:',
    "                session = value",
    "        if session is not None:",
    "            try:",
    '                engine = self.sessions.engine(check_name(session.decode("latin-1")))',
    "            except ApiError as exc:",
    "                await send_outcome(self._error(exc, engine), send, receive)",
    "                return",
)
"""The lines of `MockApp._api` that serve sessions (each once, in this order)."""


class NoSessionApp(MockApp):
    async def _api(
        self, scope: Scope, receive: Receive, send: Send, session: bytes | None = None
    ) -> None:
        meter = Meter(_wall(), _perf())
        headers = scope["headers"]
        for name, value in headers:
            if name == b"content-length" and value.isdigit() and int(value) > self._limit:
                outcome = self._error(too_large(int(value), self._limit))
                outcome.headers.append((b"connection", b"close"))
                await send_outcome(outcome, send, receive)
                return
        engine = self.engine
        body = await read_body(receive, self._limit)
        if body is None:
            return
        if isinstance(body, int):
            await send_outcome(self._error(too_large(body, self._limit)), send, receive)
            return
        METER.set(meter)  # the engine keeps it on the request's journal entry
        if len(body) > OFF_LOOP_BODY:  # parsing and checking it takes ~5 ms per MB
            answer = await asyncio.to_thread(
                self._handle, engine, scope["method"], scope["path"], body, headers
            )
        else:
            answer = self._handle(engine, scope["method"], scope["path"], body, headers)
        if not isinstance(answer, Outcome):  # a large reply: rendered off the event loop
            answer = await asyncio.to_thread(self._render, answer)
        await send_outcome(answer, send, receive, meter)


def _code(function: Any) -> list[str]:
    """A function's lines, stripped, without comments and blank lines."""
    lines = (line.split("  #", 1)[0].strip() for line in inspect.getsource(function).splitlines())
    return [line for line in lines if line]


def drift() -> str | None:
    """Why the copy is not `MockApp._api` minus the `SEAM` lines, or None when it is."""
    wanted = _code(MockApp._api)
    at = 0
    for line in SEAM:  # each in turn, after the one before
        try:
            at = wanted.index(line.strip(), at)
        except ValueError:
            return f"MockApp._api has no line {line.strip()!r} (in this order) any more"
        del wanted[at]
    if wanted != _code(NoSessionApp._api):
        return "the copy differs from MockApp._api beyond the SEAM lines"
    return None


def create_app(engine: Any, admin: Any = None, *, max_sessions: int = 100) -> NoSessionApp:
    return NoSessionApp(engine, admin, max_sessions=max_sessions)


if __name__ == "__main__":
    if why := drift():
        sys.exit(f"bench/nosessions_app.py: {why}: update it to match mockserver/app.py")
    mockapp.create_app = create_app  # what `mockserver serve` calls (imported when it runs)
    sys.exit(main(sys.argv[1:]))
