"""Serve a `MockEngine` inside the test process: the HTTP client's transport answers, no socket.

Two clients, one behaviour:

- **httpx** through a respx router (respx patches httpcore's connection pools, so custom
  transports that wrap `httpx.HTTPTransport` are intercepted too);
- **httpx2** (openai-python >= 3), which respx does not know: `httpx2.HTTPTransport.handle_request`
  and `AsyncHTTPTransport.handle_async_request` are patched the same way. httpx2 is imported only
  when it is installed.

Requests under one of the mocked base URLs go to `engine.handle`; anything else passes through
to the network (or is refused, `unmatched="refuse"`). Responses carry the bytes and headers the
socket server would send. A stream is a real byte stream that waits each frame's delay before
yielding it, honours the client's read timeout, and stops as soon as it is closed.

Each request's journal entry gets a `journal.Meter` here too: its reply is sent when the
client library gets it (a plain reply at once; a stream, or a delayed reply, as the client
reads its frames: first byte, last byte, or the client closing it early).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

import anyio
import httpx
import respx

from mockserver.engine import MockEngine
from mockserver.journal import METER, Meter
from mockserver.outcome import Frame, Headers, Outcome

if TYPE_CHECKING:
    import httpx2

DEFAULT_BASE_URL = "https://api.openai.com/v1"
ABORTED = "peer closed connection without sending complete message body (incomplete chunked read)"
REFUSED = (
    "mockserver refused a request to {url}: it is not under a mocked base URL ({bases}) and "
    'unmatched="refuse" keeps tests off the network'
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_perf = time.perf_counter
Sent = tuple[Meter, Outcome, Headers]
"""What a stream tells its meter once it ends: the meter, the outcome, the headers sent."""

Unmatched = Literal["passthrough", "refuse"]


@dataclass(frozen=True, slots=True)
class BaseUrl:
    """A mocked base URL: requests to `scheme://host:port` + `prefix/...` reach the engine."""

    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> BaseUrl:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(
                f"expected an http(s) base URL such as {DEFAULT_BASE_URL}, got {url!r}"
            )
        return cls(
            scheme,
            parts.hostname.lower(),
            parts.port or _DEFAULT_PORTS[scheme],
            parts.path.rstrip("/"),
        )

    def engine_path(self, scheme: str, host: str, port: int | None, path: str) -> str | None:
        """The path to hand the engine for this URL, or None when the URL is not under us."""
        if scheme != self.scheme or host != self.host:
            return None
        if (port or _DEFAULT_PORTS.get(scheme)) != self.port:
            return None
        if not path.startswith(self.prefix):
            return None
        rest = path[len(self.prefix) :]
        if rest and rest[0] != "/":
            return None  # `/v1x` is not under `/v1`
        return rest if rest.startswith("/v1/") else "/v1" + (rest or "/")

    def __str__(self) -> str:
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}{self.prefix}"


# -- streams --------------------------------------------------------------------------------


class _Frames:
    """The body of a response: frames after their delays, stopping when closed.

    The sync side waits on a `threading.Event` (a close from another thread wakes it); the async
    side waits through anyio (asyncio or trio) and is cancelled like any other await. A delay
    longer than the client's read timeout ends the stream with the client's `ReadTimeout`,
    as a silent socket would. The frames are read once: iterating again goes on where the last
    iteration stopped (the openai SDK drains a stream after `[DONE]` that way).
    """

    def __init__(
        self,
        frames: Sequence[Frame],
        abort: Callable[[str], Exception],
        timeout: Callable[[str], Exception],
        read_timeout: float | None,
        sent: Sent | None = None,
    ) -> None:
        self._frames = frames
        self._sent = sent
        self._first: float | None = None
        self._abort = abort
        self._timeout = timeout
        self._read_timeout = read_timeout
        self._next = 0  # like a socket, the body is read once: iterating again resumes here
        self._due: float | None = None
        """When the last frame waited for was due: frames keep the server's schedule, so a
        client that reads late gets the frames already due at once (no drift)."""
        self._closed = False
        self._wake = threading.Event()
        self._async_wake: anyio.Event | None = None

    def _open(self) -> bool:
        return not self._closed  # a call, so mypy does not take it for a constant in the loop

    def _ended(self, gone: bool = False, aborted: bool = False) -> None:
        """Tell the meter (once) what was read: the frames up to here, when, and how."""
        if self._sent is None:
            return
        meter, outcome, headers = self._sent
        self._sent = None
        count = None
        if outcome.frames is not None:  # a delay of the reply's own may come first
            lead = len(self._frames) - len(outcome.frames)
            count = max(self._next - lead - aborted, 0)
        meter.sent(outcome, headers, count, self._first, _perf(), gone)

    def _limit(self, delay: float) -> tuple[float, bool]:
        """How long to wait for a frame `delay` after the one before, and whether the client's
        read timeout ends the wait (a scripted stall longer than it)."""
        now = time.monotonic()
        self._due = (now if self._due is None else self._due) + delay
        if self._read_timeout is not None and delay > self._read_timeout:
            return self._read_timeout, True
        return max(self._due - now, 0.0), False

    # __iter__ and __aiter__ mirror each other on purpose: one stream, waited on by a thread
    # (threading.Event) or by a task (anyio.Event); a shared generator cannot do both.
    def __iter__(self) -> Iterator[bytes]:
        frames = self._frames
        while self._next < len(frames) and self._open():
            frame = frames[self._next]
            if frame.delay > 0:
                wait, times_out = self._limit(frame.delay)
                self._wake.wait(wait)
                if times_out and self._open():
                    self._ended(gone=True)
                    raise self._timeout("timed out")
            if not self._open():
                return
            self._next += 1
            if frame.abort:
                self._ended(aborted=True)
                raise self._abort(ABORTED)
            if frame.data:
                if self._first is None:
                    self._first = _perf()
                yield frame.data
        if self._next >= len(frames):
            self._ended()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        frames = self._frames
        while self._next < len(frames) and self._open():
            frame = frames[self._next]
            if frame.delay > 0:
                wait, times_out = self._limit(frame.delay)
                if self._async_wake is None:
                    self._async_wake = anyio.Event()
                with anyio.move_on_after(wait):
                    await self._async_wake.wait()
                if times_out and self._open():
                    self._ended(gone=True)
                    raise self._timeout("timed out")
            if not self._open():
                return
            self._next += 1
            if frame.abort:
                self._ended(aborted=True)
                raise self._abort(ABORTED)
            if frame.data:
                if self._first is None:
                    self._first = _perf()
                yield frame.data
        if self._next >= len(frames):
            self._ended()

    def close(self) -> None:
        self._ended(gone=self._next < len(self._frames))
        self._closed = True
        self._wake.set()
        if self._async_wake is not None:
            self._async_wake.set()

    async def aclose(self) -> None:
        self.close()


class HttpxFrames(_Frames, httpx.SyncByteStream, httpx.AsyncByteStream):
    """A frame stream for httpx responses."""


_HTTPX2_FRAMES: type[_Frames] | None = None


def _httpx2_frames(lib: ModuleType) -> type[_Frames]:
    global _HTTPX2_FRAMES  # noqa: PLW0603 - built once, when httpx2 is first used
    if _HTTPX2_FRAMES is None:
        _HTTPX2_FRAMES = type(
            "Httpx2Frames", (_Frames, lib.SyncByteStream, lib.AsyncByteStream), {}
        )
    return _HTTPX2_FRAMES


def _read_timeout(extensions: dict[str, Any]) -> float | None:
    timeout = extensions.get("timeout")
    if isinstance(timeout, dict):
        value = timeout.get("read")
        return float(value) if isinstance(value, int | float) else None
    return None


def wire_headers(outcome: Outcome) -> Headers:
    """The response head the socket server sends for this outcome (uvicorn adds the framing)."""
    if outcome.frames is None:
        return [*outcome.headers, (b"content-length", str(len(outcome.body)).encode())]
    return [*outcome.headers, (b"transfer-encoding", b"chunked")]


def _frames_with_delay(outcome: Outcome) -> Sequence[Frame]:
    """The body as frames, the response's own delay first (the respx path cannot sleep early)."""
    frames = list(outcome.frames) if outcome.frames is not None else [Frame(0.0, outcome.body)]
    if outcome.delay:
        frames.insert(0, Frame(outcome.delay))
    return frames


def _side_effect(
    effect: Callable[[httpx.Request], httpx.Response | httpx.Request | None],
) -> Callable[[httpx.Request], httpx.Response | httpx.Request | None]:
    """`effect` as a plain function with its signature precomputed: respx inspects a side
    effect's arguments on every request, which costs more than answering it."""

    def side_effect(request: httpx.Request) -> httpx.Response | httpx.Request | None:
        return effect(request)

    side_effect.__signature__ = inspect.signature(side_effect)  # type: ignore[attr-defined]
    return side_effect


# -- the mock -------------------------------------------------------------------------------


class InProcessMock:
    """Answer requests to the mocked base URLs with `engine`, for httpx and httpx2 clients.

    Use as a context manager, or `start()` / `stop()`. `engine` may be replaced at any time.
    """

    def __init__(
        self,
        engine: MockEngine,
        base_urls: Iterable[str] = (DEFAULT_BASE_URL,),
        *,
        unmatched: Unmatched = "passthrough",
    ) -> None:
        if unmatched not in ("passthrough", "refuse"):
            raise ValueError(f'unmatched must be "passthrough" or "refuse", got {unmatched!r}')
        self.engine = engine
        self.unmatched: Unmatched = unmatched
        self.base_urls: list[BaseUrl] = []
        for url in base_urls:
            self.add_base_url(url)
        self._router: respx.MockRouter | None = None
        self._started = False

    # -- routing ----------------------------------------------------------------------------

    def add_base_url(self, url: str) -> None:
        """Mock one more base URL (e.g. the one a client is configured with)."""
        base = BaseUrl.parse(url)
        if base not in self.base_urls:
            self.base_urls.append(base)

    def engine_path(self, scheme: str, host: str, port: int | None, path: str) -> str | None:
        for base in self.base_urls:
            found = base.engine_path(scheme, host, port, path)
            if found is not None:
                return found
        return None

    def refusal(self, url: object) -> str:
        return REFUSED.format(url=url, bases=", ".join(map(str, self.base_urls)))

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> InProcessMock:
        if self._started:
            return self
        router = respx.MockRouter(
            assert_all_called=False, assert_all_mocked=self.unmatched == "refuse"
        )
        router.route(name="mockserver").mock(side_effect=_side_effect(self._respx_effect))
        router.start()
        self._router = router
        _Httpx2Patch.add(self)
        self._started = True
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        _Httpx2Patch.remove(self)
        if self._router is not None:
            self._router.stop(quiet=True)
            self._router = None

    def __enter__(self) -> InProcessMock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- httpx (respx) ----------------------------------------------------------------------

    def answer(self, method: str, path: str, body: bytes, headers: Headers) -> Outcome:
        """The engine's answer, with header names lower-cased as a server receives them."""
        return self.measured(method, path, body, headers)[0]

    def measured(
        self, method: str, path: str, body: bytes, headers: Headers
    ) -> tuple[Outcome, Meter]:
        """`answer`, and the meter its journal entry holds (told when the reply is read)."""
        meter = Meter(time.time(), _perf())
        token = METER.set(meter)
        try:
            outcome = self.engine.handle(method, path, body, [(k.lower(), v) for k, v in headers])
        finally:
            METER.reset(token)
        return outcome, meter

    def _respx_effect(self, request: httpx.Request) -> httpx.Response | httpx.Request | None:
        """A response, the request itself (pass it through), or None (refused: respx asks any
        other router, then raises its "not mocked" error)."""
        url = request.url
        path = self.engine_path(url.scheme, url.host, url.port, url.path)
        if path is None:
            return request if self.unmatched == "passthrough" else None
        outcome, meter = self.measured(request.method, path, request.content, request.headers.raw)
        headers = wire_headers(outcome)
        if outcome.frames is None and not outcome.delay:
            end = _perf()
            meter.sent(outcome, headers, None, end, end)
            return httpx.Response(
                outcome.status,
                headers=headers,
                stream=httpx.ByteStream(outcome.body),  # `content=` would re-check the headers
                request=request,
            )
        # respx calls this one function for sync and async clients, so nothing may block here:
        # the response's delay is waited in its body stream, which the client reads at once.
        stream = HttpxFrames(
            _frames_with_delay(outcome),
            httpx.RemoteProtocolError,
            httpx.ReadTimeout,
            _read_timeout(request.extensions),
            (meter, outcome, headers),
        )
        return httpx.Response(outcome.status, headers=headers, stream=stream, request=request)


def _httpx2_response(
    lib: ModuleType, request: httpx2.Request, outcome: Outcome, meter: Meter
) -> httpx2.Response:
    headers = wire_headers(outcome)
    if outcome.frames is None:
        end = _perf()
        meter.sent(outcome, headers, None, end, end)
        response: httpx2.Response = lib.Response(
            outcome.status, headers=headers, stream=lib.ByteStream(outcome.body), request=request
        )
        return response
    stream = _httpx2_frames(lib)(
        outcome.frames,
        lib.RemoteProtocolError,
        lib.ReadTimeout,
        _read_timeout(request.extensions),
        (meter, outcome, headers),
    )
    response = lib.Response(outcome.status, headers=headers, stream=stream, request=request)
    return response


class _Httpx2Patch:
    """Class-level patches of httpx2's default transports, shared by every active mock."""

    active: ClassVar[list[InProcessMock]] = []
    _lock = threading.Lock()
    _originals: tuple[Any, Any] | None = None

    @classmethod
    def available(cls) -> ModuleType | None:
        if "httpx2" in sys.modules:
            return sys.modules["httpx2"]
        if importlib.util.find_spec("httpx2") is None:
            return None
        import httpx2  # noqa: PLC0415 - optional: only when the user has it installed

        return httpx2

    @classmethod
    def add(cls, mock: InProcessMock) -> None:
        lib = cls.available()
        if lib is None:
            return
        with cls._lock:
            cls.active.append(mock)
            if cls._originals is None:
                cls._install(lib)

    @classmethod
    def remove(cls, mock: InProcessMock) -> None:
        with cls._lock:
            if mock in cls.active:
                cls.active.remove(mock)
            if not cls.active and cls._originals is not None:
                lib = sys.modules["httpx2"]
                sync, async_ = cls._originals
                lib.HTTPTransport.handle_request = sync
                lib.AsyncHTTPTransport.handle_async_request = async_
                cls._originals = None

    @classmethod
    def _find(cls, request: httpx2.Request) -> tuple[InProcessMock | None, str]:
        """The mock for this URL (the latest started wins) and the engine path; or no mock,
        and a refusal message when a mock refuses other URLs."""
        refusal = ""
        url = request.url
        for mock in reversed(cls.active):
            path = mock.engine_path(url.scheme, url.host, url.port, url.path)
            if path is not None:
                return mock, path
            if mock.unmatched == "refuse":
                refusal = mock.refusal(url)
        return None, refusal

    @classmethod
    def _install(cls, lib: ModuleType) -> None:
        sync = lib.HTTPTransport.handle_request
        async_ = lib.AsyncHTTPTransport.handle_async_request
        cls._originals = (sync, async_)

        def handle_request(transport: Any, request: httpx2.Request) -> httpx2.Response:
            mock, path = cls._find(request)
            if mock is None:
                if path:
                    raise lib.ConnectError(path, request=request)
                response: httpx2.Response = sync(transport, request)
                return response
            request.read()
            outcome, meter = mock.measured(
                request.method, path, request.content, request.headers.raw
            )
            if outcome.delay:
                _sleep(outcome.delay, request, lib)
            return _httpx2_response(lib, request, outcome, meter)

        async def handle_async_request(transport: Any, request: httpx2.Request) -> httpx2.Response:
            mock, path = cls._find(request)
            if mock is None:
                if path:
                    raise lib.ConnectError(path, request=request)
                response: httpx2.Response = await async_(transport, request)
                return response
            await request.aread()
            outcome, meter = mock.measured(
                request.method, path, request.content, request.headers.raw
            )
            if outcome.delay:
                await _async_sleep(outcome.delay, request, lib)
            return _httpx2_response(lib, request, outcome, meter)

        handle_request.__wrapped__ = sync  # type: ignore[attr-defined]
        handle_async_request.__wrapped__ = async_  # type: ignore[attr-defined]
        lib.HTTPTransport.handle_request = handle_request
        lib.AsyncHTTPTransport.handle_async_request = handle_async_request


def _sleep(delay: float, request: httpx2.Request, lib: ModuleType) -> None:
    limit = _read_timeout(request.extensions)
    time.sleep(min(delay, limit) if limit is not None else delay)
    if limit is not None and delay > limit:
        raise lib.ReadTimeout("timed out", request=request)


async def _async_sleep(delay: float, request: httpx2.Request, lib: ModuleType) -> None:
    limit = _read_timeout(request.extensions)
    await anyio.sleep(min(delay, limit) if limit is not None else delay)
    if limit is not None and delay > limit:
        raise lib.ReadTimeout("timed out", request=request)
