"""`InProcessMock`: httpx (respx) and httpx2 clients answered by the engine with no socket.

The SDK tests run openai 3.x (httpx2) with strict response validation, and every reply goes
through `SchemaCheckingTransport` (which wraps `httpx2.HTTPTransport`, the class the mock
patches), so the in-process bytes are checked against OpenAI's schema like the server's.
"""

from __future__ import annotations

import itertools
import textwrap
import threading
import time

import anyio
import httpx
import httpx2
import openai
import pytest
import respx

from mockserver.app import create_app
from mockserver.engine import EngineConfig, MockEngine
from mockserver.inprocess import DEFAULT_BASE_URL, BaseUrl, InProcessMock
from mockserver.scenarios import ScenarioSet, load_text
from mockserver.server import BackgroundServer
from tests.conftest import make_clients
from tests.support import check_reply

SCENARIOS = """
version: 1
scenarios:
  - name: weather
    match: {last_user_message: {contains: weather}}
    reply:
      tool_calls:
        - {name: get_weather, arguments: {city: Paris}}
  - name: refuse
    match: {last_user_message: bomb}
    reply: {refusal: "I can't help with that."}
  - name: slow
    match: {last_user_message: slow}
    reply:
      content: "one two three four"
      stream: {chunk_size: 4, first_chunk_delay_ms: 300, chunk_delay_ms: 60}
  - name: endless
    match: {last_user_message: endless}
    reply:
      content: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      stream: {chunk_size: 1, chunk_delay_ms: 3000}
  - name: silent
    match: {last_user_message: silent}
    reply:
      content: "late"
      stream: {first_chunk_delay_ms: 5000}
  - name: dropped
    match: {last_user_message: drop}
    reply:
      content: "a b c d e f"
      stream: {chunk_size: 2, interrupt: {after_chunks: 2}}
  - name: waits
    match: {last_user_message: wait}
    reply: {content: "waited", delay_ms: 120}
  - name: limited
    match: {last_user_message: limit}
    sequence:
      - error: {status: 429}
      - content: "after the limit"
  - name: hello
    reply: {content: "Hello there, how are you?"}
"""


def engine(seed: int = 7) -> MockEngine:
    return MockEngine(load_text(SCENARIOS, "inprocess.yaml"), EngineConfig(seed=seed))


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def body(text: str, **extra: object) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": user(text), **extra}


@pytest.fixture
def mock():
    with InProcessMock(engine()) as active:
        yield active


@pytest.fixture
def sdk(mock, violations):
    """openai 3.x clients (httpx2), strict, their replies schema-checked."""
    return make_clients(DEFAULT_BASE_URL, violations, max_retries=0)


# -- the openai SDK 3.x (httpx2) ----------------------------------------------------------------


def test_sdk_sync_reply_tool_call_and_refusal(sdk, violations):
    client, _ = sdk
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
    assert reply.choices[0].message.content == "Hello there, how are you?"
    call = client.chat.completions.create(model="gpt-4o-mini", messages=user("weather?"))
    assert call.choices[0].message.tool_calls[0].function.arguments == '{"city":"Paris"}'
    refused = client.chat.completions.create(model="gpt-4o-mini", messages=user("bomb"))
    assert refused.choices[0].message.refusal == "I can't help with that."
    assert violations.replies == 3


def test_sdk_sync_stream(sdk, violations):
    client, _ = sdk
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("hi"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, how are you?"
    assert chunks[-1].usage is not None
    assert violations.replies == 1


@pytest.mark.anyio
async def test_sdk_async_reply_and_stream(sdk, violations):
    _, aclient = sdk
    reply = await aclient.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
    assert reply.choices[0].message.content == "Hello there, how are you?"
    stream = await aclient.chat.completions.create(
        model="gpt-4o-mini", messages=user("weather"), stream=True
    )
    calls = [c.choices[0].delta.tool_calls async for c in stream if c.choices]
    assert any(calls)
    assert violations.replies == 2


def test_sdk_errors_and_retries(sdk, violations):
    client, _ = sdk
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=user("limit"))
    retrying = client.with_options(max_retries=2)
    reply = retrying.chat.completions.create(model="gpt-4o-mini", messages=user("limit"))
    assert reply.choices[0].message.content == "after the limit"
    found = client.models.retrieve("no-such-model")  # scenarios without `model` answer any
    assert found.id == "no-such-model"
    assert violations.replies == 3


def test_sdk_default_client_and_environment(mock, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    client = openai.OpenAI(max_retries=0)
    assert client.chat.completions.create(model="m", messages=user("hi")).choices[0].message.content


def test_sdk_through_a_legacy_httpx_client(mock):
    """openai 3.x still accepts an `httpx.Client`: that goes through respx."""
    client = openai.OpenAI(api_key="sk-test", http_client=httpx.Client(), max_retries=0)
    reply = client.chat.completions.create(model="m", messages=user("hi"))
    assert reply.choices[0].message.content == "Hello there, how are you?"
    chunks = list(client.chat.completions.create(model="m", messages=user("hi"), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# -- plain httpx and httpx2 clients --------------------------------------------------------------

URL = DEFAULT_BASE_URL + "/chat/completions"


def _checked(response, content: bytes, streamed: bool) -> None:
    problems = check_reply(
        response.request.url.path,
        response.status_code,
        response.headers.get("content-type", ""),
        content,
        streamed,
    )
    assert not problems, problems


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_plain_client_sync(mock, lib, stream):
    with lib.Client() as client, client.stream("POST", URL, json=body("hi", stream=stream)) as r:
        content = r.read()
    assert r.status_code == 200
    _checked(r, content, stream)
    assert b"Hello there" in content or b"Hello" in content


@pytest.mark.anyio
@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_plain_client_async(mock, lib, stream):
    async with (
        lib.AsyncClient() as client,
        client.stream("POST", URL, json=body("hi", stream=stream)) as r,
    ):
        content = await r.aread()
    assert r.status_code == 200
    _checked(r, content, stream)


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_models_routes_and_unknown_urls(mock, lib):
    with lib.Client() as client:
        assert client.get(DEFAULT_BASE_URL + "/models").json()["object"] == "list"
        missing = client.get(DEFAULT_BASE_URL + "/embeddings")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_url"


# -- streams: chunk by chunk, abandonable, aborts, timeouts -------------------------------------


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_stream_frames_arrive_one_by_one_with_their_delays(mock, lib):
    arrivals = []
    start = time.perf_counter()
    with (
        lib.Client() as client,
        client.stream("POST", URL, json=body("slow", stream=True)) as response,
    ):
        head = time.perf_counter() - start
        for _ in response.iter_raw():
            arrivals.append(time.perf_counter() - start)
    assert head < 0.25, "the head must not wait for the body"
    assert len(arrivals) >= 4
    assert arrivals[0] >= 0.29, "the first chunk waits first_chunk_delay_ms"
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) > 0.04, gaps


@pytest.mark.anyio
@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
async def test_async_stream_frames_arrive_one_by_one(mock, lib):
    arrivals = []
    start = time.perf_counter()
    async with (
        lib.AsyncClient() as client,
        client.stream("POST", URL, json=body("slow", stream=True)) as response,
    ):
        async for _ in response.aiter_raw():
            arrivals.append(time.perf_counter() - start)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) >= 4
    assert min(gaps) > 0.04, gaps


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_stopping_early_on_an_endless_stream_does_not_hang(mock, lib):
    start = time.perf_counter()
    with (
        lib.Client() as client,
        client.stream("POST", URL, json=body("endless", stream=True)) as response,
    ):
        first = next(response.iter_raw())
    assert first.startswith(b"data: ")
    assert time.perf_counter() - start < 1.0


@pytest.mark.anyio
@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
async def test_async_stopping_early_does_not_hang(mock, lib):
    start = time.perf_counter()
    async with (
        lib.AsyncClient() as client,
        client.stream("POST", URL, json=body("endless", stream=True)) as response,
    ):
        async for chunk in response.aiter_raw():
            assert chunk.startswith(b"data: ")
            break
    assert time.perf_counter() - start < 1.0


def test_sdk_stream_closed_early_does_not_hang(sdk):
    client, _ = sdk
    start = time.perf_counter()
    with client.chat.completions.create(model="m", messages=user("endless"), stream=True) as s:
        next(iter(s))
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_closing_from_another_thread_wakes_a_waiting_reader(mock, lib):
    with lib.Client() as client:
        response = client.send(
            client.build_request("POST", URL, json=body("endless", stream=True)), stream=True
        )
        chunks = response.iter_raw()
        next(chunks)
        threading.Timer(0.1, response.close).start()
        start = time.perf_counter()
        rest = list(chunks)
        assert time.perf_counter() - start < 1.0
        assert len(rest) <= 1


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_interrupted_stream_drops_like_a_socket(mock, lib):
    received: list[bytes] = []

    def read_all() -> None:
        with (
            lib.Client() as client,
            client.stream("POST", URL, json=body("drop", stream=True)) as response,
        ):
            received.extend(response.iter_raw())

    with pytest.raises(lib.RemoteProtocolError, match="incomplete chunked read"):
        read_all()
    assert b"".join(received).count(b"data: ") == 2


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_a_silent_stream_hits_the_clients_read_timeout(mock, lib):
    start = time.perf_counter()
    with (
        lib.Client(timeout=lib.Timeout(5.0, read=0.1)) as client,
        pytest.raises(lib.ReadTimeout),
        client.stream("POST", URL, json=body("silent", stream=True)) as response,
    ):
        response.read()
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_reply_delay_is_waited(mock, lib):
    start = time.perf_counter()
    with lib.Client() as client:
        assert client.post(URL, json=body("wait")).json()["choices"][0]["message"]["content"]
    assert time.perf_counter() - start >= 0.11


@pytest.mark.anyio
@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
async def test_async_reply_delay_is_waited(mock, lib):
    start = time.perf_counter()
    async with lib.AsyncClient() as client:
        assert (await client.post(URL, json=body("wait"))).status_code == 200
    assert time.perf_counter() - start >= 0.11


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_reply_delay_longer_than_the_read_timeout(mock, lib):
    with (
        lib.Client(timeout=lib.Timeout(5.0, read=0.02)) as client,
        pytest.raises(lib.ReadTimeout),
    ):
        client.post(URL, json=body("wait"))


# -- byte for byte the same as the socket server ------------------------------------------------

SAME = [
    body("hi"),
    body("weather in Paris"),
    body("bomb"),
    body("hi", stream=True, stream_options={"include_usage": True}),
    body("weather", stream=True),
    body("slow", stream=True),
    body("limit"),
    body("limit"),
    {"model": "m", "messages": "not a list"},
]


def _exchange(client, url: str) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    out = []
    for payload in SAME:
        response = client.post(url + "/chat/completions", json=payload)
        out.append((response.status_code, list(response.headers.multi_items()), response.content))
    response = client.get(url + "/models")
    out.append((response.status_code, list(response.headers.multi_items()), response.content))
    return out


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_same_bytes_in_process_and_over_the_socket(lib):
    with BackgroundServer(create_app(engine(seed=42))) as server, lib.Client() as client:
        over_socket = _exchange(client, server.url)
    with InProcessMock(engine(seed=42)), lib.Client() as client:
        in_process = _exchange(client, DEFAULT_BASE_URL)
    assert len(in_process) == len(over_socket)
    for (status, headers, content), (s_status, s_headers, s_content) in zip(
        in_process, over_socket, strict=True
    ):
        assert status == s_status
        assert content == s_content
        assert headers == s_headers


# -- which URLs are mocked -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "url", "path"),
    [
        (
            "https://api.openai.com/v1",
            "https://api.openai.com/v1/chat/completions",
            "/v1/chat/completions",
        ),
        ("https://api.openai.com/v1/", "https://api.openai.com:443/v1/models", "/v1/models"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1x/models", None),
        ("https://api.openai.com/v1", "http://api.openai.com/v1/models", None),
        ("https://api.openai.com/v1", "https://api.openai.com:8443/v1/models", None),
        (
            "http://mock.test/openai",
            "http://mock.test/openai/chat/completions",
            "/v1/chat/completions",
        ),
        ("http://mock.test", "http://mock.test/v1/models", "/v1/models"),
        ("http://mock.test:9000/v1", "http://mock.test:9000/v1", "/v1/"),
        ("localhost:8080/v1", "https://localhost:8080/v1/models", "/v1/models"),
    ],
)
def test_base_url_matching(base, url, path):
    parsed = httpx.URL(url)
    assert (
        BaseUrl.parse(base).engine_path(parsed.scheme, parsed.host, parsed.port, parsed.path)
        == path
    )


def test_base_url_must_be_http():
    with pytest.raises(ValueError, match="http"):
        BaseUrl.parse("ftp://example.com")


def test_unmatched_option_is_checked():
    with pytest.raises(ValueError, match="passthrough"):
        InProcessMock(engine(), unmatched="drop")  # type: ignore[arg-type]


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_custom_base_url_and_passthrough(lib):
    """A configured base URL is answered in process; other URLs still reach the network."""
    other = MockEngine(load_text("version: 1\nscenarios:\n  - reply: {content: real}\n"))
    with BackgroundServer(create_app(other)) as server, InProcessMock(engine()) as mock:
        mock.add_base_url("http://mock.test/openai/v1")
        with lib.Client() as client:
            mocked = client.post("http://mock.test/openai/v1/chat/completions", json=body("hi"))
            real = client.post(server.url + "/chat/completions", json=body("hi"))
    assert mocked.json()["choices"][0]["message"]["content"].startswith("Hello")
    assert real.json()["choices"][0]["message"]["content"] == "real"


def test_refusing_other_urls():
    other = MockEngine(ScenarioSet())
    with (
        BackgroundServer(create_app(other)) as server,
        InProcessMock(engine(), unmatched="refuse"),
    ):
        with httpx2.Client() as client, pytest.raises(httpx2.ConnectError, match="refused"):
            client.get(server.url + "/models")
        with httpx.Client() as client, pytest.raises(AssertionError, match="not mocked"):
            client.get(server.url + "/models")
        with httpx2.Client() as client:
            assert client.get(DEFAULT_BASE_URL + "/models").status_code == 200


def test_stop_restores_httpx2_and_respx():
    original = httpx2.HTTPTransport.handle_request
    original_async = httpx2.AsyncHTTPTransport.handle_async_request
    with InProcessMock(engine()):
        assert httpx2.HTTPTransport.handle_request is not original
        with InProcessMock(engine()):
            pass
        assert httpx2.HTTPTransport.handle_request is not original, "the outer mock is active"
    assert httpx2.HTTPTransport.handle_request is original
    assert httpx2.AsyncHTTPTransport.handle_async_request is original_async
    assert not respx.mock.routes.call_count if hasattr(respx.mock.routes, "call_count") else True


def test_the_latest_mock_answers_and_the_engine_can_be_swapped():
    first = MockEngine(load_text("version: 1\nscenarios:\n  - reply: {content: first}\n"))
    second = MockEngine(load_text("version: 1\nscenarios:\n  - reply: {content: second}\n"))
    with InProcessMock(first), InProcessMock(second) as inner, httpx2.Client() as client:
        assert client.post(URL, json=body("x")).json()["choices"][0]["message"]["content"] == (
            "second"
        )
        inner.engine = first
        assert client.post(URL, json=body("x")).json()["choices"][0]["message"]["content"] == (
            "first"
        )


def test_request_headers_reach_the_journal_lower_cased(mock):
    with httpx2.Client() as client:
        client.post(URL, json=body("hi"), headers={"X-Trace-Id": "abc"})
    request = mock.engine.journal[-1].request
    assert request is not None
    assert request.headers["x-trace-id"] == "abc"


def test_yaml_fixture_text_is_valid():
    assert len(load_text(textwrap.dedent(SCENARIOS)).scenarios) == 9


@pytest.mark.anyio
@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
async def test_async_timeouts(mock, lib):
    async with lib.AsyncClient(timeout=lib.Timeout(5.0, read=0.05)) as client:
        with pytest.raises(lib.ReadTimeout):
            await client.post(URL, json=body("silent", stream=True))
        with pytest.raises(lib.ReadTimeout):
            await client.post(URL, json=body("wait"))


@pytest.mark.anyio
@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
async def test_async_close_from_another_task_wakes_the_reader(mock, lib):
    async with lib.AsyncClient() as client:
        request = client.build_request("POST", URL, json=body("endless", stream=True))
        response = await client.send(request, stream=True)
        chunks = response.aiter_raw()
        await chunks.__anext__()

        async def close_soon() -> None:
            await anyio.sleep(0.1)
            await response.aclose()

        start = time.perf_counter()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(close_soon)
            rest = [chunk async for chunk in chunks]
        assert time.perf_counter() - start < 1.0
        assert len(rest) <= 1


@pytest.mark.anyio
async def test_async_passthrough_and_refusal_for_httpx2():
    other = MockEngine(load_text("version: 1\nscenarios:\n  - reply: {content: real}\n"))
    with BackgroundServer(create_app(other)) as server:
        with InProcessMock(engine()):
            async with httpx2.AsyncClient() as client:
                real = await client.post(server.url + "/chat/completions", json=body("x"))
                assert real.json()["choices"][0]["message"]["content"] == "real"
        with InProcessMock(engine(), unmatched="refuse"):
            async with httpx2.AsyncClient() as client:
                with pytest.raises(httpx2.ConnectError, match="refused"):
                    await client.get(server.url + "/models")
