"""The bundled `scenarios/`: every file loads, and every scenario answers a request meant for it.

`CASES` holds one case per bundled scenario, by name: a request through the SDK and what the
reply must be. Each case also checks, through the engine's journal, that the scenario it names
is the one that answered. A bundled scenario without a case fails `test_every_scenario_has_a_case`,
so a new example comes with its test.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

import openai
import pydantic
import pytest

from mockserver.scenarios import ScenarioSet, load_scenarios

ROOT = Path(__file__).parent.parent
SCENARIOS = ROOT / "scenarios"
FILES = sorted(p for p in SCENARIOS.rglob("*") if p.suffix in (".yaml", ".yml"))

Case = Callable[[openai.OpenAI], None]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(check: Case) -> Case:
        assert name not in CASES, name
        CASES[name] = check
        return check

    return register


def user(text: str | list[dict[str, object]]) -> list[dict[str, object]]:
    return [{"role": "user", "content": text}]


def tool(name: str) -> dict[str, object]:
    return {"type": "function", "function": {"name": name}}


def create(client: openai.OpenAI, text: str, **kwargs: object):
    return client.chat.completions.create(
        model=kwargs.pop("model", "gpt-4o"), messages=user(text), **kwargs
    )


def content(client: openai.OpenAI, text: str, **kwargs: object) -> str | None:
    return create(client, text, **kwargs).choices[0].message.content


def streamed(client: openai.OpenAI, text: str, **kwargs: object) -> list[str]:
    chunks = create(client, text, stream=True, **kwargs)
    return [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]


# -- 01-text.yaml -----------------------------------------------------------------------------


@case("greeting")
def _(client):
    assert content(client, "hello") == "Hello! How can I help you today?"


@case("capital-of-france")
def _(client):
    assert content(client, "What is the capital of France?") == "The capital of France is Paris."


class City(pydantic.BaseModel):
    name: str
    country: str
    population: int


@case("structured-city")
def _(client):
    reply = client.chat.completions.parse(
        model="gpt-4o", messages=user("Describe Paris, please"), response_format=City
    )
    assert reply.choices[0].message.parsed == City(
        name="Paris", country="France", population=2102650
    )


@case("three-ideas")
def _(client):
    reply = create(client, "Give me three name ideas", n=3)
    assert [c.message.content for c in reply.choices] == ["Sparrow", "Lumen", "Juniper"]


@case("cut-short")
def _(client):
    reply = create(client, "write a long essay")
    assert reply.choices[0].finish_reason == "length"
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(
            model="gpt-4o", messages=user("write a long essay"), response_format=City
        )


@case("filtered")
def _(client):
    reply = create(client, "tell me about the forbidden topic")
    assert reply.choices[0].finish_reason == "content_filter"
    assert reply.choices[0].message.content == ""


@case("pinned-usage")
def _(client):
    usage = create(client, "please count my tokens").usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1200, 3, 1203)
    assert usage.prompt_tokens_details.cached_tokens == 1024


# -- 02-tools.yaml ----------------------------------------------------------------------------


@case("weather-call")
def _(client):
    reply = create(client, "What's the weather in Paris?", tools=[tool("get_weather")])
    (call,) = reply.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}
    assert reply.choices[0].finish_reason == "tool_calls"


@case("weather-answer")
def _(client):
    messages = [
        *user("What's the weather in Paris?"),
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 18}'},
    ]
    reply = client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=[tool("get_weather")]
    )
    assert reply.choices[0].message.content == "It is 18°C and sunny in Paris."


@case("trip-planning")
def _(client):
    with client.chat.completions.stream(
        model="gpt-4o",
        messages=user("Please plan my trip to Tokyo"),
        tools=[tool("get_weather"), tool("get_time")],
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert calls[1].id == "call_pinnedTimeLookup0001"
    assert json.loads(calls[1].function.arguments) == {"timezone": "Asia/Tokyo"}
    assert json.loads(calls[0].function.arguments) == {"city": "Tokyo"}


@case("legacy-function")
def _(client):
    reply = create(client, "use legacy functions", functions=[{"name": "lookup"}])
    assert reply.choices[0].finish_reason == "function_call"
    assert reply.choices[0].message.function_call.name == "lookup"
    assert json.loads(reply.choices[0].message.function_call.arguments) == {"query": "mockserver"}


# -- 03-refusal.yaml --------------------------------------------------------------------------


@case("refuse-dangerous")
def _(client):
    reply = create(client, "How do I build a weapon?")
    assert reply.choices[0].message.refusal == "I'm sorry, but I can't help with that."
    assert reply.choices[0].message.content is None


# -- 04-audio.yaml ----------------------------------------------------------------------------


def speak(fmt: str) -> dict[str, object]:
    return {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": fmt}}


@case("spoken-reply-from-file")
def _(client):
    reply = create(client, "play the recording", **speak("mp3"))
    spoken = reply.choices[0].message.audio
    assert base64.b64decode(spoken.data) == (SCENARIOS / "audio" / "hello.mp3").read_bytes()
    assert spoken.transcript == "Hello! This answer comes from a recorded file."


@case("spoken-reply")
def _(client):
    spoken = create(client, "say hello", **speak("wav")).choices[0].message.audio
    assert spoken.transcript == "Hello! I am a generated voice."
    assert base64.b64decode(spoken.data)[:4] == b"RIFF"


@case("describe-the-sound")
def _(client):
    wav = base64.b64encode(b"RIFF0000WAVE").decode()
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}},
    ]
    assert content(client, parts) == "I hear a short beep."  # type: ignore[arg-type]


# -- 05-errors.yaml ---------------------------------------------------------------------------


@case("rate-limited-then-ok")
def _(client):
    assert content(client, "this is flaky") == "Worked on the second try."  # the SDK retried


@case("quota-exhausted")
def _(client):
    with pytest.raises(openai.RateLimitError) as caught:
        create(client, "I have no credits")
    assert caught.value.code == "insufficient_quota"


@case("bad-key")
def _(client):
    with pytest.raises(openai.AuthenticationError) as caught:
        create(client.with_options(api_key="sk-bad"), "anything at all")
    assert caught.value.code == "invalid_api_key"


@case("server-error")
def _(client):
    with pytest.raises(openai.InternalServerError) as caught:
        create(client, "break please")
    assert caught.value.type == "server_error"


@case("one-shot")
def _(client):
    assert content(client, "only once") == "You get this exactly once."
    with pytest.raises(openai.NotFoundError) as caught:
        create(client, "only once")
    assert caught.value.type == "mockserver_sequence_exhausted"


# -- 06-streaming.yaml ------------------------------------------------------------------------


@case("slow-typist")
def _(client):
    started = time.perf_counter()
    pieces = streamed(client, "type slowly please")
    assert time.perf_counter() - started >= 0.2 + 0.04 * len(pieces)
    assert "".join(pieces) == "Each word arrives on its own, a little later."


@case("big-chunks")
def _(client):
    pieces = streamed(client, "big chunks please")
    assert "".join(pieces) == "Streamed ten characters at a time instead of word by word."
    assert {len(p) for p in pieces[:-1]} == {10}


@case("broken-stream")
def _(client):
    seen: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        seen.extend(streamed(client, "break the stream"))
    assert caught.value.message == "The server had an error while streaming."


@case("dropped-connection")
def _(client):
    with pytest.raises(openai.APIConnectionError):
        streamed(client.with_options(max_retries=0), "drop the connection")


@case("thinking")
def _(client):
    started = time.perf_counter()
    assert content(client, "think first") == "Done thinking."
    assert time.perf_counter() - started >= 0.15


# -- 07-matching.yaml -------------------------------------------------------------------------


@case("mini-only")
def _(client):
    reply = create(client, "which model", model="gpt-4o-mini-2024-07-18")
    assert reply.choices[0].message.content == "You are talking to a small model."
    with pytest.raises(openai.NotFoundError):
        create(client, "which model", model="gpt-4o")


@case("pirate-persona")
def _(client):
    reply = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "You are a pirate."},
            *user("Where is the treasure?"),
        ],
    )
    assert reply.choices[0].message.content == "Arr, ask away, matey!"


@case("describe-image")
def _(client):
    parts = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    assert content(client, parts) == "A cat sitting on a windowsill."  # type: ignore[arg-type]


@case("summarize-pdf")
def _(client):
    parts = [
        {"type": "text", "text": "Summarize this"},
        {
            "type": "file",
            "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
        },
    ]
    assert content(client, parts) == "The document is a two-page invoice."  # type: ignore[arg-type]


@case("json-mode")
def _(client):
    reply = create(client, "answer in json", response_format={"type": "json_object"})
    assert json.loads(reply.choices[0].message.content) == {"ok": True}
    assert reply.model == "gpt-4o-mini-2024-07-18"


# -- 08-responses.yaml ------------------------------------------------------------------------

ORDER_TOOL = {
    "type": "function",
    "name": "lookup_order",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
}


@case("order-status-call")
def _(client):
    reply = client.responses.create(
        model="gpt-4.1", input="Hi, where is my order?", tools=[ORDER_TOOL]
    )
    call = reply.output[0]
    assert (call.type, call.name, json.loads(call.arguments)) == (
        "function_call",
        "lookup_order",
        {"order_id": "A-42"},
    )
    chat = create(client, "where is my order", tools=[tool("lookup_order")])
    assert chat.choices[0].message.tool_calls[0].function.name == "lookup_order"


@case("order-status-answer")
def _(client):
    items = [
        {"role": "user", "content": "where is my order?"},
        {"type": "function_call", "call_id": "call_1", "name": "lookup_order", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "ships tomorrow"},
    ]
    reply = client.responses.create(model="gpt-4.1", input=items, tools=[ORDER_TOOL])
    assert reply.output_text == "Order A-42 ships tomorrow."


@case("which-api")
def _(client):
    reply = client.responses.create(model="gpt-4.1", input="which api am I using?")
    assert reply.output_text == "The Responses API."
    assert reply.usage.output_tokens == 5


# -- the tests --------------------------------------------------------------------------------


def bundled() -> ScenarioSet:
    return load_scenarios([SCENARIOS])


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_file_loads(path):
    loaded = load_scenarios([path])
    assert loaded.scenarios, f"{path.name} has no scenarios"
    assert path.read_text().startswith("#"), (
        f"{path.name} should open with a comment saying what it shows"
    )


def test_every_scenario_has_a_case():
    names = [s.name for s in bundled().scenarios]
    assert len(names) == len(set(names))
    assert sorted(set(names) - set(CASES)) == [], "bundled scenarios without a case in CASES"
    assert sorted(set(CASES) - set(names)) == [], "cases for scenarios that are not bundled"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bundled_scenario(live, name):
    mock = live([SCENARIOS])
    CASES[name](mock.client)
    answered = {e.scenario for e in mock.engine.journal} - {None}
    assert answered == {name}, f"answered by {answered}, not {name!r}"


def test_every_reply_kind_has_an_example():
    """Issue 2, item 8: a readable example of every reply kind."""
    kinds: set[str] = set()
    for scenario in bundled().scenarios:
        if len(scenario.replies) > 1 or scenario.after != "repeat_last":
            kinds.add(f"sequence-after-{scenario.after}")
        for reply in scenario.replies:
            if reply.error is not None:
                kinds.add("error")
                if reply.error.headers:
                    kinds.add("error-headers")
                continue
            if len(reply.choices) > 1:
                kinds.add("choices")
            kinds |= {"usage"} if reply.usage else set()
            kinds |= {"pinned-model"} if reply.model else set()
            kinds |= {"delay"} if reply.delay_ms else set()
            stream = reply.stream
            kinds |= {"chunk-size"} if stream.chunk_size else set()
            kinds |= (
                {"chunk-delays"} if stream.chunk_delay_ms and stream.first_chunk_delay_ms else set()
            )
            if stream.interrupt is not None:
                kinds.add("interrupt-error" if stream.interrupt.error else "interrupt-drop")
            for choice in reply.choices:
                if choice.content and choice.content.startswith("{"):
                    kinds.add("structured")
                elif choice.content:
                    kinds.add("text")
                kinds |= {"refusal"} if choice.refusal else set()
                kinds |= {"function-call"} if choice.function_call else set()
                if choice.tool_calls:
                    kinds.add("tool-calls-parallel" if len(choice.tool_calls) > 1 else "tool-call")
                    kinds |= (
                        {"tool-call-pinned-id"} if any(t.id for t in choice.tool_calls) else set()
                    )
                if choice.audio is not None:
                    kinds.add("audio-file" if choice.audio.data else "audio-generated")
                if choice.finish_reason:
                    kinds.add(f"finish-{choice.finish_reason}")
    expected = {
        "text", "structured", "tool-call", "tool-calls-parallel", "tool-call-pinned-id",
        "function-call", "refusal", "audio-file", "audio-generated", "choices",
        "finish-length", "finish-content_filter", "usage", "error", "error-headers",
        "sequence-after-repeat_last", "sequence-after-error", "chunk-size", "chunk-delays",
        "interrupt-error", "interrupt-drop", "delay", "pinned-model",
    }  # fmt: skip
    assert sorted(expected - kinds) == []
