"""TypedDicts and literals for the OpenAI JSON that mockserver reads and writes."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

JSON: TypeAlias = Any
"""A decoded JSON value whose shape has not been checked yet."""

Role = Literal["developer", "system", "user", "assistant", "tool", "function"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]
AudioFormat = Literal["wav", "aac", "mp3", "flac", "opus", "pcm16"]
AUDIO_FORMATS: tuple[str, ...] = ("wav", "aac", "mp3", "flac", "opus", "pcm16")
FINISH_REASONS: tuple[str, ...] = (
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "function_call",
)


class ErrorObject(TypedDict):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(TypedDict):
    error: ErrorObject


class FunctionCall(TypedDict):
    name: str
    arguments: str


class ToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: FunctionCall


class Audio(TypedDict):
    id: str
    data: str
    expires_at: int
    transcript: str


class Message(TypedDict):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None
    annotations: list[JSON]
    tool_calls: NotRequired[list[ToolCall]]
    function_call: NotRequired[FunctionCall]
    audio: NotRequired[Audio]


class TopLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class Logprobs(TypedDict):
    content: list[TokenLogprob] | None
    refusal: list[TokenLogprob] | None


class Choice(TypedDict):
    index: int
    message: Message
    logprobs: Logprobs | None
    finish_reason: FinishReason


class PromptTokensDetails(TypedDict):
    cached_tokens: int
    audio_tokens: int


class CompletionTokensDetails(TypedDict):
    reasoning_tokens: int
    audio_tokens: int
    accepted_prediction_tokens: int
    rejected_prediction_tokens: int


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails


class ChatCompletion(TypedDict):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    service_tier: str
    system_fingerprint: str


class ToolCallDelta(TypedDict, total=False):
    index: int
    id: str
    type: Literal["function"]
    function: dict[str, str]


class Delta(TypedDict, total=False):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None
    tool_calls: list[ToolCallDelta]
    function_call: dict[str, str]
    audio: dict[str, str | int]


class ChunkChoice(TypedDict):
    index: int
    delta: Delta
    logprobs: Logprobs | None
    finish_reason: FinishReason | None


class Model(TypedDict):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
