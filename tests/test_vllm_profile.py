"""The `vllm` profile's replies: reasoning, harmony replies, vLLM's own fields, the seam.

Clients that read vLLM's fields (the openai SDK's extras, pydantic-ai's OpenAI model) run
against a uvicorn server on 127.0.0.1; exact bytes are checked in process with a seed.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest

from mockserver.engine import EngineConfig, MockEngine
from mockserver.errors import ScenarioError
from mockserver.scenarios import load_text
from tests.vllm_support import VllmLive, chat, events, start, stop, vllm_schema_errors

SCENARIOS = """
version: 1
scenarios:
  - name: think
    match: {last_user_message: {contains: think}}
    reply:
      reasoning: "The user greets me. I greet back."
      content: "Hello there!"
  - name: answer
    match: {last_message: {role: tool}}
    reply:
      reasoning: "The tool said sunny."
      content: "It is sunny in Paris."
  - name: tool
    match: {last_user_message: {contains: weather}}
    reply:
      reasoning: "I need the weather tool."
      tool_calls:
        - {name: get_weather, arguments: {city: Paris}, id: call_1}
  - name: gpt-oss
    match: {last_user_message: {contains: harmony}}
    reply:
      harmony:
        - {channel: analysis, content: "User wants the weather. Use the tool."}
        - {channel: commentary, content: "Let me check the weather."}
        - channel: commentary
          recipient: functions.get_weather
          content_type: "<|constrain|>json"
          content: '{"city":"Paris","unit":"c"}'
  - name: harmony-final
    match: {last_user_message: {contains: final}}
    reply:
      harmony:
        - {channel: analysis, content: "Short answer."}
        - {channel: commentary, content: "Preamble."}
        - {channel: final, content: "Done."}
  - name: interleaved
    match: {last_user_message: {contains: interleaved}}
    reply:
      stream: {chunk_size: 1000}
      harmony:
        - {channel: analysis, content: "Need weather."}
        - {channel: commentary, content: "Checking."}
        - {channel: commentary, recipient: functions.get_weather, content: '{"city":"Paris"}'}
        - {channel: analysis, content: "And the time."}
        - {channel: commentary, recipient: functions.get_time, content: '{"tz":"CET"}'}
        - {channel: final, content: "Done."}
  - name: stop-me
    match: {last_user_message: {contains: stop}}
    reply: {content: "one two END three"}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[VllmLive]:
    live = start(SCENARIOS, seed=7)
    yield live
    stop(live)


@pytest.fixture
def engine() -> MockEngine:
    return MockEngine(load_text(SCENARIOS), EngineConfig(seed=7, profile="vllm", models=("m",)))


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# -- reasoning through real clients ------------------------------------------------------------


def test_sdk_reads_reasoning_content_and_tool_calls(server: VllmLive) -> None:
    reply = server.client.chat.completions.create(model="qwen3", messages=ask("think"))  # type: ignore[arg-type]
    message = reply.choices[0].message
    assert message.content == "Hello there!"
    assert message.model_extra == {"reasoning": "The user greets me. I greet back."}
    assert reply.choices[0].model_extra == {
        "stop_reason": None,
        "token_ids": None,
        "routed_experts": None,
    }
    assert reply.usage is not None and reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens == 9
    called = server.client.chat.completions.create(
        model="qwen3",
        messages=ask("weather?"),  # type: ignore[arg-type]
        tools=[{"type": "function", "function": {"name": "get_weather"}}],
    )
    call = called.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city":"Paris"}')  # type: ignore[union-attr]
    assert called.choices[0].finish_reason == "tool_calls"
    assert called.choices[0].message.model_extra == {"reasoning": "I need the weather tool."}


def test_sdk_streams_reasoning_before_content(server: VllmLive) -> None:
    stream = server.client.chat.completions.create(
        model="qwen3",
        messages=ask("think"),  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    order: list[str] = []
    reasoning = content = ""
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            extra = choice.delta.model_extra or {}
            if extra.get("reasoning"):
                reasoning += extra["reasoning"]
                order.append("reasoning")
            if choice.delta.content:
                content += choice.delta.content
                order.append("content")
    assert reasoning == "The user greets me. I greet back."
    assert content == "Hello there!"
    assert order == sorted(order, key=["reasoning", "content"].index)
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 9


@pytest.mark.anyio
async def test_pydantic_ai_turns_reasoning_into_thinking(server: VllmLive) -> None:
    """An agent framework (pydantic-ai's OpenAI chat model) reads reasoning as thinking, calls
    the scripted tool and reads the final answer, streaming and not."""
    from pydantic_ai import Agent
    from pydantic_ai.messages import ThinkingPart, ToolCallPart
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel("qwen3", provider=OpenAIProvider(openai_client=server.aclient))
    agent = Agent(model)
    calls: list[str] = []

    @agent.tool_plain
    def get_weather(city: str) -> str:
        calls.append(city)
        return "sunny"

    result = await agent.run("weather in Paris?")
    assert result.output == "It is sunny in Paris."
    assert calls == ["Paris"]
    parts = [p for m in result.all_messages() for p in m.parts]
    thinking = [p.content for p in parts if isinstance(p, ThinkingPart)]
    assert thinking == ["I need the weather tool.", "The tool said sunny."]
    assert [p.tool_name for p in parts if isinstance(p, ToolCallPart)] == ["get_weather"]

    async with agent.run_stream("think about it") as streamed:
        text = await streamed.get_output()
        thought = [
            p.content
            for m in streamed.all_messages()
            for p in m.parts
            if isinstance(p, ThinkingPart)
        ]
    assert text == "Hello there!"
    assert thought == ["The user greets me. I greet back."]


# -- exact wire shapes -------------------------------------------------------------------------


def test_completion_has_vllm_fields_and_fits_openai_schema_otherwise(engine: MockEngine) -> None:
    status, raw = chat(engine, messages=ask("think"), logprobs=True, top_logprobs=1)
    assert status == 200
    body = json.loads(raw)
    assert list(body) == [
        "id",
        "object",
        "created",
        "model",
        "choices",
        "service_tier",
        "system_fingerprint",
        "usage",
        "prompt_logprobs",
        "prompt_token_ids",
        "prompt_text",
        "kv_transfer_params",
        "ec_transfer_params",
        "metrics",
    ]
    choice = body["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Hello there!",
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "reasoning": "The user greets me. I greet back.",
    }
    assert list(choice["logprobs"]) == ["content"]
    assert body["usage"] == {
        "prompt_tokens": 7,
        "total_tokens": 7 + 12,
        "completion_tokens": 12,
        "prompt_tokens_details": None,
        "completion_tokens_details": {"reasoning_tokens": 9},
    }
    assert vllm_schema_errors(raw, streamed=False) == []


def test_stream_chunks_are_vllm_shaped(engine: MockEngine) -> None:
    status, raw = chat(
        engine, messages=ask("think"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(events(raw))
    assert status == 200
    first, *middle, last, usage = chunks
    assert first["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    assert (first["prompt_token_ids"], first["prompt_text"]) == (None, None)
    assert "service_tier" not in first and "system_fingerprint" not in first
    kinds = [next(iter(c["choices"][0]["delta"])) for c in middle]
    assert kinds == ["reasoning"] * 9 + ["content"] * 3
    assert middle[0]["choices"][0] == {
        "index": 0,
        "delta": {"reasoning": "The"},
        "logprobs": None,
        "finish_reason": None,
        "token_ids": None,
    }
    assert last["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
        "stop_reason": None,
        "token_ids": None,
    }
    assert usage["choices"] == []
    assert usage["usage"] == {
        "prompt_tokens": 7,
        "total_tokens": 19,
        "completion_tokens": 12,
        "completion_tokens_details": {"reasoning_tokens": 9},
    }
    assert vllm_schema_errors(raw, streamed=True) == []


@pytest.mark.parametrize(
    ("field", "keys"),
    [
        ("reasoning", ["reasoning"]),
        ("reasoning_content", ["reasoning_content"]),
        ("both", ["reasoning", "reasoning_content"]),
    ],
)
def test_reasoning_field_names_the_keys(field: str, keys: list[str]) -> None:
    engine = MockEngine(
        load_text(SCENARIOS), EngineConfig(profile="vllm", reasoning_field=field, seed=1)
    )
    message = json.loads(chat(engine, messages=ask("think"))[1])["choices"][0]["message"]
    assert [k for k in message if k.startswith("reasoning")] == keys
    assert {message[k] for k in keys} == {"The user greets me. I greet back."}
    deltas = [
        c["choices"][0]["delta"]
        for c in events(chat(engine, messages=ask("think"), stream=True)[1])
    ]
    assert [list(d) for d in deltas if "content" not in d and "role" not in d and d] == [keys] * 9


def test_openai_profile_hides_reasoning_but_counts_its_tokens() -> None:
    engine = MockEngine(load_text(SCENARIOS), EngineConfig(seed=1))
    body = json.loads(chat(engine, messages=ask("think"))[1])
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hello there!",
        "refusal": None,
        "annotations": [],
    }
    assert body["usage"]["completion_tokens"] == 12
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 9
    streamed = chat(engine, messages=ask("think"), stream=True)[1]
    assert b"reasoning" not in streamed.replace(b'"reasoning_tokens"', b"")


# -- harmony replies ---------------------------------------------------------------------------


def test_harmony_reply_is_the_message_vllm_makes(engine: MockEngine) -> None:
    """Expected JSON written from vLLM's code: reasoning is the analysis text
    (entrypoints/openai/parser/harmony_utils.py parse_chat_output); with a tool call the content
    is the last final message, else the last preamble, and the arguments are re-encoded with
    json.dumps defaults (tool_parsers/openai_tool_parser.py OpenAIToolParser.extract_tool_calls);
    ChatMessage drops nothing but an empty tool_calls (chat_completion/protocol.py)."""
    body = json.loads(
        chat(
            engine,
            messages=ask("harmony"),
            tools=[{"type": "function", "function": {"name": "get_weather"}}],
        )[1]
    )
    message = body["choices"][0]["message"]
    call_id = message["tool_calls"][0]["id"]
    assert message == {
        "role": "assistant",
        "content": "Let me check the weather.",
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'},
            }
        ],
        "reasoning": "User wants the weather. Use the tool.",
    }
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    final = json.loads(chat(engine, messages=ask("final"))[1])["choices"][0]["message"]
    assert (final["content"], final["reasoning"]) == ("Preamble.\nDone.", "Short answer.")
    streamed = list(events(chat(engine, messages=ask("harmony"), stream=True)[1]))
    kinds = [next(iter(c["choices"][0]["delta"]), "") for c in streamed]
    assert kinds.index("reasoning") < kinds.index("content") < kinds.index("tool_calls")


TOOL_ID = re.compile(r"chatcmpl-tool-[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}")
"""vLLM's `make_tool_call_id()` (vllm/entrypoints/chat_utils.py): `chatcmpl-tool-` and
`random_uuid()`, a UUID4's hex (version nibble 4, variant 8-b)."""


def test_harmony_stream_follows_the_models_order(engine: MockEngine) -> None:
    """Expected deltas written from vLLM's code: vllm/entrypoints/openai/chat_completion/
    stream_harmony.py `extract_harmony_streaming_delta` turns each message into deltas as the
    model produces it: `analysis` -> `reasoning`, a message to `functions.X` -> a tool call
    opened with `make_tool_call_id()`, `type`, `name` and `arguments: ""` at the next index,
    then its arguments as written; preambles and `final` -> `content`. serving.py
    `chat_completion_stream_generator` finishes with `tool_calls` once a call was streamed
    (`harmony_tools_streamed`), whatever `tool_choice` says."""
    raw = chat(
        engine,
        messages=ask("interleaved"),
        stream=True,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        tools=[{"type": "function", "function": {"name": n}} for n in ("get_weather", "get_time")],
    )[1]
    chunks = [c["choices"][0] for c in events(raw)]
    ids = [c["delta"]["tool_calls"][0].get("id") for c in chunks if "tool_calls" in c["delta"]]
    first, second = ids[0], ids[2]
    assert TOOL_ID.fullmatch(first) and TOOL_ID.fullmatch(second) and first != second
    assert [c["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"reasoning": "Need weather."},
        {"content": "Checking."},
        {
            "tool_calls": [
                {
                    "id": first,
                    "type": "function",
                    "index": 0,
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Paris"}'}}]},
        {"reasoning": "And the time."},
        {
            "tool_calls": [
                {
                    "id": second,
                    "type": "function",
                    "index": 1,
                    "function": {"name": "get_time", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 1, "function": {"arguments": '{"tz":"CET"}'}}]},
        {"content": "Done."},
        {},
    ]
    assert chunks[-1]["finish_reason"] == "tool_calls"
    assert vllm_schema_errors(raw, streamed=True) == []
    hidden = chat(engine, messages=ask("interleaved"), stream=True, include_reasoning=False)[1]
    deltas = [c["choices"][0]["delta"] for c in events(hidden)]
    assert [next(iter(d), "") for d in deltas] == [
        "role", "content", "tool_calls", "tool_calls", "tool_calls", "tool_calls", "content", ""
    ]  # fmt: skip


def test_harmony_whole_message_is_vllms(engine: MockEngine) -> None:
    """Expected JSON written from vLLM's code: the reasoning joins every analysis message with
    newlines (parser/harmony_utils.py `parse_chat_output`); the openai tool parser
    (tool_parsers/openai_tool_parser.py `extract_tool_calls`) makes each message to
    `functions.X` a `ToolCall` (id from `make_tool_call_id`, arguments re-encoded by
    `json.dumps`) in order, and the content is the last `final` message (else the last
    preamble); serving.py `chat_completion_full_generator` finishes with `tool_calls`."""
    choice = json.loads(chat(engine, messages=ask("interleaved"))[1])["choices"][0]
    calls = choice["message"]["tool_calls"]
    assert all(TOOL_ID.fullmatch(c["id"]) for c in calls)
    assert choice["message"] == {
        "role": "assistant",
        "content": "Done.",
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "tool_calls": [
            {
                "id": calls[0]["id"],
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": calls[1]["id"],
                "type": "function",
                "function": {"name": "get_time", "arguments": '{"tz": "CET"}'},
            },
        ],
        "reasoning": "Need weather.\nAnd the time.",
    }
    assert choice["finish_reason"] == "tool_calls"


def test_harmony_stream_through_the_sdk(server: VllmLive) -> None:
    """The openai SDK (strict) reads the stream; what it gathers is the model's output in order."""
    stream = server.client.chat.completions.create(
        model="m", messages=ask("interleaved"), stream=True
    )
    reasoning, content, calls = "", "", {}
    for chunk in stream:
        delta = chunk.choices[0].delta
        reasoning += (delta.model_extra or {}).get("reasoning") or ""
        content += delta.content or ""
        for call in delta.tool_calls or ():
            entry = calls.setdefault(call.index, ["", ""])
            entry[0] += (call.function and call.function.name) or ""
            entry[1] += (call.function and call.function.arguments) or ""
    assert (reasoning, content) == ("Need weather.And the time.", "Checking.Done.")
    assert calls == {0: ["get_weather", '{"city":"Paris"}'], 1: ["get_time", '{"tz":"CET"}']}


def test_tool_call_ids_are_vllms_and_seeded() -> None:
    """Generated tool-call ids take vLLM's form under `vllm`, OpenAI's under `openai`, and a
    seed makes them the same run after run (a scenario's own `id` is kept as written)."""
    yaml = "version: 1\nscenarios:\n  - reply: {tool_calls: [{name: f, arguments: {}}]}\n"

    def call_id(profile: str, seed: int | None, stream: bool = False) -> str:
        engine = MockEngine(load_text(yaml), EngineConfig(profile=profile, seed=seed))
        raw = chat(engine, stream=stream)[1]
        if stream:
            deltas = [c["choices"][0]["delta"] for c in events(raw) if c["choices"]]
            return next(d["tool_calls"][0]["id"] for d in deltas if "tool_calls" in d)
        return str(json.loads(raw)["choices"][0]["message"]["tool_calls"][0]["id"])

    assert TOOL_ID.fullmatch(call_id("vllm", 3)) and TOOL_ID.fullmatch(call_id("vllm", 3, True))
    assert call_id("vllm", 3) == call_id("vllm", 3) != call_id("vllm", 4)
    assert call_id("vllm", None) != call_id("vllm", None)
    assert re.fullmatch(r"call_[A-Za-z0-9]{24}", call_id("openai", 3))


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("{harmony: []}", "expected a non-empty list of harmony messages"),
        (
            "{harmony: [{channel: chat, content: x}]}",
            "unknown value 'chat' (allowed: analysis, commentary, final)",
        ),
        (
            "{harmony: [{channel: commentary, recipient: browser.search, content: x}]}",
            "expected a recipient of the form functions.NAME",
        ),
        ("{harmony: [{channel: final, content: x}], content: y}", "drop content"),
        (
            "{harmony: [{channel: final, recipient: functions.f, content: x}]}",
            "a final message has no recipient",
        ),
    ],
)
def test_bad_harmony_replies_name_the_key(reply: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as failed:
        load_text(f"version: 1\nscenarios:\n  - name: a\n    reply: {reply}\n", "h.yaml")
    assert "h.yaml:4" in str(failed.value) and problem in str(failed.value)


def test_match_on_harmony_history() -> None:
    engine = MockEngine(
        load_text(
            """
version: 1
scenarios:
  - name: after-tool
    match: {harmony: {channel: commentary, recipient: functions.get_weather}}
    reply: {content: "after the tool"}
  - name: other
    reply: {content: "other"}
"""
        ),
        EngineConfig(profile="vllm"),
    )
    history = [
        {"role": "user", "content": "weather?"},
        {
            "author": {"role": "assistant"},
            "channel": "commentary",
            "recipient": "functions.get_weather",
            "content": '{"city":"Paris"}',
        },
    ]
    assert json.loads(chat(engine, messages=history)[1])["choices"][0]["message"]["content"] == (
        "after the tool"
    )
    plain = chat(engine, messages=ask("hi"))[1]
    assert json.loads(plain)["choices"][0]["message"]["content"] == "other"
    with pytest.raises(ScenarioError, match="expected at least one of channel"):
        load_text("version: 1\nscenarios:\n  - match: {harmony: {}}\n    reply: {content: x}\n")


# -- vLLM's own response fields ----------------------------------------------------------------


def test_stop_reason_is_the_stop_string(engine: MockEngine) -> None:
    choice = json.loads(chat(engine, messages=ask("stop"), stop=["END"])[1])["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"], choice["stop_reason"]) == (
        "one two ",
        "stop",
        "END",
    )
    last = list(events(chat(engine, messages=ask("stop"), stop="END", stream=True)[1]))[-1]
    assert last["choices"][0]["stop_reason"] == "END"
    capped = json.loads(chat(engine, messages=ask("stop"), max_tokens=1)[1])["choices"][0]
    assert (capped["finish_reason"], capped["stop_reason"]) == ("length", None)


def test_return_token_ids_gives_deterministic_ids(engine: MockEngine) -> None:
    body = json.loads(chat(engine, messages=ask("think"), return_token_ids=True)[1])
    again = json.loads(chat(engine, messages=ask("think"), return_token_ids=True)[1])
    assert body["prompt_token_ids"] == again["prompt_token_ids"]
    assert len(body["prompt_token_ids"]) == body["usage"]["prompt_tokens"]
    ids = body["choices"][0]["token_ids"]
    assert len(ids) == body["usage"]["completion_tokens"]
    assert all(type(i) is int and i >= 0 for i in ids)
    chunks = list(
        events(chat(engine, messages=ask("think"), return_token_ids=True, stream=True)[1])
    )
    assert chunks[0]["prompt_token_ids"] == body["prompt_token_ids"]
    streamed = [i for c in chunks[1:] for i in c["choices"][0]["token_ids"]]
    assert streamed == ids
    plain = json.loads(chat(engine, messages=ask("think"))[1])
    assert plain["prompt_token_ids"] is None and plain["choices"][0]["token_ids"] is None


def test_prompt_logprobs(engine: MockEngine) -> None:
    body = json.loads(chat(engine, messages=ask("think"), prompt_logprobs=2)[1])
    logprobs = body["prompt_logprobs"]
    assert len(logprobs) == body["usage"]["prompt_tokens"] and logprobs[0] is None
    for entry in logprobs[1:]:
        assert len(entry) == 3
        ranks = sorted(v["rank"] for v in entry.values())
        assert ranks == [1, 2, 3]
        assert all(v["logprob"] < 0 for v in entry.values())
    assert json.loads(chat(engine, messages=ask("think"))[1])["prompt_logprobs"] is None


def test_continuous_usage_stats_on_every_chunk(engine: MockEngine) -> None:
    raw = chat(
        engine,
        messages=ask("think"),
        stream=True,
        stream_options={"include_usage": True, "continuous_usage_stats": True},
    )[1]
    chunks = list(events(raw))
    counts = [c["usage"]["completion_tokens"] for c in chunks]
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] == 12
    assert all(c["usage"]["prompt_tokens"] == 7 for c in chunks)
    assert all(c["usage"]["total_tokens"] == 7 + c["usage"]["completion_tokens"] for c in chunks)
    none = list(events(chat(engine, messages=ask("think"), stream=True)[1]))
    assert all("usage" not in c for c in none)
    assert vllm_schema_errors(raw, streamed=True) == []


# -- the seam: how a profile is chosen ---------------------------------------------------------

VLLM_FILE = "version: 1\nprofile: vllm\nscenarios:\n  - reply: {content: x, reasoning: y}\n"


def test_a_file_declares_its_profile() -> None:
    engine = MockEngine(load_text(VLLM_FILE, "v.yaml"))
    assert engine.profile.name == "vllm"
    assert json.loads(chat(engine)[1])["choices"][0]["message"]["reasoning"] == "y"
    assert MockEngine(load_text(VLLM_FILE), EngineConfig(profile="vllm")).profile.name == "vllm"


def test_profile_clashes_are_scenario_errors() -> None:
    with pytest.raises(ScenarioError, match=r"v\.yaml:4: profile: this file declares profile "):
        MockEngine(load_text(VLLM_FILE, "v.yaml"), EngineConfig(profile="openai"))
    other = load_text(VLLM_FILE.replace("vllm", "openai"), "o.yaml")
    with pytest.raises(
        ScenarioError, match=r"declares profile 'openai', but v\.yaml declares 'vllm'"
    ):
        load_text(VLLM_FILE, "v.yaml").extend(other)
    engine = MockEngine(load_text(VLLM_FILE, "v.yaml"))
    with pytest.raises(ScenarioError, match="the server runs profile 'vllm'"):
        engine.add_scenarios(other.scenarios)
    with pytest.raises(
        ScenarioError, match=r"<inline>:2: profile: unknown value 'tgi' \(allowed: openai, vllm\)"
    ):
        load_text("version: 1\nprofile: tgi\nscenarios: []\n")


def test_vllm_models_list() -> None:
    engine = MockEngine(load_text(VLLM_FILE), EngineConfig(models=("qwen3",)))
    outcome = engine.handle("GET", "/v1/models")
    card = json.loads(outcome.body)["data"][0]
    assert {k: card[k] for k in ("id", "object", "owned_by", "root", "parent")} == {
        "id": "qwen3",
        "object": "model",
        "owned_by": "vllm",
        "root": "qwen3",
        "parent": None,
    }
    assert card["max_model_len"] == 131072 and card["permission"][0]["object"] == "model_permission"
    from tests.support import schema_errors
    from tests.vllm_support import ADDED

    listed = json.loads(outcome.body)
    for entry in listed["data"]:
        for key in ADDED["model"]:
            del entry[key]
    assert schema_errors("ListModelsResponse", listed) == []
    # a model is found when some scenario would answer it: here only qwen3 is
    only = "version: 1\nprofile: vllm\nscenarios:\n  - match: {model: qwen3}\n    reply: {content: x}\n"
    missing = json.loads(MockEngine(load_text(only)).handle("GET", "/v1/models/nope").body)
    assert missing["error"]["code"] == 404 and missing["error"]["type"] == "NotFoundError"


def test_guided_fields_are_noted_in_journal_and_log(
    engine: MockEngine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mockserver"):
        status, _ = chat(engine, messages=ask("think"), guided_json={"type": "object"})
    assert status == 200
    (note,) = engine.journal[-1].notes
    assert "`guided_json` was removed from vLLM" in note and "structured_outputs" in note
    assert any("guided_json" in r.getMessage() for r in caplog.records)
    chat(engine, messages=ask("think"))
    assert engine.journal[-1].notes == ()


def test_reasoning_per_choice_and_openai_schema_under_openai() -> None:
    from tests.support import schema_errors

    text = """
version: 1
scenarios:
  - reply:
      choices:
        - {content: a, reasoning: "first thought"}
        - {content: b}
"""
    vllm = MockEngine(load_text(text), EngineConfig(profile="vllm"))
    choices = json.loads(chat(vllm, n=2)[1])["choices"]
    assert [c["message"]["reasoning"] for c in choices] == ["first thought", None]
    openai_ = MockEngine(load_text(text))
    body = json.loads(chat(openai_, n=2)[1])
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2
    assert schema_errors("CreateChatCompletionResponse", body) == []


def test_builder_takes_reasoning_and_harmony() -> None:
    from mockserver.builder import reply, scenario, scenario_set

    made = scenario_set(
        scenario("r", reply=reply("hi", reasoning="thought")),
        scenario("h", reply=reply(harmony=[{"channel": "final", "content": "done"}])),
    )
    first, second = (s.replies[0].choices[0] for s in made.scenarios)
    assert (first.content, first.reasoning) == ("hi", "thought")
    assert (second.content, second.reasoning) == ("done", None)


def test_named_tool_choice_finishes_with_stop_and_include_reasoning_false_hides(
    engine: MockEngine,
) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather"}}]
    named = {"type": "function", "function": {"name": "get_weather"}}
    body = json.loads(chat(engine, messages=ask("weather"), tools=tools, tool_choice=named)[1])
    assert body["choices"][0]["finish_reason"] == "stop"
    last = list(
        events(
            chat(engine, messages=ask("weather"), tools=tools, tool_choice=named, stream=True)[1]
        )
    )[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    auto = json.loads(chat(engine, messages=ask("weather"), tools=tools)[1])
    assert auto["choices"][0]["finish_reason"] == "tool_calls"
    hidden = json.loads(chat(engine, messages=ask("think"), include_reasoning=False)[1])
    assert hidden["choices"][0]["message"]["reasoning"] is None
    assert hidden["usage"]["completion_tokens_details"]["reasoning_tokens"] == 9
    streamed = chat(
        engine,
        messages=ask("think"),
        include_reasoning=False,
        stream=True,
        stream_options={"continuous_usage_stats": True},
    )[1]
    chunks = list(events(streamed))
    assert not any("reasoning" in c["choices"][0]["delta"] for c in chunks if c["choices"])
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 9


def test_the_apps_own_errors_use_the_profiles_body() -> None:
    """A body over the size limit and an unknown path are refused by the app, not the engine:
    under vllm they still come in vLLM's error body (an integer `code`, its type name)."""
    import httpx

    from mockserver.app import create_app
    from mockserver.server import BackgroundServer

    engine = MockEngine(load_text(VLLM_FILE), EngineConfig(max_body_size=1000))
    with BackgroundServer(create_app(engine)) as running:
        too_big = httpx.post(running.url + "/chat/completions", content=b"{" + b" " * 2000 + b"}")
        unknown = httpx.get(running.url.removesuffix("/v1") + "/nowhere")
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == 413
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == 404
    assert unknown.json()["error"]["type"] == "NotFoundError"


def test_the_journal_reads_a_request_again_with_its_profile() -> None:
    """`top_k` is vLLM's own field: the journal of a vllm server does not call it unknown (the
    openai profile tolerates and lists it)."""
    from mockserver import journal_view

    body = json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_k": 5}
    ).encode()
    unknown = {}
    for profile in ("vllm", "openai"):
        engine = MockEngine(
            load_text("scenarios:\n  - reply: {content: x}\n"), EngineConfig(profile=profile)
        )
        assert engine.handle_chat(body).status == 200
        shown = journal_view.entries([(None, engine)], journal_view.Query())
        unknown[profile] = shown[0]["unknown_fields"]
        assert engine.journal[0].request is not None
        assert list(engine.journal[0].request.unknown_fields) == unknown[profile]
    assert unknown == {"vllm": [], "openai": ["top_k"]}
