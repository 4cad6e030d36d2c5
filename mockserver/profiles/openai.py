"""The `openai` profile: OpenAI's API exactly, as the rest of mockserver implements it.

It only forwards to the modules that own OpenAI's behaviour (validation, completions,
errors), so choosing it costs nothing over calling them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mockserver import completions
from mockserver.completions import Envelope, ResolvedChoice, Stamp
from mockserver.errors import ApiError
from mockserver.ids import IdFactory
from mockserver.request import ChatRequest
from mockserver.validation import decode_exact, parse_chat_request
from mockserver.wire import Model, Usage


class OpenAIProfile:
    name = "openai"

    def parse(self, raw: bytes) -> ChatRequest:
        body, exact = decode_exact(raw)
        return parse_chat_request(body, (), keyed=exact)

    def error_body(self, error: ApiError) -> bytes:
        return error.encode()

    def tool_call_ids(self, ids: IdFactory) -> Callable[[], str]:
        return ids.tool_call  # `call_` and 24 letters and digits

    def model(self, name: str, created: int) -> Model:
        return {"id": name, "object": "model", "created": created, "owned_by": "mockserver"}

    def completion_body(
        self, request: ChatRequest, stamp: Stamp, choices: Sequence[ResolvedChoice], usage: Usage
    ) -> bytes:
        return completions.completion_body(request, stamp, choices, usage)

    def chunk_events(
        self,
        request: ChatRequest,
        stamp: Stamp,
        choices: Sequence[ResolvedChoice],
        usage: Usage,
        *,
        padding: Sequence[str],
        offset: int,
        chunk_size: int | None,
    ) -> list[str]:
        envelope = Envelope.for_stream(request, stamp, padding, offset)
        return completions.chunk_events(
            request,
            choices,
            envelope,
            chunk_size=chunk_size,
            usage_=usage if request.include_usage else None,
        )
