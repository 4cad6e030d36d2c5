"""Test support for the `vllm` profile: a server in that profile, strict SDK clients on it, and
OpenAI's schema with vLLM's documented differences taken out (README, "Profiles")."""

from __future__ import annotations

import copy
import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import openai

from mockserver.app import create_app
from mockserver.engine import EngineConfig, MockEngine
from mockserver.scenarios import load_text
from mockserver.server import BackgroundServer
from tests.support import schema_errors, sse_data

ADDED = {
    "completion": (
        "prompt_logprobs",
        "prompt_token_ids",
        "prompt_text",
        "kv_transfer_params",
        "ec_transfer_params",
        "metrics",
    ),
    "chunk": ("prompt_token_ids", "prompt_text"),
    "choice": ("stop_reason", "token_ids", "routed_experts"),
    "message": ("reasoning", "reasoning_content"),
    "model": ("root", "parent", "max_model_len", "permission"),
}
"""Fields vLLM adds to OpenAI's objects (the README's profile table lists them)."""
NULLED = {
    "completion": ("system_fingerprint",),
    "message": ("annotations", "function_call"),
    "usage": ("prompt_tokens_details",),
}
"""Fields vLLM sends as null where OpenAI sends a value or nothing."""


def _strip(obj: dict[str, Any], kind: str) -> None:
    for key in ADDED.get(kind, ()):
        obj.pop(key, None)
    for key in NULLED.get(kind, ()):
        if key in obj and obj[key] is None:
            del obj[key]


def openai_view(body: dict[str, Any], *, chunk: bool = False) -> dict[str, Any]:
    """A vLLM reply with its documented differences taken out: what must fit OpenAI's schema."""
    out = copy.deepcopy(body)
    _strip(out, "chunk" if chunk else "completion")
    if isinstance(out.get("usage"), dict):
        _strip(out["usage"], "usage")
    for choice in out.get("choices", []):
        _strip(choice, "choice")
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict):
            logprobs.setdefault("refusal", None)  # vLLM's logprobs have `content` only
        _strip(choice.get("message") or choice.get("delta") or {}, "message")
    return out


def vllm_schema_errors(raw: bytes, *, streamed: bool) -> list[str]:
    """OpenAI-schema violations in a vLLM-profile reply besides the documented differences."""
    if not streamed:
        return schema_errors("CreateChatCompletionResponse", openai_view(json.loads(raw)))
    problems: list[str] = []
    for data in sse_data(raw):
        if data != "[DONE]":
            chunk = openai_view(json.loads(data), chunk=True)
            problems += schema_errors("CreateChatCompletionStreamResponse", chunk)
    return problems


@dataclass
class VllmLive:
    url: str
    engine: MockEngine
    client: openai.OpenAI
    aclient: openai.AsyncOpenAI
    server: BackgroundServer


def start(yaml: str, **config: Any) -> VllmLive:
    """A server for `yaml` (dedented), in the vllm profile unless `config` says otherwise."""
    config.setdefault("profile", "vllm")
    engine = MockEngine(load_text(textwrap.dedent(yaml), "vllm.yaml"), EngineConfig(**config))
    server = BackgroundServer(create_app(engine)).start()
    client = openai.OpenAI(
        base_url=server.url,
        api_key="sk-test",
        http_client=httpx2.Client(),
        _strict_response_validation=True,
        max_retries=0,
    )
    aclient = openai.AsyncOpenAI(
        base_url=server.url,
        api_key="sk-test",
        http_client=httpx2.AsyncClient(),
        _strict_response_validation=True,
        max_retries=0,
    )
    return VllmLive(server.url, engine, client, aclient, server)


def stop(live: VllmLive) -> None:
    live.client.close()
    live.server.stop()


def chat(engine: MockEngine, **body: Any) -> tuple[int, bytes]:
    """One request through the engine in process: status and the whole body."""
    body.setdefault("model", "m")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    outcome = engine.handle_chat(json.dumps(body).encode())
    if outcome.frames is not None:
        return outcome.status, b"".join(f.data for f in outcome.frames)
    return outcome.status, outcome.body


def events(raw: bytes) -> Iterator[dict[str, Any]]:
    """The JSON events of a stream, `[DONE]` left out."""
    for data in sse_data(raw):
        if data != "[DONE]":
            yield json.loads(data)
