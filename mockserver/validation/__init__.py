"""Untrusted request JSON -> `ChatRequest`, or an `ApiError` naming the exact `param`.

Everything OpenAI's `CreateChatCompletionRequest` accepts is accepted; everything the live API
refuses for every model is refused, with its wording, `param` path and `code` (wire-format.md
§2). The work is split by concept:

- `errors`: the error builders and value checks,
- `messages`: messages, content parts, harmony messages, tool-call pairing,
- `tools`: tools, `tool_choice`, legacy functions, `response_format`, JSON Schemas,
- `params`: every other top-level parameter,
- `reading`: the body's bytes into JSON (`decode_body`, `decode_exact`),
- `strict`: what only strict mode refuses (unknown parameters, model-specific rules).

This module runs those checks on the decoded body, applies the cross-field rules and builds the
`ChatRequest`. Unknown top-level parameters (vLLM's `top_k`, `chat_template_kwargs`, ...) and
unknown keys in nested objects are tolerated and listed in `ChatRequest.unknown_fields`.
"""

from __future__ import annotations

from typing import NoReturn

from mockserver.request import ChatRequest, build_request
from mockserver.validation.errors import (
    empty_string,
    missing,
    rule,
    stream_options_of,
    wrong_type,
)
from mockserver.validation.messages import parse_messages
from mockserver.validation.params import CHECKS
from mockserver.validation.reading import decode_body, decode_exact
from mockserver.validation.tools import (
    Tools,
    parse_function_call,
    parse_response_format,
    parse_tool_choice,
    parse_tools,
)
from mockserver.wire import JSON

__all__ = ["KNOWN_FIELDS", "OWN_FIELDS", "decode_body", "decode_exact", "parse_chat_request"]

OWN_FIELDS = frozenset(
    {"model", "messages", "tools", "functions", "tool_choice", "function_call", "response_format"}
)
"""Top-level parameters checked here rather than through `params.CHECKS`."""
KNOWN_FIELDS = OWN_FIELDS | frozenset(CHECKS)
"""Every parameter of OpenAI's `CreateChatCompletionRequest` (37 of them)."""

_NO_TOOLS = Tools()
_REQUIRED = frozenset({"model", "messages"})
_AS_IS = frozenset(
    {
        "n",
        "logprobs",
        "stream",
        "service_tier",
        "reasoning_effort",
        "verbosity",
        "metadata",
        "parallel_tool_calls",
    }
)
"""Parameters whose checked value is the `ChatRequest` field of the same name."""


def _derived(body: dict[str, JSON], state: dict[str, object]) -> None:
    """The fields that several parameters decide, and the rules tying parameters together
    (wire-format.md §2.6 rules 1, 2 and 7)."""
    options = stream_options_of(body)
    if isinstance(options, dict):
        state["include_usage"] = options.get("include_usage") is True
        state["include_obfuscation"] = options.get("include_obfuscation") is not False
    top_logprobs = body.get("top_logprobs")
    if top_logprobs is not None:
        if body.get("logprobs") is not True:
            raise rule(
                "Invalid value for 'top_logprobs': 'logprobs' must be set to true when "
                "'top_logprobs' is used.",
                "top_logprobs",
            )
        state["top_logprobs"] = int(top_logprobs)
    audio = body.get("audio")
    modalities = body.get("modalities")
    if modalities is not None:
        if "audio" in modalities and audio is None:
            raise rule(
                "Missing required parameter: 'audio'. It is required when 'modalities' "
                "includes 'audio'.",
                "audio",
                "missing_required_parameter",
            )
        state["modalities"] = tuple(modalities)
    if audio is not None:
        voice = audio["voice"]
        state["audio_format"] = audio["format"]
        state["audio_voice"] = voice if type(voice) is str else None
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        state["max_tokens"] = int(max_tokens)
    stop = body.get("stop")
    if stop is not None:
        state["stop"] = (stop,) if type(stop) is str else tuple(stop)


def _tools_and_formats(
    body: dict[str, JSON], state: dict[str, object], nested: list[str], keyed: bool
) -> None:
    """`tools`, `functions`, `tool_choice`, `function_call` and `response_format`."""
    tools = _NO_TOOLS
    if body.get("tools") is not None or body.get("functions") is not None:
        tools = parse_tools(body, nested, keyed=keyed)
        state["tools"] = tools.names
        state["tools_key"] = tools.key
        state["uses_functions"] = bool(tools.legacy) and not (tools.functions or tools.custom)
    mode, forced = parse_tool_choice(body.get("tool_choice"), tools)
    if mode is None:
        mode, forced = parse_function_call(body.get("function_call"))
    state["tool_choice"] = mode
    state["forced_tool"] = forced
    state["response_format"], state["response_format_name"] = parse_response_format(
        body.get("response_format"), nested
    )


def _bad_model(model: JSON) -> NoReturn:
    if model is None:
        missing("model")
    if type(model) is not str:
        wrong_type("model", "a string", model)
    empty_string("model")


def _read_messages(
    messages: JSON, state: dict[str, object], nested: list[str], *, keyed: bool, paired: bool
) -> None:
    """`messages`, validated into `state` (with their `known` keys when `keyed`)."""
    if messages is None:
        missing("messages")
    keys: list[bytes | None] | None = [] if keyed else None
    state["messages"] = parse_messages(messages, nested, keys, paired=paired)
    if keys:
        state["message_keys"] = tuple(keys)


def parse_chat_request(
    body: dict[str, JSON],
    raw_headers: tuple[tuple[bytes, bytes], ...] = (),
    *,
    paired: bool = True,
    keyed: bool = False,
) -> ChatRequest:
    """Validate a decoded request body and build the `ChatRequest` matching works from
    (`paired`: whether tool calls must be answered by `tool` messages, as OpenAI requires;
    `keyed`: whether the body's messages and tools may be looked up in, and kept in,
    `mockserver.known`, which only a body `decode_exact` calls exact may be).

    The cost follows what the request carries: each parameter present is checked once, and
    parameters that are absent cost nothing.
    """
    model = body.get("model")
    if type(model) is not str or not model:
        _bad_model(model)
    nested: list[str] = []
    state: dict[str, object] = {}
    state["body"] = body
    state["model"] = model
    _read_messages(body.get("messages"), state, nested, keyed=keyed, paired=paired)
    state["raw_headers"] = raw_headers
    unknown: list[str] = []
    own = derived = False
    for key, value in body.items():
        check = CHECKS.get(key)
        if check is None:
            if key not in OWN_FIELDS:
                unknown.append(key)
            elif key not in _REQUIRED:
                own = True
        elif value is not None:
            result = check(value, key, nested)
            if key in _AS_IS:
                state[key] = result
            else:
                derived = True
    if own:
        _tools_and_formats(body, state, nested, keyed)
    if derived:
        _derived(body, state)
    if unknown or nested:
        state["unknown_fields"] = (*unknown, *nested)
    return build_request(state)
