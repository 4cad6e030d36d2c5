"""Test support: OpenAI's schema, a transport that validates every reply, SSE reading."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx2
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

DATA = Path(__file__).parent / "data"


@cache
def _validator(name: str) -> Draft202012Validator:
    bundle = json.loads((DATA / "chat-completions.schema.json").read_text())
    registry = Registry().with_resource("urn:chat", Resource.from_contents(bundle))
    return Draft202012Validator({"$ref": f"urn:chat#/$defs/{name}"}, registry=registry)


@cache
def _responses_validator(name: str) -> Draft202012Validator:
    bundle = json.loads((DATA / "responses.schema.json").read_text())
    registry = Registry().with_resource("urn:responses", Resource.from_contents(bundle))
    return Draft202012Validator({"$ref": f"urn:responses#/$defs/{name}"}, registry=registry)


@cache
def _event_schemas() -> dict[str, str]:
    """Stream event `type` -> the schema of that event (one of `ResponseStreamEvent`'s)."""
    defs = json.loads((DATA / "responses.schema.json").read_text())["$defs"]
    found: dict[str, str] = {}
    for option in defs["ResponseStreamEvent"]["anyOf"]:
        name = option["$ref"].rsplit("/", 1)[-1]
        for kind in defs[name].get("properties", {}).get("type", {}).get("enum", []):
            found[kind] = name
    return found


def responses_errors(name: str, instance: Any) -> list[str]:
    """Violations of the Responses API's schema `name` (`Response`, `ResponseItemList`, ...)."""
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _responses_validator(name).iter_errors(instance)
    ]


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """The (`event:` name, `data:` payload) pairs of an SSE body, in order."""
    events: list[tuple[str | None, str]] = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = block.split(b"\n")
        data = [line[5:].lstrip(b" ") for line in lines if line.startswith(b"data:")]
        names = [line[6:].strip().decode() for line in lines if line.startswith(b"event:")]
        if data:
            events.append((names[-1] if names else None, b"\n".join(data).decode()))
    return events


def check_responses_stream(where: str, body: bytes) -> list[str]:
    """Every event against its schema, its `event:` line naming its `type`, `sequence_number`
    counting from 0, no `[DONE]`, and a terminal event last."""
    problems: list[str] = []
    events = sse_events(body)
    schemas = _event_schemas()
    for n, (name, data) in enumerate(events):
        if data == "[DONE]":
            problems.append(f"{where}: event {n}: [DONE] in a Responses stream")
            continue
        event = json.loads(data)
        kind = event.get("type")
        if name != kind:
            problems.append(f"{where}: event {n}: `event: {name}` for type {kind!r}")
        if event.get("sequence_number") != n:
            problems.append(f"{where}: event {n}: sequence_number {event.get('sequence_number')}")
        schema = schemas.get(kind)
        if schema is None:
            problems.append(f"{where}: event {n}: unknown type {kind!r}")
            continue
        problems += [f"{where}: event {n}: {e}" for e in responses_errors(schema, event)]
    return problems


def check_responses_reply(where: str, path: str, body: bytes, streamed: bool) -> list[str]:
    if streamed:
        return check_responses_stream(where, body)
    if path.endswith("/responses/input_tokens"):
        value = json.loads(body)
        return [f"{where}: {e}" for e in responses_errors("TokenCountsResource", value)]
    if path.endswith("/input_items"):
        return [f"{where}: {e}" for e in responses_errors("ResponseItemList", json.loads(body))]
    value = json.loads(body)
    if value.get("deleted") is True:
        return []
    return [f"{where}: {e}" for e in responses_errors("Response", value)]


def schema_errors(name: str, instance: Any) -> list[str]:
    """Violations of OpenAI's schema `name` (e.g. `CreateChatCompletionResponse`)."""
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator(name).iter_errors(instance)
    ]


def sse_data(raw: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, in order (a deliberately plain, separate parser)."""
    events: list[str] = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = [line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")]
        if lines:
            events.append(b"\n".join(lines).decode())
    return events


def check_reply(
    path: str, status: int, content_type: str, body: bytes, streamed: bool
) -> list[str]:
    """Every schema violation in one reply of the mock, described for a failure message."""
    where = f"{status} {path}"
    if status >= 400:
        return [f"{where}: {e}" for e in schema_errors("ErrorResponse", json.loads(body))]
    if path.endswith("/models"):
        return [f"{where}: {e}" for e in schema_errors("ListModelsResponse", json.loads(body))]
    if "/models/" in path:
        return [f"{where}: {e}" for e in schema_errors("Model", json.loads(body))]
    if "/responses" in path:
        return check_responses_reply(where, path, body, streamed)
    if not path.endswith("/chat/completions"):
        return []
    if not streamed:
        if not content_type.startswith("application/json"):
            return [f"{where}: content-type {content_type!r} for a JSON reply"]
        return [
            f"{where}: {e}" for e in schema_errors("CreateChatCompletionResponse", json.loads(body))
        ]
    if not content_type.startswith("text/event-stream"):
        return [f"{where}: content-type {content_type!r} for a stream"]
    problems: list[str] = []
    events = sse_data(body)
    for n, data in enumerate(events):
        if data == "[DONE]":
            if n != len(events) - 1:
                problems.append(f"{where}: events after [DONE]")
            continue
        chunk = json.loads(data)
        schema = "ErrorResponse" if "error" in chunk else "CreateChatCompletionStreamResponse"
        problems += [f"{where}: event {n}: {e}" for e in schema_errors(schema, chunk)]
    return problems


@dataclass
class Violations:
    """Schema violations seen by a `SchemaCheckingTransport`; the fixture fails on any."""

    found: list[str] = field(default_factory=list)
    replies: int = 0


class _Tee(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    def __init__(self, inner: Any, on_close: Any) -> None:
        self._inner = inner
        self._on_close = on_close
        self._seen = bytearray()
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._seen += chunk
            yield chunk
        self._finish()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._seen += chunk
            yield chunk
        self._finish()

    def _finish(self, whole: bool = True) -> None:
        if self._done:
            return
        self._done = True
        seen = bytes(self._seen)
        if not whole:
            # Closed before the end: the sync SDK stops reading a stream at `[DONE]` (and a
            # dropped stream stops it early), so check the events that arrived whole.
            end = seen.rfind(b"\n\n")
            if end < 0:
                return
            seen = seen[: end + 2]
        self._on_close(seen)

    def close(self) -> None:
        self._finish(whole=False)
        self._inner.close()

    async def aclose(self) -> None:
        self._finish(whole=False)
        await self._inner.aclose()


class SchemaCheckingTransport(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """Sends through a real httpx2 transport and validates each whole reply it reads."""

    def __init__(self, violations: Violations, inner: Any = None, async_inner: Any = None) -> None:
        self.violations = violations
        self._inner = inner
        self._async_inner = async_inner

    def _wrap(self, request: httpx2.Request, response: httpx2.Response) -> httpx2.Response:
        streamed = b'"stream":true' in request.content.replace(b" ", b"")

        def check(body: bytes) -> None:
            self.violations.replies += 1
            self.violations.found += check_reply(
                request.url.path,
                response.status_code,
                response.headers.get("content-type", ""),
                body,
                streamed and response.status_code < 400,
            )

        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_Tee(response.stream, check),
            extensions=response.extensions,
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._inner is None:
            self._inner = httpx2.HTTPTransport()
        return self._wrap(request, self._inner.handle_request(request))

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._async_inner is None:
            self._async_inner = httpx2.AsyncHTTPTransport()
        return self._wrap(request, await self._async_inner.handle_async_request(request))

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()

    async def aclose(self) -> None:
        if self._async_inner is not None:
            await self._async_inner.aclose()
