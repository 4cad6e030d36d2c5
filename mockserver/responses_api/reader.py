"""A `POST /v1/responses` body -> the typed view matching reads, or OpenAI's 400 for it.

The view is the chat completions one (`ChatRequest`, `api="responses"`), so a scenario reads
the same in both APIs: `instructions` is a system message, `input` a user message or a list of
items (`message` with `input_text` / `input_image` / `input_file` / `input_audio` parts, an
earlier reply's `output_text` / `refusal`, `function_call` and `custom_tool_call` as assistant
tool calls, their `*_output` items as `tool` messages; `reasoning` and `item_reference` items
carry no message), function and custom `tools` are tool names, `text.format` is the response
format and `max_output_tokens` the token limit.

Checks follow the live API: the error envelope, wording and `param` paths (`input[2].content[0]
.image_url`) the chat validator uses. Unknown top-level parameters and unknown keys of known
objects are tolerated and listed in `unknown_fields` (strict mode refuses them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from mockserver.errors import invalid
from mockserver.request import ChatRequest, RequestMessage, build_message, build_request
from mockserver.validation.errors import (
    MAX_STRING,
    array,
    boolean,
    choice,
    empty_string,
    int_in,
    missing,
    name,
    note_unknown,
    obj,
    required,
    rule,
    show,
    stream_options_of,
    string,
    text_of_size,
    too_long_string,
    wrong_type,
)
from mockserver.validation.params import CHECKS, REASONING_EFFORTS, VERBOSITIES
from mockserver.validation.schema import check_schema
from mockserver.wire import JSON

ROLES = ("user", "assistant", "system", "developer")
ITEM_TYPES = (
    "message",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "reasoning",
    "item_reference",
)
FORMATS = ("text", "json_object", "json_schema")
TRUNCATIONS = ("auto", "disabled")
SUMMARIES = ("auto", "concise", "detailed")
TOOL_CHOICES = ("none", "auto", "required")
TOOL_TYPES = (
    "function",
    "file_search",
    "computer",
    "computer_use_preview",
    "web_search",
    "web_search_2025_08_26",
    "mcp",
    "code_interpreter",
    "programmatic_tool_calling",
    "image_generation",
    "local_shell",
    "shell",
    "custom",
    "namespace",
    "tool_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "apply_patch",
)
"""The tool types of OpenAI's `Tool` (built-in ones are taken, and answered as no tool)."""
_TOOL_TYPES = frozenset(TOOL_TYPES)
LOGPROBS = "message.output_text.logprobs"
"""The `include` entry that asks for the logprobs of output text."""
INCLUDABLE = (
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    LOGPROBS,
)
"""OpenAI's `IncludeEnum`: what `include` may ask for."""
MIN_OUTPUT_TOKENS = 16
"""The smallest `max_output_tokens` the live API takes."""

_SHARED = (
    "metadata",
    "parallel_tool_calls",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "service_tier",
    "store",
    "stream",
    "temperature",
    "top_logprobs",
    "top_p",
    "user",
)
"""Parameters checked as chat completions checks them (`validation.params.CHECKS`)."""
KNOWN_FIELDS = frozenset(
    {
        *_SHARED,
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "max_output_tokens",
        "stream_options",
        "previous_response_id",
        "reasoning",
        "truncation",
        "include",
        "background",
        "max_tool_calls",
        "conversation",
        "prompt",
        "context_management",
        "moderation",
        "prompt_cache_options",
    }
)
"""Every parameter of OpenAI's `CreateResponse`."""

_INPUT_PARTS = ("input_text", "input_image", "input_file", "input_audio")
_OUTPUT_PARTS = ("output_text", "refusal")
_PART_KEYS: dict[str, frozenset[str]] = {
    "input_text": frozenset({"type", "text"}),
    "input_image": frozenset({"type", "image_url", "file_id", "detail"}),
    "input_file": frozenset({"type", "file_id", "file_data", "file_url", "filename"}),
    "input_audio": frozenset({"type", "input_audio"}),
    "output_text": frozenset({"type", "text", "annotations", "logprobs"}),
    "refusal": frozenset({"type", "refusal"}),
}
_KIND = {
    "input_text": "text",
    "output_text": "text",
    "input_image": "image",
    "input_file": "file",
    "input_audio": "audio",
    "refusal": "refusal",
}
_ITEM_KEYS: dict[str, frozenset[str]] = {
    "message": frozenset({"type", "role", "content", "id", "status", "phase"}),
    "function_call": frozenset({"type", "id", "call_id", "name", "arguments", "status"}),
    "function_call_output": frozenset({"type", "id", "call_id", "output", "status"}),
    "custom_tool_call": frozenset({"type", "id", "call_id", "name", "input"}),
    "custom_tool_call_output": frozenset({"type", "id", "call_id", "output"}),
    "reasoning": frozenset({"type", "id", "summary", "content", "encrypted_content", "status"}),
    "item_reference": frozenset({"type", "id"}),
}
_TEXT_ONLY = frozenset({"text"})
_DETAILS = ("low", "high", "auto", "original")


def _fail_type(param: str, value: JSON) -> NoReturn:
    wrong_type(param, "one of a string or array of objects", value)


class _Reader:
    """Reads input items in order, pairing tool outputs with the calls before them."""

    def __init__(self, unknown: list[str], paired: bool = True) -> None:
        self.unknown = unknown
        self.paired = paired
        """Whether a tool output must follow its call (not when the earlier turns are unknown)."""
        self.messages: list[RequestMessage] = []
        self.calls: set[str] = set()

    # -- messages --------------------------------------------------------------------------

    def message(self, item: dict[str, JSON], param: str) -> None:
        role = choice(required(item, "role", param), f"{param}.role", ROLES, ROLES)
        content = required(item, "content", param)
        where = f"{param}.content"
        if type(content) is str:
            if len(content) > MAX_STRING:
                too_long_string(where, MAX_STRING, len(content))
            self.messages.append(
                build_message({"role": role, "text": content, "parts": _TEXT_ONLY})
            )
            return
        if type(content) is not list:
            _fail_type(where, content)
        allowed = _OUTPUT_PARTS if role == "assistant" else _INPUT_PARTS
        texts: list[str] = []
        kinds: set[str] = set()
        counts = {"image": 0, "high": 0, "audio": 0, "file": 0}
        for i, raw in enumerate(content):
            at = f"{where}[{i}]"
            part = obj(raw, at)
            kind = choice(required(part, "type", at), f"{at}.type", allowed, allowed)
            kinds.add(_KIND[kind])
            if kind in ("input_text", "output_text"):
                texts.append(text_of_size(required(part, "text", at), f"{at}.text"))
            elif kind == "refusal":
                texts.append(string(required(part, "refusal", at), f"{at}.refusal"))
            elif kind == "input_image":
                self._image(part, at, counts)
            elif kind == "input_file":
                self._file(part, at)
                counts["file"] += 1
            else:
                audio = obj(required(part, "input_audio", at), f"{at}.input_audio")
                string(required(audio, "data", f"{at}.input_audio"), f"{at}.input_audio.data")
                fmt = required(audio, "format", f"{at}.input_audio")
                choice(fmt, f"{at}.input_audio.format", ("mp3", "wav"), ("mp3", "wav"))
                counts["audio"] += 1
            note_unknown(part, _PART_KEYS[kind], at, self.unknown)
        self.messages.append(
            build_message(
                {
                    "role": role,
                    "text": texts[0] if len(texts) == 1 else "\n".join(texts),
                    "parts": frozenset(kinds),
                    "images": counts["image"],
                    "image_detail_high": counts["high"],
                    "audio_parts": counts["audio"],
                    "files": counts["file"],
                }
            )
        )

    @staticmethod
    def _image(part: dict[str, JSON], at: str, counts: dict[str, int]) -> None:
        url, file_id = part.get("image_url"), part.get("file_id")
        if url is None and file_id is None:
            raise invalid(
                f"Invalid '{at}': one of 'image_url' or 'file_id' must be provided.",
                param=f"{at}.image_url",
                code="missing_required_parameter",
            )
        if url is not None:
            text = string(url, f"{at}.image_url")
            if not text:
                empty_string(f"{at}.image_url")
        if file_id is not None:
            string(file_id, f"{at}.file_id")
        detail = part.get("detail")
        if detail is not None:
            choice(detail, f"{at}.detail", _DETAILS, _DETAILS)
        counts["image"] += 1
        counts["high"] += detail == "high"

    @staticmethod
    def _file(part: dict[str, JSON], at: str) -> None:
        given = [k for k in ("file_id", "file_data", "file_url") if part.get(k) is not None]
        if not given:
            raise invalid(
                f"Invalid '{at}': one of 'file_id', 'file_data' or 'file_url' must be provided.",
                param=f"{at}.file_id",
                code="missing_required_parameter",
            )
        for key in (*given, "filename"):
            if part.get(key) is not None:
                string(part[key], f"{at}.{key}")

    # -- tool calls and outputs --------------------------------------------------------------

    def call(self, item: dict[str, JSON], param: str, custom: bool) -> None:
        call_id = string(required(item, "call_id", param), f"{param}.call_id")
        if not call_id:
            empty_string(f"{param}.call_id")
        tool = string(required(item, "name", param), f"{param}.name")
        payload = "input" if custom else "arguments"
        text = string(required(item, payload, param), f"{param}.{payload}")
        self.calls.add(call_id)
        self.messages.append(
            build_message(
                {
                    "role": "assistant",
                    "text": text,
                    "tool_call_ids": (call_id,),
                    "tool_names": (tool,),
                }
            )
        )

    def output(self, item: dict[str, JSON], param: str) -> None:
        call_id = string(required(item, "call_id", param), f"{param}.call_id")
        if self.paired and call_id not in self.calls:
            raise rule(
                f"No tool call found for function call output with call_id {show(call_id)}.",
                "input",
            )
        value = item.get("output")
        if value is None:
            missing(f"{param}.output")
        where = f"{param}.output"
        if type(value) is str:
            text = value
            kinds = _TEXT_ONLY
        else:
            texts: list[str] = []
            found: set[str] = set()
            for i, raw in enumerate(array(value, where)):
                at = f"{where}[{i}]"
                part = obj(raw, at)
                kind = choice(required(part, "type", at), f"{at}.type", _INPUT_PARTS, _INPUT_PARTS)
                found.add(_KIND[kind])
                if kind == "input_text":
                    texts.append(string(required(part, "text", at), f"{at}.text"))
            text, kinds = "\n".join(texts), frozenset(found)
        self.messages.append(
            build_message({"role": "tool", "text": text, "parts": kinds, "tool_call_id": call_id})
        )

    # -- items -------------------------------------------------------------------------------

    def items(self, value: list[JSON], param: str) -> None:
        for i, raw in enumerate(value):
            at = f"{param}[{i}]"
            item = obj(raw, at)
            kind = item.get("type")
            if kind is None and "role" in item:
                kind = "message"
            if kind is None:
                missing(f"{at}.type")
            kind = choice(kind, f"{at}.type", ITEM_TYPES, ITEM_TYPES)
            if kind == "message":
                self.message(item, at)
            elif kind in ("function_call", "custom_tool_call"):
                self.call(item, at, custom=kind == "custom_tool_call")
            elif kind in ("function_call_output", "custom_tool_call_output"):
                self.output(item, at)
            elif kind == "item_reference":
                string(required(item, "id", at), f"{at}.id")
            else:
                array(item.get("summary", []), f"{at}.summary")
            note_unknown(item, _ITEM_KEYS[kind], at, self.unknown)


# -- tools, tool_choice, text ------------------------------------------------------------------

_FUNCTION_KEYS = frozenset({"type", "name", "description", "parameters", "strict"})
_CUSTOM_KEYS = frozenset({"type", "name", "description", "format"})


def _tools(value: JSON, unknown: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(function names, custom tool names); built-in tools (web search, ...) are tolerated."""
    functions: list[str] = []
    custom: list[str] = []
    for i, raw in enumerate(array(value, "tools")):
        at = f"tools[{i}]"
        tool = obj(raw, at)
        kind = choice(required(tool, "type", at), f"{at}.type", _TOOL_TYPES, TOOL_TYPES)
        if kind == "function":
            fn = name(required(tool, "name", at), f"{at}.name")
            strict = tool.get("strict")
            strict_on = strict is not None and boolean(strict, f"{at}.strict")
            parameters = tool.get("parameters")
            if parameters is not None:
                root = obj(parameters, f"{at}.parameters")
                check_schema(
                    root,
                    strict_on,
                    ("function", fn),
                    f"{at}.parameters",
                    "invalid_function_parameters",
                )
            if tool.get("description") is not None:
                string(tool["description"], f"{at}.description")
            note_unknown(tool, _FUNCTION_KEYS, at, unknown)
            functions.append(fn)
        elif kind == "custom":
            custom.append(name(required(tool, "name", at), f"{at}.name"))
            note_unknown(tool, _CUSTOM_KEYS, at, unknown)
    return tuple(functions), tuple(custom)


CHOICE_TYPES = (
    "function",
    "custom",
    "allowed_tools",
    "mcp",
    "file_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "computer",
    "computer_use",
    "computer_use_preview",
    "image_generation",
    "code_interpreter",
    "programmatic_tool_calling",
    "apply_patch",
    "shell",
)
"""The `type`s of OpenAI's `ToolChoiceParam` objects."""
_CHOICE_TYPES = frozenset(CHOICE_TYPES)


def _tool_choice(value: JSON, offered: Sequence[str]) -> tuple[str, str | None]:
    """`tool_choice` -> (mode, forced tool)."""
    if type(value) is str:
        return choice(value, "tool_choice", TOOL_CHOICES, TOOL_CHOICES), None
    spec = obj(value, "tool_choice")
    kind = choice(
        required(spec, "type", "tool_choice"), "tool_choice.type", _CHOICE_TYPES, CHOICE_TYPES
    )
    if kind in ("function", "custom"):
        tool = string(required(spec, "name", "tool_choice"), "tool_choice.name")
        if tool not in offered:
            raise rule(f"Tool choice '{show(tool)}' not found in 'tools' parameter.", "tool_choice")
        return "required", tool
    if kind == "allowed_tools":
        mode = required(spec, "mode", "tool_choice")
        array(required(spec, "tools", "tool_choice"), "tool_choice.tools")
        return choice(mode, "tool_choice.mode", ("auto", "required"), ("auto", "required")), None
    if kind == "mcp":
        string(required(spec, "server_label", "tool_choice"), "tool_choice.server_label")
    return "required", None


def _text(value: JSON, unknown: list[str]) -> tuple[str | None, str | None, str | None]:
    """`text` -> (format type, json_schema name, verbosity)."""
    text = obj(value, "text")
    verbosity = text.get("verbosity")
    if verbosity is not None:
        verbosity = choice(verbosity, "text.verbosity", VERBOSITIES, VERBOSITIES)
    note_unknown(text, frozenset({"format", "verbosity"}), "text", unknown)
    fmt = text.get("format")
    if fmt is None:
        return None, None, verbosity
    fmt = obj(fmt, "text.format")
    kind = choice(required(fmt, "type", "text.format"), "text.format.type", FORMATS, FORMATS)
    if kind != "json_schema":
        note_unknown(fmt, frozenset({"type"}), "text.format", unknown)
        return kind, None, verbosity
    schema_name = name(required(fmt, "name", "text.format"), "text.format.name")
    strict = fmt.get("strict")
    strict_on = strict is not None and boolean(strict, "text.format.strict")
    schema = obj(required(fmt, "schema", "text.format"), "text.format.schema")
    check_schema(
        schema, strict_on, ("text.format", schema_name), "text.format.schema", "invalid_json_schema"
    )
    note_unknown(
        fmt, frozenset({"type", "name", "schema", "strict", "description"}), "text.format", unknown
    )
    return kind, schema_name, verbosity


def _reasoning(value: JSON, unknown: list[str]) -> str | None:
    spec = obj(value, "reasoning")
    effort = spec.get("effort")
    if effort is not None:
        effort = choice(effort, "reasoning.effort", REASONING_EFFORTS, REASONING_EFFORTS)
    for key in ("summary", "generate_summary"):
        if spec.get(key) is not None:
            choice(spec[key], f"reasoning.{key}", SUMMARIES, SUMMARIES)
    note_unknown(spec, frozenset({"effort", "summary", "generate_summary"}), "reasoning", unknown)
    return effort


# -- the request -------------------------------------------------------------------------------


def check_input(body: dict[str, JSON]) -> None:
    """The checks that come before `previous_response_id` is looked up (model, input)."""
    model = body.get("model")
    if model is None:
        missing("model")
    if type(model) is not str:
        wrong_type("model", "a string", model)
    if not model:
        empty_string("model")
    value = body.get("input")
    if value is not None and type(value) is not str and type(value) is not list:
        _fail_type("input", value)
    if body.get("conversation") is not None and body.get("previous_response_id") is not None:
        raise rule(
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            None,
            "mutually_exclusive_parameters",
        )


def parse_responses_request(
    body: dict[str, JSON],
    raw_headers: tuple[tuple[bytes, bytes], ...] = (),
    history: Sequence[JSON] | None = None,
) -> ChatRequest:
    """Validate a Responses body; `history` is the items a `previous_response_id` brings in
    (trusted: mockserver wrote them), read before the body's own `input`. Without `history`
    (the journal reads a request again later) the earlier turns are not known, and a tool
    output continuing a previous response is taken without its call."""
    check_input(body)
    unknown: list[str] = []
    continued = history is None and body.get("previous_response_id") is not None
    reader = _Reader(unknown, paired=not continued)
    instructions = body.get("instructions")
    if instructions is not None:
        reader.messages.append(
            build_message(
                {
                    "role": "system",
                    "text": text_of_size(instructions, "instructions"),
                    "parts": _TEXT_ONLY,
                }
            )
        )
    if history:
        reader.items(list(history), "previous_response_id")
    value = body.get("input")
    if type(value) is str:
        reader.messages.append(build_message({"role": "user", "text": value, "parts": _TEXT_ONLY}))
    elif value is not None:
        reader.items(value, "input")
    if not any(m.role != "system" for m in reader.messages) and body.get("prompt") is None:
        missing("input")
    state: dict[str, object] = {
        "api": "responses",
        "body": body,
        "model": body["model"],
        "messages": tuple(reader.messages),
        "raw_headers": raw_headers,
    }
    for key, value in body.items():
        if value is None:
            continue
        check = CHECKS.get(key) if key in _SHARED else None
        if check is not None:
            result = check(value, key, unknown)
            if key in ("stream", "service_tier", "metadata", "parallel_tool_calls"):
                state[key] = result
        elif key not in KNOWN_FIELDS:
            unknown.append(key)
    _rest(body, state, unknown)
    if unknown:
        state["unknown_fields"] = tuple(unknown)
    return build_request(state)


def _rest(body: dict[str, JSON], state: dict[str, object], unknown: list[str]) -> None:
    """Tools, formats, limits and the other parameters with a shape of their own."""
    functions: tuple[str, ...] = ()
    custom: tuple[str, ...] = ()
    if body.get("tools") is not None:
        functions, custom = _tools(body["tools"], unknown)
        state["tools"] = functions + custom
    if body.get("tool_choice") is not None:
        state["tool_choice"], state["forced_tool"] = _tool_choice(
            body["tool_choice"], functions + custom
        )
    if body.get("text") is not None:
        fmt, schema_name, verbosity = _text(body["text"], unknown)
        state["response_format"], state["response_format_name"] = fmt, schema_name
        if verbosity is not None:
            state["verbosity"] = verbosity
    if body.get("reasoning") is not None:
        effort = _reasoning(body["reasoning"], unknown)
        if effort is not None:
            state["reasoning_effort"] = effort
    limit = body.get("max_output_tokens")
    if limit is not None:
        state["max_tokens"] = int_in(limit, "max_output_tokens", MIN_OUTPUT_TOKENS, None)
    _others(body, state, unknown)


def _others(body: dict[str, JSON], state: dict[str, object], unknown: list[str]) -> None:
    """The parameters that change nothing mockserver answers, checked for their shape."""
    options = stream_options_of(body)
    if options is not None:
        spec = obj(options, "stream_options")
        if spec.get("include_obfuscation") is not None:
            state["include_obfuscation"] = boolean(
                spec["include_obfuscation"], "stream_options.include_obfuscation"
            )
        note_unknown(spec, frozenset({"include_obfuscation"}), "stream_options", unknown)
    previous = body.get("previous_response_id")
    if previous is not None:
        string(previous, "previous_response_id")
    if body.get("truncation") is not None:
        choice(body["truncation"], "truncation", TRUNCATIONS, TRUNCATIONS)
    if body.get("include") is not None:
        for i, entry in enumerate(array(body["include"], "include")):
            if choice(entry, f"include[{i}]", INCLUDABLE, INCLUDABLE) == LOGPROBS:
                state["logprobs"] = True
    background = body.get("background")
    if background is not None and boolean(background, "background") and body.get("store") is False:
        raise invalid(
            "Background responses must be stored: 'background: true' cannot be used "
            "with 'store: false'.",
            param="background",
        )
    if body.get("max_tool_calls") is not None:
        int_in(body["max_tool_calls"], "max_tool_calls", 1, None)
    if body.get("top_logprobs") is not None:
        state["top_logprobs"] = body["top_logprobs"]
