"""Request and response bodies shared by the load benchmark (bench/load.py) and bench/bare_app.py.

Stdlib only, so the bare app and the orchestrator agree byte for byte on what is sent and served.
"""

from __future__ import annotations

import json
from typing import Any

MODEL = "gpt-4o-mini"
SYSTEM_PROMPT = "You are terse."
SCENARIO_COUNT = 100
LAST_INDEX = SCENARIO_COUNT - 1
STREAM_PROMPT = "stream please"
STREAM_CHUNKS = 50

# 50 purely alphabetic words ("tokaa" ... "tokbx"): one word-sized token, hence one chunk, each.
STREAM_WORDS: tuple[str, ...] = tuple(
    f"tok{chr(ord('a') + i // 26)}{chr(ord('a') + i % 26)}" for i in range(STREAM_CHUNKS)
)


def question(index: int) -> str:
    """The user message that scenario number `index` matches."""
    return f"question {index}"


def answer(index: int) -> str:
    """The reply content of scenario number `index`."""
    return f"Answer number {index}."


def encode(value: object) -> bytes:
    """Compact JSON, the way an HTTP API sends it."""
    return json.dumps(value, separators=(",", ":")).encode()


def chat_request(user_message: str, *, stream: bool = False) -> bytes:
    """A chat completion request body with a system and a user message."""
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_message},
        ],
    }
    if stream:
        body["stream"] = True
    return encode(body)


def non_stream_request() -> bytes:
    """The request that must match the last of the 100 question scenarios."""
    return chat_request(question(LAST_INDEX))


def stream_request() -> bytes:
    """The streaming request that must match the 50-chunk scenario."""
    return chat_request(STREAM_PROMPT, stream=True)


COUNTER = "__N__"
"""Where bench/load_post_distinct.lua writes a request counter, so no two bodies are equal."""

_TINY_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
_TINY_WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAwF0AAIC7AAACABAAZGF0YQAAAAA="
_TINY_PDF = "data:application/pdf;base64,JVBERi0xLjAKJSVFT0YK"


def mixed_request() -> bytes:
    """Five messages of mixed parts (image, tool call and result, audio, file), whose last
    user message is still "question 99": what validation costs on a realistic request."""
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": _TINY_PNG, "detail": "low"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_bench0000000000000000001",
                        "type": "function",
                        "function": {"name": "describe", "arguments": '{"detail":"low"}'},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_bench0000000000000000001",
                "content": "A single white pixel.",
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": question(LAST_INDEX)},
                    {"type": "input_audio", "input_audio": {"data": _TINY_WAV, "format": "wav"}},
                    {"type": "file", "file": {"file_data": _TINY_PDF, "filename": "a.pdf"}},
                ],
            },
        ],
    }
    return encode(body)


def distinct(body: bytes) -> bytes:
    """The body with a `user` field carrying COUNTER: each request differs from the last,
    so nothing mockserver remembers about a body helps (a field no scenario matches on)."""
    value = json.loads(body)
    value["user"] = f"bench-{COUNTER}"
    return encode(value)


def chat_completion() -> dict[str, Any]:
    """A realistic `chat.completion` answering the non-streaming request (what OpenAI sends)."""
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741570283,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": answer(LAST_INDEX),
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 6,
            "total_tokens": 25,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }


def chat_completion_body() -> bytes:
    """The fixed, pre-encoded reply served by the bare app and the WireMock stub."""
    return encode(chat_completion())


def _yaml_scenario(name: str, user_message: str, content: str) -> str:
    # JSON strings are valid YAML flow scalars, so json.dumps quotes safely.
    return (
        f"  - name: {name}\n"
        f"    match: {{last_user_message: {json.dumps(user_message)}}}\n"
        f"    reply: {{content: {json.dumps(content)}}}\n"
    )


def scenario_yaml() -> str:
    """The scenario file: the 50-word stream scenario first, then q000..q099.

    101 scenarios in all, so the non-streaming request ("question 99") matches the last one.
    """
    parts = ["version: 1\n", "scenarios:\n"]
    parts.append(_yaml_scenario("stream50", STREAM_PROMPT, " ".join(STREAM_WORDS)))
    parts.extend(_yaml_scenario(f"q{i:03d}", question(i), answer(i)) for i in range(SCENARIO_COUNT))
    return "".join(parts)
