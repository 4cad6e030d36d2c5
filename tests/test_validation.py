"""The validator as a unit: every valid form accepted, every rejection exact, OpenAI's schema as
the cross-check that keeps both honest."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.errors import ApiError
from mockserver.request import (
    MESSAGE_FIELDS,
    REQUEST_FIELDS,
    ChatRequest,
    RequestMessage,
    _fields,
    build_message,
)
from mockserver.validation import KNOWN_FIELDS, decode_body, decode_exact, parse_chat_request
from mockserver.validation.strict import strict_error
from tests.support import schema_errors
from tests.validation_cases import (
    BEYOND_SCHEMA,
    HARMONY,
    INVALID,
    VALID,
    WEATHER_PARAMS,
    assistant,
    audio,
    body,
    call,
    custom_call,
    custom_tool,
    file,
    function_tool,
    image,
    refusal,
    system,
    text,
    tool,
    tool_turn,
    user,
)


def refused(request: dict) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_chat_request(copy.deepcopy(request))
    return caught.value


# -- accepted ---------------------------------------------------------------------------------


@pytest.mark.parametrize("request_body", VALID.values(), ids=VALID.keys())
def test_valid_request_is_accepted(request_body):
    parsed = parse_chat_request(request_body)
    assert parsed.model == request_body["model"]
    assert len(parsed.messages) == len(request_body["messages"])


@pytest.mark.parametrize("request_body", VALID.values(), ids=VALID.keys())
def test_valid_request_is_valid_for_openais_schema(request_body):
    assert schema_errors("CreateChatCompletionRequest", request_body) == []


@pytest.mark.parametrize(("request_body", "why"), BEYOND_SCHEMA.values(), ids=BEYOND_SCHEMA.keys())
def test_accepted_beyond_the_schema(request_body, why):
    """Forms the live API (or the mock, by a documented choice) takes though the schema does not."""
    parse_chat_request(request_body)
    assert schema_errors("CreateChatCompletionRequest", request_body), why


def test_every_schema_parameter_is_known():
    schema = json.loads(
        (
            __import__("pathlib").Path(__file__).parent / "data" / "chat-completions.schema.json"
        ).read_text()
    )["$defs"]
    names = set(schema["CreateChatCompletionRequest"]["allOf"][1]["properties"])
    names |= set(schema["CreateModelResponseProperties"]["allOf"][1]["properties"])
    names |= set(schema["ModelResponseProperties"]["properties"])
    assert names == set(KNOWN_FIELDS)
    assert len(KNOWN_FIELDS) == 37


# -- refused ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", INVALID.values(), ids=INVALID.keys())
def test_invalid_request_is_refused_exactly(bad):
    error = refused(bad.request)
    assert error.status == 400
    assert error.type == "invalid_request_error"
    assert (error.param, error.code) == (bad.param, bad.code), error.message
    assert bad.says in error.message
    assert error.message.endswith((".", "'", ")")) or bad.code is None, error.message
    envelope = json.loads(error.encode())
    assert schema_errors("ErrorResponse", envelope) == []


@pytest.mark.parametrize("bad", INVALID.values(), ids=INVALID.keys())
def test_schema_agrees_unless_the_rule_is_the_live_apis(bad):
    """Rows marked `live_only` are rules OpenAI's schema does not state; the rest it states."""
    errors = schema_errors("CreateChatCompletionRequest", bad.request)
    if bad.live_only:
        assert errors == [], "the schema refuses this too: drop live_only"
    else:
        assert errors, "the schema accepts this: mark it live_only (and say why in the docs)"


def test_messages_read_like_openais():
    error = refused(body(user(), {"role": "user", "content": [text(), audio(fmt="flac")]}))
    assert error.message == "Invalid value: 'flac'. Supported values are: 'wav' and 'mp3'."
    assert error.param == "messages[1].content[1].input_audio.format"
    error = refused(body(n=0))
    assert error.message == (
        "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead."
    )


def test_long_values_are_cut_short_in_messages():
    error = refused(body(reasoning_effort="x" * 5000))
    assert len(error.message) < 300


# -- decoding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"not json",
        b'{"model": "m",}',
        b"[]",
        b'"string"',
        b"null",
        b"42",
        b'{"model": NaN}',
        b'{"temperature": Infinity}',
        b'{"model": "\\ud800"}',
        b'{"model": "\\uDC00x"}',
        b'{"model": "\xed\xa0\x80"}',
        b"\xff\xfe\x00",
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=[
        "empty",
        "truncated",
        "text",
        "trailing-comma",
        "array",
        "string",
        "null",
        "number",
        "nan",
        "infinity",
        "lone-high-surrogate",
        "lone-low-surrogate",
        "raw-surrogate",
        "bad-utf",
        "deep-nesting",
    ],
)
def test_not_a_json_object(raw):
    with pytest.raises(ApiError) as caught:
        decode_body(raw)
    assert caught.value.status == 400
    assert caught.value.message.startswith("We could not parse the JSON body of your request.")
    assert caught.value.param is None


def test_surrogate_pairs_and_utf8_decode():
    decoded = decode_body('{"model": "m", "x": "\\ud83d\\ude00 é"}'.encode())
    assert decoded["x"] == "😀 é"
    assert decode_body(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    assert decode_body('{"k": "한국어"}'.encode()) == {"k": "한국어"}
    assert decode_body('{"k": "ü"}'.encode("utf-16")) == {"k": "ü"}


# -- what the ChatRequest carries ---------------------------------------------------------------


def test_plain_request_fields():
    parsed = parse_chat_request(body(system("S"), user("U")))
    assert [m.role for m in parsed.messages] == ["system", "user"]
    assert parsed.system_message == "S"
    assert parsed.last_user_message == "U"
    assert parsed.part_kinds == frozenset({"text"})
    assert (parsed.n, parsed.stream, parsed.include_usage, parsed.include_obfuscation) == (
        1,
        False,
        False,
        True,
    )
    assert parsed.modalities == ("text",)
    assert parsed.tools == ()
    assert parsed.unknown_fields == ()


def test_parameters_reach_the_request():
    parsed = parse_chat_request(
        body(
            n=3.0,
            stream=True,
            stream_options={"include_usage": True, "include_obfuscation": False},
            logprobs=True,
            top_logprobs=2,
            modalities=["text", "audio"],
            audio={"voice": "alloy", "format": "mp3"},
            max_tokens=10,
            max_completion_tokens=20,
            stop="END",
            service_tier="flex",
            reasoning_effort="low",
            verbosity="high",
            metadata={"a": "b"},
            parallel_tool_calls=False,
        )
    )
    assert parsed.n == 3
    assert type(parsed.n) is int
    assert parsed.stream and parsed.include_usage and not parsed.include_obfuscation
    assert (parsed.logprobs, parsed.top_logprobs) == (True, 2)
    assert parsed.modalities == ("text", "audio")
    assert (parsed.audio_format, parsed.audio_voice) == ("mp3", "alloy")
    assert parsed.max_tokens == 20
    assert parsed.stop == ("END",)
    assert (parsed.service_tier, parsed.reasoning_effort, parsed.verbosity) == (
        "flex",
        "low",
        "high",
    )
    assert parsed.metadata == {"a": "b"}
    assert parsed.parallel_tool_calls is False


def test_custom_voice_has_no_voice_name():
    parsed = parse_chat_request(body(audio={"voice": {"id": "voice_1"}, "format": "wav"}))
    assert (parsed.audio_voice, parsed.audio_format) == (None, "wav")


def test_max_tokens_alone_and_stop_list():
    parsed = parse_chat_request(body(max_tokens=7, stop=["a", "b"]))
    assert (parsed.max_tokens, parsed.stop) == (7, ("a", "b"))


def test_tools_and_choices_reach_the_request():
    parsed = parse_chat_request(
        body(
            tools=[function_tool(), custom_tool()],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
    )
    assert parsed.tools == ("get_weather", "run_sql")
    assert (parsed.tool_choice, parsed.forced_tool) == ("required", "get_weather")
    assert not parsed.uses_functions
    legacy = parse_chat_request(
        body(functions=[{"name": "lookup"}], function_call={"name": "lookup"})
    )
    assert legacy.tools == ("lookup",)
    assert legacy.uses_functions
    assert (legacy.tool_choice, legacy.forced_tool) == ("required", "lookup")
    auto = parse_chat_request(body(tools=[function_tool()], tool_choice="auto"))
    assert (auto.tool_choice, auto.forced_tool) == ("auto", None)


def test_response_format_reaches_the_request():
    parsed = parse_chat_request(
        body(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "weather", "schema": WEATHER_PARAMS, "strict": True},
            }
        )
    )
    assert (parsed.response_format, parsed.response_format_name) == ("json_schema", "weather")
    assert parse_chat_request(body(response_format={"type": "json_object"})).response_format == (
        "json_object"
    )


def test_content_parts_are_counted():
    parsed = parse_chat_request(
        body(
            user(
                [
                    text("Look at"),
                    image(detail="high"),
                    image(),
                    audio(),
                    file(),
                    text("these"),
                ]
            )
        )
    )
    message = parsed.messages[0]
    assert message.text == "Look at\nthese"
    assert message.parts == frozenset({"text", "image", "audio", "file"})
    assert (message.images, message.image_detail_high, message.audio_parts, message.files) == (
        2,
        1,
        1,
        1,
    )
    assert parsed.part_kinds == message.parts
    assert parsed.prompt_audio_tokens == 50


def test_tool_history_is_read():
    parsed = parse_chat_request(
        body(
            *tool_turn(
                tool("call_1"),
                tool("call_2", [text("one"), text("two")]),
                calls=[call("call_1"), custom_call("call_2")],
            ),
            tools=[custom_tool()],
        )
    )
    asked = parsed.messages[1]
    assert asked.tool_call_ids == ("call_1", "call_2")
    assert asked.tool_names == ("get_weather", "run_sql")
    assert asked.text == ""
    answer = parsed.messages[3]
    assert (answer.role, answer.tool_call_id, answer.text) == ("tool", "call_2", "one\ntwo")


def test_refusals_count_as_text():
    parsed = parse_chat_request(
        body(user(), assistant([refusal("No.")]), user(), assistant(None, refusal="Nope."), user())
    )
    assert parsed.messages[1].text == "No."
    assert parsed.messages[1].parts == frozenset({"refusal"})
    assert parsed.messages[3].text == "Nope."


def test_function_message_and_names():
    parsed = parse_chat_request(
        body(
            user(name="alice"),
            assistant(None, function_call={"name": "f", "arguments": "{}"}),
            {"role": "function", "name": "f", "content": "done"},
        )
    )
    assert parsed.messages[0].name == "alice"
    assert parsed.messages[1].tool_names == ("f",)
    assert (parsed.messages[2].role, parsed.messages[2].name, parsed.messages[2].text) == (
        "function",
        "f",
        "done",
    )


def test_harmony_message_is_read():
    parsed = parse_chat_request(
        body(
            {
                "author": {"role": "developer"},
                "content": [{"type": "developer_content", "instructions": "Answer in French."}],
            },
            HARMONY,
            {"author": {"role": "user", "name": "bob"}, "content": "Quel temps?"},
        )
    )
    developer, thought, question = parsed.messages
    assert developer.role == "developer"
    assert developer.text == "Answer in French."
    assert parsed.system_message == "Answer in French."
    assert thought.harmony
    assert (thought.role, thought.name, thought.channel, thought.recipient) == (
        "assistant",
        "gpt-oss",
        "analysis",
        "functions.get_weather",
    )
    assert thought.content_type == "text"
    assert thought.text == "The user wants the weather."
    assert (question.role, question.name, question.text) == ("user", "bob", "Quel temps?")
    assert parsed.last_user_message == "Quel temps?"


def test_harmony_tool_message_needs_no_tool_call():
    parsed = parse_chat_request(
        body(
            user(),
            {"author": {"role": "tool", "name": "functions.get_weather"}, "content": "18C"},
        )
    )
    assert parsed.messages[1].role == "tool"


def test_unknown_fields_are_tolerated_and_listed():
    parsed = parse_chat_request(
        body(
            user(),
            assistant("ok", reasoning_content="thinking"),
            user([text("x", cache_control={"type": "ephemeral"})]),
            top_k=40,
            chat_template_kwargs={"enable_thinking": False},
            tools=[function_tool(extra=1)],
            response_format={"type": "json_schema", "json_schema": {"name": "n", "x": 1}},
        )
    )
    assert parsed.unknown_fields == (
        "top_k",
        "chat_template_kwargs",
        "messages[1].reasoning_content",
        "messages[2].content[0].cache_control",
        "tools[0].function.extra",
        "response_format.json_schema.x",
    )


def test_null_means_not_given():
    parsed = parse_chat_request(
        body(n=None, stream=None, stop=None, temperature=None, tools=None, audio=None)
    )
    assert (parsed.n, parsed.stream, parsed.stop, parsed.tools) == (1, False, (), ())


# -- the fast constructors ----------------------------------------------------------------------


def test_build_message_equals_the_constructor():
    fast = build_message({"role": "user", "text": "hi", "parts": frozenset({"text"})})
    slow = RequestMessage(role="user", text="hi", parts=frozenset({"text"}))
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.text = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("request_body", VALID.values(), ids=VALID.keys())
def test_parsed_request_equals_one_built_by_the_constructor(request_body):
    parsed = parse_chat_request(request_body)
    assert set(vars(parsed)) <= REQUEST_FIELDS
    rebuilt = ChatRequest(**{name: getattr(parsed, name) for name in REQUEST_FIELDS})
    assert rebuilt == parsed
    for message in parsed.messages:
        assert set(vars(message)) <= MESSAGE_FIELDS
        values = {name: getattr(message, name) for name in MESSAGE_FIELDS}
        assert RequestMessage(**values) == message


def test_fields_need_plain_defaults():
    @dataclasses.dataclass(frozen=True)
    class Bad:
        items: list[str] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="default_factory"):
        _fields(Bad)


# -- strict mode ------------------------------------------------------------------------------


STRICT_CASES = {
    "unknown-top-level": (
        body(top_k=5),
        "top_k",
        "unknown_parameter",
        "Unrecognized request argument supplied: top_k",
    ),
    "unknown-nested": (
        body(user(), assistant("a", reasoning_content="r"), user()),
        "messages[1].reasoning_content",
        "unknown_parameter",
        "Unknown parameter: 'messages[1].reasoning_content'.",
    ),
    "json-object-without-json": (
        body(user("Give me a list"), response_format={"type": "json_object"}),
        "messages",
        None,
        "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
        "'json_object'.",
    ),
    "max-tokens-on-reasoning-model": (
        body(model="o3-mini", max_tokens=100),
        "max_tokens",
        "unsupported_parameter",
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
        "'max_completion_tokens' instead.",
    ),
    "max-tokens-on-gpt-5": (
        body(model="gpt-5.1", max_tokens=1),
        "max_tokens",
        "unsupported_parameter",
        "",
    ),
    "temperature-on-reasoning-model": (
        body(model="o4-mini", temperature=0.2),
        "temperature",
        "unsupported_value",
        "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default "
        "(1) value is supported.",
    ),
    "top-p-on-reasoning-model": (body(model="o1", top_p=0.5), "top_p", "unsupported_value", ""),
    "stop-on-o3": (body(model="o3", stop="x"), "stop", "unsupported_parameter", "'stop'"),
    "reasoning-effort-on-gpt-4o": (
        body(model="gpt-4o", reasoning_effort="low"),
        "reasoning_effort",
        "unsupported_parameter",
        "",
    ),
    "parallel-tool-calls-without-tools": (
        body(parallel_tool_calls=True),
        "parallel_tool_calls",
        None,
        "only allowed when 'tools' are specified",
    ),
    "function-call-without-functions": (
        body(function_call="auto"),
        "function_call",
        None,
        "only allowed when 'functions' are specified",
    ),
    "function-call-unknown-function": (
        body(functions=[{"name": "f"}], function_call={"name": "g"}),
        "function_call.name",
        "invalid_value",
        "'g'",
    ),
}


@pytest.mark.parametrize(
    ("request_body", "param", "code", "says"), STRICT_CASES.values(), ids=STRICT_CASES.keys()
)
def test_strict_mode_refuses(request_body, param, code, says):
    parsed = parse_chat_request(request_body)  # the default mode takes it
    error = strict_error(parsed)
    assert error is not None
    assert (error.status, error.type, error.param, error.code) == (
        400,
        "invalid_request_error",
        param,
        code,
    )
    assert says in error.message


STRICT_OK = {
    "plain": body(),
    "json-object-with-json": body(user("Reply in JSON"), response_format={"type": "json_object"}),
    "json-in-system": body(system("Output json."), user(), response_format={"type": "json_object"}),
    "max-completion-tokens-on-reasoning": body(model="o3", max_completion_tokens=5),
    "temperature-one-on-reasoning": body(model="o3", temperature=1),
    "temperature-with-no-reasoning": body(
        model="gpt-5.1", reasoning_effort="none", temperature=0.2
    ),
    "chat-model-max-tokens": body(model="gpt-5-chat-latest", max_tokens=5),
    "gpt-4o-everything": body(model="gpt-4o", max_tokens=5, temperature=0, stop="x"),
    "reasoning-effort-on-o3": body(model="o3", reasoning_effort="high"),
    "parallel-tool-calls-with-tools": body(tools=[function_tool()], parallel_tool_calls=False),
    "function-call-named": body(functions=[{"name": "f"}], function_call={"name": "f"}),
    "harmony": body(HARMONY, user()),
}


@pytest.mark.parametrize("request_body", STRICT_OK.values(), ids=STRICT_OK.keys())
def test_strict_mode_accepts(request_body):
    assert strict_error(parse_chat_request(request_body)) is None


@pytest.mark.parametrize(
    "request_body",
    [v for k, v in VALID.items() if not k.startswith(("unknown", "reasoning-effort"))],
)
def test_valid_table_mostly_passes_strict_mode_too(request_body):
    error = strict_error(parse_chat_request(request_body))
    assert error is None or error.code in ("unsupported_parameter", "unsupported_value"), error


# -- odd inputs never escape as anything but ApiError ---------------------------------------------


@pytest.mark.parametrize(
    "request_body",
    [
        body(user([image(detail=None)])),
        body(messages=[user(), None]),
        body(tools=[None]),
        body(tools=[{"type": "function", "function": None}]),
        body(tool_choice={"type": "allowed_tools"}, tools=[function_tool()]),
        body(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "n", "schema": {"properties": [1]}},
            }
        ),
        body(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "n", "schema": {"anyOf": []}},
            }
        ),
        body(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "n", "schema": {"items": 5}},
            }
        ),
        body(
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "n",
                    "strict": True,
                    "schema": {
                        "type": "object",
                        "properties": {"a": {}},
                        "additionalProperties": False,
                    },
                },
            }
        ),
        body(prediction={"type": "content", "content": [{"type": "text"}]}),
        body(web_search_options={"user_location": {"type": "approximate"}}),
        body(moderation={"model": "m", "policy": "x"}),
        body(metadata={"k": None}),
        body(logit_bias={"1": None}),
        body(audio={"voice": None, "format": "wav"}),
        body(user([{"type": None}])),
        body(user([file(file_data=None)])),
        body({"author": {"role": "user"}, "content": [{"type": "text", "text": 1}]}),
        body({"author": {"role": "user"}, "content": 5}),
    ],
)
def test_odd_input_is_a_400(request_body):
    error = refused(request_body)
    assert error.status == 400
    assert error.param


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"m","seed":123456789012345678901234567890}',  # past 64 bits: an int
        b'{"model":"m","seed":-9223372036854775809}',
        b'{"model":"m","temperature":1e400}',  # Python reads infinity
        b'{"model":"m","a":1,"a":2}',  # the last one wins
        b'{"model":"m","x":[1,2.5e-3,true,null,-0,1E5]}',
        b'{"model":"m","x":"\\u00e9\xc3\xa9 \\ud83d\\ude00"}',  # a pair of escapes is one char
        b' \n{"model":"m"}\t',
        b'\xef\xbb\xbf{"model":"m"}',  # a byte order mark, as Python's decoder reads it
        # digit runs inside strings (orjson reads them) and numbers past 64 bits after them
        b'{"model":"m","id":"call_00000000000000000000001","n":[18446744073709551616]}',
        b'{"model":"m","s":"0000000000000000000000001","n":{"k":-18446744073709551617}}',
        b'{"model":"m","x":[1.00000000000000000000001,12345678901234567890123e-2]}',
        b'{"model":"m","x":1e0000000000000000000001,"y":"a1234567890123456789012345"}',
        b'{"model":"m","x":[ 18446744073709551616 ,\n99999999999999999999]}',
    ],
)
def test_bodies_read_as_pythons_decoder_reads_them(raw):
    """The fast reader (orjson) gives Python's result, or leaves the body to Python's (types
    compared too: `2**64 == float(2**64)`)."""
    assert repr(decode_body(raw)) == repr(json.loads(raw))


_JSON_WITH_DIGITS = st.recursive(
    st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.from_regex(r"[a-z_\"]?[0-9]{15,30}", fullmatch=True)
    | st.booleans(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "id", "n"]), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(_JSON_WITH_DIGITS, st.sampled_from([(",", ":"), (", ", ": ")]))
def test_long_digit_runs_are_read_as_python_reads_them(value, separators):
    """Big numbers, big floats and long digit runs inside strings: the fast reader skips only
    runs that cannot be numbers, so the result is always Python's."""
    raw = json.dumps({"model": "m", "x": value}, separators=separators).encode()
    assert repr(decode_body(raw)) == repr(json.loads(raw))


_ESCAPES = ["\\ud83d", "\\ude00", "\\uD800", "\\uDFFF", "\\udbff", "\\u0041", "a", "\\\\", "é"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([*_ESCAPES, "\udcff"]), min_size=1, max_size=6))
def test_surrogates_escaped_or_raw_are_read_or_refused_as_python_does(pieces):
    """orjson is tried first, with no search for surrogates: it must accept exactly the bodies
    Python's decoder accepts (then give the same value) and refuse the rest."""
    text = "".join(pieces)
    raw = ('{"model":"m","x":"' + text + '"}').encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(raw.decode("utf-8", "surrogatepass"))
        json.dumps(expected, ensure_ascii=False).encode()
    except (ValueError, UnicodeError):
        with pytest.raises(ApiError):
            decode_body(raw)
    else:
        assert decode_body(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"m","x":NaN}',
        b'{"model":"m","x":"\\ud800"}',  # a lone surrogate
        b'{"model":"m","x":"a\nb"}',
        b'[{"model":"m"}]',
        b'{"model":"m",}',
        b'{"x":' * 2000 + b"1" + b"}" * 2000,
    ],
)
def test_bodies_that_are_not_strict_json_objects_are_refused(raw):
    with pytest.raises(ApiError) as caught:
        decode_body(raw)
    assert caught.value.status == 400


def test_many_digit_runs_in_strings_are_searched_in_c_and_still_read_exactly():
    import time

    runs = b",".join(b'"id%d":"x%s"' % (i, b"7" * 40) for i in range(20))
    raw = b'{"model":"m",' + runs + b',"n":18446744073709551616}'
    assert repr(decode_body(raw)) == repr(json.loads(raw))  # the big number is an int
    long = b'{"model":"m","s":"x' + b"1" * 1_000_000 + b'"}'
    began = time.perf_counter()
    decode_body(long)
    assert time.perf_counter() - began < 0.05  # one run of a million digits: C searches


@pytest.mark.parametrize("keyed", [False, True])
def test_a_pairing_mistake_before_a_bad_message_is_the_one_reported(keyed):
    """As when each message's pairing was checked right after it was validated: a mistake in
    the messages before a bad one wins; the bad message wins over calls still open."""
    call = {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    calls = {"role": "assistant", "content": None, "tool_calls": [call]}
    cases = [
        ([{"role": "tool", "tool_call_id": "x", "content": "a"}, user(5)], "messages[0].role"),
        ([calls, {"role": "user", "content": "hi"}, user(5)], "messages[0].role"),
        ([calls, user(5)], "messages[1].content"),  # c1 still open: the bad message wins
        (
            [calls, {"role": "tool", "tool_call_id": "c1", "content": "ok"}, user(5)],
            "messages[2].content",
        ),
    ]
    for messages, param in cases:
        raw = json.dumps({"model": "m", "messages": messages}).encode()
        body, exact = decode_exact(raw)
        with pytest.raises(ApiError) as caught:
            parse_chat_request(body, keyed=keyed and exact)
        assert caught.value.param == param, messages
