"""Request builders and the tables of valid and invalid requests the validation tests share.

`VALID`: requests OpenAI's schema accepts, and so must the mock. `BEYOND_SCHEMA`: requests the
schema refuses but the live API (or the mock, deliberately) accepts. `INVALID`: requests the mock
refuses, with the exact `param`, `code`, a piece of the message, and whether OpenAI's schema
refuses them too (`live_only` marks rules only the live API enforces).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODEL = "gpt-4o-mini"
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA="
PDF = "data:application/pdf;base64,JVBERi0xLjQK"


def body(*messages: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": list(messages) or [user()], **params}


def user(content: Any = "hi", **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": content, **extra}


def system(content: Any = "Be brief.", role: str = "system", **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **extra}


def assistant(content: Any = "ok", **extra: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content, **extra}


def tool(call_id: str = "call_1", content: Any = "18C and sunny", **extra: Any) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content, **extra}


def call(call_id: str = "call_1", name: str = "get_weather", arguments: Any = '{"city":"Paris"}'):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def custom_call(call_id: str = "call_2", name: str = "run_sql", text: str = "SELECT 1"):
    return {"id": call_id, "type": "custom", "custom": {"name": name, "input": text}}


def text(value: Any = "hi", **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": value, **extra}


def image(url: Any = "https://example.com/cat.png", **extra: Any) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, **extra}}


def audio(data: Any = WAV, fmt: Any = "wav") -> dict[str, Any]:
    return {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}


def file(**fields: Any) -> dict[str, Any]:
    return {"type": "file", "file": fields or {"file_id": "file-abc123"}}


def refusal(value: Any = "I can't help with that.") -> dict[str, Any]:
    return {"type": "refusal", "refusal": value}


def function_tool(name: Any = "get_weather", **extra: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, **extra}}


def custom_tool(name: Any = "run_sql", **extra: Any) -> dict[str, Any]:
    return {"type": "custom", "custom": {"name": name, **extra}}


WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}


def tool_turn(*answers: dict[str, Any], calls: list[Any] | None = None) -> list[dict[str, Any]]:
    """A user question, an assistant tool call, and its answer(s)."""
    return [
        user("Weather in Paris?"),
        assistant(None, tool_calls=calls or [call()]),
        *(answers or [tool()]),
    ]


def json_schema(schema: Any = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "weather", **extra}
    if schema is not None:
        spec["schema"] = schema
    return {"type": "json_schema", "json_schema": spec}


HARMONY = {
    "author": {"role": "assistant", "name": "gpt-oss"},
    "channel": "analysis",
    "content": [{"type": "text", "text": "The user wants the weather."}],
    "content_type": "text",
    "recipient": "functions.get_weather",
}


# -- valid requests -----------------------------------------------------------------------------

VALID: dict[str, dict[str, Any]] = {
    "minimal": body(),
    "system-and-user": body(system(), user()),
    "developer": body(system(role="developer"), user()),
    "system-text-parts": body(system([text("Be brief."), text("Be kind.")]), user()),
    "developer-text-parts": body(system([text("Rules")], role="developer"), user()),
    "names": body(system(name="rules"), user(name="alice_01"), assistant(name="bot-1"), user()),
    "user-text-parts": body(user([text("a"), text("b")])),
    "user-image-url": body(user([text("What is this?"), image()])),
    "user-image-data-detail": body(user([image(PNG, detail="high"), image(detail="low")])),
    "user-image-detail-auto": body(user([image(detail="auto")])),
    "user-input-audio-wav": body(user([audio()])),
    "user-input-audio-mp3": body(user([text("Transcribe"), audio("SUQzBAAAAAAA", "mp3")])),
    "user-file-id": body(user([text("Summarise"), file()])),
    "user-file-data": body(user([file(file_data=PDF, filename="report.pdf")])),
    "user-every-part": body(user([text(), image(), audio(), file()])),
    "prompt-cache-breakpoint": body(
        user([text("long prefix", prompt_cache_breakpoint={"mode": "explicit"}), text("q")])
    ),
    "assistant-history": body(user(), assistant("Hello!"), user("again")),
    "assistant-text-parts": body(user(), assistant([text("Hel"), text("lo")]), user()),
    "assistant-refusal-part": body(user(), assistant([refusal()]), user()),
    "assistant-refusal-field": body(user(), assistant(None, refusal="I can't."), user()),
    "assistant-audio-id": body(user(), assistant(None, audio={"id": "audio_abc"}), user()),
    "assistant-content-omitted-with-tool-calls": body(
        user(), {"role": "assistant", "tool_calls": [call()]}, tool()
    ),
    "tool-history": body(*tool_turn()),
    "tool-history-text-parts": body(*tool_turn(tool(content=[text("18C")]))),
    "parallel-tool-calls-answered": body(
        *tool_turn(tool("call_1"), tool("call_2"), calls=[call("call_1"), call("call_2")])
    ),
    "tool-answers-in-any-order": body(
        *tool_turn(tool("call_2"), tool("call_1"), calls=[call("call_1"), call("call_2")])
    ),
    "custom-tool-call-history": body(
        *tool_turn(tool("call_2", "1 row"), calls=[custom_call()]),
        tools=[custom_tool()],
    ),
    "tool-history-then-answer": body(*tool_turn(), assistant("It is 18C."), user("Thanks")),
    "legacy-function-history": body(
        user(),
        assistant(None, function_call={"name": "get_weather", "arguments": "{}"}),
        {"role": "function", "name": "get_weather", "content": "18C"},
        functions=[{"name": "get_weather"}],
    ),
    "legacy-function-null-content": body(
        user(), {"role": "function", "name": "get_weather", "content": None}
    ),
    "audio-output": body(modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"}),
    "audio-custom-voice": body(
        modalities=["text", "audio"], audio={"voice": {"id": "voice_123"}, "format": "pcm16"}
    ),
    "audio-every-format": body(audio={"voice": "cedar", "format": "opus"}),
    "penalties-at-bounds": body(frequency_penalty=-2, presence_penalty=2.0),
    "logit-bias": body(logit_bias={"50256": -100, "1234": 100, "7": 0}),
    "logprobs": body(logprobs=True, top_logprobs=20),
    "logprobs-top-zero": body(logprobs=True, top_logprobs=0),
    "logprobs-false": body(logprobs=False),
    "max-tokens": body(max_tokens=1, max_completion_tokens=4096),
    "metadata-16-pairs": body(metadata={f"k{i}": "v" * 512 for i in range(16)}),
    "metadata-long-key": body(metadata={"k" * 64: "v"}),
    "modalities-text": body(modalities=["text"]),
    "moderation": body(
        moderation={"model": "omni-moderation-latest", "policy": {"input": {"mode": "block"}}}
    ),
    "moderation-output-only": body(
        moderation={"model": "m", "policy": {"input": None, "output": {"mode": "score"}}}
    ),
    "n-bounds-low": body(n=1),
    "n-bounds-high": body(n=128),
    "n-integral-float": body(n=2.0),
    "parallel-tool-calls": body(tools=[function_tool()], parallel_tool_calls=False),
    "prediction-string": body(prediction={"type": "content", "content": "old text"}),
    "prediction-parts": body(prediction={"type": "content", "content": [text("old")]}),
    "prompt-cache": body(
        prompt_cache_key="tenant-1",
        prompt_cache_options={"ttl": "30m", "mode": "explicit"},
        prompt_cache_retention="24h",
    ),
    "prompt-cache-in-memory": body(prompt_cache_retention="in_memory"),
    **{
        f"reasoning-effort-{e}": body(model="o3", reasoning_effort=e)
        for e in ("none", "minimal", "low", "medium", "high", "xhigh", "max")
    },
    "response-format-text": body(response_format={"type": "text"}),
    "response-format-json-object": body(
        user("Answer in JSON."), response_format={"type": "json_object"}
    ),
    "response-format-json-schema-strict": body(
        response_format=json_schema(WEATHER_PARAMS, strict=True, description="A forecast")
    ),
    "response-format-json-schema-loose": body(
        response_format=json_schema(
            {
                "type": "object",
                "properties": {
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "kind": {"enum": ["a", "b"]},
                    "either": {"anyOf": [{"type": "integer"}, {"$ref": "#/$defs/x"}]},
                },
                "$defs": {"x": {"type": "null"}},
            },
            strict=False,
        )
    ),
    "response-format-json-schema-no-schema": body(response_format=json_schema()),
    "response-format-json-schema-strict-null": body(response_format=json_schema({}, strict=None)),
    "safety-identifier-64": body(safety_identifier="s" * 64),
    "seed-bounds": body(seed=-(2**63)),
    "seed-max": body(seed=2**63 - 1),
    **{f"service-tier-{t}": body(service_tier=t) for t in ("auto", "default", "flex", "scale")},
    "service-tier-priority": body(service_tier="priority"),
    "service-tier-fast": body(service_tier="fast"),
    "stop-string": body(stop="\n"),
    "stop-empty-string": body(stop=""),
    "stop-four": body(stop=["a", "b", "c", "d"]),
    "stop-null": body(stop=None),
    "store": body(store=True, metadata={"run": "1"}),
    "stream": body(stream=True),
    "stream-options": body(
        stream=True, stream_options={"include_usage": True, "include_obfuscation": False}
    ),
    "stream-options-empty": body(stream=True, stream_options={}),
    "stream-false": body(stream=False),
    "temperature-bounds": body(temperature=0),
    "temperature-high": body(temperature=2.0),
    "top-p-bounds": body(top_p=0, temperature=1.5),
    "top-p-one": body(top_p=1),
    "tools-function": body(
        tools=[
            function_tool(description="Weather for a city", parameters=WEATHER_PARAMS, strict=True),
            function_tool("get_time"),
        ]
    ),
    "tools-function-strict-null": body(tools=[function_tool(strict=None)]),
    "tools-function-loose-schema": body(
        tools=[function_tool(parameters={"type": "object", "properties": {"q": {}}})]
    ),
    "tools-custom-text": body(tools=[custom_tool(description="SQL", format={"type": "text"})]),
    "tools-custom-grammar": body(
        tools=[
            custom_tool(
                format={
                    "type": "grammar",
                    "grammar": {"definition": "start: /.+/", "syntax": "lark"},
                }
            ),
            custom_tool(
                "digits",
                format={"type": "grammar", "grammar": {"definition": "\\d+", "syntax": "regex"}},
            ),
        ]
    ),
    **{
        f"tool-choice-{mode}": body(tools=[function_tool()], tool_choice=mode)
        for mode in ("none", "auto", "required")
    },
    "tool-choice-function": body(
        tools=[function_tool()],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    ),
    "tool-choice-custom": body(
        tools=[custom_tool()], tool_choice={"type": "custom", "custom": {"name": "run_sql"}}
    ),
    "tool-choice-allowed-tools": body(
        tools=[function_tool(), custom_tool()],
        tool_choice={
            "type": "allowed_tools",
            "allowed_tools": {
                "mode": "required",
                "tools": [
                    {"type": "function", "function": {"name": "get_weather"}},
                    {"type": "custom", "custom": {"name": "run_sql"}},
                ],
            },
        },
    ),
    "legacy-functions": body(
        functions=[{"name": "get_weather", "description": "d", "parameters": WEATHER_PARAMS}],
        function_call="auto",
    ),
    "legacy-function-call-none": body(functions=[{"name": "f"}], function_call="none"),
    "legacy-function-call-named": body(functions=[{"name": "f"}], function_call={"name": "f"}),
    "user-field": body(user="user-1234"),
    **{f"verbosity-{v}": body(verbosity=v) for v in ("low", "medium", "high")},
    "web-search": body(
        model="gpt-4o-search-preview",
        web_search_options={
            "search_context_size": "high",
            "user_location": {
                "type": "approximate",
                "approximate": {
                    "country": "FR",
                    "city": "Paris",
                    "region": "IDF",
                    "timezone": "Europe/Paris",
                },
            },
        },
    ),
    "web-search-empty": body(web_search_options={}),
    "web-search-null-location": body(web_search_options={"user_location": None}),
    "unknown-top-level-fields": body(top_k=40, chat_template_kwargs={"enable_thinking": False}),
    "unknown-message-key": body(user(), assistant("ok", reasoning_content="hmm"), user()),
    "unicode": body(user("héllo 👋 \u2028"), system("系统")),
    "many-messages": body(*[user(f"m{i}") for i in range(50)]),
    "everything": body(
        system("Be brief.", role="developer"),
        *tool_turn(),
        user([text("Look"), image(), audio(), file()]),
        audio={"voice": "alloy", "format": "mp3"},
        frequency_penalty=0.5,
        logit_bias={"1": 1},
        logprobs=True,
        max_completion_tokens=100,
        metadata={"a": "b"},
        modalities=["text", "audio"],
        n=2,
        parallel_tool_calls=True,
        presence_penalty=-0.5,
        prompt_cache_key="k",
        reasoning_effort="low",
        response_format={"type": "text"},
        safety_identifier="hash",
        seed=42,
        service_tier="auto",
        stop=["END"],
        store=False,
        stream=True,
        stream_options={"include_usage": True},
        temperature=0.7,
        tool_choice="auto",
        tools=[function_tool(parameters=WEATHER_PARAMS)],
        top_logprobs=3,
        top_p=0.9,
        user="u",
        verbosity="low",
    ),
}

BEYOND_SCHEMA: dict[str, tuple[dict[str, Any], str]] = {
    "harmony-message": (
        body(user("Weather?"), HARMONY),
        "harmony messages are a vLLM form, not OpenAI's",
    ),
    "harmony-string-content": (
        body({"author": {"role": "user"}, "content": "hi"}),
        "harmony messages are a vLLM form, not OpenAI's",
    ),
    "harmony-system-developer-content": (
        body(
            {
                "author": {"role": "system"},
                "content": [{"type": "system_content", "model_identity": "You are a bot."}],
            },
            {
                "author": {"role": "developer"},
                "content": [{"type": "developer_content", "instructions": "Be brief."}],
            },
            user(),
        ),
        "harmony messages are a vLLM form, not OpenAI's",
    ),
    "tool-message-image": (
        body(*tool_turn(tool(content=[text("chart:"), image()]))),
        "the live API takes image_url parts in tool messages (wire-format.md §2.6 rule 9)",
    ),
    "assistant-tool-calls-null": (
        body(user(), assistant("Hi", tool_calls=None, function_call=None, audio=None), user()),
        "`message.model_dump()` of a reply gives `tool_calls: null`; clients send it back",
    ),
    "stop-empty-array": (
        body(stop=[]),
        "the live API takes `stop: []` (LiteLLM sends it; recorded exchanges show it answered)",
    ),
    "message-name-null": (
        body(user(name=None)),
        "a null `name` is read as no name, as for every optional key",
    ),
    **{
        f"top-level-null-{name}": (
            body(**{name: None}),
            "every optional top-level parameter takes null, which means 'not given'",
        )
        for name in (
            "parallel_tool_calls",
            "user",
            "web_search_options",
            "prompt_cache_options",
            "top_logprobs",
            "functions",
            "tools",
            "tool_choice",
            "function_call",
            "response_format",
        )
    },
}


# -- invalid requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A request the mock refuses: where, with which code, saying what."""

    request: dict[str, Any]
    param: str | None
    code: str | None
    says: str
    live_only: bool = False
    """OpenAI's schema accepts it; the live API refuses it (or the mock, by a documented rule)."""


def _tools(*tools: dict[str, Any], **params: Any) -> dict[str, Any]:
    return body(tools=list(tools), **params)


BIG = "x" * (10 * 1024 * 1024 + 1)

INVALID: dict[str, Bad] = {
    # the request itself
    "missing-model": Bad(
        {"messages": [user()]}, "model", "missing_required_parameter", "Missing required"
    ),
    "model-null": Bad(body(model=None), "model", "missing_required_parameter", "'model'"),
    "model-integer": Bad(body(model=4), "model", "invalid_type", "expected a string"),
    "model-empty": Bad(body(model=""), "model", "empty_string", "empty string", live_only=True),
    "missing-messages": Bad(
        {"model": MODEL}, "messages", "missing_required_parameter", "'messages'"
    ),
    "messages-object": Bad(
        {"model": MODEL, "messages": {"role": "user"}}, "messages", "invalid_type", "an array"
    ),
    "messages-empty": Bad(
        {"model": MODEL, "messages": []}, "messages", "empty_array", "empty array"
    ),
    # messages
    "message-string": Bad(body("hi"), "messages[0]", "invalid_type", "expected an object"),
    "role-missing": Bad(
        body({"content": "hi"}), "messages[0].role", "missing_required_parameter", "role"
    ),
    "role-unknown": Bad(
        body({"role": "robot", "content": "x"}),
        "messages[0].role",
        "invalid_value",
        "Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'",
    ),
    "role-integer": Bad(body({"role": 1, "content": "x"}), "messages[0].role", "invalid_type", ""),
    "user-content-missing": Bad(
        body(user(), {"role": "user"}), "messages[1].content", "missing_required_parameter", ""
    ),
    "user-content-null": Bad(
        body(user(None)), "messages[0].content", None, "expected a string, got null"
    ),
    "system-content-null": Bad(body(system(None), user()), "messages[0].content", None, "got null"),
    "content-integer": Bad(
        body(user(5)),
        "messages[0].content",
        "invalid_type",
        "expected one of a string or array of objects, but got an integer instead",
    ),
    "content-empty-array": Bad(body(user([])), "messages[0].content", "empty_array", ""),
    "content-too-long": Bad(
        body(user(BIG)),
        "messages[0].content",
        "string_above_max_length",
        "10485760",
        live_only=True,
    ),
    "part-string": Bad(
        body(user(["hi"])), "messages[0].content[0]", "invalid_type", "expected an object"
    ),
    "part-type-missing": Bad(
        body(user([{"text": "hi"}])),
        "messages[0].content[0].type",
        "missing_required_parameter",
        "",
    ),
    "part-type-unknown": Bad(
        body(user([text(), {"type": "video_url", "video_url": {"url": "x"}}])),
        "messages[0].content[1].type",
        "invalid_value",
        "Invalid value: 'video_url'. Supported values are: 'text', 'image_url', 'input_audio', "
        "and 'file'.",
    ),
    "refusal-in-user": Bad(
        body(user([refusal()])), "messages[0].content[0].type", "invalid_value", "'refusal'"
    ),
    "image-in-system": Bad(
        body(system([image()]), user()),
        "messages[0]",
        "invalid_value",
        "Image URLs are only allowed for messages with role 'user', but this message with role "
        "'system' contains an image URL.",
    ),
    "image-in-developer": Bad(
        body(system([text(), image()], role="developer"), user()),
        "messages[0]",
        "invalid_value",
        "",
    ),
    "image-in-assistant": Bad(
        body(user(), assistant([image()]), user()), "messages[1]", "invalid_value", "'assistant'"
    ),
    "audio-in-system": Bad(
        body(system([audio()]), user()),
        "messages[0].content[0].type",
        "invalid_value",
        "Supported values are: 'text'.",
    ),
    "file-in-assistant": Bad(
        body(user(), assistant([file()]), user()),
        "messages[1].content[0].type",
        "invalid_value",
        "'text' and 'refusal'",
    ),
    "audio-in-tool": Bad(
        body(*tool_turn(tool(content=[audio()]))),
        "messages[2]",
        "invalid_value",
        "Invalid 'messages[2]'. Content blocks are expected to be either text or image_url type.",
    ),
    "file-in-tool": Bad(
        body(*tool_turn(tool(content=[text(), file()]))),
        "messages[2]",
        "invalid_value",
        "Content blocks",
    ),
    "refusal-in-tool": Bad(
        body(*tool_turn(tool(content=[refusal()]))),
        "messages[2]",
        "invalid_value",
        "Content blocks",
    ),
    "text-part-without-text": Bad(
        body(user([{"type": "text"}])),
        "messages[0].content[0].text",
        "missing_required_parameter",
        "",
    ),
    "text-part-integer": Bad(
        body(user([text(3)])), "messages[0].content[0].text", "invalid_type", ""
    ),
    "image-url-missing": Bad(
        body(user([{"type": "image_url"}])),
        "messages[0].content[0].image_url",
        "missing_required_parameter",
        "",
    ),
    "image-url-url-missing": Bad(
        body(user([{"type": "image_url", "image_url": {"detail": "low"}}])),
        "messages[0].content[0].image_url.url",
        "missing_required_parameter",
        "",
    ),
    "image-url-not-a-url": Bad(
        body(user([image("ftp://example.com/cat.png")])),
        "messages[0].content[0].image_url.url",
        "invalid_value",
        "Expected a valid URL",
        live_only=True,
    ),
    "image-url-data-not-image": Bad(
        body(user([image(PDF)])),
        "messages[0].content[0].image_url.url",
        "invalid_image_format",
        "Only image types",
        live_only=True,
    ),
    "image-url-data-not-base64": Bad(
        body(user([image("data:image/png,abc")])),
        "messages[0].content[0].image_url.url",
        "invalid_value",
        "base64",
        live_only=True,
    ),
    "image-detail": Bad(
        body(user([image(detail="ultra")])),
        "messages[0].content[0].image_url.detail",
        "invalid_value",
        "Invalid value: 'ultra'. Supported values are: 'auto', 'low', and 'high'.",
    ),
    "input-audio-format": Bad(
        body(user([text(), audio(fmt="ogg")])),
        "messages[0].content[1].input_audio.format",
        "invalid_value",
        "Supported values are: 'wav' and 'mp3'.",
    ),
    "input-audio-format-missing": Bad(
        body(user([{"type": "input_audio", "input_audio": {"data": WAV}}])),
        "messages[0].content[0].input_audio.format",
        "missing_required_parameter",
        "",
    ),
    "input-audio-data-missing": Bad(
        body(user([{"type": "input_audio", "input_audio": {"format": "wav"}}])),
        "messages[0].content[0].input_audio.data",
        "missing_required_parameter",
        "",
    ),
    "input-audio-data-uri": Bad(
        body(user([audio("data:audio/wav;base64," + WAV)])),
        "messages[0].content[0].input_audio.data",
        "invalid_value",
        "without a 'data:' URL prefix",
        live_only=True,
    ),
    "input-audio-empty": Bad(
        body(user([audio("")])),
        "messages[0].content[0].input_audio.data",
        "empty_string",
        "",
        live_only=True,
    ),
    "file-empty": Bad(
        body(user([{"type": "file", "file": {"filename": "a.pdf"}}])),
        "messages[0].content[0].file",
        "missing_required_parameter",
        "'file_id' or 'file_data'",
        live_only=True,
    ),
    "file-id-integer": Bad(
        body(user([file(file_id=5)])), "messages[0].content[0].file.file_id", "invalid_type", ""
    ),
    "cache-breakpoint-mode": Bad(
        body(user([text(prompt_cache_breakpoint={"mode": "implicit"})])),
        "messages[0].content[0].prompt_cache_breakpoint.mode",
        "invalid_value",
        "'explicit'",
    ),
    "name-with-space": Bad(
        body(user(name="Alice Smith")),
        "messages[0].name",
        "invalid_value",
        "string does not match pattern",
        live_only=True,
    ),
    "name-integer": Bad(body(user(name=7)), "messages[0].name", "invalid_type", ""),
    # assistant messages and tool calls
    "assistant-empty": Bad(
        body(user(), assistant(None), user()),
        "messages[1].content",
        None,
        "Invalid value for 'content': expected a string, got null.",
        live_only=True,
    ),
    "assistant-no-content-key": Bad(
        body(user(), {"role": "assistant"}, user()),
        "messages[1].content",
        None,
        "got null",
        live_only=True,
    ),
    "assistant-tool-calls-empty": Bad(
        body(user(), assistant(None, tool_calls=[]), user()),
        "messages[1].tool_calls",
        "empty_array",
        "",
        live_only=True,
    ),
    "tool-call-id-missing": Bad(
        body(user(), assistant(None, tool_calls=[{"type": "function", "function": {}}])),
        "messages[1].tool_calls[0].id",
        "missing_required_parameter",
        "",
    ),
    "tool-call-type": Bad(
        body(user(), assistant(None, tool_calls=[{"id": "c", "type": "code"}])),
        "messages[1].tool_calls[0].type",
        "invalid_value",
        "'function' and 'custom'",
    ),
    "tool-call-arguments-object": Bad(
        body(*tool_turn(calls=[call(arguments={"city": "Paris"})])),
        "messages[1].tool_calls[0].function.arguments",
        "invalid_type",
        "expected a string, but got an object instead",
    ),
    "tool-call-name-missing": Bad(
        body(
            *tool_turn(calls=[{"id": "call_1", "type": "function", "function": {"arguments": ""}}])
        ),
        "messages[1].tool_calls[0].function.name",
        "missing_required_parameter",
        "",
    ),
    "assistant-refusal-integer": Bad(
        body(user(), assistant(None, refusal=1), user()), "messages[1].refusal", "invalid_type", ""
    ),
    "assistant-audio-without-id": Bad(
        body(user(), assistant(None, audio={}), user()),
        "messages[1].audio.id",
        "missing_required_parameter",
        "",
    ),
    "assistant-function-call-without-arguments": Bad(
        body(user(), assistant(None, function_call={"name": "f"})),
        "messages[1].function_call.arguments",
        "missing_required_parameter",
        "",
    ),
    "tool-without-tool-call-id": Bad(
        body(user(), assistant(None, tool_calls=[call()]), {"role": "tool", "content": "x"}),
        "messages[2].tool_call_id",
        "missing_required_parameter",
        "'messages[2].tool_call_id'",
    ),
    "tool-without-preceding-call": Bad(
        body(user(), tool()),
        "messages[1].role",
        None,
        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
        "with 'tool_calls'.",
        live_only=True,
    ),
    "tool-after-user": Bad(
        body(*tool_turn(), user("more"), tool()),
        "messages[4].role",
        None,
        "preceeding",
        live_only=True,
    ),
    "tool-unknown-call-id": Bad(
        body(*tool_turn(tool("call_9"))),
        "messages[2].tool_call_id",
        None,
        "'tool_call_id' of 'call_9' not found in 'tool_calls' of previous message.",
        live_only=True,
    ),
    "tool-call-unanswered": Bad(
        body(*tool_turn(tool("call_1"), calls=[call("call_1"), call("call_2")]), user("next")),
        "messages[1].role",
        None,
        "An assistant message with 'tool_calls' must be followed by tool messages responding to "
        "each 'tool_call_id'. The following tool_call_ids did not have response messages: call_2",
        live_only=True,
    ),
    "tool-call-unanswered-at-end": Bad(
        body(user(), assistant(None, tool_calls=[call()])),
        "messages[1].role",
        None,
        "did not have response messages: call_1",
        live_only=True,
    ),
    "function-message-without-name": Bad(
        body(user(), {"role": "function", "content": "x"}),
        "messages[1].name",
        "missing_required_parameter",
        "",
    ),
    "tool-content-missing": Bad(
        body(
            user(), assistant(None, tool_calls=[call()]), {"role": "tool", "tool_call_id": "call_1"}
        ),
        "messages[2].content",
        "missing_required_parameter",
        "",
    ),
    # harmony messages
    "harmony-role": Bad(
        body({"author": {"role": "robot"}, "content": []}),
        "messages[0].author.role",
        "invalid_value",
        "'user', 'assistant', 'system', 'developer', and 'tool'",
    ),
    "harmony-author-not-object": Bad(
        body({"author": "user", "content": "hi"}), "messages[0].author", "invalid_type", ""
    ),
    "harmony-part-type": Bad(
        body({"author": {"role": "user"}, "content": [{"type": "image"}]}),
        "messages[0].content[0].type",
        "invalid_value",
        "'text', 'system_content', and 'developer_content'",
    ),
    "harmony-channel-integer": Bad(
        body({"author": {"role": "assistant"}, "content": "x", "channel": 1}),
        "messages[0].channel",
        "invalid_type",
        "",
    ),
    # audio output
    "audio-voice": Bad(
        body(modalities=["text", "audio"], audio={"voice": "robot", "format": "wav"}),
        "audio.voice",
        "invalid_value",
        "Invalid value: 'robot'. Supported values are: 'alloy', 'ash'",
        live_only=True,
    ),
    "audio-format": Bad(
        body(audio={"voice": "alloy", "format": "ogg"}),
        "audio.format",
        "invalid_value",
        "'wav', 'aac', 'mp3', 'flac', 'opus', and 'pcm16'",
    ),
    "audio-format-missing": Bad(
        body(audio={"voice": "alloy"}), "audio.format", "missing_required_parameter", ""
    ),
    "audio-voice-extra-key": Bad(
        body(audio={"voice": {"id": "v", "name": "x"}, "format": "wav"}),
        "audio.voice.name",
        "unknown_parameter",
        "",
    ),
    "audio-voice-integer": Bad(
        body(audio={"voice": 1, "format": "wav"}), "audio.voice", "invalid_type", ""
    ),
    "modalities-audio-without-audio": Bad(
        body(modalities=["text", "audio"]),
        "audio",
        "missing_required_parameter",
        "'modalities' includes 'audio'",
        live_only=True,
    ),
    "modalities-video": Bad(
        body(modalities=["text", "video"]), "modalities[1]", "invalid_value", "'text' and 'audio'"
    ),
    "modalities-string": Bad(body(modalities="text"), "modalities", "invalid_type", ""),
    # numbers
    "n-zero": Bad(
        body(n=0),
        "n",
        "integer_below_min_value",
        "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead.",
    ),
    "n-129": Bad(body(n=129), "n", "integer_above_max_value", "Expected a value <= 128"),
    "n-decimal": Bad(body(n=1.5), "n", "invalid_type", "expected an integer, but got a decimal"),
    "n-string": Bad(body(n="2"), "n", "invalid_type", "but got a string instead"),
    "n-boolean": Bad(body(n=True), "n", "invalid_type", "but got a boolean instead"),
    "temperature-high": Bad(
        body(temperature=2.5),
        "temperature",
        "decimal_above_max_value",
        "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5 "
        "instead.",
    ),
    "temperature-negative": Bad(
        body(temperature=-0.1), "temperature", "decimal_below_min_value", ">= 0"
    ),
    "temperature-string": Bad(body(temperature="hot"), "temperature", "invalid_type", "a number"),
    "top-p-high": Bad(body(top_p=1.5), "top_p", "decimal_above_max_value", "<= 1"),
    "frequency-penalty-high": Bad(
        body(frequency_penalty=3), "frequency_penalty", "integer_above_max_value", "<= 2"
    ),
    "presence-penalty-low": Bad(
        body(presence_penalty=-2.5), "presence_penalty", "decimal_below_min_value", ">= -2"
    ),
    "top-logprobs-high": Bad(
        body(logprobs=True, top_logprobs=21), "top_logprobs", "integer_above_max_value", "<= 20"
    ),
    "top-logprobs-negative": Bad(
        body(logprobs=True, top_logprobs=-1), "top_logprobs", "integer_below_min_value", ""
    ),
    "top-logprobs-without-logprobs": Bad(
        body(top_logprobs=5), "top_logprobs", None, "'logprobs' must be set to true", live_only=True
    ),
    "top-logprobs-with-logprobs-false": Bad(
        body(logprobs=False, top_logprobs=5), "top_logprobs", None, "'logprobs'", live_only=True
    ),
    "logprobs-string": Bad(body(logprobs="yes"), "logprobs", "invalid_type", "a boolean"),
    "max-tokens-zero": Bad(
        body(max_tokens=0), "max_tokens", "integer_below_min_value", ">= 1", live_only=True
    ),
    "max-completion-tokens-negative": Bad(
        body(max_completion_tokens=-1),
        "max_completion_tokens",
        "integer_below_min_value",
        "",
        live_only=True,
    ),
    "max-tokens-string": Bad(body(max_tokens="10"), "max_tokens", "invalid_type", ""),
    "seed-too-big": Bad(body(seed=2**63), "seed", "integer_above_max_value", "", live_only=True),
    "seed-decimal": Bad(body(seed=1.5), "seed", "invalid_type", ""),
    # stream
    "stream-string": Bad(body(stream="true"), "stream", "invalid_type", "a boolean"),
    "stream-options-without-stream": Bad(
        body(stream_options={"include_usage": True}),
        "stream_options",
        None,
        "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        live_only=True,
    ),
    "stream-options-stream-false": Bad(
        body(stream=False, stream_options={}), "stream_options", None, "", live_only=True
    ),
    "stream-options-include-usage-string": Bad(
        body(stream=True, stream_options={"include_usage": "yes"}),
        "stream_options.include_usage",
        "invalid_type",
        "",
    ),
    # stop
    "stop-five": Bad(
        body(stop=["a", "b", "c", "d", "e"]),
        "stop",
        "array_above_max_length",
        "Expected an array with maximum length 4, but got an array with length 5 instead.",
    ),
    "stop-integers": Bad(body(stop=[1]), "stop[0]", "invalid_type", ""),
    "stop-integer": Bad(body(stop=7), "stop", "invalid_type", ""),
    # maps
    "logit-bias-key": Bad(
        body(logit_bias={"hello": 5}), "logit_bias", "invalid_value", "token ids", live_only=True
    ),
    "logit-bias-range": Bad(
        body(logit_bias={"50256": 101}),
        "logit_bias.50256",
        "integer_above_max_value",
        "",
        live_only=True,
    ),
    "logit-bias-decimal": Bad(body(logit_bias={"1": 1.5}), "logit_bias.1", "invalid_type", ""),
    "logit-bias-array": Bad(body(logit_bias=[1]), "logit_bias", "invalid_type", ""),
    "metadata-17-pairs": Bad(
        body(metadata={f"k{i}": "v" for i in range(17)}),
        "metadata",
        "object_above_max_properties",
        "at most 16 properties",
        live_only=True,
    ),
    "metadata-long-key": Bad(
        body(metadata={"k" * 65: "v"}),
        "metadata",
        "string_above_max_length",
        "",
        live_only=True,
    ),
    "metadata-long-value": Bad(
        body(metadata={"k": "v" * 513}),
        "metadata.k",
        "string_above_max_length",
        "maximum length 512",
        live_only=True,
    ),
    "metadata-integer-value": Bad(body(metadata={"k": 1}), "metadata.k", "invalid_type", ""),
    # enums and strings
    "reasoning-effort": Bad(
        body(reasoning_effort="extreme"),
        "reasoning_effort",
        "invalid_value",
        "'none', 'minimal', 'low', 'medium', 'high', 'xhigh', and 'max'",
    ),
    "service-tier": Bad(body(service_tier="turbo"), "service_tier", "invalid_value", ""),
    "verbosity": Bad(body(verbosity="loud"), "verbosity", "invalid_value", ""),
    "prompt-cache-retention": Bad(
        body(prompt_cache_retention="1h"), "prompt_cache_retention", "invalid_value", ""
    ),
    "prompt-cache-options-ttl": Bad(
        body(prompt_cache_options={"ttl": "1h"}), "prompt_cache_options.ttl", "invalid_value", ""
    ),
    "safety-identifier-long": Bad(
        body(safety_identifier="s" * 65),
        "safety_identifier",
        "string_above_max_length",
        "maximum length 64",
    ),
    "user-integer": Bad(body(user=5), "user", "invalid_type", ""),
    "prompt-cache-key-integer": Bad(
        body(prompt_cache_key=5), "prompt_cache_key", "invalid_type", ""
    ),
    "store-string": Bad(body(store="yes"), "store", "invalid_type", ""),
    # prediction, web search, moderation
    "prediction-type": Bad(
        body(prediction={"type": "diff", "content": "x"}), "prediction.type", "invalid_value", ""
    ),
    "prediction-empty-parts": Bad(
        body(prediction={"type": "content", "content": []}),
        "prediction.content",
        "empty_array",
        "",
    ),
    "web-search-location-type": Bad(
        body(web_search_options={"user_location": {"type": "exact", "approximate": {}}}),
        "web_search_options.user_location.type",
        "invalid_value",
        "",
    ),
    "web-search-context-size": Bad(
        body(web_search_options={"search_context_size": "huge"}),
        "web_search_options.search_context_size",
        "invalid_value",
        "",
    ),
    "moderation-model-missing": Bad(
        body(moderation={}), "moderation.model", "missing_required_parameter", ""
    ),
    "moderation-mode": Bad(
        body(moderation={"model": "m", "policy": {"input": {"mode": "warn"}}}),
        "moderation.policy.input.mode",
        "invalid_value",
        "'score' and 'block'",
    ),
    # response_format
    "response-format-type": Bad(
        body(response_format={"type": "yaml"}),
        "response_format.type",
        "invalid_value",
        "'text', 'json_object', and 'json_schema'",
    ),
    "response-format-string": Bad(
        body(response_format="json"), "response_format", "invalid_type", "an object"
    ),
    "json-schema-missing": Bad(
        body(response_format={"type": "json_schema"}),
        "response_format.json_schema",
        "missing_required_parameter",
        "",
    ),
    "json-schema-name-missing": Bad(
        body(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
        "response_format.json_schema.name",
        "missing_required_parameter",
        "Missing required parameter: 'response_format.json_schema.name'.",
    ),
    "json-schema-name-pattern": Bad(
        body(response_format={"type": "json_schema", "json_schema": {"name": "my schema"}}),
        "response_format.json_schema.name",
        "invalid_value",
        "'^[a-zA-Z0-9_-]+$'",
        live_only=True,
    ),
    "json-schema-name-long": Bad(
        body(response_format={"type": "json_schema", "json_schema": {"name": "n" * 65}}),
        "response_format.json_schema.name",
        "string_above_max_length",
        "",
        live_only=True,
    ),
    "json-schema-schema-array": Bad(
        body(response_format=json_schema([])),
        "response_format.json_schema.schema",
        "invalid_type",
        "",
    ),
    "json-schema-bad-type": Bad(
        body(
            response_format=json_schema({"type": "object", "properties": {"a": {"type": "strin"}}})
        ),
        "response_format",
        "invalid_json_schema",
        "Invalid schema for response_format 'weather': In context=('properties', 'a'), 'strin' "
        "is not valid under any of the given schemas.",
        live_only=True,
    ),
    "json-schema-required-not-array": Bad(
        body(response_format=json_schema({"type": "object", "required": "a"})),
        "response_format",
        "invalid_json_schema",
        "'required' must be an array",
        live_only=True,
    ),
    "json-schema-strict-additional-properties": Bad(
        body(
            response_format=json_schema(
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                strict=True,
            )
        ),
        "response_format",
        "invalid_json_schema",
        "In context=(), 'additionalProperties' is required to be supplied and to be false.",
        live_only=True,
    ),
    "json-schema-strict-required": Bad(
        body(
            response_format=json_schema(
                {
                    "type": "object",
                    "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                    "required": ["a"],
                    "additionalProperties": False,
                },
                strict=True,
            )
        ),
        "response_format",
        "invalid_json_schema",
        "'required' is required to be supplied and to be an array including every key in "
        "properties. Missing 'b'.",
        live_only=True,
    ),
    "json-schema-strict-nested": Bad(
        body(
            response_format=json_schema(
                {
                    "type": "object",
                    "properties": {"inner": {"type": "object", "properties": {}}},
                    "required": ["inner"],
                    "additionalProperties": False,
                },
                strict=True,
            )
        ),
        "response_format",
        "invalid_json_schema",
        "In context=('properties', 'inner'), 'additionalProperties'",
        live_only=True,
    ),
    "json-schema-strict-array-root": Bad(
        body(response_format=json_schema({"type": "array"}, strict=True)),
        "response_format",
        "invalid_json_schema",
        "schema must be a JSON Schema of 'type: \"object\"'",
        live_only=True,
    ),
    "json-schema-strict-string": Bad(
        body(response_format=json_schema({}, strict="yes")),
        "response_format.json_schema.strict",
        "invalid_type",
        "",
    ),
    # tools
    "tools-empty": Bad(
        _tools(),
        "tools",
        "empty_array",
        "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty "
        "array instead.",
        live_only=True,
    ),
    "tools-object": Bad(body(tools={"type": "function"}), "tools", "invalid_type", ""),
    "tool-type-missing": Bad(
        _tools({"function": {"name": "f"}}), "tools[0].type", "missing_required_parameter", ""
    ),
    "tool-type-unknown": Bad(
        _tools({"type": "retrieval"}), "tools[0].type", "invalid_value", "'function' and 'custom'"
    ),
    "tool-function-missing": Bad(
        _tools({"type": "function"}), "tools[0].function", "missing_required_parameter", ""
    ),
    "tool-name-missing": Bad(
        _tools(function_tool(None)),
        "tools[0].function.name",
        "missing_required_parameter",
        "",
    ),
    "tool-name-pattern": Bad(
        _tools(function_tool(), function_tool("get weather")),
        "tools[1].function.name",
        "invalid_value",
        "Invalid 'tools[1].function.name': string does not match pattern. Expected a string that "
        "matches the pattern '^[a-zA-Z0-9_-]+$'.",
        live_only=True,
    ),
    "tool-name-long": Bad(
        _tools(function_tool("f" * 65)),
        "tools[0].function.name",
        "string_above_max_length",
        "",
        live_only=True,
    ),
    "tool-name-empty": Bad(
        _tools(function_tool("")), "tools[0].function.name", "empty_string", "", live_only=True
    ),
    "tool-parameters-array": Bad(
        _tools(function_tool(parameters=[])),
        "tools[0].function.parameters",
        "invalid_type",
        "",
    ),
    "tool-parameters-bad-type": Bad(
        _tools(function_tool(parameters={"type": "obj"})),
        "tools[0].function.parameters",
        "invalid_function_parameters",
        "Invalid schema for function 'get_weather': In context=(), 'obj' is not valid",
        live_only=True,
    ),
    "tool-parameters-strict": Bad(
        _tools(
            function_tool(
                parameters={"type": "object", "properties": {"city": {"type": "string"}}},
                strict=True,
            )
        ),
        "tools[0].function.parameters",
        "invalid_function_parameters",
        "'additionalProperties' is required to be supplied and to be false.",
        live_only=True,
    ),
    "tool-description-integer": Bad(
        _tools(function_tool(description=1)), "tools[0].function.description", "invalid_type", ""
    ),
    "tool-strict-string": Bad(
        _tools(function_tool(strict="true")), "tools[0].function.strict", "invalid_type", ""
    ),
    "custom-tool-grammar-syntax": Bad(
        _tools(
            custom_tool(
                format={"type": "grammar", "grammar": {"definition": "x", "syntax": "ebnf"}}
            )
        ),
        "tools[0].custom.format.grammar.syntax",
        "invalid_value",
        "'lark' and 'regex'",
    ),
    "custom-tool-format-extra-key": Bad(
        _tools(custom_tool(format={"type": "text", "grammar": {}})),
        "tools[0].custom.format.grammar",
        "unknown_parameter",
        "",
    ),
    "tool-choice-unknown": Bad(
        _tools(function_tool(), tool_choice="always"),
        "tool_choice",
        "invalid_value",
        "'none', 'auto', and 'required'",
    ),
    "tool-choice-without-tools": Bad(
        body(tool_choice="auto"),
        "tool_choice",
        None,
        "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
        "specified.",
        live_only=True,
    ),
    "tool-choice-named-without-tools": Bad(
        body(tool_choice={"type": "function", "function": {"name": "f"}}),
        "tool_choice",
        None,
        "only allowed when 'tools' are specified",
        live_only=True,
    ),
    "tool-choice-unknown-function": Bad(
        _tools(function_tool(), tool_choice={"type": "function", "function": {"name": "nope"}}),
        "tool_choice.function.name",
        "invalid_value",
        "no function tool named 'nope'",
        live_only=True,
    ),
    "tool-choice-custom-names-a-function": Bad(
        _tools(function_tool(), tool_choice={"type": "custom", "custom": {"name": "get_weather"}}),
        "tool_choice.custom.name",
        "invalid_value",
        "no custom tool named 'get_weather'",
        live_only=True,
    ),
    "tool-choice-type": Bad(
        _tools(function_tool(), tool_choice={"type": "bogus"}),
        "tool_choice.type",
        "invalid_value",
        "'function', 'custom', and 'allowed_tools'",
    ),
    "tool-choice-integer": Bad(
        _tools(function_tool(), tool_choice=1), "tool_choice", "invalid_type", ""
    ),
    "allowed-tools-mode": Bad(
        _tools(
            function_tool(),
            tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "some", "tools": []}},
        ),
        "tool_choice.allowed_tools.mode",
        "invalid_value",
        "'auto' and 'required'",
    ),
    "allowed-tools-unknown-tool": Bad(
        _tools(
            function_tool(),
            tool_choice={
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "auto",
                    "tools": [{"type": "function", "function": {"name": "nope"}}],
                },
            },
        ),
        "tool_choice.allowed_tools.tools[0].function.name",
        "invalid_value",
        "'nope'",
        live_only=True,
    ),
    "functions-empty": Bad(body(functions=[]), "functions", "empty_array", ""),
    "functions-too-many": Bad(
        body(functions=[{"name": f"f{i}"} for i in range(129)]),
        "functions",
        "array_above_max_length",
        "maximum length 128",
    ),
    "function-name-missing": Bad(
        body(functions=[{"description": "d"}]),
        "functions[0].name",
        "missing_required_parameter",
        "",
    ),
    "function-call-unknown": Bad(
        body(functions=[{"name": "f"}], function_call="maybe"),
        "function_call",
        "invalid_value",
        "'none' and 'auto'",
    ),
    "function-call-without-name": Bad(
        body(functions=[{"name": "f"}], function_call={}),
        "function_call.name",
        "missing_required_parameter",
        "",
    ),
}
