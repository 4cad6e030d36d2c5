"""The ASGI app: API routes straight to the engine, health and admin routes through Starlette.

Requests under `/v1/` (and the same paths without the prefix) skip Starlette's request and
response objects: the engine routes them and its `Outcome` is copied straight to ASGI messages,
so the hot path stays lean and the in-process transports give the very same bytes. `/health`,
the `/_mockserver/` admin routes and OpenAI-style 404s for anything else are Starlette's.

The admin routes (`mockserver.control`) are guarded by its `Admin` policy: off on a
non-loopback bind unless a token is set (then `Authorization: Bearer TOKEN` is required), and a
state-changing admin request must carry a JSON content type or an `x-mockserver-admin` header,
which a web page's cross-origin form or `text/plain` POST cannot send without a CORS preflight
this server never grants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mockserver import control
from mockserver.engine import Deferred, MockEngine
from mockserver.errors import ApiError
from mockserver.journal import METER, Meter
from mockserver.outcome import Frame, Outcome
from mockserver.responses import error_outcome, unknown_url
from mockserver.sessions import (
    DEFAULT_MAX_SESSIONS,
    Sessions,
    check_name,
    split_session_path,
)
from mockserver.timing import Pacer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger("mockserver")
_perf = time.perf_counter
_wall = time.time
API_PREFIXES = ("/v1/", "/chat/", "/models")
OFF_LOOP_BODY = 1024 * 1024
"""Bodies larger than this are handled in a worker thread (the engine is thread-safe), so a
64 MB request does not hold the event loop, and the other clients, for a third of a second.
Large replies render in one too (`MockEngine.respond`)."""


class StreamAborted(Exception):
    """Raised to drop a stream's connection on purpose (a scripted `interrupt`)."""


def too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        status=413,
        message=(
            f"The request body is {size} bytes, more than the {limit} bytes this server accepts "
            "(mockserver --max-body-size)."
        ),
        code="request_too_large",
    )


async def read_body(receive: Receive, limit: int) -> bytes | int | None:
    """The whole body, its size so far once it passes `limit`, or None if the client left (or
    the server gave up on it: mockserver.protocol's read timeout)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return size
        chunks.append(chunk)
        if not message.get("more_body", False):
            if len(chunks) == 1:
                return chunks[0]
            if size > OFF_LOOP_BODY:  # joining 60 MB holds the event loop for ~50 ms
                return await asyncio.to_thread(b"".join, chunks)
            return b"".join(chunks)


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def send_outcome(
    outcome: Outcome, send: Send, receive: Receive, meter: Meter | None = None
) -> None:
    """Write an `Outcome`: the head, then the body or each frame after its delay; `meter`
    (the journal's) gets the times of the first and last body bytes and the reply sent."""
    if outcome.delay:
        await asyncio.sleep(outcome.delay)
    frames = outcome.frames
    if frames is None:
        headers = [*outcome.headers, (b"content-length", str(len(outcome.body)).encode())]
        await send({"type": "http.response.start", "status": outcome.status, "headers": headers})
        await send({"type": "http.response.body", "body": outcome.body})
        if meter is not None:
            end = _perf()
            meter.sent(outcome, headers, None, end, end)
        return
    await send(
        {"type": "http.response.start", "status": outcome.status, "headers": outcome.headers}
    )
    if len(frames) == 1 and not frames[0].delay and not frames[0].abort:
        await send({"type": "http.response.body", "body": frames[0].data})
        if meter is not None:
            end = _perf()
            meter.sent(outcome, outcome.headers, 1, end, end)
        return
    await _send_frames(outcome, frames, send, receive, meter)


async def _client_left(
    watcher: asyncio.Future[None], pacer: Pacer | None, due: float, wait: float
) -> bool:
    """Wait until `due` (`wait` seconds from now): whether the client went away meanwhile."""
    if wait <= 0:  # late already: send now, the next frame keeps its due time
        return watcher.done()
    if pacer is not None:
        woken = await asyncio.wait({watcher, pacer.at(due)}, return_when=asyncio.FIRST_COMPLETED)
        return watcher in woken[0]
    return bool((await asyncio.wait({watcher}, timeout=wait))[0])


def _run_end(frames: Sequence[Frame], start: int) -> int:
    """Where the run of frames sent together from `start` ends: the frames after it that are
    due at once (no delay, no abort) go in the same message."""
    end = start + 1
    while end < len(frames) and frames[end].delay <= 0 and not frames[end].abort:
        end += 1
    return end


async def _send_frames(
    outcome: Outcome, frames: Sequence[Frame], send: Send, receive: Receive, meter: Meter | None
) -> None:
    """Each frame after its delay; frames due at once go out in one ASGI message (one
    uvicorn `send` for a 50-chunk undelayed stream instead of 51: the same bytes), the last
    of them ending the body."""
    watcher: asyncio.Future[None] | None = None
    loop = asyncio.get_running_loop()
    pacer = Pacer.of(loop)
    now = time.monotonic if pacer is not None else loop.time  # the clock that wakes us
    due = now()  # each frame is due its delay after the one before was: no drift
    first: float | None = None
    sent = 0  # the frames sent so far
    gone = False
    try:
        while sent < len(frames):
            frame = frames[sent]
            if frame.delay > 0:
                if watcher is None:
                    watcher = asyncio.ensure_future(_wait_disconnect(receive))
                due += frame.delay
                if await _client_left(watcher, pacer, due, due - now()):
                    gone = True
                    return  # the client went away: stop writing
            if frame.abort:
                raise StreamAborted
            end = _run_end(frames, sent)
            data = frame.data if end == sent + 1 else b"".join(f.data for f in frames[sent:end])
            more = end < len(frames)  # the last run ends the body in the same message
            await send({"type": "http.response.body", "body": data, "more_body": more})
            sent = end
            if first is None:
                first = _perf()
        if not frames:
            await send({"type": "http.response.body", "body": b""})
    finally:
        if meter is not None:
            meter.sent(outcome, outcome.headers, sent, first, _perf(), gone)
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def internal_error(exc: Exception) -> ApiError:
    """A bug in mockserver itself, still in OpenAI's envelope (and not retried)."""
    return ApiError(
        status=500,
        type="server_error",
        message=f"mockserver failed on this request: {type(exc).__name__}: {exc}",
        headers=(("x-should-retry", "false"),),
    )


class MockApp:
    """The ASGI application serving one `MockEngine`."""

    def __init__(
        self,
        engine: MockEngine,
        admin: control.Admin | None = None,
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        self.engine = engine
        self.admin = admin or control.Admin()
        self.sessions = Sessions(engine, max_sessions)
        self._limit = engine.config.max_body_size
        self._starlette = Starlette(
            routes=[
                Route("/health", self._health, methods=["GET"]),
                *control.routes(self.sessions, self.admin),
            ],
            exception_handlers={
                HTTPException: self._http_error,
                Exception: self._server_error,
            },
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIXES):
            await self._api(scope, receive, send)
        elif scope["type"] == "http" and (found := split_session_path(scope["path"])):
            # the session base URL, for clients that cannot add a header (nothing is added to the
            # request's headers: a recorder must not forward a header the client never sent)
            name, path = found
            await self._api({**scope, "path": path}, receive, send, name.encode())
        else:
            await self._starlette(scope, receive, send)

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
            if name == b"x-mockserver-session" and session is None:  # the path's name wins
                session = value  # (sessions.SESSION_HEADER, as a constant: no global lookup)
        engine = self.engine
        if session is not None:
            try:
                engine = self.sessions.engine(check_name(session.decode("latin-1")))
            except ApiError as exc:
                await send_outcome(self._error(exc, engine), send, receive)
                return
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

    def _render(self, deferred: Deferred) -> Outcome:
        try:
            return deferred()
        except Exception as exc:  # a bug in mockserver: still answer in OpenAI's envelope
            logger.exception("mockserver failed rendering a reply")
            return self._error(internal_error(exc))

    def _handle(
        self, engine: MockEngine, method: str, path: str, body: bytes, headers: Any
    ) -> Outcome | Deferred:
        try:
            return engine.respond(method, path, body, headers)
        except Exception as exc:  # a bug in mockserver: still answer in OpenAI's envelope
            logger.exception("mockserver failed on a chat completion request")
            return self._error(internal_error(exc))

    def _error(self, error: ApiError, engine: MockEngine | None = None) -> Outcome:
        """The app's own errors (413, 500, 404 ...) in the engine's profile's error body."""
        engine = engine or self.engine
        return error_outcome(error, engine.request_id(), body=engine.profile.error_body(error))

    def _response(self, outcome: Outcome) -> Response:
        return Response(
            outcome.body,
            status_code=outcome.status,
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in outcome.headers},
        )

    async def _health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "scenarios": len(self.engine.scenarios.scenarios)})

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "")
            error = ApiError(
                status=405,
                message=f"{request.method} is not allowed on {request.url.path}; use {allow}.",
                code="method_not_allowed",
                headers=(("allow", allow),),
            )
            return self._response(self._error(error))
        return self._response(self._error(unknown_url(request.method, request.url.path)))

    async def _server_error(self, request: Request, exc: Exception) -> Response:
        return self._response(self._error(internal_error(exc)))


def create_app(
    engine: MockEngine,
    admin: control.Admin | None = None,
    *,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
) -> MockApp:
    """The ASGI app for an engine (what uvicorn, or any ASGI server, runs)."""
    return MockApp(engine, admin, max_sessions=max_sessions)
