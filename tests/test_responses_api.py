"""The Responses API (`POST /v1/responses`) through the real openai SDK with strict response
validation, on a real server; every reply and every streamed event is validated against
OpenAI's schema (`tests/support.py`, `responses.schema.json`)."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest
from pydantic import BaseModel

from mockserver import sse, tokens
from mockserver.responses_api.template import ResponseTemplate
from tests.support import check_responses_stream

SCENARIOS = """
version: 1
scenarios:
  - name: weather-answer
    priority: 10
    match:
      last_message: {role: tool}
      tools: [get_weather]
    reply: {content: "It is 18°C and sunny in Paris."}
  - name: weather-call
    match:
      tools: [get_weather]
      last_user_message: {contains: weather}
    reply:
      tool_calls: [{name: get_weather, arguments: {city: Paris}}]
  - name: trip
    match: {last_user_message: {contains: plan my trip}}
    reply:
      tool_calls:
        - {name: get_weather, arguments: {city: Tokyo}}
        - {name: get_time, id: call_pinned0001, arguments: '{"tz": "Asia/Tokyo"}'}
  - name: patch
    match: {last_user_message: {contains: patch}}
    reply:
      tool_calls: [{name: apply_patch, type: custom, input: "*** Begin Patch"}]
  - name: structured
    match: {response_format: {type: json_schema, name: Person}}
    reply: {content: '{"name": "Ada", "age": 36}'}
  - name: pirate
    match: {system_message: {contains: pirate}}
    reply: {content: "Arr, matey!"}
  - name: refuse
    match: {last_user_message: {contains: forbidden}}
    reply: {refusal: "I can't help with that."}
  - name: limited
    match: {last_user_message: {contains: essay}}
    reply: {content: "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"}
  - name: rate-limited
    match: {last_user_message: {contains: busy}}
    reply: {error: {status: 429}}
  - name: broken-stream
    match: {last_user_message: {contains: break}}
    reply:
      content: "this stream breaks halfway through"
      stream: {interrupt: {after_chunks: 5, error: {status: 500, message: "upstream fell over"}}}
  - name: second-turn
    priority: 5
    match:
      any_message: {contains: "my name is Ada"}
      last_user_message: {contains: what is my name}
    reply: {content: "Your name is Ada."}
  - name: responses-only
    match: {api: responses, last_user_message: which api}
    reply: {content: "responses"}
  - name: chat-only
    match: {api: chat, last_user_message: which api}
    reply: {content: "chat"}
  - name: thinker
    match: {last_user_message: {contains: think}}
    reply: {reasoning: "Weighing the options first.", content: "Forty-two."}
  - name: percent
    match: {last_user_message: {contains: percent}}
    reply: {content: "100% sure: %s %b %% %(x)s"}
  - name: hello
    reply: {content: "Hello there!"}
"""

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture
def server(live):
    return live(SCENARIOS, seed=7)


def test_create_text_usage_and_instructions(server):
    reply = server.client.responses.create(model="gpt-4.1", input="hi")
    assert reply.output_text == "Hello there!"
    assert reply.status == "completed"
    assert reply.output[0].content[0].annotations == []
    assert reply.usage.input_tokens > 0
    assert reply.usage.total_tokens == reply.usage.input_tokens + reply.usage.output_tokens
    assert reply.id.startswith("resp_")
    pirate = server.client.responses.create(
        model="gpt-4.1", instructions="Talk like a pirate.", input="hi"
    )
    assert pirate.output_text == "Arr, matey!"
    assert pirate.instructions == "Talk like a pirate."


@pytest.mark.anyio
async def test_create_async_and_streamed(server):
    reply = await server.aclient.responses.create(model="gpt-4.1", input="hello")
    assert reply.output_text == "Hello there!"
    stream = await server.aclient.responses.create(model="gpt-4.1", input="hello", stream=True)
    kinds, text = [], []
    async for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text.append(event.delta)
    assert "".join(text) == "Hello there!"
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed"


def test_sync_stream_event_grammar(server):
    with server.client.responses.create(model="gpt-4.1", input="hello", stream=True) as stream:
        events = list(stream)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * (len(events) - 8),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1].response
    assert final.output_text == "Hello there!"
    delta = next(e for e in events if e.type == "response.output_text.delta")
    assert delta.item_id == final.output[0].id
    assert (delta.output_index, delta.content_index) == (0, 0)


def test_stream_helper_and_final_response(server):
    with server.client.responses.stream(
        model="gpt-4.1", input="what is the weather?", tools=[WEATHER_TOOL]
    ) as stream:
        done = [e for e in stream if e.type == "response.function_call_arguments.done"]
        final = stream.get_final_response()
    assert done[0].arguments == '{"city":"Paris"}'
    call = final.output[0]
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert call.call_id.startswith("call_")
    assert json.loads(call.arguments) == {"city": "Paris"}


def test_parse_with_a_pydantic_model(server):
    class Person(BaseModel):
        name: str
        age: int

    parsed = server.client.responses.parse(model="gpt-4.1", input="who is she?", text_format=Person)
    assert parsed.output_parsed == Person(name="Ada", age=36)
    assert parsed.text.format.type == "json_schema"


def test_function_calling_loop_with_function_call_output(server):
    client = server.client
    first = client.responses.create(
        model="gpt-4.1", input="what is the weather in Paris?", tools=[WEATHER_TOOL]
    )
    call = first.output[0]
    assert call.type == "function_call"
    # the manual loop: send the whole conversation back, with the tool's output
    items = [
        {"role": "user", "content": "what is the weather in Paris?"},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 18}'},
    ]
    second = client.responses.create(model="gpt-4.1", input=items, tools=[WEATHER_TOOL])
    assert second.output_text == "It is 18°C and sunny in Paris."
    # the stored loop: only the tool's output, after the previous response
    third = client.responses.create(
        model="gpt-4.1",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C"}],
        tools=[WEATHER_TOOL],
    )
    assert third.output_text == "It is 18°C and sunny in Paris."
    assert third.previous_response_id == first.id
    # the journal reads the request again without the earlier turns: the output stands alone
    seen = server.engine.journal[-1].request
    assert seen is not None
    assert (seen.api, seen.messages[-1].role, seen.tools) == ("responses", "tool", ("get_weather",))


def test_parallel_and_custom_tool_calls(server):
    trip = server.client.responses.create(model="gpt-4.1", input="plan my trip")
    assert [(o.type, o.name) for o in trip.output] == [
        ("function_call", "get_weather"),
        ("function_call", "get_time"),
    ]
    assert trip.output[1].call_id == "call_pinned0001"
    with server.client.responses.create(model="gpt-4.1", input="patch", stream=True) as s:
        events = list(s)
    assert "response.custom_tool_call_input.done" in [e.type for e in events]
    custom = events[-1].response.output[0]
    assert (custom.type, custom.name, custom.input) == (
        "custom_tool_call",
        "apply_patch",
        "*** Begin Patch",
    )


def test_previous_response_id_chains_the_conversation(server):
    client = server.client
    first = client.responses.create(model="gpt-4.1", input="hi, my name is Ada")
    second = client.responses.create(
        model="gpt-4.1", input="what is my name?", previous_response_id=first.id
    )
    assert second.output_text == "Your name is Ada."
    alone = client.responses.create(model="gpt-4.1", input="what is my name?")
    assert alone.output_text == "Hello there!"
    items = client.responses.input_items.list(second.id)
    texts = [i.content[0].text for i in items.data if i.type == "message"]
    assert texts == ["what is my name?", "Hello there!", "hi, my name is Ada"]  # newest first
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4.1", input="x", previous_response_id="resp_nope")
    assert caught.value.status_code == 400
    assert caught.value.body["param"] == "previous_response_id"
    assert caught.value.body["code"] == "previous_response_not_found"


def test_retrieve_delete_and_store_false(server):
    client = server.client
    kept = client.responses.create(model="gpt-4.1", input="hi")
    assert client.responses.retrieve(kept.id).output_text == "Hello there!"
    client.responses.delete(kept.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(kept.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(kept.id)
    unstored = client.responses.create(model="gpt-4.1", input="hi", store=False)
    assert unstored.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    server.engine.reset()
    second = client.responses.create(model="gpt-4.1", input="hi")
    server.engine.reset()  # a reset forgets stored responses with the rest of the state
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)


def test_refusal_streamed_and_not(server):
    reply = server.client.responses.create(model="gpt-4.1", input="something forbidden")
    part = reply.output[0].content[0]
    assert (part.type, part.refusal) == ("refusal", "I can't help with that.")
    with server.client.responses.create(model="gpt-4.1", input="forbidden", stream=True) as stream:
        kinds = [e.type for e in stream]
    assert "response.refusal.delta" in kinds
    assert "response.refusal.done" in kinds


def test_max_output_tokens_makes_the_reply_incomplete(server):
    reply = server.client.responses.create(model="gpt-4.1", input="essay", max_output_tokens=16)
    assert reply.status == "incomplete"
    assert reply.incomplete_details.reason == "max_output_tokens"
    assert reply.usage.output_tokens == 16
    with server.client.responses.create(
        model="gpt-4.1", input="essay", max_output_tokens=16, stream=True
    ) as stream:
        last = list(stream)[-1]
    assert last.type == "response.incomplete"


def test_scripted_error_and_broken_stream(server, live):
    with pytest.raises(openai.RateLimitError) as caught:
        server.client.with_options(max_retries=0).responses.create(model="gpt-4.1", input="busy")
    assert caught.value.response.headers["retry-after-ms"] == "10"
    assert caught.value.body["code"] == "rate_limit_exceeded"
    raw = httpx2.post(
        server.url + "/responses",
        json={"model": "gpt-4.1", "input": "break", "stream": True},
    )
    assert not check_responses_stream("broken", raw.content)
    kinds = [line[7:] for line in raw.text.splitlines() if line.startswith("event: ")]
    assert kinds[5:] == ["error", "response.failed"]
    failed = json.loads(raw.text.rstrip().rsplit("data: ", 1)[1])
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["message"] == "upstream fell over"


def test_the_api_condition_tells_the_apis_apart(server):
    responses = server.client.responses.create(model="m", input="which api")
    chat = server.client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "which api"}]
    )
    assert (responses.output_text, chat.choices[0].message.content) == ("responses", "chat")
    apis = [(e.api, e.scenario) for e in server.engine.journal]
    assert apis == [("responses", "responses-only"), ("chat", "chat-only")]
    assert server.engine.journal[0].request.last_user_message == "which api"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "hi"}, "model", "missing_required_parameter"),
        ({"model": "m", "input": 3}, "input", "invalid_type"),
        ({"model": "m"}, "input", "missing_required_parameter"),
        ({"model": "m", "input": [{"role": "wizard", "content": "x"}]}, "input[0].role", None),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0].image_url",
            "missing_required_parameter",
        ),
        ({"model": "m", "input": "x", "temperature": 3}, "temperature", None),
        ({"model": "m", "input": "x", "max_output_tokens": 5}, "max_output_tokens", None),
        (
            {"model": "m", "input": "x", "text": {"format": {"type": "xml"}}},
            "text.format.type",
            None,
        ),
        (
            {
                "model": "m",
                "input": [{"type": "function_call_output", "call_id": "c1", "output": "x"}],
            },
            "input",
            None,
        ),
        ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name", None),
        ({"model": "m", "input": "x", "tool_choice": "sometimes"}, "tool_choice", None),
        ({"model": "m", "input": "x", "stream_options": {}}, "stream_options", None),
    ],
)
def test_validation_names_the_param(server, body, param, code):
    raw = httpx2.post(server.url + "/responses", json=body)
    assert raw.status_code == 400, raw.text
    error = raw.json()["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"
    if code is not None:
        assert error["code"] == code


def test_unknown_fields_are_tolerated_and_strict_mode_refuses_them(live):
    body = {"model": "m", "input": "hi", "frobnicate": 1}
    tolerant = live(SCENARIOS)
    assert httpx2.post(tolerant.url + "/responses", json=body).status_code == 200
    assert tolerant.engine.journal[0].request.unknown_fields == ("frobnicate",)
    strict = live(SCENARIOS, strict=True)
    refused = httpx2.post(strict.url + "/responses", json=body)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "frobnicate"


def test_unknown_routes_under_responses(server):
    for method, path in [("GET", "/responses"), ("POST", "/responses/x/frobnicate")]:
        raw = httpx2.request(method, server.url + path)
        assert raw.status_code == 404
        assert raw.json()["error"]["code"] == "unknown_url"


def test_input_items_of_every_kind_read_as_chat_messages(live):
    server = live(
        """
        version: 1
        scenarios:
          - name: looked
            match: {content_parts: [image, file, audio], last_user_message: look}
            reply: {content: "seen"}
          - name: after-custom
            match: {last_message: {role: tool, contains: patched}}
            reply: {content: "done"}
        """
    )
    look = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "https://x/y.png", "detail": "high"},
                {"type": "input_file", "file_id": "file-1", "filename": "a.pdf"},
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
            ],
        }
    ]
    reply = server.client.responses.create(model="m", input=look)
    assert reply.output_text == "seen"
    request = server.engine.journal[0].request
    assert request.messages[0].images == 1
    assert request.messages[0].image_detail_high == 1
    history = [
        {"type": "message", "role": "developer", "content": "be kind"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "item_reference", "id": "msg_1"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "ok", "annotations": []}],
        },
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "diff"},
        {
            "type": "custom_tool_call_output",
            "call_id": "c1",
            "output": [{"type": "input_text", "text": "patched"}],
        },
    ]
    assert server.client.responses.create(model="m", input=history).output_text == "done"


def test_parameters_are_checked_and_echoed(server):
    reply = server.client.responses.create(
        model="gpt-5",
        input="hi",
        text={"format": {"type": "json_object"}, "verbosity": "low"},
        reasoning={"effort": "low", "summary": "auto"},
        tool_choice={"type": "function", "name": "get_weather"},
        tools=[WEATHER_TOOL, {"type": "custom", "name": "apply_patch"}],
        include=["reasoning.encrypted_content"],
        truncation="auto",
        metadata={"run": "1"},
        temperature=0.5,
        top_p=0.9,
        parallel_tool_calls=False,
        max_tool_calls=3,
        background=False,
        service_tier="auto",
        user="u1",
        stream_options=None,
    )
    assert reply.text.format.type == "json_object"
    assert reply.reasoning.effort == "low"
    assert reply.tool_choice.name == "get_weather"
    assert reply.metadata == {"run": "1"}
    assert reply.parallel_tool_calls is False
    assert reply.service_tier == "default"
    request = server.engine.journal[0].request
    assert (request.response_format, request.forced_tool, request.verbosity) == (
        "json_object",
        "get_weather",
        "low",
    )
    for choice in ("none", "required", {"type": "allowed_tools", "mode": "auto", "tools": []}):
        again = server.client.responses.create(
            model="m", input="hi", tools=[WEATHER_TOOL], tool_choice=choice
        )
        assert again.status == "completed"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tool_choice": {"type": "function", "name": "nope"}}, "tool_choice"),
        ({"tool_choice": {"type": "input_text"}}, "tool_choice.type"),
        ({"tool_choice": {"type": "mcp"}}, "tool_choice.server_label"),
        ({"tool_choice": {"type": "allowed_tools", "mode": "auto"}}, "tool_choice.tools"),
        ({"previous_response_id": "resp_1", "conversation": "conv_1"}, None),
        ({"reasoning": {"effort": "huge"}}, "reasoning.effort"),
        ({"text": {"verbosity": "loud"}}, "text.verbosity"),
        ({"truncation": "sometimes"}, "truncation"),
        ({"include": [1]}, "include[0]"),
        ({"background": "yes"}, "background"),
        ({"max_tool_calls": 0}, "max_tool_calls"),
        ({"instructions": 5}, "instructions"),
        ({"input": [{"type": "teleport"}]}, "input[0].type"),
        ({"input": [{"content": "no role or type"}]}, "input[0].type"),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
        (
            {"input": [{"role": "user", "content": [{"type": "output_text"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {"input": [{"type": "function_call", "call_id": "", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
        ),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
    ],
)
def test_more_validation(server, extra, param):
    raw = httpx2.post(server.url + "/responses", json={"model": "m", "input": "x", **extra})
    assert raw.status_code == 400, raw.text
    assert raw.json()["error"]["param"] == param


def test_stream_keys_apply(live):
    server = live(
        """
        version: 1
        scenarios:
          - name: slow
            reply:
              content: "a b c"
              stream: {chunk_size: 1, chunk_delay_ms: 1, interrupt: {after_chunks: 4}}
        """
    )
    outcome = server.engine.handle(
        "POST", "/v1/responses", json.dumps({"model": "m", "input": "x", "stream": True}).encode()
    )
    assert outcome.frames is not None
    assert len(outcome.frames) == 5
    assert outcome.frames[-1].abort


def test_the_store_is_bounded_in_bytes():
    from mockserver.responses_api.store import ResponseStore, Stored

    store = ResponseStore(limit=100)
    store.put("a", Stored.of(b"x" * 40, b"[]"))
    store.put("b", Stored.of(b"x" * 40, b"[]"))
    store.put("c", Stored.of(b"x" * 40, b"[]"))  # pushes out "a", the oldest
    assert (store.get("a"), store.size, store.dropped) == (None, 84, 1)
    store.put("b", Stored.of(b"y" * 10, b"[]"))  # replaced, not counted twice
    assert store.size == 54
    store.put("huge", Stored.of(b"x" * 200, b"[]"))  # larger than the bound: not kept
    assert store.get("huge") is None
    assert store.delete("c")
    assert not store.delete("c")


def test_the_store_keeps_the_newest_within_its_bound_whatever_the_order_of_calls():
    """Puts (new ids, ids kept again, ids deleted before), deletes and clears against a model:
    the kept ids are the newest that fit, the size is what they weigh, the deque stays small."""
    import random

    from mockserver.responses_api.store import ResponseStore, Stored

    rng = random.Random(12)
    store = ResponseStore(limit=1000)
    model: dict[str, int] = {}  # id -> size, oldest first
    for _ in range(5000):
        op = rng.random()
        key = f"r{rng.randrange(60)}"
        if op < 0.7:
            size = rng.randrange(2, 300)
            store.put(key, Stored.of(b"x" * (size - 2), b"[]"))
            model[key] = size  # kept again: counted once, as old as before
            while sum(model.values()) > 1000:
                del model[next(k for k in model if k != key)]
        elif op < 0.98:
            assert store.delete(key) == (model.pop(key, None) is not None)
        else:
            store.clear()
            model.clear()
        assert list(store._kept) == list(model)
        assert store.size == sum(model.values()) <= 1000
        assert len(store._order) <= 2 * len(store) + 64 + 1
    store = ResponseStore(limit=1000)
    for n in range(100):
        store.put(f"k{n}", Stored.of(b"x" * 8, b"[]"))
    for n in range(90):
        store.delete(f"k{n}")  # the deque is rebuilt past 2 x 10 + 64 places
    assert len(store._order) <= 84
    store.put("k0", Stored.of(b"x" * 8, b"[]"))  # deleted before, kept again: the newest
    store.put("big", Stored.of(b"x" * 988, b"[]"))  # room for it: all but the newest go
    assert list(store._kept) == ["k0", "big"]
    assert store.size == 1000


@pytest.mark.mockserver(assert_all_used=False)
def test_in_process_through_the_plugin(mockserver):
    mockserver.load_text(SCENARIOS)
    client = openai.OpenAI(api_key="sk-test", _strict_response_validation=True, max_retries=0)
    reply = client.responses.create(model="gpt-4.1", input="hi")
    assert reply.output_text == "Hello there!"
    with client.responses.stream(model="gpt-4.1", input="hi") as stream:
        assert stream.get_final_response().output_text == "Hello there!"
    assert client.responses.retrieve(reply.id).id == reply.id
    assert mockserver.last_call.api == "responses"
    assert mockserver.last_call.last_user_message == "hi"


def test_reasoning_summary_item_streamed_and_not(server):
    reply = server.client.responses.create(model="o4-mini", input="think hard")
    kinds = [item.type for item in reply.output]
    assert kinds == ["reasoning", "message"]
    assert reply.output[0].summary[0].text == "Weighing the options first."
    assert reply.output_text == "Forty-two."
    thought = tokens.count("Weighing the options first.")
    assert reply.usage.output_tokens_details.reasoning_tokens == thought
    assert reply.usage.output_tokens == thought + tokens.count("Forty-two.")
    with server.client.responses.stream(model="o4-mini", input="think") as stream:
        deltas = [e.delta for e in stream if e.type == "response.reasoning_summary_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "Weighing the options first."
    assert final.output[0].type == "reasoning"
    chat = server.client.chat.completions.create(
        model="o4-mini", messages=[{"role": "user", "content": "think"}]
    )
    assert chat.choices[0].message.content == "Forty-two."  # chat sends no reasoning text


def test_the_admin_journal_says_which_api(server):
    server.client.responses.create(model="m", input="hi")
    entries = httpx2.get(server.url.removesuffix("/v1") + "/_mockserver/journal").json()["data"]
    assert [(e["api"], e["scenario"]) for e in entries] == [("responses", "hello")]


def test_deltas_carry_obfuscation_unless_turned_off(server):
    body = {"model": "m", "input": "hi", "stream": True}
    padded = httpx2.post(server.url + "/responses", json=body).text
    plain = httpx2.post(
        server.url + "/responses",
        json={**body, "stream_options": {"include_obfuscation": False}},
    ).text
    deltas = [line for line in padded.splitlines() if '"response.output_text.delta"' in line]
    assert deltas
    assert all('"obfuscation":"' in line for line in deltas if line.startswith("data: "))
    assert '"obfuscation"' not in plain
    assert not check_responses_stream("padded", padded.encode())


def test_strict_json_object_needs_the_word_json_in_the_input(live):
    strict = live(SCENARIOS, strict=True)
    body = {"model": "m", "input": "hi", "text": {"format": {"type": "json_object"}}}
    refused = httpx2.post(strict.url + "/responses", json=body)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "input"
    body["instructions"] = "Answer in JSON."
    assert httpx2.post(strict.url + "/responses", json=body).status_code == 200


def test_a_conversation_over_the_limit_is_refused_with_the_limit_named(server):
    first = server.client.responses.create(model="m", input="hi " * 200)
    server.engine.responses_api.max_conversation = 1000
    with pytest.raises(openai.BadRequestError) as caught:
        server.client.responses.create(model="m", input="more", previous_response_id=first.id)
    assert caught.value.body["code"] == "context_length_exceeded"
    assert "the limit is 1000 bytes" in caught.value.body["message"]


def test_in_process_for_httpx_clients_through_respx():
    import httpx

    from mockserver import InProcessMock, MockEngine, load_text

    engine = MockEngine(load_text(SCENARIOS, "inline.yaml"))
    with InProcessMock(engine), httpx.Client() as client:
        url = "https://api.openai.com/v1/responses"
        reply = client.post(url, json={"model": "m", "input": "hi"}).json()
        assert reply["output"][0]["content"][0]["text"] == "Hello there!"
        streamed = client.post(url, json={"model": "m", "input": "hi", "stream": True})
        assert not check_responses_stream("respx", streamed.content)
        assert client.delete(f"{url}/{reply['id']}").json()["deleted"] is True


def test_replayed_recordings_are_kept_for_retrieval_and_chaining(live):
    """A `raw` reply (what a recording replays) is stored like a rendered one."""
    source = live(SCENARIOS, seed=3)
    whole = httpx2.post(source.url + "/responses", json={"model": "m", "input": "hi"}).json()
    stream = httpx2.post(
        source.url + "/responses", json={"model": "m", "input": "forbidden", "stream": True}
    )
    events = [{"event": e.event, "data": e.data} for e in sse.parse(stream.content)]
    recorded = {
        "version": 1,
        "scenarios": [
            {
                "name": "recorded-whole",
                "match": {"last_user_message": "hi"},
                "reply": {
                    "raw": {
                        "status": 200,
                        "headers": {"content-type": "application/json"},
                        "body": whole,
                    }
                },
            },
            {
                "name": "recorded-stream",
                "match": {"last_user_message": "forbidden"},
                "reply": {
                    "raw": {
                        "status": 200,
                        "headers": {"content-type": "text/event-stream"},
                        "events": events,
                    }
                },
            },
            {
                "name": "follow-up",
                "match": {"any_message": {"contains": "can't help"}},
                "reply": {"content": "Understood."},
            },
        ],
    }
    replay = live(json.dumps(recorded))
    client = replay.client
    assert client.responses.create(model="m", input="hi").id == whole["id"]
    assert client.responses.retrieve(whole["id"]).output_text == "Hello there!"
    with client.responses.create(model="m", input="forbidden", stream=True) as s:
        streamed_id = list(s)[-1].response.id
    follow = client.responses.create(model="m", input="ok", previous_response_id=streamed_id)
    assert follow.output_text == "Understood."


def test_templates_give_the_bytes_a_fresh_render_gives():
    """Bodies seen again are filled in from a template: under a seed, the same bytes (and the
    same stored responses) as rendering each one afresh."""
    from mockserver import EngineConfig, MockEngine, load_text

    bodies = [
        {"model": "m", "input": "hi"},
        {"model": "m", "input": "hi", "stream": True},
        {"model": "m", "input": "plan my trip", "stream": True},
        {"model": "m", "input": "patch", "store": False},
        {"model": "m", "input": "think", "stream": True},
        {"model": "m", "input": [{"role": "user", "content": "break"}], "stream": True},
        {"model": "m", "input": "essay", "max_output_tokens": 16},
        {"model": "m", "input": "percent", "stream": True},
        {"model": "m", "input": "percent", "include": ["message.output_text.logprobs"]},
    ]
    engines = []
    for templating in (True, False):
        engine = MockEngine(load_text(SCENARIOS, "t.yaml"), EngineConfig(seed=5))
        engine.responses_api.templating = templating
        engines.append(engine)
    for _ in range(3):
        for body in bodies:
            raw = json.dumps(body).encode()
            fast, fresh = (e.handle("POST", "/v1/responses", raw) for e in engines)
            assert fast.content() == fresh.content()
            assert fast.headers == fresh.headers
            if body.get("store") is not False:
                reply = fast.content()
                text = reply.decode()
                response_id = (
                    json.loads(reply)["id"]
                    if not body.get("stream")
                    else text.split('"id":"', 1)[1].split('"', 1)[0]
                )
                kept = [e.handle("GET", f"/v1/responses/{response_id}") for e in engines]
                assert kept[0].status == 200
                assert kept[0].body == kept[1].body
                items = [
                    e.handle("GET", f"/v1/responses/{response_id}/input_items") for e in engines
                ]
                assert items[0].body == items[1].body
    kept = engines[0].responses_api._templates._items.values()
    assert sum(isinstance(v, ResponseTemplate) for v, _ in kept) == len(bodies)
