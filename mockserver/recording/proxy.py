"""`mockserver record`: a proxy in front of an OpenAI-compatible upstream that records.

Clients talk to it as to the API. Each request goes upstream at once, with the client's own
credentials or the recorder's key; the response goes back to the client as it arrives (a
stream event by event, never buffered) while a `Tape` records it. When the upstream's
response has ended, a chat completion or Responses API (`POST .../responses`) exchange is
written into scenario files by the `Writer` in a worker thread (the event loop never waits for
the disk), and only then does the client's response end: a client that has its whole response
finds the file on disk.

Other paths (`/v1/models`, `GET /v1/responses/{id}`, ...) are passed through, not recorded. An
upstream that cannot be reached is answered `502` in OpenAI's error envelope and nothing is
recorded; one that does not answer within the read timeout is answered `504`, and that is
recorded; a connection that breaks (or stalls past the read timeout) mid-stream is recorded as
such (`end: abort`) and dropped for the client too.

Whatever the upstream sends is passed on byte for byte; the recording never raises into the
client's response. A response larger than `max_record_size` is passed on but not recorded
(a line says so): the work of cutting, scrubbing and writing a recording stays bounded, and
the writing runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

from mockserver.app import Receive, Scope, Send, StreamAborted, read_body, send_outcome, too_large
from mockserver.errors import ApiError
from mockserver.ids import IdFactory
from mockserver.outcome import Outcome
from mockserver.recording.cassette import RecordingError, Writer
from mockserver.recording.exchange import Tape, api_of
from mockserver.recording.upstream import forward_headers
from mockserver.responses import JSON_TYPE

NOT_RETURNED = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}
)
"""Upstream response headers not passed on (the body is re-framed, already decoded)."""
UNREACHABLE = "upstream_unreachable"
TIMED_OUT = "upstream_timeout"
logger = logging.getLogger("mockserver")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxySettings:
    """Where to forward, and with which key (None: the client's own credentials)."""

    upstream: str
    api_key: str | None = None
    connect_timeout: float = 10.0
    """Seconds to open a connection to the upstream (`--upstream-timeout CONNECT,READ`)."""
    read_timeout: float = 120.0
    """Seconds the upstream may stay silent: before its reply's head, and between two reads."""
    max_record_size: int = 4 * 1024 * 1024
    """Bytes of response a recording holds at most; a larger response is passed on only."""
    max_body_size: int = 64 * 1024 * 1024
    """Bytes of request body accepted; larger is answered 413."""


def is_chat(method: str, path: str) -> bool:
    """Whether a request is recorded (a chat completion, or a Responses API `POST`)."""
    return api_of(method, path) is not None


class RecordingProxy:
    """The recorder's ASGI app."""

    def __init__(
        self,
        settings: ProxySettings,
        writer: Writer,
        *,
        report: Callable[[str], None] | None = None,
        seed: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self._report = report or (lambda line: None)
        self._ids = IdFactory(seed)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        """One connection pool to the upstream, made in the server's event loop."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(
                    self.settings.read_timeout,
                    connect=self.settings.connect_timeout,
                ),
                limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def upstream_url(self, scope: Scope) -> str:
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        rest = path[3:] if path.startswith("/v1/") else path
        query: str = scope.get("query_string", b"").decode("latin-1")
        return self.settings.upstream + rest + (f"?{query}" if query else "")

    def forward_headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return forward_headers(headers, self.settings.api_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        limit = self.settings.max_body_size
        body = await read_body(receive, limit)
        if body is None:
            return  # the client left, or did not send its body in time
        if isinstance(body, int):
            await send_outcome(self._error(too_large(body, limit)), send, receive)
            return
        method = scope["method"]
        url = self.upstream_url(scope)
        target = f"{method} {_target(scope)}"
        chat = is_chat(method, scope["path"])
        headers = self.forward_headers(scope["headers"])
        tape = Tape(
            method,
            url,
            body,
            _text_headers([*scope["headers"], *headers]),
            limit=self.settings.max_record_size,
        )
        client = self.client()
        try:
            response = await client.send(
                client.build_request(method, url, headers=headers, content=body), stream=True
            )
        except httpx.TimeoutException as exc:
            await self._answer_timeout(exc, tape if chat else None, target, send, receive)
            return
        except httpx.HTTPError as exc:
            self._report(f"upstream unreachable for {target}: {exc!r}")
            await send_outcome(self._unreachable(exc), send, receive)
            return
        aborted = False
        recording = chat
        try:
            returned = _text_headers(response.headers.raw)
            recording = recording and _safely(tape.head, response.status_code, returned)
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k.encode("latin-1"), v.encode("latin-1"))
                        for k, v in returned
                        if k.lower() not in NOT_RETURNED
                    ],
                }
            )
            try:
                async for chunk in response.aiter_bytes():
                    if recording:
                        recording = _safely(tape.chunk, chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError as exc:
                aborted = True
                if isinstance(exc, httpx.TimeoutException):
                    self._report(f"upstream stalled mid-reply for {target}: {exc!r}")
        finally:
            await response.aclose()
        if chat:
            await self._record(tape, aborted, target, recording)
        if aborted:
            raise StreamAborted  # the client's connection drops too, as upstream's did
        await send({"type": "http.response.body", "body": b""})

    async def _answer_timeout(
        self, exc: Exception, tape: Tape | None, target: str, send: Send, receive: Receive
    ) -> None:
        """Answer 504; record it when the upstream had the request and did not answer."""
        read = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
        self._report(f"upstream timed out for {target}: {exc!r}")
        outcome = self._timed_out(exc, read)
        if read and tape is not None:
            tape.head(outcome.status, _text_headers(outcome.headers))
            tape.chunk(outcome.body)
            await self._write(tape, False, target)
        await send_outcome(outcome, send, receive)

    async def _record(self, tape: Tape, aborted: bool, target: str, readable: bool) -> None:
        if not readable:
            self._report(f"not recorded: the reply to {target} could not be read as a recording")
        elif tape.overflowed:
            self._report(
                f"not recorded: the reply to {target} passed {self.settings.max_record_size} "
                "bytes (mockserver record --max-record-size); it was passed on whole"
            )
        else:
            await self._write(tape, aborted, target)

    async def _write(self, tape: Tape, aborted: bool, target: str) -> None:
        try:
            exchange = tape.finish(aborted=aborted)
        except Exception:  # a bug in recording must not break the client's response
            logger.exception("mockserver record failed on the reply to %s", target)
            return
        if aborted and not exchange.streamed:
            self._report(
                "not recorded: the upstream broke off a whole (non-stream) "
                f"{target.partition(' ')[2]} reply"
            )
            return
        try:
            written = await asyncio.to_thread(self.writer.write, exchange)
        except RecordingError as exc:
            self._report(f"not recorded: {exc}")
            return
        except OSError as exc:
            self._report(f"not recorded: cannot write: {exc}")
            return
        except Exception:  # a bug in recording must not break the client's response
            logger.exception("mockserver record failed to write the reply to %s", target)
            return
        kind = f"{len(exchange.events)} events" if exchange.events is not None else "body"
        ended = ", connection broken" if exchange.end == "abort" else ""
        self._report(
            f"recorded {exchange.status} ({kind}{ended}) -> {written.path} "
            f"[{written.scenario} reply {written.reply + 1}]"
        )

    def _error(self, error: ApiError) -> Outcome:
        headers = [
            JSON_TYPE,
            (b"x-request-id", self._ids.request().encode()),
            (b"x-should-retry", b"false"),
        ]
        return Outcome(error.status, headers, error.encode())

    def _unreachable(self, exc: Exception) -> Outcome:
        return self._error(
            ApiError(
                status=502,
                type="server_error",
                code=UNREACHABLE,
                message=(
                    f"mockserver record could not reach the upstream {self.settings.upstream}: "
                    f"{type(exc).__name__}: {exc}"
                ),
            )
        )

    def _timed_out(self, exc: Exception, read: bool) -> Outcome:
        settings = self.settings
        waited = (
            f"did not answer within {settings.read_timeout:g} seconds"
            if read
            else f"could not be connected to within {settings.connect_timeout:g} seconds"
        )
        return self._error(
            ApiError(
                status=504,
                type="server_error",
                code=TIMED_OUT,
                message=(
                    f"The upstream {settings.upstream} {waited} "
                    f"(mockserver record --upstream-timeout): {type(exc).__name__}"
                ),
            )
        )


def _safely(step: Callable[..., None], *args: object) -> bool:
    """Run a recording step; False (and a logged traceback) if it fails, never an exception."""
    try:
        step(*args)
    except Exception:
        logger.exception("mockserver record stopped recording a reply")
        return False
    return True


def _target(scope: Scope) -> str:
    """The path and query the client asked for, as it sent them."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    return (raw + (b"?" + query if query else b"")).decode("latin-1")


def _text_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
