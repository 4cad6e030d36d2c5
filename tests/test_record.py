"""Record through `RecordingProxy` against a local upstream, then replay exactly.

The upstream is a second mockserver on 127.0.0.1 scripted to behave like OpenAI: text, tool
calls, streams with usage, 4xx/5xx errors, a mid-stream error, a dropped connection, a tool
loop and a sequence. Every exchange is recorded through the proxy; then the same requests are
replayed by a server on the recorded folder and by the in-process mock, and the bytes (body
or events), the useful headers and the status must be what the client got live.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest

from mockserver.app import create_app
from mockserver.engine import EngineConfig, MockEngine
from mockserver.inprocess import InProcessMock
from mockserver.recording.cassette import RecordingError, Writer
from mockserver.recording.exchange import kept_headers
from mockserver.recording.proxy import ProxySettings, RecordingProxy
from mockserver.recording.scrub import Scrubber
from mockserver.scenarios import load_scenarios, load_text
from mockserver.server import BackgroundServer
from tests.support import sse_data

KEY = "sk-proj-Zt9qLmN4vB7xK2pR8sW1yH6jD3fG5cA0eU"
UPSTREAM_KEY = "sk-upstream-Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVb"
ORG = "org-Hq3Lm9Pz2Xc7Vb4Nk8Rt1Ws6"
PROJECT = "proj_Ab12Cd34Ef56Gh78Ij90Kl12"
COOKIE = "session=Cookie9Secret8Value7654321"
AZURE_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
QUERY_SECRET = "QuerySecret0987654321abcdef"
SET_COOKIE = "__cf_bm=UpstreamCookie1234567890abcdefghij"
LEAKED = "sk-proj-LeakedInABody1234567890abcdefghijkl"
SECRETS = (
    KEY,
    UPSTREAM_KEY,
    ORG,
    PROJECT,
    "Cookie9Secret8Value7654321",
    AZURE_KEY,
    QUERY_SECRET,
    "UpstreamCookie1234567890abcdefghij",
    LEAKED,
    "Hq3Lm9Pz2Xc7Vb4Nk8Rt1Ws6",
)

UPSTREAM = f"""
version: 1
scenarios:
  - name: tool-final
    priority: 20
    match: {{last_message: {{role: tool, contains: "12:00"}}}}
    reply: {{content: "It is sunny and noon in Paris."}}
  - name: tool-second
    priority: 10
    match: {{last_message: {{role: tool, contains: sunny}}}}
    reply:
      tool_calls: [{{name: get_time, arguments: {{city: Paris}}}}]
  - name: tool-first
    match: {{tools: [get_weather], last_user_message: {{contains: trip}}}}
    reply:
      tool_calls: [{{name: get_weather, arguments: {{city: Paris}}}}]
  - name: weather
    match: {{tools: [get_weather], last_user_message: {{contains: weather}}}}
    reply:
      tool_calls:
        - {{name: get_weather, arguments: {{city: Paris}}}}
        - {{name: get_weather, arguments: {{city: Rome}}}}
  - name: hello
    match: {{last_user_message: hello}}
    reply:
      content: "Hello there."
      headers: {{set-cookie: "{SET_COOKIE}; path=/", openai-organization: acme-private-org}}
  - name: leak
    match: {{last_user_message: leak}}
    reply: {{content: "Your key is {LEAKED} in organization {ORG}."}}
  - name: count
    match: {{last_user_message: count}}
    reply:
      content: "one two three four five"
      stream: {{chunk_delay_ms: 40}}
  - name: bad-request
    match: {{last_user_message: bad}}
    reply: {{error: {{status: 400, message: "Invalid value for 'temperature'.", param: temperature}}}}
  - name: server-error
    match: {{last_user_message: server}}
    reply: {{error: 500}}
  - name: rate-limited
    match: {{last_user_message: rate}}
    reply: {{error: 429}}
  - name: midstream
    match: {{last_user_message: midstream}}
    reply:
      content: "this stream fails half way through"
      stream: {{interrupt: {{after_chunks: 3, error: {{status: 500, message: "The server had an error."}}}}}}
  - name: dropped
    match: {{last_user_message: drop}}
    reply:
      content: "this connection drops"
      stream: {{interrupt: {{after_chunks: 2}}}}
  - name: again
    match: {{last_user_message: again}}
    sequence: [{{content: first}}, {{content: second}}, {{content: third}}]
"""

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    for name in ("get_weather", "get_time")
]


def chat(text: str, **fields) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **fields}


STREAM = {"stream": True, "stream_options": {"include_usage": True}}
REQUESTS = {
    "text": chat("hello"),
    "text-stream": chat("hello", **STREAM),
    "leak": chat("leak"),
    "tool-calls": chat("weather in Paris and Rome?", tools=TOOLS[:1]),
    "tool-calls-stream": chat("weather in Paris and Rome?", tools=TOOLS[:1], **STREAM),
    "stream-usage": chat("count", **STREAM),
    "400": chat("bad", temperature=0.5),
    "500": chat("server"),
    "429": chat("rate"),
    "midstream-error": chat("midstream", stream=True),
    "dropped": chat("drop", stream=True),
}


@dataclass
class Got:
    """What a client received."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    aborted: bool = False
    arrivals: list[float] = field(default_factory=list)

    @property
    def events(self) -> list[str]:
        return sse_data(self.body)

    def useful_headers(self) -> tuple[tuple[str, str], ...]:
        return kept_headers(self.headers)


def post(
    client: httpx.Client, url: str, body: dict, headers: dict | None = None, query: str = ""
) -> Got:
    """POST a chat completion and read the raw response as it arrives."""
    sent = time.perf_counter()
    with client.stream(
        "POST", url + "/chat/completions" + query, content=json.dumps(body), headers=headers or {}
    ) as response:
        got = Got(response.status_code, list(response.headers.multi_items()), b"")
        try:
            for chunk in response.iter_raw():
                got.body += chunk
                got.arrivals.append(time.perf_counter() - sent)
        except httpx.RemoteProtocolError:
            got.aborted = True
    return got


CLIENT_HEADERS = {
    "authorization": f"Bearer {KEY}",
    "openai-organization": ORG,
    "openai-project": PROJECT,
    "cookie": COOKIE,
    "api-key": AZURE_KEY,
}


@dataclass
class Recording:
    url: str
    out: Path
    writer: Writer
    upstream: MockEngine
    lines: list[str]
    proxy: RecordingProxy

    def wait(self, count: int, timeout: float = 5.0) -> None:
        """Until `count` exchanges are on disk (a client may close a stream before its end)."""
        deadline = time.monotonic() + timeout
        while len(self.writer.written) < count:
            assert time.monotonic() < deadline, f"{len(self.writer.written)} written: {self.lines}"
            time.sleep(0.005)


@pytest.fixture
def record(tmp_path: Path) -> Iterator[Callable[..., Recording]]:
    servers: list[BackgroundServer] = []

    def start(api_key: str | None = None, upstream_text: str = UPSTREAM, **writer) -> Recording:
        upstream = MockEngine(load_text(upstream_text, "upstream.yaml"), EngineConfig(seed=3))
        up = BackgroundServer(create_app(upstream)).start()
        servers.append(up)
        out = tmp_path / "recorded"
        lines: list[str] = []
        w = Writer(out, **writer)
        proxy = RecordingProxy(
            ProxySettings(upstream=up.url, api_key=api_key), w, report=lines.append
        )
        server = BackgroundServer(proxy).start()  # type: ignore[arg-type]
        servers.append(server)
        return Recording(server.url, out, w, upstream, lines, proxy)

    yield start
    for server in reversed(servers):
        server.stop()


def replay_server(out: Path, **config) -> BackgroundServer:
    engine = MockEngine(load_scenarios([out]), EngineConfig(**config))
    return BackgroundServer(create_app(engine)).start()


def test_every_kind_of_exchange_replays_exactly_through_the_server_and_in_process(record):
    rec = record()
    with httpx.Client(timeout=10) as client:
        live = {
            name: post(client, rec.url, body, CLIENT_HEADERS) for name, body in REQUESTS.items()
        }
    rec.wait(len(REQUESTS))
    assert [e.request.headers["authorization"] for e in rec.upstream.journal] == [
        f"Bearer {KEY}"
    ] * len(REQUESTS)  # the client's own credentials went upstream

    # live answers are what the upstream says: errors, a mid-stream error, a dropped stream
    assert live["400"].status == 400
    assert live["500"].status == 500
    assert live["429"].status == 429
    assert json.loads(live["midstream-error"].events[-1])["error"]["message"] == (
        "The server had an error."
    )
    assert live["dropped"].aborted
    assert json.loads(live["stream-usage"].events[-2])["usage"]["total_tokens"] > 0
    assert len(live["tool-calls"].body) > 0

    server = replay_server(rec.out)
    try:
        with httpx.Client(timeout=10) as client:
            served = {name: post(client, server.url, body) for name, body in REQUESTS.items()}
    finally:
        server.stop()
    engine = MockEngine(load_scenarios([rec.out]))
    with InProcessMock(engine, ["https://api.openai.com/v1"]), httpx.Client(timeout=10) as client:
        inprocess = {
            name: post(client, "https://api.openai.com/v1", body) for name, body in REQUESTS.items()
        }

    for name, request in REQUESTS.items():
        for mode, got in (("server", served[name]), ("in process", inprocess[name])):
            where = f"{name} ({mode})"
            assert got.status == live[name].status, where
            assert got.aborted == live[name].aborted, where
            assert got.useful_headers() == live[name].useful_headers(), where
            if request.get("stream") and got.status == 200:
                assert got.events == live[name].events, where
            expected = live[name].body
            if name == "leak":  # what was scrubbed stays scrubbed
                expected = expected.replace(LEAKED.encode(), b"<scrubbed>")
                expected = expected.replace(ORG.encode(), b"<scrubbed>")
            if not live[name].aborted:
                assert got.body == expected, where  # byte for byte
    assert "x-request-id" in dict(live["text"].useful_headers())
    assert "x-ratelimit-remaining-requests" in dict(live["text"].useful_headers())
    assert "openai-processing-ms" in dict(live["text"].useful_headers())


def test_no_secret_reaches_the_disk(record):
    """The key and header values the client used (and those upstream sent) are in no file."""
    rec = record(api_key=UPSTREAM_KEY)
    with httpx.Client(timeout=10) as client:
        for body in REQUESTS.values():
            post(client, rec.url, body, CLIENT_HEADERS, query=f"?api-key={QUERY_SECRET}")
        for _ in range(2):  # appends rewrite a file: every write path is checked
            post(client, rec.url, chat("leak"), CLIENT_HEADERS)
    rec.wait(len(REQUESTS) + 2)
    # the recorder's key replaced the client's upstream
    assert {e.request.headers["authorization"] for e in rec.upstream.journal} == {
        f"Bearer {UPSTREAM_KEY}"
    }
    files = [p for p in rec.out.rglob("*") if p.is_file()]
    assert files
    assert all(p.suffix == ".yaml" for p in files), files  # no temporary file left behind
    for path in files:
        text = path.read_text()
        for secret in SECRETS:
            assert secret not in text, f"{path.name} holds {secret[:12]}..."
        assert "acme-private-org" not in text  # the account's organisation header is not kept
    leak = next(p for p in files if p.name.startswith("leak"))
    assert "Your key is <scrubbed> in organization <scrubbed>." in leak.read_text()


def test_a_three_turn_tool_loop_is_recorded_whole_and_replays(record, live):
    rec = record()
    sdk = openai.OpenAI(base_url=rec.url, api_key=KEY, max_retries=0)

    def loop(client: openai.OpenAI) -> list[str]:
        messages: list = [{"role": "user", "content": "Plan a trip to Paris."}]
        said: list[str] = []
        for result in ("sunny", "12:00", None):
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=TOOLS
            )
            message = reply.choices[0].message
            if result is None:
                said.append(message.content or "")
                return said
            call = message.tool_calls[0]
            said.append(f"{call.function.name}({call.function.arguments}) {call.id}")
            messages.append(message.model_dump(exclude_unset=True))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        return said

    recorded = loop(sdk)
    rec.wait(3)
    assert recorded[0].startswith('get_weather({"city":"Paris"})')
    assert recorded[1].startswith('get_time({"city":"Paris"})')
    assert recorded[2] == "It is sunny and noon in Paris."
    files = list(rec.out.glob("*.yaml"))
    assert len(files) == 1  # one conversation, one file
    scenarios = load_scenarios(files).scenarios
    assert len(scenarios) == 3  # every turn, each with the messages so far (tool results too)

    served = live([rec.out])  # strict SDK clients, every reply checked against OpenAI's schema
    assert loop(served.client) == recorded
    with InProcessMock(MockEngine(load_scenarios([rec.out])), ["https://api.openai.com/v1"]):
        inprocess = openai.OpenAI(api_key="sk-anything", max_retries=0)
        assert loop(inprocess) == recorded


def test_a_repeated_request_becomes_a_sequence(record):
    rec = record()
    with httpx.Client(timeout=10) as client:
        live = [post(client, rec.url, chat("again")) for _ in range(3)]
    rec.wait(3)
    (scenario,) = load_scenarios([rec.out]).scenarios
    assert len(scenario.replies) == 3
    contents = [json.loads(g.body)["choices"][0]["message"]["content"] for g in live]
    assert contents == ["first", "second", "third"]
    server = replay_server(rec.out)
    try:
        with httpx.Client(timeout=10) as client:
            replayed = [post(client, server.url, chat("again")).body for _ in range(3)]
    finally:
        server.stop()
    assert replayed == [g.body for g in live]


def test_streams_pass_through_live_and_replay_with_their_timing(record):
    rec = record()
    with httpx.Client(timeout=10) as client:
        got = post(client, rec.url, chat("count", stream=True))
    rec.wait(1)
    # the events reached the client one by one, as the upstream sent them (40 ms apart)
    assert len(got.arrivals) >= 6
    assert got.arrivals[-1] - got.arrivals[0] >= 0.04 * 5 * 0.9
    (scenario,) = load_scenarios([rec.out]).scenarios
    delays = [e.delay_ms for e in scenario.replies[0].raw.events]
    assert all(d >= 30 for d in delays[1:]), delays
    server = replay_server(rec.out, recorded_timing=True)
    try:
        with httpx.Client(timeout=10) as client:
            timed = post(client, server.url, chat("count", stream=True))
    finally:
        server.stop()
    assert timed.events == got.events
    assert timed.arrivals[-1] - timed.arrivals[0] >= sum(delays[1:]) / 1000 * 0.9


def test_an_unreachable_upstream_is_a_502_and_nothing_is_recorded(tmp_path):
    writer = Writer(tmp_path / "out")
    lines: list[str] = []
    proxy = RecordingProxy(
        ProxySettings(upstream="http://127.0.0.1:9/v1", connect_timeout=2),
        writer,
        report=lines.append,
    )
    server = BackgroundServer(proxy).start()  # type: ignore[arg-type]
    try:
        with httpx.Client(timeout=10) as client:
            got = post(client, server.url, chat("hello"))
    finally:
        server.stop()
    assert got.status == 502
    error = json.loads(got.body)["error"]
    assert error["code"] == "upstream_unreachable"
    assert "http://127.0.0.1:9/v1" in error["message"]
    assert dict(got.headers)["x-should-retry"] == "false"
    assert not (tmp_path / "out").exists()
    assert "upstream unreachable" in lines[0]


def test_other_paths_pass_through_unrecorded(record):
    rec = record()
    with httpx.Client(timeout=10) as client:
        models = client.get(rec.url + "/models")
        missing = client.get(rec.url + "/nothing/here")
    assert models.status_code == 200
    assert models.json()["object"] == "list"
    assert missing.status_code == 404
    assert not rec.out.exists()


def test_many_parallel_requests_leave_valid_files(record):
    rec = record()
    texts = ["hello", "again", "leak", "count"]
    results: list[int] = []

    def worker(n: int) -> None:
        with httpx.Client(timeout=20) as client:
            body = chat(texts[n % len(texts)], stream=(n // len(texts)) % 2 == 0)
            results.append(post(client, rec.url, body).status)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 40
    rec.wait(40, timeout=20)
    loaded = load_scenarios([rec.out])
    assert sum(len(s.replies) for s in loaded.scenarios) == 40  # no exchange lost
    assert len(loaded.scenarios) == len(texts) * 2  # streamed or not: different matches
    assert all(p.suffix == ".yaml" for p in rec.out.iterdir())


def test_match_on_and_scrub_options(record):
    rec = record(match_on=("model", "last_user_message"))
    with httpx.Client(timeout=10) as client:
        post(client, rec.url, chat("hello", temperature=0.3, user="someone"))
    rec.wait(1)
    text = next(rec.out.glob("*.yaml")).read_text()
    assert "last_user_message: hello" in text
    assert "temperature" not in text
    assert "someone" not in text


def test_user_patterns_are_scrubbed(record):
    rec = record(scrubber=Scrubber([r"Hello (there)"]))
    with httpx.Client(timeout=10) as client:
        post(client, rec.url, chat("hello"))
    rec.wait(1)
    text = next(rec.out.glob("*.yaml")).read_text()
    assert "Hello <scrubbed>." in text
    assert "Hello there" not in text


def test_the_upstream_url_keeps_path_and_query():
    proxy = RecordingProxy(
        ProxySettings(upstream="https://example.test/openai"), Writer(Path("/nonexistent"))
    )
    scope = {"path": "/v1/chat/completions", "query_string": b"api-version=2024-10-21"}
    assert proxy.upstream_url(scope) == (
        "https://example.test/openai/chat/completions?api-version=2024-10-21"
    )
    assert proxy.upstream_url({"path": "/chat/completions"}) == (
        "https://example.test/openai/chat/completions"
    )
    forwarded = dict(
        proxy.forward_headers(
            [
                (b"Host", b"x"),
                (b"Content-Length", b"3"),
                (b"X-Team", b"a"),
                (b"X-Mockserver-Session", b"test-7"),  # mockserver's own: not the upstream's
            ]
        )
    )
    assert forwarded == {b"x-team": b"a", b"accept-encoding": b"identity"}
    keyed = RecordingProxy(
        ProxySettings(upstream="https://e.test", api_key="k"), Writer(Path("/x"))
    )
    assert dict(keyed.forward_headers([(b"authorization", b"Bearer mine")])) == {
        b"authorization": b"Bearer k",
        b"accept-encoding": b"identity",
    }
    assert dict(keyed.forward_headers([(b"api-key", b"mine")])) == {  # an Azure client
        b"api-key": b"k",
        b"accept-encoding": b"identity",
    }


@pytest.mark.parametrize("raw", ["api.openai.com", "ftp://x/v1", "http://"])
def test_check_upstream_says_what_it_wants(raw):
    from mockserver.recording.upstream import check_upstream

    with pytest.raises(ValueError, match="expected the upstream's base URL"):
        check_upstream(raw)


def test_replayed_files_read_like_scenarios(record):
    rec = record()
    with httpx.Client(timeout=10) as client:
        post(client, rec.url, chat("hello"))
        post(client, rec.url, chat("count", stream=True))
    rec.wait(2)
    hello = next(rec.out.glob("hello-*.yaml")).read_text()
    assert hello.startswith("# Recorded by")
    assert "\nversion: 1\nrecorded_at: '" in hello
    assert "body: |-\n" in hello  # the body as a block a person can edit
    count = next(rec.out.glob("count-*.yaml")).read_text()
    assert "events:\n" in count
    assert "delay_ms:" in count
    assert textwrap.dedent("""\
        match:
          api: chat
          model: gpt-4o-mini
          stream: true
          messages:
            - role: user
              content: count
    """) in textwrap.dedent("\n".join(line[4:] for line in count.splitlines()) + "\n")


class _Breaks:
    """An upstream that starts a whole JSON reply and drops the connection half way."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        await receive()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"100")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"id": "chat', "more_body": True})
        raise RuntimeError("the upstream breaks")


def test_a_whole_reply_that_breaks_off_is_passed_on_and_not_recorded(tmp_path):
    up = BackgroundServer(_Breaks()).start()  # type: ignore[arg-type]
    lines: list[str] = []
    writer = Writer(tmp_path / "out")
    proxy = BackgroundServer(
        RecordingProxy(ProxySettings(upstream=up.url), writer, report=lines.append)  # type: ignore[arg-type]
    ).start()
    try:
        with httpx.Client(timeout=10) as client:
            got = post(client, proxy.url, chat("hello"))
    finally:
        proxy.stop()
        up.stop()
    assert got.aborted
    assert got.body == b'{"id": "chat'
    assert lines == [
        "not recorded: the upstream broke off a whole (non-stream) /v1/chat/completions reply"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (RecordingError("refusing to write x"), "not recorded: refusing to write x"),
        (
            OSError(28, "No space left on device"),
            "not recorded: cannot write: [Errno 28] No space left on device",
        ),
    ],
)
def test_a_write_that_fails_is_reported_and_the_client_still_answered(
    record, monkeypatch, error, said
):
    rec = record()

    def fail(exchange):
        raise error

    monkeypatch.setattr(rec.writer, "write", fail)
    with httpx.Client(timeout=10) as client:
        got = post(client, rec.url, chat("hello"))
    assert got.status == 200
    assert json.loads(got.body)["choices"][0]["message"]["content"] == "Hello there."
    assert rec.lines == [said]


def test_the_recording_engine_forwards_misses_with_the_upstreams_query(tmp_path):
    """What the pytest record modes run on, used directly: scenarios first, misses forwarded
    (to an Azure-style URL with `?api-version=`), written, answered from what was written."""
    from mockserver.recording.forwarding import Recorder

    upstream = MockEngine(load_text(UPSTREAM, "upstream.yaml"))
    inner = create_app(upstream)
    seen: list[tuple[str, bytes]] = []

    async def app(scope, receive, send):
        seen.append((scope["path"], scope["query_string"]))
        await inner(scope, receive, send)

    server = BackgroundServer(app).start()  # type: ignore[arg-type]
    try:
        engine = MockEngine(
            load_text(
                "scenarios: [{name: own, match: {last_user_message: mine}, reply: {content: x}}]"
            ),
            on_miss=Recorder(
                writer=Writer(tmp_path / "c.yaml", one_file=True),
                upstream=server.url + "?api-version=2024-10-21",
                api_key=UPSTREAM_KEY,
            ),
        )
        headers = [(b"authorization", b"Bearer sk-mockserver")]
        own = engine.handle_chat(json.dumps(chat("mine")).encode(), headers)
        first = engine.handle_chat(json.dumps(chat("again")).encode(), headers)
        second = engine.handle_chat(json.dumps(chat("again")).encode(), headers)
    finally:
        server.stop()
    assert json.loads(own.body)["choices"][0]["message"]["content"] == "x"  # not forwarded
    assert seen == [("/v1/chat/completions", b"api-version=2024-10-21")] * 2
    assert [json.loads(o.body)["choices"][0]["message"]["content"] for o in (first, second)] == [
        "first",
        "second",
    ]
    assert [e.request.headers["authorization"] for e in upstream.journal] == [
        f"Bearer {UPSTREAM_KEY}"
    ] * 2
    (scenario,) = load_scenarios([tmp_path / "c.yaml"]).scenarios
    assert len(scenario.replies) == 2
    assert engine.journal[0].scenario == "own"
