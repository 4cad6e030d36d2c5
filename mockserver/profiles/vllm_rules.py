"""What vLLM's server accepts and refuses that OpenAI's API does not.

Two steps run before OpenAI's validator (`mockserver.validation`) reads a body:

- `accept`: the shapes vLLM's request models take and OpenAI refuses are rewritten into the
  form OpenAI's validator reads (a copy; the journal keeps the bytes as sent): tools without
  `type` (vLLM's `ChatCompletionToolsParam.type` defaults to `function`), `tools: []`,
  `content: []`, `tool_calls: []`, assistant history without content, and the `reasoning` /
  `reasoning_content` of assistant history (vLLM reads the old name as the new one:
  `ChatCompletionRequest._normalize_messages_before`); history vLLM's
  `CustomChatCompletionMessageParam` (vllm/entrypoints/chat_utils.py: only `role` required, any
  string) takes: custom roles, no `content`, no `tool_call_id`, any `name` (`restore` puts back
  what the rewrite hid from the validator); vLLM's content parts in any role (`MM_PARSER_MAP`),
  refusing the rest as vLLM does; strict schemas without Structured Outputs' rules; OpenAI
  fields vLLM does not declare, whatever they hold. The profile also turns off OpenAI's pairing
  of tool calls with `tool` messages, which vLLM does not check.
- `check`: vLLM's own fields, with the types of vllm/entrypoints/openai/chat_completion/
  protocol.py `ChatCompletionRequest` and the ranges of vllm/sampling_params.py
  `SamplingParams._verify_args` and `StructuredOutputsParams.__post_init__`. The removed
  `guided_*` fields are accepted, as vLLM accepts them, and noted (vLLM ignores them silently,
  so structured output quietly stops being enforced).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NoReturn

from mockserver.errors import ApiError
from mockserver.request import RequestMessage
from mockserver.validation.messages import MESSAGE_NAME_PATTERN, ROLES
from mockserver.wire import JSON

INT64 = 2**63
OPENAI_ROLES = frozenset(ROLES)
"""The roles OpenAI knows; vLLM's `CustomChatCompletionMessageParam` takes any string."""
NAME = re.compile(MESSAGE_NAME_PATTERN)
"""OpenAI's pattern for a message `name` (vLLM takes any string)."""
VLLM_PARTS = frozenset(
    {
        "text",
        "refusal",
        "thinking",
        "input_text",
        "output_text",
        "input_image",
        "image_url",
        "image_embeds",
        "audio_embeds",
        "prompt_embeds",
        "image_pil",
        "audio_url",
        "input_audio",
        "video_url",
        "tool_reference",
    }
)
"""Content part types vLLM reads (vllm/entrypoints/chat_utils.py `MM_PARSER_MAP`); it refuses
any other ("Unsupported chat content part type"), `file` and `document_url` among them."""
_TEXT_KEYS = {
    "text": "text",
    "input_text": "text",
    "output_text": "text",
    "thinking": "thinking",
    "refusal": "refusal",
    "tool_reference": "name",
}
"""vLLM's text-like parts and the key their text is under."""
_DIRECT_KEYS: tuple[str, ...] = ("image_url", "image_pil", "image_embeds", "audio_embeds")
_DIRECT_KEYS += ("prompt_embeds", "audio_url", "input_audio", "video_url", "tool_reference")
"""Keys by which vLLM reads a part that has no `type`."""
OPENAI_PARTS: dict[str, frozenset[str]] = {
    "system": frozenset({"text"}),
    "developer": frozenset({"text"}),
    "user": frozenset({"text", "image_url", "input_audio", "file"}),
    "assistant": frozenset({"text", "refusal"}),
    "tool": frozenset({"text", "image_url"}),
}
"""The part types OpenAI takes per role (vLLM takes its own in every role)."""
IGNORED_BY_VLLM = (
    "service_tier",
    "store",
    "metadata",
    "prediction",
    "web_search_options",
    "verbosity",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
)
"""OpenAI fields whose values OpenAI checks and vLLM's `ChatCompletionRequest` does not
declare: taken as extras whatever they hold (`OpenAIBaseModel` allows extra fields)."""
_IGNORED = frozenset(IGNORED_BY_VLLM)
STRUCTURED_KINDS = ("json", "regex", "choice", "grammar", "json_object", "structural_tag")
GUIDED = (
    "guided_json",
    "guided_regex",
    "guided_choice",
    "guided_grammar",
    "guided_decoding_backend",
    "guided_whitespace_pattern",
)
_GUIDED = frozenset(GUIDED)
BOOLEANS = (
    "use_beam_search",
    "ignore_eos",
    "skip_special_tokens",
    "spaces_between_special_tokens",
    "include_stop_str_in_output",
    "echo",
    "add_generation_prompt",
    "continue_final_message",
    "add_special_tokens",
    "return_token_ids",
    "return_tokens_as_token_ids",
    "include_reasoning",
)
OBJECTS = (
    "chat_template_kwargs",
    "mm_processor_kwargs",
    "media_io_kwargs",
    "kv_transfer_params",
    "vllm_xargs",
)
STRINGS = ("chat_template", "request_id", "session_id", "cache_salt")


def bad(message: str, param: str | None = None) -> NoReturn:
    """vLLM's 400 (`VLLMValidationError` or a pydantic error), in this mock's words."""
    raise ApiError(status=400, message=message, type="BadRequestError", param=param)


def _type(param: str, what: str) -> NoReturn:
    bad(f"1 validation error for ChatCompletionRequest\n{param}\n  Input should be {what}", param)


def _int(value: JSON, param: str) -> int:
    if type(value) is not int:
        _type(param, "a valid integer")
    return value


def _number(value: JSON, param: str) -> float:
    if type(value) not in (int, float):
        _type(param, "a valid number")
    return float(value)


def _int_list(value: JSON, param: str) -> list[int]:
    if type(value) is not list:
        _type(param, "a valid list")
    for i, item in enumerate(value):
        _int(item, f"{param}.{i}")
    return value


def _top_k(value: JSON, param: str) -> None:
    if _int(value, param) < -1:
        bad(f"top_k must be 0 (disable), or at least 1, got {value}.", param)


def _min_p(value: JSON, param: str) -> None:
    if not 0.0 <= _number(value, param) <= 1.0:
        bad(f"min_p must be in [0, 1], got {value}.", param)


def _repetition_penalty(value: JSON, param: str) -> None:
    number = _number(value, param)
    if not math.isfinite(number) or number <= 0.0:
        bad(f"repetition_penalty must be greater than zero, got {value}.", param)


def _min_tokens(value: JSON, param: str) -> None:
    if _int(value, param) < 0:
        bad(f"min_tokens must be greater than or equal to 0, got {value}.", param)


def _stop_token_ids(value: JSON, param: str) -> None:
    _int_list(value, param)


def _priority(value: JSON, param: str) -> None:
    if not -INT64 <= _int(value, param) < INT64:
        _type(param, f"between {-INT64} and {INT64 - 1}")


def _prompt_logprobs(value: JSON, param: str) -> None:
    if _int(value, param) < -1:
        bad("`prompt_logprobs` must be a positive value or -1.", param)


def _truncate(value: JSON, param: str) -> None:
    if _int(value, param) < -1:
        _type(param, "greater than or equal to -1")


def _thinking_budget(value: JSON, param: str) -> None:
    if type(value) is not int or value < -1:
        bad("`thinking_token_budget` must be a non-negative integer or -1 for unlimited.", param)


def _bad_words(value: JSON, param: str) -> None:
    if type(value) is not list or any(type(w) is not str for w in value):
        _type(param, "a valid list of strings")
    if any(not w for w in value):
        bad(f"bad_words cannot contain an empty string. Got bad_words={value}", param)


def _length_penalty(value: JSON, param: str) -> None:
    _number(value, param)


def _structured_outputs(value: JSON, param: str) -> None:
    """`StructuredOutputsParams`: exactly one kind of constraint, each of its type."""
    if type(value) is not dict:
        _type(param, "a valid dictionary or instance of StructuredOutputsParams")
    kinds: dict[str, Callable[[JSON], bool]] = {
        "json": lambda v: type(v) in (str, dict),
        "regex": lambda v: type(v) is str,
        "choice": lambda v: type(v) is list and all(type(c) is str for c in v),
        "grammar": lambda v: type(v) is str,
        "json_object": lambda v: type(v) is bool,
        "structural_tag": lambda v: type(v) is str,
    }
    for key, fits in kinds.items():
        if value.get(key) is not None and not fits(value[key]):
            _type(f"{param}.{key}", "of the type StructuredOutputsParams gives it")
    for key in ("disable_any_whitespace", "disable_additional_properties"):
        if key in value and type(value[key]) is not bool:
            _type(f"{param}.{key}", "a valid boolean")
    given = [k for k in STRUCTURED_KINDS if value.get(k) is not None]
    if len(given) > 1:
        bad(
            "You can only use one kind of structured outputs constraint but multiple are "
            f"specified: {', '.join(given)}",
            param,
        )
    if not given:
        bad(
            "You must use one kind of structured outputs constraint but none are specified "
            f"(one of {', '.join(STRUCTURED_KINDS)})",
            param,
        )


def _stream_options(value: JSON, param: str) -> None:
    if type(value) is dict and "continuous_usage_stats" in value:
        flag = value["continuous_usage_stats"]
        if flag is not None and type(flag) is not bool:
            _type(f"{param}.continuous_usage_stats", "a valid boolean")


def _boolean(value: JSON, param: str) -> None:
    if type(value) is not bool:
        _type(param, "a valid boolean")


def _object(value: JSON, param: str) -> None:
    if type(value) is not dict:
        _type(param, "a valid dictionary")


def _string(value: JSON, param: str) -> None:
    if type(value) is not str:
        _type(param, "a valid string")


OTHER_FIELDS = frozenset(
    {
        "documents",
        "request_id",
        "return_prompt_text",
        "return_token_offsets",
        "return_mm_kwargs",
        "logprob_token_ids",
        "watermarking",
        "truncation_side",
        "routed_experts_prompt_start",
        "repetition_detection",
        "stream_interval",
    }
)
"""vLLM request fields this mock takes as they come (not checked, not unknown)."""
CHECKS: dict[str, Callable[[JSON, str], None]] = {
    "top_k": _top_k,
    "min_p": _min_p,
    "repetition_penalty": _repetition_penalty,
    "min_tokens": _min_tokens,
    "stop_token_ids": _stop_token_ids,
    "allowed_token_ids": _stop_token_ids,
    "priority": _priority,
    "prompt_logprobs": _prompt_logprobs,
    "truncate_prompt_tokens": _truncate,
    "thinking_token_budget": _thinking_budget,
    "bad_words": _bad_words,
    "length_penalty": _length_penalty,
    "structured_outputs": _structured_outputs,
    "stream_options": _stream_options,
    **dict.fromkeys(BOOLEANS, _boolean),
    **dict.fromkeys(OBJECTS, _object),
    **dict.fromkeys(STRINGS, _string),
}
"""vLLM's own request fields and their checks (each gets a non-null value)."""
FIELDS = frozenset(CHECKS) | _GUIDED | OTHER_FIELDS
"""Every top-level field vLLM knows besides OpenAI's: not unknown under `vllm` (`--strict`)."""


def check(body: dict[str, JSON]) -> tuple[str, ...]:
    """vLLM's rules for its own fields; the notes to journal (the `guided_*` fields)."""
    notes: list[str] = []
    for key, value in body.items():
        if value is None:
            continue
        rule = CHECKS.get(key)
        if rule is not None:
            rule(value, key)
        elif key in _GUIDED:
            notes.append(
                f"`{key}` was removed from vLLM, which accepts and ignores it: the output is "
                "not constrained (use `structured_outputs`)"
            )
    _cross_field(body)
    return tuple(notes)


def _cross_field(body: dict[str, JSON]) -> None:
    top_p = body.get("top_p")
    if type(top_p) in (int, float) and top_p == 0:
        bad(f"top_p must be in (0, 1], got {top_p}.", "top_p")
    min_tokens, limit = body.get("min_tokens"), body.get("max_completion_tokens")
    if limit is None:
        limit = body.get("max_tokens")
    if type(min_tokens) is int and type(limit) is int and min_tokens > limit:
        bad(f"min_tokens must be less than or equal to max_tokens={limit}, got {min_tokens}.")
    prompt_logprobs = body.get("prompt_logprobs")
    if body.get("stream") is True and type(prompt_logprobs) is int and prompt_logprobs != 0:
        bad("`prompt_logprobs` are not available when `stream=True`.", "prompt_logprobs")
    if body.get("continue_final_message") is True and body.get("add_generation_prompt") is True:
        bad("Cannot set both `continue_final_message` and `add_generation_prompt` to True.")
    n, temperature = body.get("n"), body.get("temperature")
    if type(n) is int and n > 1 and isinstance(temperature, int | float) and temperature < 1e-5:
        bad(f"n must be 1 when using greedy sampling, got {n}.")


# -- acceptance -------------------------------------------------------------------------------


def _tools(tools: JSON) -> JSON:
    """Tools with vLLM's default `type`; a type other than `function` is refused, as vLLM's
    `ChatCompletionToolsParam` (type `Literal["function"]`) refuses it."""
    if type(tools) is not list:
        return tools
    fixed: list[JSON] = []
    for i, tool in enumerate(tools):
        if type(tool) is dict:
            kind = tool.get("type", "function")
            if kind != "function":
                bad(
                    f"1 validation error for ChatCompletionRequest\ntools.{i}.type\n  Input "
                    f"should be 'function' [type=literal_error, input_value={kind!r}]",
                    f"tools[{i}].type",
                )
            function = tool.get("function")
            given = tool
            if _strict(function):
                assert type(function) is dict
                loose = {k: v for k, v in function.items() if k != "strict"}
                given = {**tool, "function": loose}
            if "type" not in given:
                fixed.append({"type": "function", **given})
                continue
            fixed.append(given)
            continue
        fixed.append(tool)
    return fixed


def _bad_name(message: dict[str, JSON]) -> bool:
    """A `name` OpenAI refuses for its pattern and vLLM takes (any string)."""
    name = message.get("name")
    return type(name) is str and NAME.fullmatch(name) is None


def _parts_differ(role: JSON, parts: list[JSON]) -> bool:
    """Whether a content list holds a part OpenAI refuses for the role, or vLLM refuses."""
    allowed = OPENAI_PARTS.get(role, OPENAI_PARTS["user"]) if type(role) is str else frozenset()
    for part in parts:
        kind = part.get("type") if type(part) is dict else None
        if type(kind) is not str or kind not in allowed or kind not in VLLM_PARTS:
            return True
    return False


def _parts(role: JSON, parts: list[JSON], where: str) -> list[JSON]:
    """The parts OpenAI's validator reads for what vLLM reads: vLLM's text-like parts as text,
    its media parts that OpenAI refuses for the role left out; a part vLLM refuses is refused
    with vLLM's words, a malformed one left for the validator to word."""
    allowed = OPENAI_PARTS.get(role, OPENAI_PARTS["user"]) if type(role) is str else frozenset()
    out: list[JSON] = []
    for j, part in enumerate(parts):
        if type(part) is str:
            out.append({"type": "text", "text": part})  # vLLM takes bare strings as text
            continue
        kind = part.get("type") if type(part) is dict else None
        if type(part) is not dict or type(kind) is not str:
            keys = [k for k in _DIRECT_KEYS if k in part] if type(part) is dict else []
            if kind is None and keys:
                _media_url(part, keys[0], f"{where}[{j}]", bare=True)
            else:
                out.append(part)
            continue
        if kind not in VLLM_PARTS:
            bad(
                f"Unsupported chat content part type: {kind!r}. Supported types: "
                f"{', '.join(sorted(VLLM_PARTS))}.",
                f"{where}[{j}].type",
            )
        if kind in allowed:
            out.append(part)
        elif kind in _TEXT_KEYS:
            text = part.get(_TEXT_KEYS[kind])
            if type(text) is str:
                out.append({"type": "text", "text": text})
        elif kind in _URL_PARTS:
            _media_url(part, kind, f"{where}[{j}]", bare=False)
    return out


_URL_PARTS = frozenset({"image_url", "video_url", "audio_url"})


def _media_url(part: dict[str, JSON], key: str, where: str, *, bare: bool) -> None:
    """vLLM validates a media part's URL object (`{url: string}`; a bare string where the part
    has no `type`) before it fetches it."""
    if key not in _URL_PARTS:
        return
    value = part.get(key)
    if bare and type(value) is str:
        return
    if type(value) is not dict or type(value.get("url")) is not str:
        _type(f"{where}.{key}", "an object with a string `url`")


def _needs_rewrite(message: dict[str, JSON]) -> bool:
    role = message.get("role")
    content = message.get("content")
    if type(content) is list and _parts_differ(role, content):
        return True
    if role != "assistant":
        return (
            content == []
            or (type(role) is str and role not in OPENAI_ROLES)
            or (role == "tool" and message.get("tool_call_id") is None)
            or ("content" not in message and type(role) is str)
            or _bad_name(message)
        )
    return (
        content is None
        or content == []
        or message.get("tool_calls") == []
        or "reasoning" in message
        or "reasoning_content" in message
        or _bad_name(message)
    )


def _message(message: JSON, index: int) -> JSON:
    """One history message in the form OpenAI's validator reads, or itself when it is one
    (what the rewrite loses, `restore` puts back after validation)."""
    if type(message) is not dict or not _needs_rewrite(message):
        return message
    role = message.get("role")
    changed = dict(message)
    content = changed.get("content")
    if type(content) is list and content:
        changed["content"] = _parts(role, content, f"messages[{index}].content")
    for key in ("reasoning", "reasoning_content"):
        if role == "assistant" and key in changed:
            del changed[key]
    if changed.get("tool_calls") == [] and role == "assistant":
        del changed["tool_calls"]
    if changed.get("content") == []:
        changed["content"] = None if role == "assistant" and changed.get("tool_calls") else ""
    if role == "assistant" and changed.get("content") is None and not _acts(changed):
        changed["content"] = ""
    if role != "assistant" and "content" not in changed:
        changed["content"] = ""  # vLLM reads absent content as no parts: empty text
    if role == "tool" and changed.get("tool_call_id") is None:
        changed["tool_call_id"] = ""
    if type(role) is str and role not in OPENAI_ROLES:
        changed["role"] = "user"  # a custom role: validated as a user message, restored after
    if _bad_name(changed):
        del changed["name"]
    return changed


def restore(messages: tuple[RequestMessage, ...], raw: list[JSON]) -> tuple[RequestMessage, ...]:
    """The parsed messages with what `_message` rewrote for the validator put back: a custom
    role, a `tool_call_id` not given, a `name` outside OpenAI's pattern."""
    out = list(messages)
    for i, original in enumerate(raw):
        if type(original) is not dict or i >= len(out):
            continue
        role, changes = original.get("role"), dict[str, Any]()
        if type(role) is str and role not in OPENAI_ROLES:
            changes["role"] = role
        if role == "tool" and original.get("tool_call_id") is None:
            changes["tool_call_id"] = None
        if _bad_name(original):
            changes["name"] = original["name"]
        if changes:
            out[i] = replace(out[i], **changes)
    return tuple(out)


def _acts(message: dict[str, JSON]) -> bool:
    """Whether an assistant message carries something besides content."""
    return any(
        message.get(k) is not None for k in ("tool_calls", "function_call", "audio", "refusal")
    )


def accept(body: dict[str, JSON]) -> dict[str, JSON]:
    """The body with vLLM's accepted shapes rewritten for OpenAI's validator (the same dict
    when nothing needs it: the usual request costs a scan of its messages and tools)."""
    out = body
    tools = body.get("tools")
    if tools == []:
        out = {k: v for k, v in body.items() if k != "tools"}
    elif type(tools) is list and any(type(t) is dict and _tool_differs(t) for t in tools):
        out = {**body, "tools": _tools(tools)}
    if not _IGNORED.isdisjoint(body):
        out = {k: v for k, v in out.items() if k not in _IGNORED}
    response_format = body.get("response_format")
    if type(response_format) is dict and _strict(response_format.get("json_schema")):
        schema = response_format["json_schema"]
        assert type(schema) is dict
        loose = {k: v for k, v in schema.items() if k != "strict"}
        out = {**out, "response_format": {**response_format, "json_schema": loose}}
    messages = body.get("messages")
    if type(messages) is list and any(type(m) is dict and _needs_rewrite(m) for m in messages):
        out = {**out, "messages": [_message(m, i) for i, m in enumerate(messages)]}
    return out


def _strict(spec: JSON) -> bool:
    """A function or JSON schema marked `strict`: OpenAI then holds its schema to Structured
    Outputs' rules, vLLM to none (it compiles the schema when it constrains output)."""
    return type(spec) is dict and spec.get("strict") is not None


def _tool_differs(tool: dict[str, JSON]) -> bool:
    return tool.get("type", "") != "function" or _strict(tool.get("function"))
