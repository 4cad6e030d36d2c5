"""The plugin's fixtures with the openai SDK that is installed, and its own default client.

This file imports only openai, pytest and the plugin, so it runs under two SDKs:

- in the project's venv: openai 3.x, whose default client is httpx2 (the patched transports);
- in `.venv-openai2` (tests/test_inprocess_openai2.py runs it there): openai 2.x on httpx,
  answered through respx.

Every reply is parsed with the SDK's strict response validation.
"""

from __future__ import annotations

import time

import openai
import pytest

SCENARIOS = """
version: 1
scenarios:
  - name: weather
    match: {last_user_message: {contains: weather}}
    reply:
      tool_calls:
        - {name: get_weather, arguments: {city: Paris}}
  - name: slow
    match: {last_user_message: slow}
    reply:
      content: "one two three"
      stream: {chunk_size: 4, chunk_delay_ms: 40}
  - name: flaky
    match: {last_user_message: flaky}
    sequence:
      - error: {status: 503}
      - content: "recovered"
  - name: hello
    optional: true
    reply: {content: "Hello there!"}
"""

MAJOR = int(openai.__version__.split(".")[0])

# The `mock` fixture loads every scenario above for each test, and each test uses a few.
pytestmark = pytest.mark.mockserver(assert_all_used=False)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def client(**kwargs) -> openai.OpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(_strict_response_validation=True, **kwargs)


def aclient(**kwargs) -> openai.AsyncOpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.AsyncOpenAI(_strict_response_validation=True, **kwargs)


@pytest.fixture
def mock(mockserver):
    mockserver.load_text(SCENARIOS)
    return mockserver


def test_the_sdk_in_use_sends_through_the_expected_library(mock):
    modules = {c.__module__.split(".")[0] for c in type(client()._client).__mro__}
    assert ("httpx2" if MAJOR >= 3 else "httpx") in modules, modules


def test_sync_reply_tool_call_and_retry(mock):
    reply = client().chat.completions.create(model="gpt-4o-mini", messages=user("weather?"))
    assert reply.choices[0].message.tool_calls[0].function.arguments == '{"city":"Paris"}'
    retried = client(max_retries=1).chat.completions.create(model="m", messages=user("flaky"))
    assert retried.choices[0].message.content == "recovered"
    mock.assert_called(2, scenario="flaky")
    mock.assert_last_request(model="m", last_user_message="flaky")


def test_sync_stream_arrives_chunk_by_chunk(mock):
    start = time.perf_counter()
    arrivals = []
    with client().chat.completions.create(model="m", messages=user("slow"), stream=True) as s:
        for chunk in s:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append((time.perf_counter() - start, chunk.choices[0].delta.content))
    assert "".join(text for _, text in arrivals) == "one two three"
    assert arrivals[-1][0] - arrivals[0][0] > 0.07


@pytest.mark.anyio
async def test_async_reply_and_stream(mock):
    reply = await aclient().chat.completions.create(model="m", messages=user("weather"))
    assert reply.choices[0].finish_reason == "tool_calls"
    stream = await aclient().chat.completions.create(model="m", messages=user("slow"), stream=True)
    parts = [c.choices[0].delta.content async for c in stream if c.choices]
    assert "".join(p or "" for p in parts) == "one two three"


def test_errors_reach_the_sdk_as_its_exceptions(mock):
    with pytest.raises(openai.InternalServerError):
        client().chat.completions.create(model="m", messages=user("flaky"))
    with pytest.raises(openai.BadRequestError):
        client().chat.completions.create(model="m", messages=[])
    # `hello` answers any model, so any model is found (README, "Models")
    assert client().models.retrieve("no-such-model").id == "no-such-model"


def test_a_custom_base_url(mockserver):
    mockserver.add_base_url("http://llm.internal:8080/v1")
    mockserver.add(reply="custom")
    reply = client(base_url="http://llm.internal:8080/v1").chat.completions.create(
        model="m", messages=user("x")
    )
    assert reply.choices[0].message.content == "custom"


def test_the_server_fixture_through_the_environment(mockserver_server):
    mockserver_server.add(reply="over a socket")
    reply = client().chat.completions.create(model="m", messages=user("x"))
    assert reply.choices[0].message.content == "over a socket"
    assert mockserver_server.last_call.headers["authorization"].startswith("Bearer ")
