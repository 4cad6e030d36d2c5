"""The `vllm` profile: the mock speaks as vLLM's OpenAI-compatible server.

Shapes follow vLLM's pydantic models and serving code (vllm-project/vllm, main, read for this
module at commit d5dba2d7 of vllm/entrypoints/openai/chat_completion/protocol.py):

- a completion is `ChatCompletionResponse.model_dump()`: every field, nulls included
  (`service_tier`, `system_fingerprint`, `prompt_logprobs`, `prompt_token_ids`, ...); a message
  is `ChatMessage` (`annotations`, `audio`, `function_call` null, `tool_calls` left out when
  empty, `reasoning`), a choice carries `stop_reason` and `token_ids`;
- a stream chunk is `ChatCompletionStreamResponse.model_dump_json(exclude_unset=True)`
  (serving.py `chat_completion_stream_generator`): only the fields vLLM sets, so the first
  chunk of a choice carries `prompt_token_ids` (null unless `return_token_ids`) and
  `prompt_text`, later ones `token_ids` and the last `stop_reason`; the usage chunk drops its
  nulls (`exclude_none`);
- usage is `UsageInfo`: `prompt_tokens`, `total_tokens`, `completion_tokens`,
  `prompt_tokens_details` (null), `completion_tokens_details` (`reasoning_tokens`);
- errors are `ErrorResponse`: an integer `code` (the status) and a `type` such as
  `BadRequestError`; models are `ModelCard` (`owned_by: vllm`, `root`, `parent`,
  `max_model_len`, `permission`).

Reasoning is sent as `reasoning`, or under `--reasoning-field` as `reasoning_content` (vLLM
before the rename) or both (the releases in between).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from functools import lru_cache

from mockserver import completions, harmony, tokens
from mockserver.completions import ResolvedChoice, Stamp, encode, interleave
from mockserver.errors import ApiError
from mockserver.ids import IdFactory
from mockserver.profiles import vllm_rules as rules
from mockserver.profiles.base import Options
from mockserver.request import ChatRequest, build_request
from mockserver.validation import decode_exact, parse_chat_request
from mockserver.wire import JSON, Model, Usage

log = logging.getLogger("mockserver")

MAX_MODEL_LEN = 131_072
"""The `max_model_len` the models list reports."""
ERROR_TYPES = {
    400: "BadRequestError",
    401: "Unauthorized",
    404: "NotFoundError",
    413: "BadRequestError",
    429: "TooManyRequests",
    500: "InternalServerError",
    501: "NotImplementedError",
    503: "ServiceUnavailableError",
}
"""vLLM's error `type` by status (`OpenAIServing.create_error_response` callers)."""
_REQUEST_FIELDS = frozenset(f.name for f in fields(ChatRequest))
"""A request's own fields (its `__dict__` also holds lazily computed views, dropped on a copy)."""
_SPECIAL = tokens.VOCABULARY + 1
"""Ids past the vocabulary stand for a chat template's special tokens."""


def error_type(error: ApiError) -> str:
    """mockserver's own errors keep their type (they are the mock speaking); the rest take
    vLLM's name for their status."""
    if error.type.startswith("mockserver_"):
        return error.type
    return ERROR_TYPES.get(
        error.status, "BadRequestError" if error.status < 500 else "InternalServerError"
    )


def prompt_token_ids(request: ChatRequest) -> list[int]:
    """Deterministic prompt ids, as many as `usage.prompt_tokens` counts: template tokens
    around each message, the ids of its text tokens, padding for images and tools."""
    ids = [_SPECIAL, _SPECIAL + 1, _SPECIAL + 2]
    for message in request.messages:
        ids += [_SPECIAL + 3, tokens.token_id(message.role), _SPECIAL + 4]
        ids += tokens.token_ids(message.text)
        if message.name:
            ids.append(tokens.token_id(message.name))
    missing = request.prompt_tokens - len(ids)
    ids += [_SPECIAL + 5] * max(missing, 0)
    return ids[: request.prompt_tokens]


def completion_token_ids(choice: ResolvedChoice) -> list[int]:
    """The ids of a choice's tokens, in the order usage counts them (reasoning first)."""
    ids = tokens.token_ids(choice.reasoning or "")
    ids += tokens.token_ids(choice.content or "") + tokens.token_ids(choice.refusal or "")
    for call in choice.tool_calls:
        ids += [_SPECIAL + 6, *tokens.token_ids(call.name), _SPECIAL + 7]
        ids += [*tokens.token_ids(call.arguments), _SPECIAL + 8]
    return ids or [_SPECIAL + 9]


def _prompt_logprobs(request: ChatRequest, top: int) -> list[JSON]:
    """vLLM's `prompt_logprobs`: null for the first token, then per token a map of token id to
    `{logprob, rank, decoded_token}` (the token itself, and `top` alternatives)."""
    ids = prompt_token_ids(request)
    out: list[JSON] = [None]
    for token in ids[1:]:
        text = f"<|{token}|>" if token >= tokens.VOCABULARY else str(token)
        entry: dict[str, JSON] = {
            str(token): {"logprob": tokens.logprob(text), "rank": 1, "decoded_token": text}
        }
        for rank in range(1, top + 1):
            other = (token + rank) % tokens.VOCABULARY
            if str(other) not in entry:
                entry[str(other)] = {
                    "logprob": round(tokens.logprob(text) - 1.5 * rank, 3),
                    "rank": rank + 1,
                    "decoded_token": str(other),
                }
        out.append(entry)
    return out


class VllmProfile:
    name = "vllm"

    def __init__(self, options: Options) -> None:
        field = options.reasoning_field
        self._reasoning_keys = ("reasoning", "reasoning_content") if field == "both" else (field,)

    # -- requests ------------------------------------------------------------------------

    def parse(self, raw: bytes) -> ChatRequest:
        body, exact = decode_exact(raw)
        notes = rules.check(body)
        accepted = rules.accept(body)
        request = parse_chat_request(accepted, (), paired=False, keyed=exact)
        unknown = request.unknown_fields
        known = [f for f in unknown if f in rules.FIELDS]
        if not notes and accepted is body and not known:
            return request
        for note in notes:
            log.warning("vllm profile: %s", note)
        values = {k: v for k, v in request.__dict__.items() if k in _REQUEST_FIELDS}
        values["notes"] = notes
        values["body"] = body  # matching compares what was sent (a recording holds it)
        values["unknown_fields"] = tuple(f for f in unknown if f not in rules.FIELDS)
        if accepted.get("messages") is not body.get("messages"):
            values["messages"] = rules.restore(request.messages, body["messages"])
            values["message_keys"] = ()  # keys of the accepted messages, not of the body's
        if accepted.get("tools") is not body.get("tools"):
            values["tools_key"] = None  # the same: the rewritten list's
        return build_request(values)

    def error_body(self, error: ApiError) -> bytes:
        body = {
            "error": {
                "message": error.message,
                "type": error_type(error),
                "param": error.param,
                "code": error.status,
            }
        }
        return encode(body).encode()

    def tool_call_ids(self, ids: IdFactory) -> Callable[[], str]:
        """`chatcmpl-tool-` and 32 hex digits: vllm/entrypoints/chat_utils.py `make_tool_call_id`
        (the tool parsers' `ToolCall` default, harmony's included; Kimi K2 models, which vLLM
        gives `functions.NAME:INDEX` ids, are not told apart)."""
        return ids.vllm_tool_call

    def model(self, name: str, created: int) -> Model:
        return {  # type: ignore[typeddict-unknown-key]
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "vllm",
            "root": name,
            "parent": None,
            "max_model_len": MAX_MODEL_LEN,
            "permission": [
                {
                    "id": f"modelperm-{tokens.token_id(name):032x}",
                    "object": "model_permission",
                    "created": created,
                    "allow_create_engine": False,
                    "allow_sampling": True,
                    "allow_logprobs": True,
                    "allow_search_indices": False,
                    "allow_view": True,
                    "allow_fine_tuning": False,
                    "organization": "*",
                    "group": None,
                    "is_blocking": False,
                }
            ],
        }

    # -- whole completions ---------------------------------------------------------------

    def _reasoning(self, text: str | None) -> dict[str, JSON]:
        return dict.fromkeys(self._reasoning_keys, text)

    def _message(self, choice: ResolvedChoice, hide: bool) -> dict[str, JSON]:
        message: dict[str, JSON] = {
            "role": "assistant",
            "content": choice.content,
            "refusal": choice.refusal,
            "annotations": None,
            "audio": None,
            "function_call": None,
        }
        if choice.audio is not None or choice.function_call is not None:
            openai = completions._message(choice)
            message["audio"] = openai.get("audio")
            message["function_call"] = openai.get("function_call")
        if choice.tool_calls:
            message["tool_calls"] = [completions._call_json(c) for c in choice.tool_calls]
        message.update(self._reasoning(None if hide else choice.reasoning))
        return message

    def completion_body(
        self, request: ChatRequest, stamp: Stamp, choices: Sequence[ResolvedChoice], usage: Usage
    ) -> bytes:
        """`ChatCompletionResponse.model_dump()`, keys in its field order, built from pieces."""
        wants_ids = request.body.get("return_token_ids") is True
        prompt_top = request.body.get("prompt_logprobs")
        named, hide = _named(request), request.body.get("include_reasoning") is False
        listed = ",".join(
            self._choice_json(
                choice, request.logprobs, request.top_logprobs, wants_ids, named=named, hide=hide
            )
            for choice in choices
        )
        prompt_logprobs = (
            encode(_prompt_logprobs(request, max(prompt_top, 0)))
            if type(prompt_top) is int
            else "null"
        )
        prompt_ids = encode(prompt_token_ids(request)) if wants_ids else "null"
        return (
            f'{{"id":"{stamp.id}","object":"chat.completion","created":{stamp.created},'
            f'"model":{encode(stamp.model)},"choices":[{listed}],"service_tier":null,'
            f'"system_fingerprint":null,"usage":{encode(_usage(usage, details=True))},'
            f'"prompt_logprobs":{prompt_logprobs},"prompt_token_ids":{prompt_ids},'
            '"prompt_text":null,"kv_transfer_params":null,"ec_transfer_params":null,'
            '"metrics":null}'
        ).encode()

    @lru_cache(maxsize=4096)  # noqa: B019 (one profile per engine; choices repeat)
    def _choice_json(
        self,
        choice: ResolvedChoice,
        logprobs: bool,
        top: int,
        wants_ids: bool,
        *,
        named: bool,
        hide: bool,
    ) -> str:
        return encode(
            {
                "index": choice.index,
                "message": self._message(choice, hide),
                "logprobs": _logprobs(choice, top) if logprobs else None,
                "finish_reason": _finish(choice, named and not choice.harmony),
                "stop_reason": choice.stop_reason,
                "token_ids": completion_token_ids(choice) if wants_ids else None,
                "routed_experts": None,
            }
        )

    # -- streams -------------------------------------------------------------------------

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
        options = request.body.get("stream_options")
        include_usage = type(options) is dict and options.get("include_usage") is not False
        continuous = (
            include_usage
            and type(options) is dict
            and options.get("continuous_usage_stats") is True
        )
        wants_ids = request.body.get("return_token_ids") is True
        head = (
            f'data: {{"id":"{stamp.id}","object":"chat.completion.chunk",'
            f'"created":{stamp.created},"model":{encode(stamp.model)},"choices":['
        )
        prompt = request.prompt_tokens
        prompt_ids = encode(prompt_token_ids(request)) if wants_ids else "null"
        events: list[str] = []
        streams = [
            self._choice_chunks(choice, request, chunk_size, wants_ids) for choice in choices
        ]
        for choice_json, first, generated, thought in interleave(streams):
            tail = ""
            if continuous:
                tail = f',"usage":{encode(_running_usage(prompt, generated, thought))}'
            if first:
                tail += f',"prompt_token_ids":{prompt_ids},"prompt_text":null'
            events.append(f"{head}{choice_json}]{tail}}}\n\n")
        if include_usage:
            final = _usage(usage, details=True)
            del final["prompt_tokens_details"]
            events.append(f'{head}],"usage":{encode(final)}}}\n\n')
        return events

    def _choice_chunks(
        self, choice: ResolvedChoice, request: ChatRequest, size: int | None, wants_ids: bool
    ) -> Iterator[tuple[str, bool, int, int]]:
        """(choice JSON, first chunk?, completion tokens so far, of them reasoning) per chunk."""
        i = choice.index
        generated = thought = 0
        hide = request.body.get("include_reasoning") is False

        def piece_chunk(delta: str, text: str, field: str | None) -> str:
            lp = "null"
            if request.logprobs and field is not None and text:
                lp = encode({"content": [tokens.token_logprob(text, request.top_logprobs)]})
            ids = encode(tokens.token_ids(text)) if wants_ids else "null"
            return (
                f'{{"index":{i},"delta":{{{delta}}},"logprobs":{lp},'
                f'"finish_reason":null,"token_ids":{ids}}}'
            )

        yield (
            (
                f'{{"index":{i},"delta":{{"role":"assistant","content":""}},"logprobs":null,'
                f'"finish_reason":null}}'
            ),
            True,
            0,
            0,
        )
        for segment in _segments(choice):
            if segment.kind == "call":
                call = choice.tool_calls[segment.call]
                generated += 3 + tokens.count(call.name)
                head = (
                    f'"tool_calls":[{{"id":{encode(call.id)},"type":"function",'
                    f'"index":{segment.call},"function":{{"name":{encode(call.name)},'
                    '"arguments":""}}]'
                )
                yield piece_chunk(head, "", None), False, generated, thought
                for piece in completions._pieces(segment.text, size):
                    plain, count = _decoded(piece)
                    generated += count
                    delta = (
                        f'"tool_calls":[{{"index":{segment.call},'
                        f'"function":{{"arguments":{piece}}}}}]'
                    )
                    yield piece_chunk(delta, plain, None), False, generated, thought
                continue
            if not segment.text:
                continue
            if segment.kind == "reasoning" and hide:  # thought, not shown
                count = tokens.count(segment.text)
                generated, thought = generated + count, thought + count
                continue
            for piece in completions._pieces(segment.text, size):
                plain, count = _decoded(piece)
                generated += count
                if segment.kind == "reasoning":
                    thought += count
                    delta = ",".join(f'"{key}":{piece}' for key in self._reasoning_keys)
                else:
                    delta = f'"content":{piece}'
                yield piece_chunk(delta, plain, segment.kind), False, generated, thought
        stop = encode(choice.stop_reason)
        last_ids = "[]" if wants_ids else "null"
        yield (
            (
                f'{{"index":{i},"delta":{{}},"logprobs":null,"finish_reason":'
                f'"{_finish(choice, _named(request) and not choice.harmony)}",'
                f'"stop_reason":{stop},'
                f'"token_ids":{last_ids}}}'
            ),
            False,
            max(generated, 1),
            thought,
        )


def _segments(choice: ResolvedChoice) -> tuple[harmony.Segment, ...]:
    """What a choice streams, in order: a harmony reply's messages in the model's order
    (`harmony.stream_order`), any other reply's reasoning, then content, then tool calls."""
    if choice.harmony:
        order = harmony.stream_order(choice.harmony)
        if sum(s.kind == "call" for s in order) == len(choice.tool_calls):
            return order
    calls = (harmony.Segment("call", c.arguments, k) for k, c in enumerate(choice.tool_calls))
    return (
        harmony.Segment("reasoning", choice.reasoning or ""),
        harmony.Segment("content", choice.content or ""),
        *calls,
    )


def _named(request: ChatRequest) -> bool:
    """Whether `tool_choice` names a tool (vLLM then finishes with `stop`)."""
    return request.forced_tool is not None


def _finish(choice: ResolvedChoice, named: bool) -> str:
    """vLLM's finish reason: `tool_calls` for calls the model chose, `stop` for a named tool
    (chat_completion/serving.py, "In OpenAI's API, when a tool is called..."); harmony replies
    finish with `tool_calls` whenever they call (serving.py's harmony branches do not look at
    `tool_choice`), so callers pass `named` false for them."""
    if named and choice.finish_reason == "tool_calls":
        return "stop"
    return choice.finish_reason


@lru_cache(maxsize=4096)
def _decoded(piece: str) -> tuple[str, int]:
    """A pre-encoded stream piece's text and token count (pieces repeat across replies)."""
    text: str = json.loads(piece)
    return text, tokens.count(text)


def _logprobs(choice: ResolvedChoice, top: int) -> JSON:
    """vLLM's `ChatCompletionLogProbs`: `content` only (no `refusal`)."""
    if not choice.content:
        return {"content": None}
    return {"content": [tokens.token_logprob(t, top) for t in tokens.split(choice.content)]}


def _usage(usage: Usage, *, details: bool) -> dict[str, JSON]:
    reasoning = usage.get("completion_tokens_details", {}).get("reasoning_tokens", 0)
    return {
        "prompt_tokens": usage["prompt_tokens"],
        "total_tokens": usage["total_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "prompt_tokens_details": None,
        "completion_tokens_details": {"reasoning_tokens": reasoning} if details else None,
    }


def _running_usage(prompt: int, generated: int, thought: int) -> dict[str, JSON]:
    return {
        "prompt_tokens": prompt,
        "total_tokens": prompt + generated,
        "completion_tokens": generated,
        "completion_tokens_details": {"reasoning_tokens": thought},
    }
