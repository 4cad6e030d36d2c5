"""The OpenAI Agents SDK (`openai-agents`, a test-only dependency) runs an agent with one function
tool against mockserver's Responses API: over a real server, and in process (the plugin)."""

from __future__ import annotations

import openai
import pytest

agents = pytest.importorskip("agents")

SCENARIOS = """
version: 1
scenarios:
  - name: answer
    priority: 10
    match: {api: responses, last_message: {role: tool}, tools: [get_weather]}
    reply: {content: "It is sunny in Paris, 18°C."}
  - name: call-tool
    match: {api: responses, tools: [get_weather], last_user_message: {contains: weather}}
    reply:
      tool_calls: [{name: get_weather, arguments: {city: Paris}}]
"""

CALLS: list[str] = []


@agents.function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    CALLS.append(city)
    return f"sunny, 18C in {city}"


@pytest.fixture(autouse=True)
def _no_tracing():
    agents.set_tracing_disabled(True)  # the SDK would upload traces to OpenAI otherwise
    CALLS.clear()


def _run(client: openai.AsyncOpenAI) -> str:
    model = agents.OpenAIResponsesModel(model="gpt-4.1", openai_client=client)
    agent = agents.Agent(name="weather", instructions="Be brief.", tools=[get_weather], model=model)
    result = agents.Runner.run_sync(agent, "What is the weather in Paris?")
    return str(result.final_output)


def test_an_agent_with_a_function_tool_over_a_real_server(live):
    server = live(SCENARIOS)
    assert _run(server.aclient) == "It is sunny in Paris, 18°C."
    assert CALLS == ["Paris"]
    journal = server.engine.journal
    assert [(e.api, e.scenario, e.status) for e in journal] == [
        ("responses", "call-tool", 200),
        ("responses", "answer", 200),
    ]
    sent = journal[1].body
    assert isinstance(sent, dict)
    outputs = [i for i in sent["input"] if i.get("type") == "function_call_output"]
    assert outputs[0]["output"] == "sunny, 18C in Paris"


def test_an_agent_in_process(mockserver):
    mockserver.load_text(SCENARIOS)
    client = openai.AsyncOpenAI(api_key="sk-test", _strict_response_validation=True)
    assert _run(client) == "It is sunny in Paris, 18°C."
    assert [c.api for c in mockserver.calls] == ["responses", "responses"]
    assert [c.scenario for c in mockserver.calls] == ["call-tool", "answer"]
