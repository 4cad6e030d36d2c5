"""`mockserver record`: a proxy in front of an OpenAI-compatible upstream that records.

Clients talk to it as to the API. Each request goes upstream at once, with the client's own
credentials or the recorder's key; the response goes back to the client as it arrives (a
stream event by event, never buffered) while a `Tape` records it. When the upstream's
response has ended, a chat completion exchange is written into scenario files by the
`Writer` in a worker thread (the event loop never waits for the disk), and only then does the
client's response end: a client that has its whole response finds the file on disk.

Other paths (`/v1/models`, ...) are passed through, not recorded. An upstream that cannot be
reached is answered `502` in OpenAI's error envelope and nothing is recorded; a connection
that breaks mid-stream is recorded as such (`end: abort`) and dropped for the client too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

from mockserver.app import Receive, Scope, Send, StreamAborted, send_outcome
from mockserver.errors import ApiError
from mockserver.ids import IdFactory
from mockserver.outcome import Outcome
from mockserver.recording.cassette import RecordingError, Writer
from mockserver.recording.exchange import Tape
from mockserver.recording.upstream import forward_headers
from mockserver.responses import JSON_TYPE

NOT_RETURNED = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}
)
"""Upstream response headers not passed on (the body is re-framed, already decoded)."""
UNREACHABLE = "upstream_unreachable"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxySettings:
    """Where to forward, and with which key (None: the client's own credentials)."""

    upstream: str
    api_key: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 600.0


def is_chat(method: str, path: str) -> bool:
    return method == "POST" and path.rstrip("/").endswith("/chat/completions")


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
        body = await _read_body(receive)
        method = scope["method"]
        url = self.upstream_url(scope)
        headers = self.forward_headers(scope["headers"])
        tape = Tape(method, url, body, _text_headers([*scope["headers"], *headers]))
        client = self.client()
        try:
            response = await client.send(
                client.build_request(method, url, headers=headers, content=body), stream=True
            )
        except httpx.HTTPError as exc:
            self._report(f"upstream unreachable for {method} {scope['path']}: {exc!r}")
            await send_outcome(self._unreachable(exc), send, receive)
            return
        aborted = False
        try:
            returned = _text_headers(response.headers.raw)
            tape.head(response.status_code, returned)
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
                    tape.chunk(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError:
                aborted = True
        finally:
            await response.aclose()
        if is_chat(method, scope["path"]):
            await self._write(tape, aborted, scope["path"])
        if aborted:
            raise StreamAborted  # the client's connection drops too, as upstream's did
        await send({"type": "http.response.body", "body": b""})

    async def _write(self, tape: Tape, aborted: bool, path: str) -> None:
        exchange = tape.finish(aborted=aborted)
        if aborted and not exchange.streamed:
            self._report(f"not recorded: the upstream broke off a whole (non-stream) {path} reply")
            return
        try:
            written = await asyncio.to_thread(self.writer.write, exchange)
        except RecordingError as exc:
            self._report(f"not recorded: {exc}")
            return
        except OSError as exc:
            self._report(f"not recorded: cannot write: {exc}")
            return
        kind = f"{len(exchange.events)} events" if exchange.events is not None else "body"
        ended = ", connection broken" if exchange.end == "abort" else ""
        self._report(
            f"recorded {exchange.status} ({kind}{ended}) -> {written.path} "
            f"[{written.scenario} reply {written.reply + 1}]"
        )

    def _unreachable(self, exc: Exception) -> Outcome:
        error = ApiError(
            status=502,
            type="server_error",
            code=UNREACHABLE,
            message=(
                f"mockserver record could not reach the upstream {self.settings.upstream}: "
                f"{type(exc).__name__}: {exc}"
            ),
        )
        headers = [
            JSON_TYPE,
            (b"x-request-id", self._ids.request().encode()),
            (b"x-should-retry", b"false"),
        ]
        return Outcome(error.status, headers, error.encode())


def _text_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
