"""The HTTP/1.1 connection under limits: uvicorn's httptools protocol, bounded.

uvicorn (with httptools) accepts a request head of any size and any number of headers, and
waits forever for a request head or body that never finishes arriving. `limited_protocol()`
makes a protocol class that enforces `Limits`:

- a request head (request line and headers) larger than `max_header_size` bytes, or with more
  than `max_headers` header fields, is answered `431` and the connection closed;
- a request (head and body) must arrive whole within `read_timeout` seconds of its first byte,
  else it is answered `408` and the connection closed (the app sees a disconnect);
- a connection with no request in progress is closed after `idle_timeout` seconds (uvicorn's
  keep-alive timeout, and the same for a new connection that sends nothing);
- bytes that are not HTTP/1.1 are answered `400` in OpenAI's envelope (uvicorn: plain text).

The cost on the hot path is a few attribute updates per request (about 1 us): headers are
counted only when a head is larger than what a request usually sends, and the timeouts share
one lazily re-armed timer per connection instead of a timer per request.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mockserver.errors import ApiError

logger = logging.getLogger("mockserver")


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """What one connection may send, and how long it may take (see the module docstring)."""

    max_header_size: int = 64 * 1024
    max_headers: int = 100
    read_timeout: float = 30.0
    idle_timeout: float = 5.0


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that breaks a limit."""


_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def error_response(error: ApiError) -> bytes:
    """A whole HTTP/1.1 response for `error`, in OpenAI's envelope, closing the connection."""
    body = error.encode()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (error.status, _REASONS.get(error.status, b"Error")),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"x-should-retry: false\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


def headers_too_large(limits: Limits, count: bool) -> ApiError:
    what = (
        f"more than {limits.max_headers} header fields (mockserver --max-headers)"
        if count
        else f"more than {limits.max_header_size} bytes of request line and headers "
        "(mockserver --max-header-size)"
    )
    return ApiError(
        status=431,
        message=f"The request has {what}.",
        code="request_header_fields_too_large",
    )


def read_timed_out(limits: Limits) -> ApiError:
    return ApiError(
        status=408,
        message=(
            f"The request did not arrive whole within {limits.read_timeout:g} seconds "
            "(mockserver --read-timeout)."
        ),
        code="request_timeout",
    )


class LimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with `Limits` (set per server by `limited_protocol`)."""

    limits: ClassVar[Limits] = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False  # a request head is arriving
        self._raw = 0  # bytes received while the head was arriving (httptools buffers them)
        self._packet = 0  # bytes of the data being parsed now
        self._fresh = True  # no request yet on this connection
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._refusal: ApiError | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _JoinedWrites(transport, self.loop)  # type: ignore[assignment]
        self._deadline = self.loop.time() + self.limits.idle_timeout
        self._timer = self.loop.call_at(self._deadline, self._expire)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        self._packet = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if self._refusal is not None:
                self._refuse(self._refusal)
                return
            self._bad_request(exc)
            return
        except httptools.HttpParserError as exc:
            self._bad_request(exc)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():  # pragma: no cover - no websockets here
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head:  # a head still arriving: bounded before httptools buffers more
            self._raw += len(data)
            limits = self.limits
            if len(self.headers) > limits.max_headers:
                self._refuse(headers_too_large(limits, count=True))
            elif self._raw > limits.max_header_size:
                self._refuse(headers_too_large(limits, count=False))

    def _bad_request(self, exc: Exception) -> None:
        reason = str(exc.__context__ or exc) or type(exc).__name__
        self._refuse(
            ApiError(
                status=400,
                message=f"The request is not valid HTTP/1.1 ({reason}).",
                code="invalid_http_request",
            )
        )

    def _refuse(self, error: ApiError) -> None:
        self._in_head = False
        cycle = None if self._fresh else self.cycle
        writing = cycle is not None and cycle.response_started and not cycle.response_complete
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() answers http.disconnect
            cycle.message_event.set()
        if not self.transport.is_closing():
            if not writing:  # else the error would land in the middle of a response
                self.transport.write(error_response(error))
            self.transport.close()

    def _reading(self) -> bool:
        """A request's head or body is still arriving."""
        if self._in_head:
            return True
        cycle = None if self._fresh else self.cycle
        return cycle is not None and cycle.more_body and not cycle.response_complete

    # -- parser callbacks: the few lines added per request ----------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._fresh = False
        self._raw = 0
        self._deadline = self.loop.time() + self.limits.read_timeout
        if self._timer is None:
            self._timer = self.loop.call_at(self._deadline, self._expire)

    def on_headers_complete(self) -> None:
        self._in_head = False
        limits = self.limits
        # The head arrived within what was received meanwhile: count it only when that is
        # more than the limit (a big body in the same packet), so the usual case costs nothing.
        if self._raw + self._packet > limits.max_header_size or (
            len(self.headers) > limits.max_headers
        ):
            size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
            if len(self.headers) > limits.max_headers or size > limits.max_header_size:
                count = len(self.headers) > limits.max_headers
                self._refusal = headers_too_large(limits, count=count)
                raise _Refused
        super().on_headers_complete()

    # -- the one timer ---------------------------------------------------------------------

    def _expire(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        reading = self._reading()
        if reading and self.pipeline:  # queued behind a response still being written
            self._deadline = now + self.limits.read_timeout
        if now < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._expire)
            return
        if reading:
            self._refuse(read_timed_out(self.limits))
        elif self._fresh:  # a new connection that never sent a request
            self.transport.close()
        # else: between requests, uvicorn's keep-alive timer closes the idle connection


_JOIN_LIMIT = 64 * 1024
"""Writes are held for joining only up to this many bytes; past it they go through at once, so
the real transport's buffer, and uvicorn's flow control that watches it, see them."""


class _JoinedWrites:
    """The connection's transport, writing what one turn of the event loop wrote in one go.

    uvicorn writes a response's head and its body separately: two `send` system calls, and
    with TCP_NODELAY two packets, for every reply (a third of what a repeated request costs
    the server). Joined, a plain reply or an undelayed stream is one write. A write waits at
    most for the end of the loop's current turn (`call_soon`, no timer), so a stream's head
    still leaves before its first delayed frame; held bytes are bounded by `_JOIN_LIMIT`.

    Writing a reply as soon as its body follows its head, instead of at the end of the turn,
    was measured too: 16,600 against 20,900 requests a second under wrk (the replies of a
    turn's requests then leave together, and the p50 and p99 latencies were lower as well).
    Writers hand it `bytes` (uvicorn joins its pieces first): held buffers are not copied.
    """

    __slots__ = ("_held", "_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._held = 0

    def write(self, data: bytes) -> None:
        pending = self._pending
        if not pending:
            if len(data) >= _JOIN_LIMIT:
                self._transport.write(data)
                return
            self._loop.call_soon(self._flush)
        pending.append(data)
        self._held += len(data)
        if self._held >= _JOIN_LIMIT:
            self._flush()

    def _flush(self) -> None:
        pending = self._pending
        if pending:
            self._pending = []
            self._held = 0
            if not self._transport.is_closing():
                self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # the rest, seldom used: the transport's own
        return getattr(self._transport, name)


def limited_protocol(limits: Limits) -> type[LimitedProtocol]:
    """A protocol class for uvicorn's `http=` setting that enforces `limits`."""
    return type("LimitedProtocol", (LimitedProtocol,), {"limits": limits})
