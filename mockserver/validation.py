"""Untrusted request JSON -> `ChatRequest`, or an `ApiError` naming the exact `param`.

Messages and phrasing follow what the live API answers, e.g.
`Invalid type for 'messages[0].content': expected ...` with `param` `messages[0].content`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from mockserver.errors import ApiError, invalid
from mockserver.request import PART_KINDS, ChatRequest, RequestMessage
from mockserver.wire import JSON

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
HARMONY_ROLES = ("user", "assistant", "system", "developer", "tool")

_NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
    "valid JSON. If you have trouble figuring out how to fix this, please contact us through our "
    "help center at help.openai.com.)"
)


_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a decimal"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _type_name(value: JSON) -> str:
    """The value's JSON type as the API's messages name it."""
    return next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), "null")


def _wrong_type(param: str, expected: str, value: JSON) -> NoReturn:
    raise invalid(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _missing(param: str) -> NoReturn:
    raise invalid(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def _bad_value(param: str, value: JSON, allowed: Sequence[str]) -> NoReturn:
    quoted = [f"'{a}'" for a in allowed]
    listed = ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 1 else quoted[0]
    raise invalid(
        f"Invalid value: '{value}'. Supported values are: {listed}.",
        param=param,
        code="invalid_value",
    )


def decode_body(raw: bytes) -> dict[str, JSON]:
    """Parse the request body as a JSON object."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(status=400, message=_NOT_JSON) from None
    if not isinstance(body, dict):
        raise ApiError(status=400, message=_NOT_JSON)
    return body


@dataclass
class _Content:
    """What a message's content adds up to."""

    texts: list[str] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    images: int = 0
    high: int = 0
    audio: int = 0


def _part(part: JSON, where: str, role: str, into: _Content) -> None:
    if isinstance(part, str):
        into.texts.append(part)
        into.kinds.add("text")
        return
    if not isinstance(part, dict):
        _wrong_type(where, "an object", part)
    kind = part.get("type")
    if kind not in PART_KINDS:
        _bad_value(f"{where}.type", kind, tuple(PART_KINDS))
    into.kinds.add(PART_KINDS[kind])
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            _wrong_type(f"{where}.text", "a string", text)
        into.texts.append(text)
    elif kind == "refusal" and role != "assistant":
        _bad_value(f"{where}.type", kind, ("text", "image_url", "input_audio", "file"))
    elif kind == "image_url":
        into.images += 1
        image = part.get("image_url")
        if isinstance(image, dict) and image.get("detail") == "high":
            into.high += 1
    elif kind == "input_audio":
        into.audio += 1


def _text_of(content: JSON, param: str, role: str) -> tuple[str, frozenset[str], int, int, int]:
    """The text of a message's content, and the part kinds, images, high-detail images, audio."""
    if content is None:
        return "", frozenset(), 0, 0, 0
    if isinstance(content, str):
        return content, frozenset({"text"}), 0, 0, 0
    if not isinstance(content, list):
        _wrong_type(param, "one of a string or array of objects", content)
    into = _Content()
    for i, part in enumerate(content):
        _part(part, f"{param}[{i}]", role, into)
    return "\n".join(into.texts), frozenset(into.kinds), into.images, into.high, into.audio


def _message(raw: JSON, index: int) -> RequestMessage:
    param = f"messages[{index}]"
    if not isinstance(raw, dict):
        _wrong_type(param, "an object", raw)
    if "role" not in raw and isinstance(raw.get("author"), dict):
        return _harmony_message(raw, param)
    role = raw.get("role")
    if role is None:
        _missing(f"{param}.role")
    if role not in ROLES:
        _bad_value(f"{param}.role", role, ROLES)
    if role != "assistant" and "content" not in raw:
        _missing(f"{param}.content")
    text, parts, images, high, audio = _text_of(raw.get("content"), f"{param}.content", role)
    tool_ids: list[str] = []
    tool_names: list[str] = []
    calls = raw.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            if isinstance(call, dict):
                tool_ids.append(str(call.get("id", "")))
                fn = call.get("function") or call.get("custom") or {}
                tool_names.append(str(fn.get("name", "")) if isinstance(fn, dict) else "")
    refusal = raw.get("refusal")
    if role == "assistant" and isinstance(refusal, str) and not text:
        text = refusal
    name = raw.get("name")
    tool_call_id = raw.get("tool_call_id")
    if role == "tool" and tool_call_id is None:
        _missing(f"{param}.tool_call_id")
    return RequestMessage(
        role=role,
        text=text,
        name=name if isinstance(name, str) else None,
        parts=parts,
        tool_call_id=tool_call_id if isinstance(tool_call_id, str) else None,
        tool_call_ids=tuple(tool_ids),
        tool_names=tuple(tool_names),
        images=images,
        image_detail_high=high,
        audio_parts=audio,
    )


def _harmony_message(raw: Mapping[str, JSON], param: str) -> RequestMessage:
    author = raw["author"]
    role = author.get("role")
    if role not in HARMONY_ROLES:
        _bad_value(f"{param}.author.role", role, HARMONY_ROLES)
    content = raw.get("content", [])
    text, parts, images, high, audio = _text_of(content, f"{param}.content", role)
    name = author.get("name")
    channel = raw.get("channel")
    recipient = raw.get("recipient")
    return RequestMessage(
        role=role,
        text=text,
        name=name if isinstance(name, str) else None,
        parts=parts,
        images=images,
        image_detail_high=high,
        audio_parts=audio,
        channel=channel if isinstance(channel, str) else None,
        recipient=recipient if isinstance(recipient, str) else None,
    )


def _tool_names(body: Mapping[str, JSON]) -> tuple[str, ...]:
    names: list[str] = []
    tools = body.get("tools")
    if isinstance(tools, list):
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                _wrong_type(f"tools[{i}]", "an object", tool)
            kind = tool.get("type", "function")
            spec = tool.get(kind)
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                _missing(f"tools[{i}].{kind}.name")
            names.append(spec["name"])
    functions = body.get("functions")
    if isinstance(functions, list):
        names.extend(f["name"] for f in functions if isinstance(f, dict) and "name" in f)
    return tuple(names)


def parse_chat_request(
    body: dict[str, JSON], raw_headers: tuple[tuple[bytes, bytes], ...] = ()
) -> ChatRequest:
    """Validate a decoded request body and build the `ChatRequest` matching works from."""
    model = body.get("model")
    if model is None:
        _missing("model")
    if not isinstance(model, str):
        _wrong_type("model", "a string", model)
    messages = body.get("messages")
    if messages is None:
        _missing("messages")
    if not isinstance(messages, list):
        _wrong_type("messages", "an array", messages)
    if not messages:
        raise invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    parsed = tuple(_message(m, i) for i, m in enumerate(messages))
    stream = body.get("stream") is True
    options = body.get("stream_options")
    options = options if isinstance(options, dict) else {}
    audio = body.get("audio")
    audio = audio if isinstance(audio, dict) else {}
    response_format = body.get("response_format")
    rf_type = rf_name = None
    if isinstance(response_format, dict):
        rf_type = response_format.get("type")
        schema = response_format.get("json_schema")
        if isinstance(schema, dict) and isinstance(schema.get("name"), str):
            rf_name = schema["name"]
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(s for s in stop or () if isinstance(s, str))
    modalities = body.get("modalities")
    return ChatRequest(
        body=body,
        model=model,
        messages=parsed,
        stream=stream,
        include_usage=stream and options.get("include_usage") is True,
        include_obfuscation=options.get("include_obfuscation") is not False,
        n=body.get("n") or 1,
        logprobs=body.get("logprobs") is True,
        top_logprobs=body.get("top_logprobs") or 0,
        modalities=tuple(modalities) if isinstance(modalities, list) else ("text",),
        audio_format=audio.get("format"),
        audio_voice=audio.get("voice") if isinstance(audio.get("voice"), str) else None,
        tools=_tool_names(body),
        uses_functions=isinstance(body.get("functions"), list) and not body.get("tools"),
        response_format=rf_type if isinstance(rf_type, str) else None,
        response_format_name=rf_name,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        stop=stops,
        service_tier=body.get("service_tier")
        if isinstance(body.get("service_tier"), str)
        else None,
        raw_headers=raw_headers,
    )
