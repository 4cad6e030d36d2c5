"""A resolved reply -> the Responses API's `response` object, or the events of its stream.

The reply is resolved by the chat encoder (`completions.resolve`: tool-call ids, `stop`, the
token limit), then laid out as output items: a `message` with an `output_text` part (and
`annotations: []`) or a `refusal` part, then a `function_call` / `custom_tool_call` item per
tool call. A reply cut by `max_output_tokens` is `incomplete` with `incomplete_details`.

Streams follow the live grammar: `response.created`, `response.in_progress`, per item
`response.output_item.added`, its part and delta events and `.done` events,
`response.output_item.done`, then `response.completed` (or `response.incomplete`); every event
has its `event:` line and an increasing `sequence_number`, and there is no `[DONE]`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from mockserver import completions, memo, tokens
from mockserver.completions import ResolvedChoice, encode
from mockserver.errors import ApiError
from mockserver.outcome import Frame
from mockserver.request import ChatRequest
from mockserver.responses import error_from_spec
from mockserver.scenarios import Reply
from mockserver.wire import JSON

ERROR_CODES = frozenset(
    {
        "server_error",
        "rate_limit_exceeded",
        "invalid_prompt",
        "vector_store_timeout",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
    }
)
"""The `error.code` values a failed response may carry (others are said as `server_error`)."""


@dataclass(frozen=True, slots=True)
class Head:
    """What every snapshot of one response shares."""

    id: str
    created_at: int
    model: str
    service_tier: str
    previous_response_id: str | None
    store: bool


def usage(
    request: ChatRequest,
    resolved: ResolvedChoice,
    pinned: dict[str, JSON] | None,
) -> JSON:
    """`usage` in the Responses API's names; a scenario's pinned chat names map onto them.
    Chat's counts already hold the reasoning (`completions.usage`: in the output tokens and
    the reasoning tokens, unless pinned)."""
    chat = completions.usage(request, (resolved,), pinned)
    prompt = chat["prompt_tokens_details"]
    completion = chat["completion_tokens_details"]
    output = chat["completion_tokens"]
    total = chat["total_tokens"]
    return {
        "input_tokens": chat["prompt_tokens"],
        "input_tokens_details": {
            "cached_tokens": prompt.get("cached_tokens", 0),
            "cache_write_tokens": prompt.get("cache_write_tokens", 0),
        },
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": completion.get("reasoning_tokens", 0)},
        "total_tokens": total,
    }


def text_logprobs(text: str, top: int | None) -> list[JSON]:
    """An `output_text` part's `logprobs`: per token of the text, as chat's (`LogProb`, with
    `top` alternatives); empty unless asked for (`top` None)."""
    if top is None:
        return []
    return [dict(tokens.token_logprob(t, top)) for t in tokens.split(text)]


def _event_logprob(token: str, top: int) -> str:
    """One `ResponseLogProb` of a stream event (the token's, without its bytes)."""
    found = tokens.token_logprob(token, top)
    alternatives = [{"token": t["token"], "logprob": t["logprob"]} for t in found["top_logprobs"]]
    return encode({"token": token, "logprob": found["logprob"], "top_logprobs": alternatives})


@memo.cached(4096, len)
def _delta_logprobs(piece: str, top: int) -> str:
    """A text delta's `logprobs` (its piece, JSON-encoded, taken as one token as chat's
    chunks take it)."""
    return f"[{_event_logprob(json.loads(piece), top)}]"


def _done_logprobs(text: str, top: int | None) -> str:
    """`response.output_text.done`'s `logprobs`: the whole text's, a token at a time."""
    if top is None:
        return "[]"
    return "[" + ",".join(_event_logprob(t, top) for t in tokens.split(text)) + "]"


def logprobs_top(request: ChatRequest) -> int | None:
    """How many alternatives each logprob lists, or None when logprobs are not asked for
    (`include: ["message.output_text.logprobs"]`)."""
    return request.top_logprobs if request.logprobs else None


def output_items(
    resolved: ResolvedChoice,
    new_id: Callable[[str], str],
    status: str,
    reasoning: str | None = None,
    logprobs: int | None = None,
) -> list[dict[str, JSON]]:
    """The output items of a reply, in order, each with its id: the reasoning summary, the
    message, the tool calls. `logprobs`: see `logprobs_top`."""
    items: list[dict[str, JSON]] = []
    if reasoning is not None:
        items.append(
            {
                "id": new_id("rs_"),
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": reasoning}],
            }
        )
    content: list[JSON] = []
    if resolved.content is not None and (resolved.content or not resolved.tool_calls):
        text = resolved.content
        content.append(
            {
                "type": "output_text",
                "annotations": [],
                "logprobs": text_logprobs(text, logprobs),
                "text": text,
            }
        )
    if resolved.refusal is not None:
        content.append({"type": "refusal", "refusal": resolved.refusal})
    if content:
        items.append(
            {
                "id": new_id("msg_"),
                "type": "message",
                "status": status,
                "content": content,
                "role": "assistant",
            }
        )
    for call in resolved.tool_calls:
        if call.type == "custom":
            items.append(
                {
                    "id": new_id("ctc_"),
                    "type": "custom_tool_call",
                    "status": "completed",
                    "call_id": call.id,
                    "input": call.arguments,
                    "name": call.name,
                }
            )
        else:
            items.append(
                {
                    "id": new_id("fc_"),
                    "type": "function_call",
                    "status": "completed",
                    "arguments": call.arguments,
                    "call_id": call.id,
                    "name": call.name,
                }
            )
    return items


def _tools(request: ChatRequest) -> list[JSON]:
    """The request's tools as the response echoes them (function tools with their defaults)."""
    out: list[JSON] = []
    for tool in request.body.get("tools") or ():
        if isinstance(tool, dict) and tool.get("type") == "function":
            out.append(
                {
                    "type": "function",
                    "description": tool.get("description"),
                    "name": tool.get("name"),
                    "parameters": tool.get("parameters"),
                    "strict": tool.get("strict", True),
                }
            )
        else:
            out.append(tool)
    return out


def _text_config(request: ChatRequest) -> JSON:
    text = request.body.get("text")
    fmt: JSON = {"type": "text"}
    verbosity = "medium"
    if isinstance(text, dict):
        if isinstance(text.get("format"), dict):
            fmt = dict(text["format"])
            if fmt.get("type") == "json_schema":
                fmt.setdefault("strict", False)
        if isinstance(text.get("verbosity"), str):
            verbosity = text["verbosity"]
    return {"format": fmt, "verbosity": verbosity}


def _given(body: Mapping[str, JSON], key: str, default: JSON) -> JSON:
    """The request's value, or the default when it is absent or null (null means unset)."""
    value = body.get(key)
    return default if value is None else value


def response_object(
    request: ChatRequest,
    head: Head,
    *,
    status: str,
    output: Sequence[JSON] = (),
    usage_: JSON = None,
    error: JSON = None,
    completed_at: int | None = None,
) -> dict[str, JSON]:
    """The `response` object (keys in the order OpenAI sends them)."""
    body = request.body
    incomplete: JSON = None
    if status == "incomplete":
        incomplete = {"reason": "max_output_tokens"}
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    assert isinstance(reasoning, dict)
    response: dict[str, JSON] = {
        "id": head.id,
        "object": "response",
        "created_at": head.created_at,
        "status": status,
        "background": body.get("background") is True,
        "completed_at": completed_at,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": head.model,
        "output": list(output),
        "parallel_tool_calls": request.parallel_tool_calls,
        "previous_response_id": head.previous_response_id,
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {
            "effort": reasoning.get("effort"),
            "summary": reasoning.get("summary"),
        },
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": head.service_tier,
        "store": head.store,
        "temperature": _given(body, "temperature", 1.0),
        "text": _text_config(request),
        "tool_choice": _given(body, "tool_choice", "auto"),
        "tools": _tools(request),
        "top_logprobs": _given(body, "top_logprobs", 0),
        "top_p": _given(body, "top_p", 1.0),
        "truncation": _given(body, "truncation", "disabled"),
        "usage": usage_,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }
    for key in ("user", "safety_identifier", "prompt_cache_key", "usage"):
        if response[key] is None:
            del response[key]  # not nullable in OpenAI's schema: absent when the request has none
    return response


# -- streaming ---------------------------------------------------------------------------------


class _Events:
    """Numbers and frames the events of one stream (`event:` line, `sequence_number`)."""

    def __init__(self, padding: Sequence[str] | None = None) -> None:
        self.events: list[str] = []
        self.padding = padding

    def pad(self) -> str:
        """The `obfuscation` field of a delta event (random-length padding, as the live API
        sends unless `stream_options.include_obfuscation` is false)."""
        if not self.padding:
            return ""
        return f',"obfuscation":"{self.padding[len(self.events) % len(self.padding)]}"'

    def add(self, kind: str, **fields: JSON) -> None:
        self.raw(kind, "," + encode(fields)[1:-1] if fields else "")

    def raw(self, kind: str, rest: str) -> None:
        """An event whose other fields are already JSON (`rest`: `,"key":value...`)."""
        n = len(self.events)
        self.events.append(
            f'event: {kind}\ndata: {{"type":"{kind}","sequence_number":{n}{rest}}}\n\n'
        )


@lru_cache(maxsize=1024)
def _pieces(text: str, chunk_size: int | None) -> tuple[str, ...]:
    """A text split into stream pieces, each JSON-encoded (a reply's text repeats)."""
    parts = tokens.split_chars(text, chunk_size) if chunk_size else tokens.split(text)
    return tuple(encode(p) for p in parts)


def _part_events(
    out: _Events, part: dict[str, JSON], where: str, chunk_size: int | None, top: int | None
) -> None:
    """The events of one content part of a message: added, its deltas, done."""
    if part["type"] == "output_text":
        text = str(part["text"])
        empty = {**part, "text": "", "logprobs": []}
        out.raw("response.content_part.added", f'{where},"part":{encode(empty)}')
        for piece in _pieces(text, chunk_size):
            lp = "[]" if top is None else _delta_logprobs(piece, top)
            out.raw(
                "response.output_text.delta", f'{where},"delta":{piece},"logprobs":{lp}{out.pad()}'
            )
        done = _done_logprobs(text, top)
        out.raw("response.output_text.done", f'{where},"text":{encode(text)},"logprobs":{done}')
    else:
        refusal = str(part["refusal"])
        out.raw("response.content_part.added", f'{where},"part":{encode({**part, "refusal": ""})}')
        for piece in _pieces(refusal, chunk_size):
            out.raw("response.refusal.delta", f'{where},"delta":{piece}')
        out.raw("response.refusal.done", f'{where},"refusal":{encode(refusal)}')
    out.raw("response.content_part.done", f'{where},"part":{encode(part)}')


def stream_events(
    request: ChatRequest,
    head: Head,
    items: Sequence[dict[str, JSON]],
    final: str,
    chunk_size: int | None,
    *,
    incomplete: bool = False,
    padding: Sequence[str] | None = None,
) -> list[str]:
    """Every event of a stream, `response.created` to `response.completed` (or
    `response.incomplete`); `final` is the finished response, encoded."""
    out = _Events(padding if request.include_obfuscation else None)
    top = logprobs_top(request)
    start = f',"response":{encode(response_object(request, head, status="in_progress"))}'
    out.raw("response.created", start)
    out.raw("response.in_progress", start)
    for index, item in enumerate(items):
        item_id = item["id"]
        kind = item["type"]
        if kind == "message":
            content = item["content"]
            assert isinstance(content, list)
            out.add(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            for n, part in enumerate(content):
                assert isinstance(part, dict)
                where = f',"item_id":"{item_id}","output_index":{index},"content_index":{n}'
                _part_events(out, part, where, chunk_size, top)
        elif kind == "reasoning":
            out.add("response.output_item.added", output_index=index, item={**item, "summary": []})
            summary = item["summary"]
            assert isinstance(summary, list)
            for n, part in enumerate(summary):
                assert isinstance(part, dict)
                text = str(part["text"])
                where = f',"item_id":"{item_id}","output_index":{index},"summary_index":{n}'
                empty = encode({**part, "text": ""})
                out.raw("response.reasoning_summary_part.added", f'{where},"part":{empty}')
                for piece in _pieces(text, chunk_size):
                    out.raw(
                        "response.reasoning_summary_text.delta",
                        f'{where},"delta":{piece}{out.pad()}',
                    )
                out.raw("response.reasoning_summary_text.done", f'{where},"text":{encode(text)}')
                out.raw("response.reasoning_summary_part.done", f'{where},"part":{encode(part)}')
        else:
            custom = kind == "custom_tool_call"
            payload = "input" if custom else "arguments"
            event = (
                "response.custom_tool_call_input" if custom else "response.function_call_arguments"
            )
            out.add(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", payload: ""},
            )
            text = str(item[payload])
            where = f',"item_id":"{item_id}","output_index":{index}'
            for piece in _pieces(text, chunk_size):
                out.raw(f"{event}.delta", f'{where},"delta":{piece}{out.pad()}')
            name = "" if custom else f',"name":{encode(item["name"])}'
            out.raw(f"{event}.done", f'{where},"{payload}":{encode(text)}{name}')
        out.raw("response.output_item.done", f',"output_index":{index},"item":{encode(item)}')
    out.raw("response.incomplete" if incomplete else "response.completed", f',"response":{final}')
    return out.events


def failed_events(request: ChatRequest, head: Head, sent: int, error: ApiError) -> str:
    """What a stream broken by an error sends after `sent` events: the `error` event, then
    `response.failed` with the error in the response."""
    out = _Events()
    out.events = [""] * sent
    code = error.code if error.code in ERROR_CODES else "server_error"
    out.add("error", code=error.code or error.type, message=error.message, param=error.param)
    failed = response_object(
        request, head, status="failed", error={"code": code, "message": error.message}
    )
    out.add("response.failed", response=failed)
    return "".join(out.events[sent:])


def frames(
    reply: Reply, events: list[str], tail: Callable[[int, ApiError], str], model: str
) -> tuple[Frame, ...]:
    """The stream's frames with the reply's `stream` keys applied (as `responses.frames` does
    for chat: chunk delays, `interrupt` after a number of events, with an error or a drop)."""
    spec = reply.stream
    end_text = ""
    abort = False
    if spec.interrupt is not None:
        events = events[: spec.interrupt.after_chunks]
        if spec.interrupt.error is not None:
            end_text = tail(len(events), error_from_spec(spec.interrupt.error, model))
        else:
            abort = True
    first = spec.first_chunk_delay_ms / 1000
    end = (Frame(0.0, abort=True),) if abort else ()
    if not spec.chunk_delay_ms:
        return (Frame(first, ("".join(events) + end_text).encode()), *end)
    gap = spec.chunk_delay_ms / 1000
    out = [Frame(first if n == 0 else gap, e.encode()) for n, e in enumerate(events)]
    if end_text:
        out.append(Frame(gap if out else first, end_text.encode()))
    return (*out, *end)


def dumps(value: JSON) -> bytes:
    return encode(value).encode()


def loads(raw: bytes) -> JSON:
    value: JSON = json.loads(raw)
    return value
