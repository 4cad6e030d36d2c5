"""Replies that are valid JSON, and valid to the SDK, but wrong for the request they answer.

The faults here test an application's own validation: each reply still parses under the
openai SDK's strict response validation and OpenAI's schema, so only the application's checks
(or the SDK's `parse()` where it checks) can catch it.

- `bad_tool_arguments`: each tool call's `arguments` cut short (they do not parse);
- `tool_arguments_missing`: the arguments parse but lack a property the tool's `parameters`
  require;
- `tool_arguments_wrong_type`: the arguments parse but a property has a value of another type
  than its schema's `type`;
- `unknown_tool`: a call names a tool that is not among the request's `tools`;
- `bad_structured_output`: the content parses but breaks the request's `response_format`
  JSON schema (a required property missing, else a value of the wrong type);
- `empty_choices`: `choices: []`;
- `missing_content`: no content (`null`; a stream: empty content deltas);
- `wrong_finish_reason`: a `finish_reason` the reply contradicts (`tool_calls` without tool
  calls, `stop` with them), or the one the fault names.

A stream is rewritten whole: a call's or a content's new text rides in its first piece, the
later pieces carry "" (their frames and waits stay).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from mockserver import completions
from mockserver.outcome import Frame, Outcome
from mockserver.request import ChatRequest
from mockserver.timing import coalesce, events_of

TOOL_KINDS = ("bad_tool_arguments", "tool_arguments_missing", "tool_arguments_wrong_type")
KINDS = (
    *TOOL_KINDS,
    "unknown_tool",
    "bad_structured_output",
    "empty_choices",
    "missing_content",
    "wrong_finish_reason",
)
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")
_DATA = b"data: {"
JSONObject = dict[str, Any]


# -- which replies a kind applies to ------------------------------------------------------------


def _has_arguments(outcome: Outcome) -> bool:
    if outcome.frames is None:
        return b'"arguments"' in outcome.body
    return any(b'"arguments"' in f.data for f in outcome.frames)


def _tools(request: ChatRequest | None) -> dict[str, JSONObject]:
    """The request's function tools (and legacy `functions`): their `parameters` by name."""
    if request is None:
        return {}
    out: dict[str, JSONObject] = {}
    for tool in request.body.get("tools") or ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            parameters = function.get("parameters")
            out[function["name"]] = parameters if isinstance(parameters, dict) else {}
    for function in request.body.get("functions") or ():
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            parameters = function.get("parameters")
            out[function["name"]] = parameters if isinstance(parameters, dict) else {}
    return out


def _response_schema(request: ChatRequest | None) -> JSONObject | None:
    """The `response_format` JSON schema the request asks for, if it has one."""
    if request is None or request.api != "chat" or request.response_format != "json_schema":
        return None
    given = request.body.get("response_format")
    spec = given.get("json_schema") if isinstance(given, dict) else None
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return schema if isinstance(schema, dict) and _breakable(schema) else None


def _breakable(schema: Mapping[str, Any]) -> bool:
    """Whether a document can break `schema`: it requires a property or types one."""
    properties = schema.get("properties")
    return bool(schema.get("required")) or (
        isinstance(properties, dict) and any(_typed(p) for p in properties.values())
    )


def _typed(schema: object) -> bool:
    return isinstance(schema, dict) and isinstance(schema.get("type"), str)


def _schema_tools(outcome: Outcome, request: ChatRequest | None) -> bool:
    return (
        _chat(request)
        and _has_arguments(outcome)
        and any(_breakable(p) for p in _tools(request).values())
    )


def _chat(request: ChatRequest | None) -> bool:
    """Whether the reply is a chat completion (these kinds break nothing else)."""
    return request is None or request.api == "chat"


CHECKS: dict[str, Callable[[Outcome, ChatRequest | None], bool]] = {
    "bad_tool_arguments": lambda outcome, request: _chat(request) and _has_arguments(outcome),
    "tool_arguments_missing": _schema_tools,
    "tool_arguments_wrong_type": _schema_tools,
    "unknown_tool": lambda outcome, request: _chat(request) and _has_arguments(outcome),
    "bad_structured_output": lambda _, request: _response_schema(request) is not None,
    "empty_choices": lambda _, request: _chat(request),
    "missing_content": lambda outcome, request: _chat(request) and not _has_arguments(outcome),
    "wrong_finish_reason": lambda _, request: _chat(request),
}
"""Which 200 replies each kind applies to: chat completions, and of them those it can break."""


# -- how each kind breaks a message --------------------------------------------------------------


def _unparsable(arguments: str) -> str:
    """Tool arguments cut short: a string that does not parse as JSON."""
    return arguments[: len(arguments) // 2] if len(arguments) > 1 else '{"'


_OTHER_VALUE: dict[str, object] = {
    "string": 12345,
    "number": "not a number",
    "integer": "not a number",
    "boolean": "yes",
    "array": {"not": "a list"},
    "object": ["not", "an", "object"],
    "null": 0,
}


def _violate(text: str, schema: Mapping[str, Any]) -> str:
    """A JSON object that breaks `schema`: its first required property dropped, else its first
    typed property given a value of another type (text that is no JSON object stays)."""
    try:
        document = json.loads(text)
    except ValueError:
        return text
    if not isinstance(document, dict):
        return text
    required = schema.get("required")
    for name in required if isinstance(required, list) else ():
        if isinstance(name, str) and name in document:
            del document[name]
            return _compact(document)
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    for name in document:
        given = properties.get(name)
        kind = given.get("type") if isinstance(given, dict) else None
        if isinstance(kind, str) and kind in _OTHER_VALUE:
            document[name] = _OTHER_VALUE[kind]
            return _compact(document)
    return text


def _compact(document: JSONObject) -> str:
    """JSON as models write arguments: no spaces, characters as they are."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _mistyped(text: str, schema: Mapping[str, Any]) -> str:
    """`_violate`, but a wrong type first (a required property dropped only if none is typed)."""
    typed = {k: v for k, v in schema.items() if k != "required"}
    changed = _violate(text, typed)
    return changed if changed != text else _violate(text, schema)


def _unlisted(name: str, tools: Mapping[str, object]) -> str:
    candidate = f"{name}_v2"
    while candidate in tools:
        candidate += "_v2"
    return candidate


class _Breaker:
    """What one kind does to a message's parts: tool calls, content, finish reason."""

    def __init__(self, kind: str, request: ChatRequest | None, finish_reason: str | None) -> None:
        self.kind = kind
        self.tools = _tools(request)
        self.schema = _response_schema(request)
        self.finish_reason = finish_reason

    def call(self, name: str, arguments: str) -> tuple[str, str]:
        kind = self.kind
        if kind == "bad_tool_arguments":
            return name, _unparsable(arguments)
        if kind == "unknown_tool":
            return _unlisted(name, self.tools), arguments
        if kind in TOOL_KINDS:
            schema = self.tools.get(name, {})
            if kind == "tool_arguments_missing":
                return name, _violate(arguments, {"required": schema.get("required")})
            return name, _mistyped(arguments, schema)
        return name, arguments

    def content(self, text: str | None) -> str | None:
        if self.kind == "missing_content":
            return None
        if self.kind == "bad_structured_output" and text is not None and self.schema:
            return _violate(text, self.schema)
        return text

    def finish(self, reason: str | None, has_calls: bool) -> str | None:
        if self.kind != "wrong_finish_reason" or reason is None:
            return reason
        if self.finish_reason is not None:
            return self.finish_reason
        return "stop" if has_calls else "tool_calls"


# -- replies -------------------------------------------------------------------------------------


def apply(
    outcome: Outcome, kind: str, request: ChatRequest | None, finish_reason: str | None = None
) -> Outcome:
    """The outcome (a 200 reply, plain or streamed) made wrong for its request as `kind` says."""
    breaker = _Breaker(kind, request, finish_reason)
    if outcome.frames is None:
        body = _break_body(outcome.body, breaker)
        return Outcome(outcome.status, outcome.headers, body, delay=outcome.delay)
    frames = coalesce(_break_events(events_of(outcome), breaker))
    return Outcome(outcome.status, outcome.headers, frames=frames, delay=outcome.delay)


def _break_body(body: bytes, breaker: _Breaker) -> bytes:
    document = json.loads(body)
    if breaker.kind == "empty_choices":
        document["choices"] = []
    for choice in document.get("choices", ()):
        message = choice.get("message") or {}
        calls = message.get("tool_calls") or ()
        for call in calls:
            function = call.get("function")
            if isinstance(function, dict):
                function["name"], function["arguments"] = breaker.call(
                    function.get("name", ""), function.get("arguments", "")
                )
        legacy = message.get("function_call")
        if isinstance(legacy, dict):
            legacy["name"], legacy["arguments"] = breaker.call(
                legacy.get("name", ""), legacy.get("arguments", "")
            )
        if "content" in message and not calls and legacy is None:
            message["content"] = breaker.content(message["content"])
        choice["finish_reason"] = breaker.finish(
            choice.get("finish_reason"), bool(calls) or legacy is not None
        )
    return completions.encode(document).encode()


def _chunk(event: Frame) -> JSONObject | None:
    if not event.data.startswith(_DATA):
        return None
    return json.loads(event.data[6:])  # type: ignore[no-any-return]


def _functions(index: int, delta: JSONObject) -> list[tuple[tuple[int, int], JSONObject]]:
    """The `function` pieces of a delta by (choice, call); a legacy `function_call` is call -1."""
    out = []
    for call in delta.get("tool_calls") or ():
        function = call.get("function")
        if isinstance(function, dict):
            out.append(((index, call.get("index", 0)), function))
    if isinstance(delta.get("function_call"), dict):
        out.append(((index, -1), delta["function_call"]))
    return out


def _break_events(events: list[Frame], breaker: _Breaker) -> list[Frame]:
    """The stream's chunks rewritten: the whole new text of each call and content first."""
    chunks = [_chunk(e) for e in events]
    calls: dict[tuple[int, int], tuple[str, str]] = {}  # (choice, call) -> name, arguments
    contents: dict[int, str] = {}
    for chunk in chunks:
        for choice in (chunk or {}).get("choices", ()):
            index, delta = choice.get("index", 0), choice.get("delta") or {}
            for key, function in _functions(index, delta):
                name, arguments = calls.get(key, ("", ""))
                calls[key] = (
                    name + (function.get("name") or ""),
                    arguments + (function.get("arguments") or ""),
                )
            if isinstance(delta.get("content"), str):
                contents[index] = contents.get(index, "") + delta["content"]
    new_calls = {key: breaker.call(*value) for key, value in calls.items()}
    new_contents = {
        index: breaker.content(text) if not any(k[0] == index for k in calls) else text
        for index, text in contents.items()
    }
    named: set[tuple[int, int]] = set()
    argued: set[tuple[int, int]] = set()
    written: set[int] = set()
    out: list[Frame] = []
    for event, chunk in zip(events, chunks, strict=True):
        if chunk is None or not chunk.get("choices"):
            out.append(event)
            continue
        if breaker.kind == "empty_choices":
            chunk["choices"] = []
        for choice in chunk["choices"]:
            index, delta = choice.get("index", 0), choice.get("delta") or {}
            for key, function in _functions(index, delta):
                name, arguments = new_calls[key]
                if "name" in function:
                    function["name"] = "" if key in named else name
                    named.add(key)
                if "arguments" in function:
                    function["arguments"] = arguments if key not in argued else ""
                    argued.add(key)
            if isinstance(delta.get("content"), str) and index in new_contents:
                text = new_contents[index]
                delta["content"] = (text or "") if index not in written else ""
                written.add(index)
            choice["finish_reason"] = breaker.finish(
                choice.get("finish_reason"), any(k[0] == index for k in calls)
            )
        data = b"data: " + completions.encode(chunk).encode() + b"\n\n"
        out.append(Frame(event.delay, data, event.abort))
    return out
