"""One recorded exchange: the request as sent upstream, the response as it came back.

A `Tape` builds an `Exchange` while the response streams through: the head, then each chunk
as it arrives (a stream is cut into its events, each timed from the one before), then how it
ended (`close`, or `abort` when the connection broke).

Bytes are bytes: an event or body that is not UTF-8 is kept with each stray byte as a
character U+DC80..U+DCFF (Python's `surrogateescape`), which a recording writes as a `\\uDCxx`
escape and a replay writes back as the very byte. A tape holds at most `limit` bytes of
response: past that it drops what it had and records nothing (`overflowed`), so memory and
the work of cutting, scrubbing and writing stay bounded whatever the upstream sends.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from mockserver import sse
from mockserver.scenarios import RawEvent, sendable_header

logger = logging.getLogger("mockserver")

KEPT_HEADERS = frozenset(
    {
        "content-type",
        "x-request-id",
        "openai-processing-ms",
        "openai-version",
        "openai-model",
        "retry-after",
        "retry-after-ms",
        "x-should-retry",
        "access-control-expose-headers",
    }
)
"""Response headers worth replaying (besides `x-ratelimit-*`); the rest (dates, cookies,
CDN ids, the account's organisation and project) are not recorded."""
KEPT_PREFIXES = ("x-ratelimit-",)

End = Literal["close", "abort"]
API_PATHS = (("/chat/completions", "chat"), ("/responses", "responses"))
"""The requests recorded (a `POST` to a path ending so) and the API each is."""


def api_of(method: str, path: str) -> str | None:
    """The API a request is recorded as (`chat`, `responses`), or None: not recorded."""
    if method.upper() != "POST":
        return None
    path = urlsplit(path).path.rstrip("/")
    return next((api for suffix, api in API_PATHS if path.endswith(suffix)), None)


def kept_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The response headers a recording keeps, names lower-cased, in their order. A value the
    scenario file could not hold (a control character, a character past Latin-1: an upstream
    or a cassette may have one) is left out, with a warning, so the file still loads."""
    kept: list[tuple[str, str]] = []
    for name, value in headers:
        low = name.lower()
        if low not in KEPT_HEADERS and not low.startswith(KEPT_PREFIXES):
            continue
        if sendable_header(low, value):
            kept.append((low, value))
        else:
            logger.warning("not recording the %s header: %r cannot be sent back", low, value)
    return tuple(kept)


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """A request and the response the upstream gave it.

    `events` is set for a stream (`text/event-stream`), `body` otherwise. `request_headers`
    are kept in memory only, so their secret values can be scrubbed from what is written.
    """

    method: str
    url: str
    request_body: bytes
    request_headers: tuple[tuple[str, str], ...] = ()
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    events: tuple[RawEvent, ...] | None = None
    end: End = "close"
    waited_ms: float = 0.0
    """Time from sending the request to the response's head."""

    def request_json(self) -> dict[str, Any] | None:
        """The request body as a JSON object, or None when it is not one."""
        try:
            value = json.loads(self.request_body)
        except (ValueError, UnicodeDecodeError):
            return None
        return value if isinstance(value, dict) else None

    @property
    def streamed(self) -> bool:
        return self.events is not None

    @property
    def api(self) -> str:
        """The API the request went to (`chat` unless its path says `responses`)."""
        return api_of(self.method, self.url) or "chat"


def is_event_stream(headers: Iterable[tuple[str, str]]) -> bool:
    for name, value in headers:
        if name.lower() == "content-type":
            return value.lower().startswith("text/event-stream")
    return False


class Tape:
    """Records a response while it is passed on: `head`, `chunk`... then `finish`."""

    def __init__(
        self,
        method: str,
        url: str,
        request_body: bytes,
        request_headers: Iterable[tuple[str, str]] = (),
        *,
        clock: Callable[[], float] = time.perf_counter,
        limit: int | None = None,
    ) -> None:
        self._method = method
        self._url = url
        self._request_body = request_body
        self._request_headers = tuple(request_headers)
        self._clock = clock
        self._sent = clock()
        self._last = self._sent
        self._status = 0
        self._headers: tuple[tuple[str, str], ...] = ()
        self._waited = 0.0
        self._decoder: sse.Decoder | None = None
        self._events: list[RawEvent] = []
        self._body = bytearray()
        self._limit = limit
        self._size = 0
        self.overflowed = False
        """More than `limit` bytes of response came: nothing of it is kept."""

    def head(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self._status = status
        self._headers = tuple(headers)
        now = self._clock()
        self._waited = (now - self._sent) * 1000
        self._last = now
        if is_event_stream(self._headers):
            self._decoder = sse.Decoder(errors="surrogateescape")

    def chunk(self, data: bytes) -> None:
        if self.overflowed:
            return
        self._size += len(data)
        if self._limit is not None and self._size > self._limit:
            self.overflowed = True
            self._events, self._body, self._decoder = [], bytearray(), None
            return
        if self._decoder is None:
            self._body += data
            return
        events = self._decoder.feed(data)
        if not events:
            return
        now = self._clock()
        wait = round((now - self._last) * 1000, 1)
        self._last = now
        for n, event in enumerate(events):
            self._events.append(
                RawEvent(data=event.data, event=event.event, delay_ms=wait if n == 0 else 0.0)
            )

    def finish(self, *, aborted: bool = False) -> Exchange:
        """The exchange; `aborted` when the connection broke before the response ended."""
        if self._decoder is not None and not aborted:
            for event in self._decoder.close():
                self._events.append(RawEvent(data=event.data, event=event.event))
        streamed = self._decoder is not None or is_event_stream(self._headers)
        return Exchange(
            method=self._method,
            url=self._url,
            request_body=self._request_body,
            request_headers=self._request_headers,
            status=self._status,
            headers=self._headers,
            body=None if streamed else bytes(self._body),
            events=tuple(self._events) if streamed else None,
            end="abort" if aborted else "close",
            waited_ms=round(self._waited, 1),
        )
