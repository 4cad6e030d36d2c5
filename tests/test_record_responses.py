"""Recording the Responses API (`POST /v1/responses`) through `mockserver record`, then replaying.

The upstream is a second mockserver on 127.0.0.1 speaking the Responses API (plain and streamed,
stored responses, `previous_response_id`). The real openai SDK, with strict response validation
and every reply checked against OpenAI's schema, runs a session through the recording proxy and
then the same session against a server on the recorded folder: everything the client can see
(text, tool calls and their `call_id`s, reasoning, refusal, parsed output, status, usage, the
streamed deltas, errors) must be the same, and the files must hold reply keys under `api:
responses` matches without any `previous_response_id`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from mockserver.app import create_app
from mockserver.engine import EngineConfig, MockEngine
from mockserver.recording.cassette import RecordingError, Writer
from mockserver.recording.exchange import Exchange
from mockserver.recording.proxy import ProxySettings, RecordingProxy
from mockserver.recording.responses import Conversations, UnknownConversation, response_of
from mockserver.recording.vcr import import_cassettes
from mockserver.scenarios import RawEvent, load_scenarios, load_text
from mockserver.server import BackgroundServer
from tests.conftest import make_clients

KEY = "sk-proj-ResponsesRecordKey0123456789abcdefgh"
LEAKED = "sk-proj-LeakedInAResponse1234567890abcdefgh"

UPSTREAM = f"""
version: 1
scenarios:
  - name: weather-answer
    priority: 10
    match: {{last_message: {{role: tool}}, tools: [get_weather]}}
    reply: {{content: "It is 18°C and sunny in Paris, 21°C in Rome."}}
  - name: weather-call
    match: {{tools: [get_weather], last_user_message: {{contains: weather}}}}
    reply:
      tool_calls:
        - {{name: get_weather, arguments: {{city: Paris}}}}
        - {{name: get_weather, arguments: {{city: Rome}}}}
  - name: structured
    match: {{response_format: {{type: json_schema, name: Person}}}}
    reply: {{content: '{{"name": "Ada", "age": 36}}'}}
  - name: refuse
    match: {{last_user_message: {{contains: forbidden}}}}
    reply: {{refusal: "I can't help with that."}}
  - name: limited
    match: {{last_user_message: {{contains: essay}}}}
    reply: {{content: "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"}}
  - name: busy
    match: {{last_user_message: {{contains: busy}}}}
    reply: {{error: 429}}
  - name: broken-stream
    match: {{last_user_message: {{contains: break}}}}
    reply:
      content: "this stream breaks halfway through"
      stream: {{interrupt: {{after_chunks: 5, error: {{status: 500, message: "upstream fell over"}}}}}}
  - name: thinker
    match: {{last_user_message: {{contains: think}}}}
    reply: {{reasoning: "Weighing the options first.", content: "Forty-two."}}
  - name: second-turn
    priority: 5
    match:
      any_message: {{contains: "my name is Ada"}}
      last_user_message: {{contains: what is my name}}
    reply: {{content: "Your name is Ada."}}
  - name: patch
    match: {{last_user_message: {{contains: patch}}}}
    reply:
      tool_calls: [{{name: apply_patch, type: custom, input: "*** Begin Patch"}}]
  - name: leak
    match: {{last_user_message: {{contains: leak}}}}
    reply: {{content: "Your key is {LEAKED}."}}
  - name: hello
    reply: {{content: "Hello there!"}}
"""

TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    }
]
MODEL = "gpt-4.1-mini"


class Person(BaseModel):
    name: str
    age: int


def _item(item: Any) -> dict[str, Any]:
    """An output item as the client sees it, without its generated `id`."""
    data = item.model_dump(exclude_none=True)
    data.pop("id", None)
    return data


def _seen(response: Any) -> dict[str, Any]:
    """What a client reads in a response (its ids and timestamps aside)."""
    return {
        "status": response.status,
        "incomplete": response.incomplete_details and response.incomplete_details.reason,
        "model": response.model,
        "output": [_item(i) for i in response.output],
        "text": response.output_text,
        "usage": response.usage and response.usage.model_dump(),
    }


def _read(result: Any, streamed: bool) -> tuple[Any, dict[str, Any], str]:
    """What a client sees of a reply (a stream's event types with their deltas too), and the
    response's id."""
    if not streamed:
        return None, _seen(result), result.id
    kinds: list[tuple[str, str | None]] = []
    final: dict[str, Any] = {}
    response_id = ""
    for event in result:
        kinds.append((event.type, getattr(event, "delta", None)))
        if event.type in ("response.completed", "response.incomplete"):
            final, response_id = _seen(event.response), event.response.id
    return kinds, final, response_id


def session(client: openai.OpenAI) -> dict[str, Any]:
    """One session touching every kind of reply; returns what the client saw of each."""
    seen: dict[str, Any] = {}
    responses = client.responses
    seen["text"] = _seen(responses.create(model=MODEL, input="hello"))
    seen["instructions"] = _seen(
        responses.create(model=MODEL, instructions="Be brief.", input="hello again")
    )
    with responses.stream(model=MODEL, input="hello, streamed") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        seen["text-stream"] = (deltas, _seen(stream.get_final_response()))
    first = responses.create(model=MODEL, input="Hi, my name is Ada.")
    second = responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id)
    seen["chained"] = [_seen(first), _seen(second)]
    for streamed in (False, True):  # the function-call loop, continued by previous_response_id
        asked = responses.create(
            model=MODEL,
            input="What is the weather in Paris and Rome?",
            tools=TOOLS,
            stream=streamed,
        )
        kinds, called, called_id = _read(asked, streamed)
        outputs: list[Any] = [
            {"type": "function_call_output", "call_id": c["call_id"], "output": f"sunny {n}"}
            for n, c in enumerate(i for i in called["output"] if i["type"] == "function_call")
        ]
        assert len(outputs) == 2
        answer = responses.create(
            model=MODEL,
            input=outputs,
            tools=TOOLS,
            previous_response_id=called_id,
            stream=streamed,
        )
        seen[f"loop-{streamed}"] = [(kinds, called), _read(answer, streamed)[:2]]
    seen["reasoning"] = _seen(responses.create(model=MODEL, input="think about it"))
    seen["refusal"] = _seen(responses.create(model=MODEL, input="something forbidden"))
    parsed = responses.parse(model=MODEL, input="Who is she?", text_format=Person)
    seen["parsed"] = (parsed.output_parsed, _seen(parsed))
    seen["incomplete"] = _seen(
        responses.create(model=MODEL, input="write an essay", max_output_tokens=16)
    )
    seen["custom"] = _seen(
        responses.create(
            model=MODEL, input="apply the patch", tools=[{"type": "custom", "name": "apply_patch"}]
        )
    )
    seen["leak"] = _seen(responses.create(model=MODEL, input="leak it"))
    with pytest.raises(openai.RateLimitError) as limited:
        responses.create(model=MODEL, input="are you busy?")
    seen["429"] = (limited.value.status_code, limited.value.body)
    broken = responses.create(model=MODEL, input="break it", stream=True)
    seen["broken"] = [(e.type, getattr(e, "delta", None)) for e in broken]
    return seen


@dataclass
class Recording:
    url: str
    out: Path
    writer: Writer
    upstream: MockEngine
    lines: list[str]


@pytest.fixture
def record(tmp_path: Path) -> Iterator[Callable[..., Recording]]:
    servers: list[BackgroundServer] = []

    def start(upstream_text: str = UPSTREAM, **writer: Any) -> Recording:
        upstream = MockEngine(load_text(upstream_text, "upstream.yaml"), EngineConfig(seed=5))
        up = BackgroundServer(create_app(upstream)).start()
        servers.append(up)
        out = tmp_path / "recorded"
        lines: list[str] = []
        w = Writer(out, **writer)
        proxy = RecordingProxy(ProxySettings(upstream=up.url), w, report=lines.append)
        server = BackgroundServer(proxy).start()  # type: ignore[arg-type]
        servers.append(server)
        return Recording(server.url, out, w, upstream, lines)

    yield start
    for server in reversed(servers):
        server.stop()


def _files(out: Path) -> dict[str, Any]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))}


def _replies(scenario: dict[str, Any]) -> list[Any]:
    return scenario["sequence"] if "sequence" in scenario else [scenario["reply"]]


def test_a_responses_session_is_recorded_and_replays_the_same_through_the_sdk(record, violations):
    """With `responses_reply_keys`, replies are written as reply keys (the mock's own ids)."""
    rec = record(responses_reply_keys=True)
    client, _ = make_clients(rec.url, violations, max_retries=0)
    client.api_key = KEY
    live = session(client)
    assert len(rec.upstream.journal) == 17

    # what was recorded: `api: responses` matches (no previous_response_id), reply keys
    files = _files(rec.out)
    scenarios = [s for f in files.values() for s in f["scenarios"]]
    text = "\n".join(p.read_text() for p in rec.out.glob("*.yaml"))
    assert KEY not in text and LEAKED not in text
    assert all(s["match"]["api"] == "responses" for s in scenarios)
    assert "previous_response_id" not in json.dumps([s["match"] for s in scenarios])
    replies = [r for s in scenarios for r in _replies(s)]
    raw = [r["raw"] for r in replies if "raw" in r]
    assert sorted(r["status"] for r in raw) == [200, 429]  # the broken stream, the 429
    assert {k for r in replies for k in r} >= {
        "content",
        "tool_calls",
        "reasoning",
        "refusal",
        "finish_reason",
        "usage",
        "raw",
    }
    calls = [i for i in live["loop-False"][0][1]["output"] if i["type"] == "function_call"]
    loop = [s for s in scenarios if "sunny 0" in json.dumps(s["match"])]
    assert [s["match"]["stream"] for s in loop] == [False, True]
    assert loop[0]["match"]["messages"] == [  # the conversation, as the server reads it
        {"role": "user", "content": "What is the weather in Paris and Rome?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": c["call_id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in calls
            ],
        },
        {"role": "tool", "tool_call_id": calls[0]["call_id"], "content": "sunny 0"},
        {"role": "tool", "tool_call_id": calls[1]["call_id"], "content": "sunny 1"},
    ]

    # replayed by a server on the folder, offline: the client sees the same
    engine = MockEngine(load_scenarios([rec.out]), EngineConfig(seed=9))
    server = BackgroundServer(create_app(engine)).start()
    try:
        replay, _ = make_clients(server.url, violations, max_retries=0)
        replayed = session(replay)
    finally:
        server.stop()
    live["leak"] = json.loads(json.dumps(live["leak"]).replace(LEAKED, "<scrubbed>"))
    for name in live:
        assert replayed[name] == live[name], name  # what was scrubbed stays scrubbed
    assert [e.status for e in engine.journal].count(200) == 16
    assert not [e for e in engine.journal if e.scenario is None]


def _interaction(client: httpx.Client, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """One request to the upstream, kept as vcrpy keeps it."""
    sent = json.dumps(body)
    response = client.post(
        url + "/responses",
        content=sent,
        headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"},
    )
    return {
        "request": {
            "body": sent,
            "headers": {"Authorization": [f"Bearer {KEY}"], "Content-Type": ["application/json"]},
            "method": "POST",
            "uri": "https://api.openai.com/v1/responses",
        },
        "response": {
            "body": {"string": response.text},
            "headers": {k: [v] for k, v in response.headers.items()},
            "status": {"code": response.status_code, "message": response.reason_phrase},
        },
    }


def test_vcr_cassettes_of_the_responses_api_import_and_replay(tmp_path, violations):
    """A vcrpy cassette of a streamed tool loop chained by `previous_response_id`, and a plain
    reply: imported, replayed by the SDK as it was."""
    upstream = MockEngine(load_text(UPSTREAM, "upstream.yaml"), EngineConfig(seed=4))
    up = BackgroundServer(create_app(upstream)).start()
    ask = {"model": MODEL, "input": "What is the weather in Paris and Rome?", "tools": TOOLS}
    try:
        with httpx.Client(timeout=10) as client:
            kept = [_interaction(client, up.url, {**ask, "stream": True})]
            events = [
                json.loads(line[6:])
                for line in kept[0]["response"]["body"]["string"].splitlines()
                if line.startswith("data: ")
            ]
            final = events[-1]["response"]
            outputs = [
                {"type": "function_call_output", "call_id": i["call_id"], "output": "sunny"}
                for i in final["output"]
            ]
            follow = {**ask, "input": outputs, "previous_response_id": final["id"], "stream": True}
            kept.append(_interaction(client, up.url, follow))
            kept.append(_interaction(client, up.url, {"model": MODEL, "input": "think"}))
            kept.append(_interaction(client, up.url, {"model": MODEL, "input": "busy"}))
    finally:
        up.stop()
    cassette = tmp_path / "cassettes" / "test_loop.yaml"
    cassette.parent.mkdir()
    cassette.write_text(yaml.safe_dump({"interactions": kept, "version": 1}))

    (result,) = import_cassettes([cassette], tmp_path / "out")
    assert (result.exchanges, result.scenarios, result.skipped) == (4, 4, ())
    written = (tmp_path / "out" / "test_loop.yaml").read_text()
    assert KEY not in written
    scenarios = yaml.safe_load(written)["scenarios"]
    assert all("previous_response_id" not in json.dumps(s["match"]) for s in scenarios)
    assert [list(_replies(s)[0]) for s in scenarios] == [["raw"]] * 4  # the bytes, exactly

    engine = MockEngine(load_scenarios([tmp_path / "out"]))
    server = BackgroundServer(create_app(engine)).start()
    try:
        client, _ = make_clients(server.url, violations, max_retries=0)
        stream = client.responses.create(**ask, stream=True)
        _, called, called_id = _read(stream, True)
        assert [i["call_id"] for i in called["output"]] == [o["call_id"] for o in outputs]
        answer = client.responses.create(
            **{**follow, "previous_response_id": called_id}  # the replay's own id
        )
        _, answered, _ = _read(answer, True)
        assert answered["text"] == "It is 18°C and sunny in Paris, 21°C in Rome."
        thought = client.responses.create(model=MODEL, input="think")
        assert thought.output[0].type == "reasoning"
        assert thought.output_text == "Forty-two."
        with pytest.raises(openai.RateLimitError):
            client.responses.create(model=MODEL, input="busy")
    finally:
        server.stop()
    assert [e.scenario for e in engine.journal] == [s["name"] for s in scenarios]


PLUGIN_TEST = f"""
import openai

TOOLS = {TOOLS!r}
TOOLS[0]["strict"] = True
MODEL = {MODEL!r}


def test_loop(mockserver):
    client = openai.OpenAI(max_retries=0, _strict_response_validation=True)
    first = client.responses.create(
        model=MODEL, input="What is the weather in Paris and Rome?", tools=TOOLS
    )
    outputs = [
        {{"type": "function_call_output", "call_id": i.call_id, "output": "sunny"}}
        for i in first.output
        if i.type == "function_call"
    ]
    assert len(outputs) == 2
    second = client.responses.create(
        model=MODEL, input=outputs, tools=TOOLS, previous_response_id=first.id
    )
    assert second.output_text == "It is 18°C and sunny in Paris, 21°C in Rome."
    with client.responses.stream(model=MODEL, input="think it over") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Forty-two."
    assert final.output[0].summary[0].text == "Weighing the options first."
    assert [c.api for c in mockserver.calls] == ["responses"] * 3
    assert all(c.status == 200 for c in mockserver.calls)
"""


def test_the_plugins_record_modes_record_responses_in_process(pytester, monkeypatch):
    upstream = MockEngine(load_text(UPSTREAM, "upstream.yaml"), EngineConfig(seed=6))
    up = BackgroundServer(create_app(upstream)).start()
    monkeypatch.setenv("MOCKSERVER_UPSTREAM", up.url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    pytester.makepyfile(test_it=PLUGIN_TEST)
    try:
        args = ("-p", "no:hypothesispytest", "--strict-markers")
        pytester.runpytest(*args, "--mockserver-record-mode=once").assert_outcomes(passed=1)
        sent = [e.body for e in upstream.journal]
        assert len(sent) == 3
        first = upstream.journal[0]
        # the chained request went upstream with the upstream's own id
        assert isinstance(sent[1], dict) and sent[1]["previous_response_id"].startswith("resp_")
        assert upstream.responses_api.store.get(sent[1]["previous_response_id"]) is not None
        assert first.status == 200
        cassette = pytester.path / "cassettes" / "test_it" / "test_loop.yaml"
        text = cassette.read_text()
        assert KEY not in text
        matches = [s["match"] for s in yaml.safe_load(text)["scenarios"]]
        assert "previous_response_id" not in json.dumps(matches)
        assert "api: responses" in text and "raw:" in text

        pytester.runpytest(*args).assert_outcomes(passed=1)  # replayed, the network untouched
        assert len(upstream.journal) == 3
        assert cassette.read_text() == text
    finally:
        up.stop()


# -- the writer's Responses rules, exchange by exchange ----------------------------------------


def _exchange(body: dict[str, Any], response: Any, status: int = 200) -> Exchange:
    return Exchange(
        method="POST",
        url="https://api.openai.com/v1/responses",
        request_body=json.dumps(body).encode(),
        request_headers=(("authorization", f"Bearer {KEY}"),),
        status=status,
        headers=(("content-type", "application/json"),),
        body=json.dumps(response).encode(),
    )


def _response(output: list[Any], **fields: Any) -> dict[str, Any]:
    return {
        "id": fields.pop("id", "resp_1"),
        "object": "response",
        "status": "completed",
        "model": MODEL,
        "output": output,
        **fields,
    }


MESSAGE = {
    "type": "message",
    "id": "msg_1",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "Hi.", "annotations": []}],
}


@pytest.mark.parametrize(
    ("output", "fields", "why"),
    [
        ([{"type": "web_search_call", "id": "ws_1", "status": "completed"}, MESSAGE], {}, "tool"),
        (
            [{**MESSAGE, "content": [{"type": "output_text", "text": "x", "annotations": [{}]}]}],
            {},
            "annotations",
        ),
        ([MESSAGE, MESSAGE], {}, "two messages"),
        (
            [MESSAGE],
            {"status": "incomplete", "incomplete_details": {"reason": "content_filter"}},
            "filtered",
        ),
    ],
)
def test_what_reply_keys_cannot_say_is_recorded_raw(tmp_path, output, fields, why):
    writer = Writer(tmp_path / "c.yaml", one_file=True, responses_reply_keys=True)
    written = writer.write(_exchange({"model": MODEL, "input": "hi"}, _response(output, **fields)))
    assert list(written.mapping["reply"]) == ["raw"], why
    assert written.mapping["match"]["api"] == "responses"


def test_a_reply_keeps_its_usage_model_and_tier_and_joins_its_parts(tmp_path):
    writer = Writer(tmp_path / "c.yaml", one_file=True, responses_reply_keys=True)
    output = [
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "A"}] * 2},
        {
            **MESSAGE,
            "content": [
                {"type": "output_text", "text": "one", "annotations": []},
                {"type": "output_text", "text": "two", "annotations": []},
                {"type": "refusal", "refusal": "no"},
            ],
        },
    ]
    usage = {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 2},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 12,
    }
    response = _response(output, model="gpt-4.1-mini-2025", service_tier="flex", usage=usage)
    reply = writer.write(_exchange({"model": MODEL, "input": "hi"}, response)).mapping["reply"]
    assert reply == {
        "reasoning": "A\n\nA",
        "content": "one\ntwo",
        "refusal": "no",
        "model": "gpt-4.1-mini-2025",
        "service_tier": "flex",
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 7,
            "total_tokens": 12,
            "prompt_tokens_details": {"cached_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 3},
        },
    }


def test_a_chained_request_is_matched_on_its_whole_conversation_or_not_recorded(tmp_path):
    writer = Writer(tmp_path / "c.yaml", one_file=True, responses_reply_keys=True)
    first = {"model": MODEL, "input": "Hi, I am Ada.", "instructions": "Be brief."}
    writer.write(_exchange(first, _response([MESSAGE], id="resp_a")))
    follow = {"model": MODEL, "input": "Who am I?", "previous_response_id": "resp_a"}
    match = writer.write(_exchange(follow, _response([MESSAGE], id="resp_b"))).mapping["match"]
    assert match["messages"] == [
        {"role": "user", "content": "Hi, I am Ada."},
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": "Who am I?"},
    ]  # instructions do not carry over to the next turn, as on the live API
    assert "previous_response_id" not in json.dumps(match)
    with pytest.raises(RecordingError, match="continues the response 'resp_zz', which this"):
        writer.write(_exchange({**follow, "previous_response_id": "resp_zz"}, _response([])))
    with pytest.raises(RecordingError, match=r"one mockserver refuses .*'input'"):
        writer.write(_exchange({"model": MODEL, "input": 42}, _response([])))
    unstored = {"model": MODEL, "input": "x", "store": False}
    writer.write(_exchange(unstored, _response([MESSAGE], id="resp_c")))
    with pytest.raises(RecordingError, match="'resp_c'"):
        writer.write(_exchange({**follow, "previous_response_id": "resp_c"}, _response([])))
    assert len(writer.written) == 3


def test_remembered_conversations_are_bounded_in_bytes():
    kept = Conversations(limit=2000, each=900)
    for n in range(10):
        kept.remember([], {"input": "x" * 300}, {"id": f"resp_{n}", "output": []})
    with pytest.raises(UnknownConversation):
        kept.history({"previous_response_id": "resp_0"})  # the oldest, forgotten
    assert kept.history({"previous_response_id": "resp_9"})[0]["content"] == "x" * 300
    kept.remember([], {"input": "y" * 1000}, {"id": "resp_big", "output": []})
    with pytest.raises(UnknownConversation):
        kept.history({"previous_response_id": "resp_big"})  # over `each`: not kept


def test_a_streamed_reply_is_assembled_from_its_item_events():
    done = {"type": "response.output_item.done", "output_index": 0, "item": MESSAGE}
    final = {"type": "response.completed", "response": _response([])}
    exchange = Exchange(
        method="POST",
        url="http://x/v1/responses",
        request_body=b"{}",
        status=200,
        events=tuple(RawEvent(data=json.dumps(e)) for e in (done, final)),
    )
    assert response_of(exchange)["output"] == [MESSAGE]  # type: ignore[index]
    assert response_of(dataclasses.replace(exchange, end="abort")) is None
    assert response_of(dataclasses.replace(exchange, events=exchange.events[:1])) is None


def test_an_agents_sdk_run_is_recorded_and_replays(record, violations):
    """The OpenAI Agents SDK (sending the whole conversation back each turn, its items' ids
    included) records through the proxy and replays from the files."""
    agents = pytest.importorskip("agents")
    agents.set_tracing_disabled(True)  # the SDK would upload traces to OpenAI otherwise
    ran: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        ran.append(city)
        return f"sunny in {city}"

    def run(url: str) -> str:
        _, client = make_clients(url, violations, max_retries=0)
        model = agents.OpenAIResponsesModel(model=MODEL, openai_client=client)
        agent = agents.Agent(name="w", instructions="Be brief.", tools=[get_weather], model=model)
        return str(
            agents.Runner.run_sync(agent, "What is the weather in Paris and Rome?").final_output
        )

    rec = record()
    assert run(rec.url) == "It is 18°C and sunny in Paris, 21°C in Rome."
    assert ran == ["Paris", "Rome"]
    assert len(rec.upstream.journal) == 2
    engine = MockEngine(load_scenarios([rec.out]))
    server = BackgroundServer(create_app(engine)).start()
    try:
        assert run(server.url) == "It is 18°C and sunny in Paris, 21°C in Rome."
    finally:
        server.stop()
    assert ran == ["Paris", "Rome"] * 2
    names = [s.name for s in load_scenarios([rec.out]).scenarios]
    assert [e.scenario for e in engine.journal] == names


def test_recording_in_process_refuses_a_turn_continuing_a_response_it_did_not_record(tmp_path):
    """A cassette's reply (mockserver's id) continued by a request no scenario answers: the
    recorder says why it cannot forward it, and asks the upstream nothing."""
    from mockserver.recording.forwarding import Recorder

    upstream = MockEngine(load_text(UPSTREAM, "upstream.yaml"))
    up = BackgroundServer(create_app(upstream)).start()
    replayed = "scenarios: [{name: first, match: {last_user_message: hi}, reply: {content: Hi.}}]"
    writer = Writer(tmp_path / "c.yaml", one_file=True, responses_reply_keys=True)
    recorder = Recorder(writer=writer, upstream=up.url, api_key=KEY)
    engine = MockEngine(load_text(replayed, "cassette.yaml"), on_miss=recorder)
    try:
        first = engine.handle(
            "POST", "/v1/responses", json.dumps({"model": MODEL, "input": "hi"}).encode()
        )
        previous = json.loads(first.body)["id"]
        follow = {"model": MODEL, "input": "hello", "previous_response_id": previous}
        refused = engine.handle("POST", "/v1/responses", json.dumps(follow).encode())
        assert refused.status == 502
        message = json.loads(refused.body)["error"]["message"]
        assert f"continues the response '{previous}', which was not recorded" in message
        assert len(upstream.journal) == 0
        fresh = engine.handle(
            "POST", "/v1/responses", json.dumps({"model": MODEL, "input": "hello"}).encode()
        )
        assert json.loads(fresh.body)["output"][0]["content"][0]["text"] == "Hello there!"
        assert len(upstream.journal) == 1  # a miss that continues nothing is recorded
    finally:
        up.stop()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "type",
                        "content",
                        "summary",
                        "text",
                        "refusal",
                        "name",
                        "call_id",
                        "arguments",
                        "input",
                        "annotations",
                        "status",
                        "output",
                        "id",
                        "object",
                        "usage",
                    ]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_any_upstream_reply_is_written_as_reply_keys_or_raw_never_an_error(output):
    """Whatever JSON an upstream answers, the writer either reads it into reply keys or keeps it
    raw; it never fails on it."""
    response = _response(output if isinstance(output, list) else [output])
    writer = Writer(Path("/nonexistent"), one_file=True)
    _, reply, live, _ = writer._responses(
        _exchange({"model": MODEL, "input": "x"}, response), {"model": MODEL, "input": "x"}
    )
    assert list(live) == ["raw"]
    assert "raw" in reply or set(reply) <= {
        "content",
        "refusal",
        "reasoning",
        "tool_calls",
        "finish_reason",
        "model",
        "service_tier",
        "usage",
    }


def test_a_chat_recording_does_not_answer_the_same_conversation_asked_as_a_response(tmp_path):
    """`messages` reads both APIs alike; a recorded chat completion (`raw`) says `api: chat`."""
    chat = Exchange(
        method="POST",
        url="https://api.openai.com/v1/chat/completions",
        request_body=json.dumps(
            {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        ).encode(),
        status=200,
        body=b'{"object": "chat.completion"}',
    )
    Writer(tmp_path / "c.yaml", one_file=True).write(chat)
    engine = MockEngine(load_scenarios([tmp_path / "c.yaml"]))
    raw = json.dumps({"model": MODEL, "input": "hi"}).encode()
    assert engine.handle("POST", "/v1/responses", raw).status == 404
    assert engine.handle("POST", "/v1/chat/completions", chat.request_body).status == 200


def test_match_on_names_the_responses_fields(tmp_path):
    writer = Writer(tmp_path / "c.yaml", one_file=True, match_on=("last_user_message", "text"))
    image = {"type": "input_image", "image_url": "https://example.com/a.png"}
    body = {
        "model": MODEL,
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "What?"}, image]}],
        "text": {"format": {"type": "json_object"}},
        "temperature": 0,
    }
    match = writer.write(_exchange(body, _response([MESSAGE]))).mapping["match"]
    assert match == {
        "api": "responses",
        "last_user_message": "What?",
        "params": {"text": {"format": {"type": "json_object"}}},
    }
    whole = Writer(tmp_path / "d.yaml", one_file=True).write(_exchange(body, _response([MESSAGE])))
    assert whole.mapping["match"]["content_parts"] == ["image"]  # `messages` holds the text
    assert whole.mapping["match"]["params"] == {
        "text": {"format": {"type": "json_object"}},
        "temperature": 0,
    }
    assert load_scenarios([tmp_path / "d.yaml"]).scenarios[0].name  # it loads


def test_on_miss_is_asked_about_responses_only_when_it_names_the_api():
    asked: list[tuple[bytes, str]] = []

    def chat_only(raw: bytes, headers: Any) -> list[Any]:
        asked.append((raw, "chat"))
        return []

    def both(raw: bytes, headers: Any, api: str = "chat") -> list[Any]:
        asked.append((raw, api))
        return []

    both.apis = ("chat", "responses")  # type: ignore[attr-defined]
    raw = json.dumps({"model": MODEL, "input": "nothing matches"}).encode()
    for hook in (chat_only, both):
        engine = MockEngine(load_text("scenarios: []", "none.yaml"), on_miss=hook)
        assert engine.handle("POST", "/v1/responses", raw).status == 404
    assert asked == [(raw, "responses")]


def test_recorded_responses_replay_byte_for_byte_and_chain_on_the_recorded_ids(record, violations):
    """By default a Responses reply is written `raw`, as chat's are: a replay gives the client
    the upstream's bytes (its ids too), and a turn chained on a recorded id finds it."""
    rec = record()
    client, _ = make_clients(rec.url, violations, max_retries=0)
    client.api_key = KEY
    first = client.responses.create(model=MODEL, input="Hi, my name is Ada.")
    second = client.responses.create(
        model=MODEL, input="What is my name?", previous_response_id=first.id
    )
    with client.responses.stream(model=MODEL, input="hello, streamed") as stream:
        live_events = [e.model_dump(warnings=False) for e in stream]
    client.responses.create(model=MODEL, input="leak it")
    scenarios = [s for f in _files(rec.out).values() for s in f["scenarios"]]
    assert all("raw" in r for s in scenarios for r in _replies(s))
    text = "\n".join(p.read_text() for p in rec.out.glob("*.yaml"))
    assert KEY not in text and LEAKED not in text  # scrubbed in the raw bytes too

    engine = MockEngine(load_scenarios([rec.out]), EngineConfig(seed=9))
    server = BackgroundServer(create_app(engine)).start()
    try:
        replay, _ = make_clients(server.url, violations, max_retries=0)
        again = replay.responses.create(model=MODEL, input="Hi, my name is Ada.")
        chained = replay.responses.create(
            model=MODEL, input="What is my name?", previous_response_id=again.id
        )
        with replay.responses.stream(model=MODEL, input="hello, streamed") as stream:
            replayed_events = [e.model_dump(warnings=False) for e in stream]
        kept = replay.responses.retrieve(again.id)
    finally:
        server.stop()
    assert again.model_dump() == first.model_dump()  # the recorded id and created_at too
    assert chained.model_dump() == second.model_dump()
    assert replayed_events == live_events
    assert kept.id == first.id
