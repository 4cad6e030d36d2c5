"""A reply -> the `chat.completion` body, or the `chat.completion.chunk` frames of a stream.

Streams follow OpenAI's chunk sequence: a role delta, content / refusal / tool-argument / audio
deltas, one finish chunk a choice, the `include_usage` chunk with `choices: []`, `[DONE]`.
Chunks are assembled from pre-encoded JSON pieces, so a long stream costs little to build.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from mockserver import audio, memo, tokens
from mockserver.errors import ApiError
from mockserver.harmony import HarmonyMessage
from mockserver.request import ChatRequest
from mockserver.scenarios import ChoiceSpec, Reply, ToolCallSpec
from mockserver.wire import JSON, Choice, Logprobs, Message, Usage

SCENARIO_ERROR = "mockserver_scenario_error"
T = TypeVar("T")


encode: Callable[[JSON], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""Compact JSON, UTF-8 kept as is (as OpenAI sends it); one encoder, built once."""


@dataclass(frozen=True, slots=True)
class Stamp:
    """What the completion and every chunk of one response share."""

    id: str
    created: int
    model: str
    fingerprint: str
    service_tier: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    type: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Spoken:
    id: str
    data: bytes
    expires_at: int
    transcript: str
    format: str


@dataclass(frozen=True, slots=True)
class ResolvedChoice:
    """One choice of a response, resolved against the request (ids, truncation, audio)."""

    index: int
    content: str | None
    refusal: str | None
    tool_calls: tuple[ToolCall, ...]
    function_call: ToolCall | None
    audio: Spoken | None
    finish_reason: str
    reasoning: str | None = None
    """Reasoning text: sent only by profiles that show it, counted in usage by all."""
    stop_reason: str | None = None
    """The stop string that ended the text (vLLM's `stop_reason`), if one did."""
    harmony: tuple[HarmonyMessage, ...] = ()
    """The harmony messages the choice was written as, unless its content was cut."""


def scenario_error(message: str) -> ApiError:
    """A mistake in the scenarios found only at request time (not retried by the SDKs)."""
    return ApiError(
        status=500,
        message=message,
        type=SCENARIO_ERROR,
        headers=(("x-should-retry", "false"),),
    )


def _cut(text: str, request: ChatRequest) -> tuple[str, str | None, str | None]:
    """Apply `stop` sequences and the token limit the request sets, as the model would:
    the text, the finish reason it forces, the stop string that ended it."""
    finish = matched = None
    for stop in request.stop:
        at = text.find(stop) if stop else -1
        if at >= 0:
            text, finish, matched = text[:at], "stop", stop
    if request.max_tokens is not None:
        pieces = tokens.split(text)
        if len(pieces) > request.max_tokens:
            text, finish, matched = "".join(pieces[: request.max_tokens]), "length", None
    return text, finish, matched


def _spoken(
    request: ChatRequest,
    choice: ChoiceSpec,
    text: str,
    *,
    new_id: Callable[[], str],
    created: int,
    where: str,
) -> Spoken:
    spec = choice.audio
    fmt = request.audio_format or (spec.format if spec else None) or "wav"
    data = spec.data if spec else None
    if data is not None and spec is not None and spec.format not in (None, fmt):
        raise scenario_error(
            f"scenario {where} has {spec.format} audio, but the request asks for {fmt}; "
            f"match on the format or give a {fmt} file"
        )
    if data is None:
        if fmt not in audio.GENERATED:
            raise scenario_error(
                f"scenario {where}: the request asks for {fmt} audio, which mockserver cannot "
                f"generate; give the reply an audio `file:` in {fmt}"
            )
        data = audio.generate(text, fmt)
    return Spoken(
        id=(spec.id if spec and spec.id else None) or new_id(),
        data=data,
        expires_at=created + (spec.expires_in if spec else 3600),
        transcript=text,
        format=fmt,
    )


def resolve(
    request: ChatRequest,
    reply: Reply,
    *,
    created: int,
    tool_call_id: Callable[[], str],
    audio_id: Callable[[], str],
    where: str,
) -> list[ResolvedChoice]:
    """The `n` choices the request asked for (a reply's choices are cycled to fill them)."""
    resolved_choices: list[ResolvedChoice] = []
    wants_audio = "audio" in request.modalities
    for index in range(request.n):
        choice = reply.choices[index % len(reply.choices)]
        content, refusal = choice.content, choice.refusal
        finish = choice.finish_reason
        spoken = None
        if choice.audio is not None and not wants_audio:
            content = choice.audio.transcript if content is None else content
        if wants_audio and (choice.audio is not None or content is not None):
            transcript = choice.audio.transcript if choice.audio else content or ""
            spoken = _spoken(
                request, choice, transcript, new_id=audio_id, created=created, where=where
            )
            content = None
        cut = matched = None
        if content is not None:
            content, cut, matched = _cut(content, request)
        calls = tuple(_call(spec, tool_call_id) for spec in choice.tool_calls)
        legacy = _call(choice.function_call, tool_call_id) if choice.function_call else None
        if request.uses_functions and calls and legacy is None:
            legacy, calls = calls[0], ()
        if finish is None:
            finish = cut or ("tool_calls" if calls else "function_call" if legacy else "stop")
        resolved_choices.append(
            ResolvedChoice(
                index,
                content,
                refusal,
                calls,
                legacy,
                spoken,
                finish,
                choice.reasoning,
                matched,
                choice.harmony if cut is None else (),
            )
        )
    return resolved_choices


def _call(spec: ToolCallSpec, new_id: Callable[[], str]) -> ToolCall:
    return ToolCall(spec.id or new_id(), spec.type, spec.name, spec.arguments)


# -- size -------------------------------------------------------------------------------------

_EVENT_BYTES = 320
"""What a stream event costs besides its text: `data: `, the envelope, the choice, padding."""
_LOGPROB_BYTES = 48
"""What one logprob entry (the token's, or one of its `top_logprobs`) costs besides its text."""


@memo.cached(1024, lambda count: 0)
def _token_count(text: str) -> int:
    return tokens.count(text)


def _spoken_bytes(choice: ChoiceSpec, text: str) -> int:
    """The audio bytes a spoken choice sends (base64), from a file or generated."""
    if choice.audio is not None and choice.audio.data is not None:
        raw = len(choice.audio.data)
    else:
        raw = int(audio.seconds_for(text) * audio.SAMPLE_RATE) * 2 + 44
    return raw * 4 // 3 + 4


def reply_size(request: ChatRequest, reply: Reply) -> int:
    """About how many bytes the response to `request` from `reply` will have, reckoned from
    lengths alone: nothing is rendered. The engine checks it against its ceiling before
    rendering (`--max-reply-size`), and renders a large reply in a worker thread.

    Logprobs multiply the text by about `5 * (1 + top_logprobs)` (every token's bytes are
    listed, with its alternatives), streams add an event per token; `max_completion_tokens`
    is taken into account, `stop` sequences are not (the estimate is high then).
    """
    choices = reply.choices
    if request.n == 1 and not request.logprobs and not request.stream:  # the usual request
        choice = choices[0]
        if choice.audio is None and not choice.tool_calls and choice.function_call is None:
            return 1024 + len(choice.content or "") + len(choice.refusal or "")
    lists = 1 + request.top_logprobs if request.logprobs else 0
    per_char = 1 + 5 * lists
    per_piece = _LOGPROB_BYTES * lists + (
        _EVENT_BYTES + len(request.model) if request.stream else 0
    )
    chunk = reply.stream.chunk_size
    wants_audio = "audio" in request.modalities
    total = 1024
    for index in range(request.n):
        choice = choices[index % len(choices)]
        text = choice.content or choice.refusal or ""
        if choice.audio is not None and not text:
            text = choice.audio.transcript
        if wants_audio and (choice.audio is not None or choice.content is not None):
            total += _spoken_bytes(choice, text) + 2 * len(text)
            continue
        calls = sum(len(c.name) + len(c.arguments) + 200 for c in choice.tool_calls)
        if choice.function_call is not None:
            calls += len(choice.function_call.arguments) + 200
        chars = len(text)
        pieces = chars
        if per_piece and chars * (per_char + per_piece) > 64 * 1024:  # worth counting
            pieces = -(-chars // chunk) if chunk else _token_count(text)
        if request.max_tokens is not None and pieces > request.max_tokens:
            chars = chars * request.max_tokens // max(pieces, 1)
            pieces = request.max_tokens
        total += chars * per_char + pieces * per_piece + calls * (2 if request.stream else 1)
    return total


# -- usage ------------------------------------------------------------------------------------


def _completion_tokens(resolved: ResolvedChoice) -> tuple[int, int]:
    """(completion tokens, of which audio) for one choice (reasoning tokens included)."""
    total = tokens.count(resolved.content or "") + tokens.count(resolved.refusal or "")
    if resolved.reasoning:
        total += tokens.count(resolved.reasoning)
    for call in resolved.tool_calls:
        total += 3 + tokens.count(call.name) + tokens.count(call.arguments)
    if resolved.function_call is not None:
        total += 3 + tokens.count(resolved.function_call.arguments)
    spoken = 0
    if resolved.audio is not None:
        spoken = audio.audio_tokens(audio.seconds_for(resolved.audio.transcript))
        total += spoken + tokens.count(resolved.audio.transcript)
    return max(total, 1), spoken


def usage(
    request: ChatRequest, resolved_choices: Sequence[ResolvedChoice], pinned: dict[str, JSON] | None
) -> Usage:
    """Token counts from the mock tokenizer; any field the scenario pins wins."""
    completion = spoken = thought = 0
    for resolved in resolved_choices:
        c, s = _completion_tokens(resolved)
        completion += c
        spoken += s
        if resolved.reasoning:
            thought += tokens.count(resolved.reasoning)
    prompt = request.prompt_tokens
    result: Usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": request.prompt_audio_tokens},
        "completion_tokens_details": {
            "reasoning_tokens": thought,
            "audio_tokens": spoken,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    if pinned:
        for key, value in pinned.items():
            if key.endswith("_details") and isinstance(value, dict):
                result[key].update(value)  # type: ignore[literal-required]
            else:
                result[key] = value  # type: ignore[literal-required]
        if "total_tokens" not in pinned:
            result["total_tokens"] = result["prompt_tokens"] + result["completion_tokens"]
    return result


# -- non-streaming ----------------------------------------------------------------------------


def _logprobs(resolved: ResolvedChoice, top: int) -> Logprobs:
    content = (
        [tokens.token_logprob(t, top) for t in tokens.split(resolved.content)]
        if resolved.content
        else None
    )
    refusal = (
        [tokens.token_logprob(t, top) for t in tokens.split(resolved.refusal)]
        if resolved.refusal
        else None
    )
    return {"content": content, "refusal": refusal}


def _message(resolved: ResolvedChoice) -> Message:
    message: Message = {
        "role": "assistant",
        "content": resolved.content,
        "refusal": resolved.refusal,
        "annotations": [],
    }
    if resolved.tool_calls:
        message["tool_calls"] = [_call_json(call) for call in resolved.tool_calls]  # type: ignore[misc]
    if resolved.function_call is not None:
        message["function_call"] = {
            "name": resolved.function_call.name,
            "arguments": resolved.function_call.arguments,
        }
    if resolved.audio is not None:
        message["audio"] = {
            "id": resolved.audio.id,
            "data": base64.b64encode(resolved.audio.data).decode("ascii"),
            "expires_at": resolved.audio.expires_at,
            "transcript": resolved.audio.transcript,
        }
    return message


def _call_json(call: ToolCall) -> dict[str, JSON]:
    if call.type == "custom":
        return {
            "id": call.id,
            "type": "custom",
            "custom": {"name": call.name, "input": call.arguments},
        }
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def _choice_object(resolved: ResolvedChoice, logprobs: bool, top: int) -> Choice:
    """One choice of a `chat.completion`, keys in the order OpenAI sends them."""
    return {
        "index": resolved.index,
        "message": _message(resolved),
        "logprobs": _logprobs(resolved, top) if logprobs else None,
        "finish_reason": resolved.finish_reason,  # type: ignore[typeddict-item]
    }


def _logprobs_json(text: str | None, top: int) -> str:
    if not text:
        return "null"
    return "[" + ",".join(encode(tokens.token_logprob(t, top)) for t in tokens.split(text)) + "]"


def _choice_json(resolved: ResolvedChoice, logprobs: bool, top: int) -> str:
    """`_choice_object` encoded, the logprobs a token at a time: one call encoding a long
    reply's logprobs held the interpreter (and every other request) for a tenth of a second."""
    if not logprobs:
        return encode(_choice_object(resolved, logprobs, top))
    content = _logprobs_json(resolved.content, top)
    refusal = _logprobs_json(resolved.refusal, top)
    return (
        f'{{"index":{resolved.index},"message":{encode(_message(resolved))},"logprobs":{{'
        f'"content":{content},"refusal":{refusal}}},'
        f'"finish_reason":{encode(resolved.finish_reason)}}}'
    )


@memo.cached(4096, len)
def _text_choice_json(resolved: ResolvedChoice, logprobs: bool, top: int) -> str:
    """A choice without generated ids, encoded once (the usual reply repeats)."""
    return _choice_json(resolved, logprobs, top)


def _usage_json(u: Usage) -> str:
    p, c = u["prompt_tokens_details"], u["completion_tokens_details"]
    if len(u) != 5 or len(p) != 2 or len(c) != 4:
        return encode(u)
    return (
        f'{{"prompt_tokens":{u["prompt_tokens"]},"completion_tokens":{u["completion_tokens"]},'
        f'"total_tokens":{u["total_tokens"]},"prompt_tokens_details":{{"cached_tokens":'
        f'{p["cached_tokens"]},"audio_tokens":{p["audio_tokens"]}}},"completion_tokens_details":'
        f'{{"reasoning_tokens":{c["reasoning_tokens"]},"audio_tokens":{c["audio_tokens"]},'
        f'"accepted_prediction_tokens":{c["accepted_prediction_tokens"]},'
        f'"rejected_prediction_tokens":{c["rejected_prediction_tokens"]}}}}}'
    )


def completion_body(
    request: ChatRequest, stamp: Stamp, resolved_choices: Sequence[ResolvedChoice], usage_: Usage
) -> bytes:
    """The `chat.completion` body (keys in OpenAI's order), assembled from cached pieces."""
    choices = ",".join(
        _text_choice_json(resolved, request.logprobs, request.top_logprobs)
        if not resolved.tool_calls and resolved.audio is None and resolved.function_call is None
        else _choice_json(resolved, request.logprobs, request.top_logprobs)
        for resolved in resolved_choices
    )
    return (
        f'{{"id":"{stamp.id}","object":"chat.completion","created":{stamp.created},'
        f'"model":{encode(stamp.model)},"choices":[{choices}],"usage":{_usage_json(usage_)},'
        f'"service_tier":{encode(stamp.service_tier)},'
        f'"system_fingerprint":{encode(stamp.fingerprint)}}}'
    ).encode()


# -- streaming --------------------------------------------------------------------------------

_NULL_LOGPROBS = "null"


@memo.cached(4096, lambda pieces: sum(len(p) + 64 for p in pieces))
def _pieces(text: str, chunk_size: int | None) -> tuple[str, ...]:
    """A text split into stream pieces, each already JSON-encoded."""
    parts = tokens.split_chars(text, chunk_size) if chunk_size else tokens.split(text)
    return tuple(encode(p) for p in parts)


@memo.cached(4096, len)
def _piece_logprobs(piece: str, top: int, field: str) -> str:
    text = json.loads(piece)
    entry = [tokens.token_logprob(text, top)]
    other = "refusal" if field == "content" else "content"
    return encode({field: entry, other: None})


def _choice(index: int, delta: str, logprobs: str = _NULL_LOGPROBS, finish: str = "null") -> str:
    return f'{{"index":{index},"delta":{{{delta}}},"logprobs":{logprobs},"finish_reason":{finish}}}'


def _text_deltas(
    resolved: ResolvedChoice, field: str, text: str, request: ChatRequest, size: int | None
) -> Iterator[str]:
    for piece in _pieces(text, size):
        lp = (
            _piece_logprobs(piece, request.top_logprobs, field)
            if request.logprobs
            else _NULL_LOGPROBS
        )
        yield _choice(resolved.index, f'"{field}":{piece}', lp)


def _choice_chunks(
    resolved: ResolvedChoice, request: ChatRequest, size: int | None
) -> Iterator[str]:
    """The choice objects of one choice's chunks, in order."""
    i = resolved.index
    role = '"role":"assistant"'
    if resolved.audio is not None:
        spoken = resolved.audio
        yield _choice(
            i,
            f'{role},"content":null,"refusal":null,"audio":{{"id":{encode(spoken.id)},"transcript":""}}',
        )
        texts = _pieces(spoken.transcript, size) or (encode(""),)
        step = -(-len(spoken.data) // len(texts))
        # a multiple of 6 bytes keeps 16-bit samples whole and needs no base64 padding, so the
        # fragments' `data` strings join into valid base64 (as clients and the SDK join them)
        step = -(-step // 6) * 6
        for n, piece in enumerate(texts):
            yield _choice(i, f'"audio":{{"transcript":{piece}}}')
            data = spoken.data[n * step : (n + 1) * step]
            if data:
                yield _choice(i, f'"audio":{{"data":"{base64.b64encode(data).decode("ascii")}"}}')
        yield _choice(i, f'"audio":{{"expires_at":{spoken.expires_at}}}')
    elif resolved.refusal is not None and resolved.content is None:
        yield _choice(i, f'{role},"content":null,"refusal":""')
        yield from _text_deltas(resolved, "refusal", resolved.refusal, request, size)
    elif resolved.content is not None:
        yield _choice(i, f'{role},"content":"","refusal":null')
        yield from _text_deltas(resolved, "content", resolved.content, request, size)
    elif not resolved.tool_calls and resolved.function_call is None:
        yield _choice(i, f'{role},"content":"","refusal":null')
    opened = (
        resolved.content is not None or resolved.refusal is not None or resolved.audio is not None
    )
    for k, call in enumerate(resolved.tool_calls):
        kind = call.type
        payload = "input" if kind == "custom" else "arguments"
        head = (
            f'"tool_calls":[{{"index":{k},"id":{encode(call.id)},"type":"{kind}",'
            f'"{kind}":{{"name":{encode(call.name)},"{payload}":""}}}}]'
        )
        yield _choice(i, head if opened else f'{role},"content":null,{head},"refusal":null')
        opened = True
        for piece in _pieces(call.arguments, size):
            yield _choice(i, f'"tool_calls":[{{"index":{k},"{kind}":{{"{payload}":{piece}}}}}]')
    if resolved.function_call is not None:
        call = resolved.function_call
        head = f'"function_call":{{"name":{encode(call.name)},"arguments":""}}'
        yield _choice(i, head if opened else f'{role},"content":null,{head},"refusal":null')
        for piece in _pieces(call.arguments, size):
            yield _choice(i, f'"function_call":{{"arguments":{piece}}}')
    yield _choice(i, "", finish=f'"{resolved.finish_reason}"')


def interleave(streams: Sequence[Iterator[T]]) -> Iterator[T]:
    """Round-robin over the choices: each chunk carries one choice, index 0 first."""
    if len(streams) == 1:
        yield from streams[0]
        return
    live = list(streams)
    while live:
        for stream in list(live):
            item = next(stream, None)
            if item is None:
                live.remove(stream)
            else:
                yield item


@dataclass(frozen=True, slots=True)
class Envelope:
    """Wraps choice objects into `data: {...}\\n\\n` SSE events of one response."""

    head: str
    tail: str
    padding: Sequence[str] | None
    offset: int = 0

    @classmethod
    def for_stream(
        cls, request: ChatRequest, stamp: Stamp, padding: Sequence[str] | None, offset: int = 0
    ) -> Envelope:
        head = (
            f'data: {{"id":"{stamp.id}","object":"chat.completion.chunk","created":{stamp.created},'
            f'"model":{encode(stamp.model)},"service_tier":"{stamp.service_tier}",'
            f'"system_fingerprint":"{stamp.fingerprint}","choices":['
        )
        tail = ',"usage":null' if request.include_usage else ""
        return cls(head, tail, padding if request.include_obfuscation else None, offset)

    def event(self, choices: str, n: int, tail: str | None = None) -> str:
        pad = (
            f',"obfuscation":"{self.padding[(self.offset + n) % len(self.padding)]}"'
            if self.padding
            else ""
        )
        return f"{self.head}{choices}]{self.tail if tail is None else tail}{pad}}}\n\n"


def chunk_events(
    request: ChatRequest,
    resolved_choices: Sequence[ResolvedChoice],
    envelope: Envelope,
    *,
    chunk_size: int | None,
    usage_: Usage | None,
) -> list[str]:
    """Every `data:` event of a stream up to (not including) `[DONE]`."""
    events = [
        envelope.event(choice, n)
        for n, choice in enumerate(
            interleave([_choice_chunks(t, request, chunk_size) for t in resolved_choices])
        )
    ]
    if usage_ is not None:
        events.append(envelope.event("", len(events), tail=f',"usage":{encode(usage_)}'))
    return events


DONE = "data: [DONE]\n\n"


def error_event(error: ApiError) -> str:
    """A mid-stream error: an event whose JSON has an `error` key (the SDKs raise on it)."""
    return f"data: {error.encode().decode()}\n\n"
