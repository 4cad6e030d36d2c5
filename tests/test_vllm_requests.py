"""What the `vllm` profile accepts and refuses, and how it says so.

Requests that vLLM's request models accept and OpenAI refuses (cases drawn from real traffic
that OpenAI-compatible servers accepted: Mistral, Groq, OpenRouter and Hugging Face router
clients) are accepted under `vllm` and refused with OpenAI's error under `openai`; what vLLM
refuses too is refused by both, each in its own error body. vLLM's own fields are checked with
vLLM's types and ranges (vllm/sampling_params.py, chat_completion/protocol.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

from mockserver.cli import main
from mockserver.engine import EngineConfig, MockEngine
from mockserver.scenarios import load_text
from tests.vllm_support import chat

ROOT = Path(__file__).parent.parent
ANY = """
version: 1
scenarios:
  - name: enable-thinking-off
    match: {params: {chat_template_kwargs: {enable_thinking: false}}}
    reply: {content: "no thinking"}
  - name: top-k
    match: {params: {top_k: 5}}
    reply: {content: "top k five"}
  - name: any
    reply: {content: "ok", reasoning: "fine"}
"""
USER = {"role": "user", "content": "hi"}
TEXT = {"type": "text", "text": "look"}
URL = {"url": "https://example.com/a.png"}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def engines() -> tuple[MockEngine, MockEngine]:
    scenarios = load_text(ANY)
    return (
        MockEngine(scenarios, EngineConfig(profile="vllm")),
        MockEngine(scenarios, EngineConfig(profile="openai")),
    )


ACCEPTED_BY_VLLM_ONLY: list[Any] = [
    pytest.param(
        {"tools": [{"function": TOOL["function"]}]},
        "tools[0].type",
        id="mistral-tool-without-type",
    ),
    pytest.param({"tools": []}, "tools", id="groq-empty-tools"),
    pytest.param(
        {"messages": [{"role": "system", "content": []}, USER]},
        "messages[0].content",
        id="hf-router-empty-content",
    ),
    pytest.param(
        {"messages": [USER, {"role": "assistant", "content": "x", "tool_calls": []}, USER]},
        "messages[1].tool_calls",
        id="openrouter-empty-tool-calls",
    ),
    pytest.param(
        {
            "messages": [
                USER,
                {"role": "assistant", "content": None, "reasoning_content": "thought"},
                USER,
            ]
        },
        "messages[1].content",
        id="deepseek-style-reasoning-history",
    ),
    pytest.param(
        {"messages": [USER, {"role": "assistant", "content": [], "reasoning": "r"}, USER]},
        "messages[1].content",
        id="assistant-empty-content-with-reasoning",
    ),
    # Content parts: vLLM reads its own part types in every role (chat_utils.py MM_PARSER_MAP).
    pytest.param(
        {
            "messages": [
                {"role": "user", "content": [TEXT, {"type": "video_url", "video_url": URL}]}
            ]
        },
        "messages[0].content[1].type",
        id="openrouter-video-url-part",
    ),
    pytest.param(
        {
            "messages": [
                USER,
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm"}, TEXT]},
                USER,
            ]
        },
        "messages[1].content[0].type",
        id="mistral-thinking-part",
    ),
    pytest.param(
        {
            "messages": [
                {"role": "system", "content": [TEXT, {"type": "image_url", "image_url": URL}]}
            ]
        },
        "messages[0]",
        id="image-in-a-system-message",
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": ["bare", "strings"]}]},
        "messages[0].content[0]",
        id="bare-string-parts",
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": [{"image_url": URL}]}]},
        "messages[0].content[0].type",
        id="part-without-type-read-by-its-key",
    ),
    # Strict schemas: OpenAI holds them to Structured Outputs' rules; vLLM to none.
    pytest.param(
        {"tools": [{**TOOL, "function": {**TOOL["function"], "strict": True}}]},
        "tools[0].function.parameters",
        id="strict-tool-schema-openai-would-refuse",
    ),
    pytest.param(
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "strict": True, "schema": {"type": "object"}},
            }
        },
        "response_format",
        id="strict-response-schema-openai-would-refuse",
    ),
    # OpenAI's fields vLLM does not declare: extras, whatever they hold.
    pytest.param({"service_tier": "on_demand"}, "service_tier", id="groq-service-tier"),
    pytest.param({"verbosity": "loud"}, "verbosity", id="unknown-verbosity"),
]


@pytest.mark.parametrize(("extra", "param"), ACCEPTED_BY_VLLM_ONLY)
def test_vllm_accepts_what_openai_refuses(extra: dict[str, Any], param: str) -> None:
    vllm, openai_ = engines()
    body = {"model": "m", "messages": [USER], **extra}
    status, raw = chat(vllm, **body)
    assert status == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == "ok"
    status, raw = chat(openai_, **body)
    error = json.loads(raw)["error"]
    assert status == 400
    assert error["type"] == "invalid_request_error" and type(error["code"]) is not int
    assert error["param"] == param


CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ],
}
ANSWER = {"role": "tool", "tool_call_id": "call_1", "content": "42"}
HISTORY_VLLM_ONLY: list[Any] = [
    # vLLM types `messages` as OpenAI's message TypedDicts or its own
    # `CustomChatCompletionMessageParam` (vllm/entrypoints/chat_utils.py: `role` the only required
    # key, any string; `content`, `name`, `tool_call_id` optional) and checks no pairing of tool
    # calls with tool messages (`parse_chat_messages` reads each message on its own).
    pytest.param([USER, ANSWER], "messages[1].role", id="tool-without-any-call"),
    pytest.param(
        [USER, CALL, {**ANSWER, "tool_call_id": "call_2"}],
        "messages[2].tool_call_id",
        id="tool-answering-another-id",
    ),
    pytest.param([USER, CALL, USER], "messages[1].role", id="call-never-answered"),
    pytest.param([USER, CALL], "messages[1].role", id="call-last-unanswered"),
    pytest.param(
        [USER, CALL, {"role": "tool", "content": "42"}],
        "messages[2].tool_call_id",
        id="tool-without-tool-call-id",
    ),
    pytest.param(
        [USER, CALL, {**ANSWER, "tool_call_id": None}],
        "messages[2].tool_call_id",
        id="tool-null-tool-call-id",
    ),
    pytest.param([{"role": "user"}], "messages[0].content", id="user-without-content"),
    pytest.param(
        [USER, CALL, {"role": "tool", "tool_call_id": "call_1"}],
        "messages[2].content",
        id="tool-without-content",
    ),
    pytest.param([USER, {"role": "ipython", "content": "x"}], "messages[1].role", id="custom-role"),
    pytest.param(
        [{"role": "user", "content": "hi", "name": "Jane Doe"}],
        "messages[0].name",
        id="name-with-a-space",
    ),
]


@pytest.mark.parametrize(("messages", "param"), HISTORY_VLLM_ONLY)
def test_vllm_accepts_history_openai_refuses(messages: list[Any], param: str) -> None:
    vllm, openai_ = engines()
    status, raw = chat(vllm, messages=messages)
    assert status == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == "ok"
    status, raw = chat(openai_, messages=messages)
    error = json.loads(raw)["error"]
    assert (status, error["type"], error["param"]) == (400, "invalid_request_error", param)


HISTORY_REFUSED_BY_BOTH: list[Any] = [
    # `content: null` fits neither OpenAI's user message nor vLLM's custom one (`str | list`);
    # `role` is required and a string in both.
    pytest.param([{"role": "user", "content": None}], "messages[0].content", id="null-content"),
    pytest.param(
        [USER, CALL, {**ANSWER, "content": None}], "messages[2].content", id="tool-null-content"
    ),
    pytest.param([{"content": "hi"}], "messages[0].role", id="no-role"),
    pytest.param([{"role": 5, "content": "hi"}], "messages[0].role", id="role-not-a-string"),
]


@pytest.mark.parametrize(("messages", "param"), HISTORY_REFUSED_BY_BOTH)
def test_history_vllm_refuses_too(messages: list[Any], param: str) -> None:
    vllm, openai_ = engines()
    status, raw = chat(vllm, messages=messages)
    error = json.loads(raw)["error"]
    assert (status, error["code"], error["param"]) == (400, 400, param)
    status, raw = chat(openai_, messages=messages)
    assert (status, json.loads(raw)["error"]["param"]) == (400, param)


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "user", "content": [{"type": ["x"]}]}], "messages[0].content[0].type"),
        ([{"role": "user", "content": [{"type": {"a": 1}}]}], "messages[0].content[0].type"),
        ([{"role": "user", "content": [5]}], "messages[0].content[0]"),
        ([{"role": {"x": 1}, "content": "hi"}], "messages[0].role"),
        ([{"role": "user", "content": "hi", "name": ["a b"]}], "messages[0].name"),
        ([{"role": "x", "content": [{"type": "video_url"}]}], "messages[0].content[0].video_url"),
        ([{"role": "user", "content": [{"image_url": 5}]}], "messages[0].content[0].image_url"),
        (
            [{"role": "system", "content": [{"type": "audio_url", "audio_url": "a"}]}],
            "messages[0].content[0].audio_url",
        ),
        (["hi"], "messages[0]"),
    ],
)
def test_malformed_vllm_shapes_are_refused_with_the_param(messages: list[Any], param: str) -> None:
    vllm, _ = engines()
    status, raw = chat(vllm, messages=messages)
    error = json.loads(raw)["error"]
    assert status == 400 and error["code"] == 400
    assert error["param"] == param


def test_history_vllm_accepts_is_read_as_sent() -> None:
    """A custom role, a `name` outside OpenAI's pattern and a missing `tool_call_id` are what
    matching and the journal see, not the forms the validator was given."""
    vllm, _ = engines()
    messages = [
        {"role": "ipython", "content": "x", "name": "Jane Doe"},
        {"role": "tool", "content": "r"},
        {"role": "user"},
    ]
    assert chat(vllm, messages=messages)[0] == 200
    request = vllm.journal[-1].request
    assert request is not None
    seen = [(m.role, m.name, m.tool_call_id, m.text) for m in request.messages]
    assert seen == [
        ("ipython", "Jane Doe", None, "x"),
        ("tool", None, None, "r"),
        ("user", None, None, ""),
    ]
    assert request.body["messages"] == messages


REFUSED_BY_BOTH: list[Any] = [
    pytest.param({"tools": [{"type": "web_search"}]}, "tools[0].type", id="provider-tool-type"),
    pytest.param({"tools": [TOOL], "tool_choice": "any"}, "tool_choice", id="tool-choice-any"),
    pytest.param(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "document_url", "document_url": {"url": "https://x/d.pdf"}}
                    ],
                }
            ]
        },
        "messages[0].content[0].type",
        id="document-url-part",
    ),
]


def test_vllm_refuses_file_parts_openai_takes() -> None:
    """vLLM reads no `file` part (chat_utils.py: "Unsupported chat content part type")."""
    vllm, openai_ = engines()
    part = {"type": "file", "file": {"file_id": "file-abc"}}
    messages = [{"role": "user", "content": [TEXT, part]}]
    assert chat(openai_, messages=messages)[0] == 200
    status, raw = chat(vllm, messages=messages)
    error = json.loads(raw)["error"]
    assert (status, error["param"], error["code"]) == (400, "messages[0].content[1].type", 400)
    assert "Unsupported chat content part type: 'file'" in error["message"]


@pytest.mark.parametrize(("extra", "param"), REFUSED_BY_BOTH)
def test_what_vllm_refuses_too_is_refused_in_each_error_body(
    extra: dict[str, Any], param: str
) -> None:
    vllm, openai_ = engines()
    body = {"model": "m", "messages": [USER], **extra}
    status, raw = chat(vllm, **body)
    error = json.loads(raw)["error"]
    assert status == 400
    assert error["type"] == "BadRequestError" and error["code"] == 400
    assert error["param"] == param
    status, raw = chat(openai_, **body)
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"


def test_sdk_raises_vllm_errors_with_their_body(tmp_path: Path) -> None:
    from tests.vllm_support import start, stop

    live = start(ANY)
    try:
        with pytest.raises(openai.BadRequestError) as raised:
            live.client.chat.completions.create(
                model="m",
                messages=[USER],  # type: ignore[list-item]
                extra_body={"top_k": -2},
            )
    finally:
        stop(live)
    assert raised.value.status_code == 400
    assert raised.value.body == {
        "message": "top_k must be 0 (disable), or at least 1, got -2.",
        "type": "BadRequestError",
        "param": "top_k",
        "code": 400,
    }


# -- structured_outputs: exactly one kind of constraint ----------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"json": {"type": "object"}}, None),
        ({"json": '{"type": "object"}'}, None),
        ({"regex": "[a-z]+"}, None),
        ({"choice": ["yes", "no"]}, None),
        ({"grammar": "root ::= 'x'"}, None),
        ({"json_object": True}, None),
        ({"structural_tag": "{}"}, None),
        ({"regex": "a", "disable_any_whitespace": True}, None),
        ({}, "You must use one kind of structured outputs constraint but none are specified"),
        ({"json": None, "regex": None}, "but none are specified"),
        ({"regex": "a", "choice": ["a"]}, "multiple are specified: regex, choice"),
        ({"json": {}, "grammar": "g", "json_object": True}, "json, grammar, json_object"),
        ({"choice": "yes"}, "structured_outputs.choice"),
        ({"regex": 5}, "structured_outputs.regex"),
        ({"json_object": "true"}, "structured_outputs.json_object"),
        ({"regex": "a", "disable_any_whitespace": "no"}, "disable_any_whitespace"),
        ("regex", "Input should be a valid dictionary"),
    ],
)
def test_structured_outputs_one_of(value: Any, problem: str | None) -> None:
    vllm, openai_ = engines()
    status, raw = chat(vllm, structured_outputs=value)
    if problem is None:
        assert status == 200, raw
    else:
        assert status == 400
        assert problem in json.loads(raw)["error"]["message"]
    assert chat(openai_, structured_outputs=value)[0] == 200  # OpenAI has no such field


# -- sampling extras: types and ranges ---------------------------------------------------------

RANGES: list[tuple[str, list[Any], list[Any]]] = [
    ("top_k", [-1, 0, 1, 50], [-2, 1.5, "5", True]),
    ("min_p", [0, 0.5, 1], [-0.1, 1.01, "x"]),
    ("repetition_penalty", [0.5, 1, 2.0], [0, -1, "x"]),
    ("min_tokens", [0, 3], [-1, 1.5]),
    ("stop_token_ids", [[], [1, 2]], [[1.5], "x", [True]]),
    ("allowed_token_ids", [[7]], [["7"]]),
    ("ignore_eos", [True, False], ["yes", 1]),
    ("skip_special_tokens", [True, False], ["no"]),
    ("include_stop_str_in_output", [True], [0]),
    ("spaces_between_special_tokens", [False], ["false"]),
    ("use_beam_search", [False], [None, "x"][1:]),
    ("return_token_ids", [True, False], ["yes"]),
    ("include_reasoning", [True, False], [1]),
    ("chat_template_kwargs", [{}, {"enable_thinking": False}], [[], "x"]),
    ("mm_processor_kwargs", [{}], [3]),
    ("chat_template", ["{{ messages }}"], [1]),
    ("priority", [-5, 0, 10], [1.5, 2**63, "1"]),
    ("prompt_logprobs", [-1, 0, 5], [-2, "x"]),
    ("truncate_prompt_tokens", [-1, 10], [-2]),
    ("thinking_token_budget", [-1, 0, 100], [-2, 1.5]),
    ("bad_words", [["bad"]], [[""], [1], "bad"]),
    ("length_penalty", [1.0, 2], ["x"]),
    ("cache_salt", ["salt"], [7]),
]


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [(f, v, True) for f, good, _ in RANGES for v in good]
    + [(f, v, False) for f, _, bad in RANGES for v in bad],
)
def test_sampling_extras_types_and_ranges(field: str, value: Any, ok: bool) -> None:
    vllm, openai_ = engines()
    status, raw = chat(vllm, **{field: value})
    if ok:
        assert status == 200, raw
    else:
        error = json.loads(raw)["error"]
        assert status == 400
        assert error["param"] == field or error["param"].startswith(f"{field}.")
        assert error["code"] == 400
    assert chat(openai_, **{field: value})[0] == 200  # unknown to OpenAI: tolerated


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"top_p": 0}, "top_p must be in (0, 1], got 0."),
        ({"min_tokens": 5, "max_tokens": 2}, "min_tokens must be less than or equal to"),
        ({"min_tokens": 5, "max_completion_tokens": 2}, "max_tokens=2, got 5"),
        ({"stream": True, "prompt_logprobs": 1}, "not available when `stream=True`"),
        (
            {"continue_final_message": True, "add_generation_prompt": True},
            "Cannot set both `continue_final_message` and `add_generation_prompt`",
        ),
        ({"n": 2, "temperature": 0}, "n must be 1 when using greedy sampling, got 2."),
        ({"stream": True, "stream_options": {"continuous_usage_stats": 1}}, "valid boolean"),
    ],
)
def test_vllm_cross_field_rules(body: dict[str, Any], message: str) -> None:
    vllm, _ = engines()
    status, raw = chat(vllm, **body)
    assert status == 400 and message in json.loads(raw)["error"]["message"]


def test_match_on_vllm_params() -> None:
    vllm, _ = engines()
    off = {"chat_template_kwargs": {"enable_thinking": False, "other": 1}}
    assert json.loads(chat(vllm, **off)[1])["choices"][0]["message"]["content"] == "no thinking"
    on = {"chat_template_kwargs": {"enable_thinking": True}}
    assert json.loads(chat(vllm, **on)[1])["choices"][0]["message"]["content"] == "ok"
    assert json.loads(chat(vllm, top_k=5)[1])["choices"][0]["message"]["content"] == "top k five"


def test_journal_keeps_the_bytes_as_sent() -> None:
    vllm, _ = engines()
    body = {"model": "m", "messages": [USER], "tools": [{"function": TOOL["function"]}]}
    raw = json.dumps(body).encode()
    assert vllm.handle_chat(raw).status == 200
    assert vllm.journal[-1].raw == raw


def test_errors_of_the_mock_keep_their_type_under_vllm() -> None:
    engine = MockEngine(
        load_text("version: 1\nscenarios:\n  - match: {model: x}\n    reply: {content: y}\n"),
        EngineConfig(profile="vllm"),
    )
    status, raw = chat(engine)
    error = json.loads(raw)["error"]
    assert (status, error["type"], error["code"]) == (404, "mockserver_no_match", 404)
    unknown = json.loads(engine.handle("GET", "/v1/nothing").body)["error"]
    assert (unknown["type"], unknown["code"]) == ("NotFoundError", 404)


# -- the flags ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--profile", "tgi"], ["invalid choice: 'tgi'", "openai", "vllm"]),
        (["--reasoning-field", "thinking"], ["invalid choice: 'thinking'", "reasoning_content"]),
    ],
)
def test_bad_profile_flags_say_what_is_allowed(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragments: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "scenarios", *argv])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert all(f in err for f in fragments), err


def test_serve_profile_vllm_as_a_process(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("version: 1\nscenarios:\n  - reply: {content: hi, reasoning: hmm}\n")
    flags = ("--port", "0", "--profile", "vllm", "--reasoning-field", "both")
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "serve", str(scenario), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        url = re.search(r"(http://\S+/v1)", line)
        assert url, line
        client = openai.OpenAI(base_url=url[1], api_key="k", _strict_response_validation=True)
        reply = client.chat.completions.create(model="m", messages=[USER])  # type: ignore[list-item]
        assert reply.choices[0].message.model_extra == {
            "reasoning": "hmm",
            "reasoning_content": "hmm",
        }
    finally:
        process.terminate()
        process.wait(5)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()


def test_strict_vllm_knows_vllms_fields() -> None:
    engine = MockEngine(load_text(ANY), EngineConfig(profile="vllm", strict=True))
    assert chat(engine, top_k=5, guided_regex="a+", request_id="r1")[0] == 200
    status, raw = chat(engine, top_kk=5)
    error = json.loads(raw)["error"]
    assert (status, error["param"], error["code"]) == (400, "top_kk", 400)
    openai_strict = MockEngine(load_text(ANY), EngineConfig(strict=True))
    assert chat(openai_strict, top_k=5)[0] == 400


def test_journal_reads_vllm_requests_back() -> None:
    vllm, _ = engines()
    chat(vllm, tools=[{"function": TOOL["function"]}])
    request = vllm.journal[-1].request
    assert request is not None and request.tools == ("get_weather",)
    assert request.body["tools"] == [{"function": TOOL["function"]}]
