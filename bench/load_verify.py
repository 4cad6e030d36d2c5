"""One-request checks run before a target is measured: a fast wrong answer is not a result.

Non-streaming: 200, JSON, object "chat.completion", the expected message content.
Streaming: 200, text/event-stream, `chat.completion.chunk` events ending in `data: [DONE]`,
exactly the expected number of non-empty content chunks spelling the expected words.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from load_procs import BenchError

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


def post_json(url: str, body: bytes, timeout_s: float = 10.0) -> Reply:
    """POST a JSON body with urllib (no proxies); HTTP errors become a Reply too."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with _opener.open(request, timeout=timeout_s) as response:
            return Reply(response.status, response.headers.get("Content-Type", ""), response.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.headers.get("Content-Type", ""), err.read())
    except OSError as err:
        raise BenchError(f"POST {url} failed: {err}") from err


def _expect_ok(url: str, reply: Reply, content_type: str) -> None:
    if reply.status != 200:
        raise BenchError(f"POST {url}: HTTP {reply.status}: {reply.body[:300]!r}")
    if not reply.content_type.startswith(content_type):
        raise BenchError(f"POST {url}: Content-Type {reply.content_type!r}, want {content_type}")


def _decode(url: str, raw: bytes | str) -> object:
    try:
        return json.loads(raw)
    except ValueError as err:
        raise BenchError(f"POST {url}: not JSON ({err}): {raw[:300]!r}") from err


def check_completion(url: str, body: bytes, want_content: str) -> int:
    """Verify a non-streaming answer; returns the response body size in bytes."""
    reply = post_json(url, body)
    _expect_ok(url, reply, "application/json")
    data = _decode(url, reply.body)
    if not isinstance(data, dict) or data.get("object") != "chat.completion":
        raise BenchError(f"POST {url}: not a chat.completion: {reply.body[:300]!r}")
    content = data["choices"][0]["message"]["content"]
    if content != want_content:
        raise BenchError(f"POST {url}: content {content!r}, want {want_content!r}")
    return len(reply.body)


def sse_data(text: str) -> list[str]:
    """The `data:` payloads of an event stream, in order."""
    events = []
    for line in text.splitlines():
        if line.startswith("data:"):
            events.append(line[len("data:") :].strip())
    return events


def content_chunks(url: str, events: list[str]) -> list[str]:
    """Non-empty delta contents of the chunk events (everything before `[DONE]`)."""
    parts = []
    for event in events:
        chunk = _decode(url, event)
        if not isinstance(chunk, dict) or chunk.get("object") != "chat.completion.chunk":
            raise BenchError(f"POST {url}: not a chat.completion.chunk: {event[:300]!r}")
        for choice in chunk.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                parts.append(content)
    return parts


def check_stream(url: str, body: bytes, want_words: tuple[str, ...]) -> int:
    """Verify a streamed answer: one content chunk per word, then [DONE]; returns body bytes."""
    reply = post_json(url, body)
    _expect_ok(url, reply, "text/event-stream")
    events = sse_data(reply.body.decode(errors="replace"))
    if not events or events[-1] != "[DONE]":
        tail = events[-1] if events else "(no data events)"
        raise BenchError(f"POST {url}: stream does not end with data: [DONE] (last: {tail!r})")
    parts = content_chunks(url, events[:-1])
    if len(parts) != len(want_words):
        raise BenchError(
            f"POST {url}: stream has {len(parts)} content chunks, want {len(want_words)}: "
            f"{parts[:8]!r}..."
        )
    if "".join(parts).split() != list(want_words):
        raise BenchError(
            f"POST {url}: streamed text differs from the {len(want_words)} expected words"
        )
    return len(reply.body)


def check_response(url: str, body: bytes, want_text: str) -> int:
    """Verify a Responses API answer (`POST /v1/responses`); returns the body size in bytes."""
    reply = post_json(url, body)
    _expect_ok(url, reply, "application/json")
    data = _decode(url, reply.body)
    if not isinstance(data, dict) or data.get("object") != "response":
        raise BenchError(f"POST {url}: not a response: {reply.body[:300]!r}")
    texts = [
        part.get("text")
        for item in data.get("output") or []
        for part in item.get("content") or []
        if part.get("type") == "output_text"
    ]
    if texts != [want_text]:
        raise BenchError(f"POST {url}: output_text {texts!r}, want {want_text!r}")
    return len(reply.body)


def check_response_stream(url: str, body: bytes, want_words: tuple[str, ...]) -> int:
    """Verify a streamed Responses answer: its deltas spell the words, it ends completed."""
    reply = post_json(url, body)
    _expect_ok(url, reply, "text/event-stream")
    events = [_decode(url, e) for e in sse_data(reply.body.decode(errors="replace"))]
    deltas = [
        e.get("delta", "")
        for e in events
        if isinstance(e, dict) and e.get("type") == "response.output_text.delta"
    ]
    if (
        not events
        or not isinstance(events[-1], dict)
        or events[-1].get("type") != "response.completed"
    ):
        raise BenchError(f"POST {url}: the stream does not end with response.completed")
    if "".join(deltas).split() != list(want_words):
        raise BenchError(f"POST {url}: streamed text differs from the expected words")
    return len(reply.body)
