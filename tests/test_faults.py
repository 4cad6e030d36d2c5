"""Faults on demand, through the openai SDK's own retry, timeout and stream logic.

Each fault is checked the way an application meets it: the SDK's retries against HTTP faults
(attempts counted in the journal, `retry-after-ms` honoured), its read timeout on a stall, its
stream parser on a malformed chunk, a reset as `APIConnectionError`; on a real socket and in
process alike. A seed replays the same faults, bytes and waits.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pydantic
import pytest

from mockserver import cli, faults, sse, wrong
from mockserver.engine import EngineConfig, MockEngine
from mockserver.errors import ScenarioError
from mockserver.faults import Dice, When, load_faults
from mockserver.inprocess import InProcessMock
from mockserver.scenarios import load_text
from tests.conftest import Live

MESSAGES = [{"role": "user", "content": "hi"}]
CONTENT = "Héllo wörld, how are you today?"


def scenario(faults: str, reply: str = f"content: {CONTENT!r}") -> str:
    return textwrap.dedent(
        f"""
        version: 1
        scenarios:
          - name: s
            faults: {faults}
            reply: {{{reply}}}
        """
    )


def sdk(url: str, *, retries: int = 0, timeout: float = 5.0) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=url, api_key="sk-test", max_retries=retries, timeout=httpx2.Timeout(timeout)
    )


def body(stream: bool = False, **extra: object) -> bytes:
    return json.dumps({"model": "gpt-4o", "messages": MESSAGES, "stream": stream, **extra}).encode()


def streamed_text(client: openai.OpenAI) -> str:
    chunks = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# -- HTTP faults against the SDK's retries ----------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529])
def test_sdk_retries_each_http_fault_then_succeeds(live: Callable[..., Live], status: int) -> None:
    server = live(scenario(f"[{{fault: http, status: {status}, first: 2}}]"))
    reply = sdk(server.url, retries=2).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert reply.choices[0].message.content == CONTENT
    journal = server.engine.journal
    assert [(e.status, e.fault) for e in journal] == [
        (status, "http"),
        (status, "http"),
        (200, None),
    ]
    assert journal[0].error is not None and journal[0].error.status == status


def test_sdk_gives_up_after_its_retries_with_openai_error(live: Callable[..., Live]) -> None:
    server = live(scenario("[{fault: http, status: 429, name: throttled, every: 1}]"))
    with pytest.raises(openai.RateLimitError) as caught:
        sdk(server.url, retries=1).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert caught.value.response.headers["x-ratelimit-reset-requests"] == "10ms"
    assert [e.fault for e in server.engine.journal] == ["throttled", "throttled"]


def test_sdk_honours_retry_after_ms_of_a_fault(live: Callable[..., Live]) -> None:
    server = live(
        scenario(
            "[{fault: http, status: 503, first: 1, message: busy, headers: {retry-after-ms: 1200}}]"
        )
    )
    started = time.monotonic()
    sdk(server.url, retries=1).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    waited = time.monotonic() - started
    # the SDK's own backoff would wait 0.375-0.5 s; the header says 1.2 s
    assert 1.2 <= waited < 3.0
    assert server.engine.journal[0].error is not None
    assert server.engine.journal[0].error.message == "busy"


def test_http_fault_after_a_delay(live: Callable[..., Live]) -> None:
    server = live(scenario("[{fault: http, status: 500, delay_ms: 300}]"))
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError):
        sdk(server.url).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert time.monotonic() - started >= 0.3


def test_server_wide_http_faults_do_not_move_a_sequence(tmp_path: Path) -> None:
    text = """
        version: 1
        scenarios:
          - name: seq
            sequence: [{content: one}, {content: two}]
    """
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  - {fault: http, status: 502, on_requests: [1, 3]}\n")
    engine = MockEngine(
        load_text(textwrap.dedent(text)), EngineConfig(seed=1, faults=load_faults(faults))
    )
    answers = [engine.handle_chat(body()) for _ in range(4)]
    assert [o.status for o in answers] == [502, 200, 502, 200]
    assert [json.loads(o.body)["choices"][0]["message"]["content"] for o in answers[1::2]] == [
        "one",
        "two",
    ]
    assert [(e.scenario, e.fault) for e in engine.journal] == [
        (None, "http"),
        ("seq", None),
        (None, "http"),
        ("seq", None),
    ]


# -- stream faults -----------------------------------------------------------------------------


@pytest.fixture(params=["socket", "in-process"])
def where(
    request: pytest.FixtureRequest, live: Callable[..., Live]
) -> Iterator[Callable[..., str]]:
    """Serve a scenario text on a real socket, or in process; gives the base URL."""
    mocks: list[InProcessMock] = []

    def serve(text: str) -> str:
        if request.param == "socket":
            return live(text).url
        engine = MockEngine(load_text(text), EngineConfig(seed=1))
        mocks.append(InProcessMock(engine, ["http://mock.test/v1"]).start())
        return "http://mock.test/v1"

    yield serve
    for mock in mocks:
        mock.stop()


def test_stall_fires_the_sdk_read_timeout(where: Callable[..., str]) -> None:
    url = where(scenario("[{fault: stall, after_chunks: 2, stall_ms: 5000}]"))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError) as caught:
        streamed_text(sdk(url, timeout=0.5))
    assert isinstance(caught.value.__cause__, httpx2.ReadTimeout)
    assert 0.5 <= time.monotonic() - started < 3.0


def test_stall_then_continue_delivers_everything(where: Callable[..., str]) -> None:
    url = where(scenario("[{fault: stall, after_chunks: 1, stall_ms: 300}]"))
    started = time.monotonic()
    assert streamed_text(sdk(url)) == CONTENT
    assert time.monotonic() - started >= 0.3


def test_malformed_chunk_raises_in_the_sdk_stream_parser(where: Callable[..., str]) -> None:
    url = where(scenario("[{fault: malformed, after_chunks: 3}]"))
    with pytest.raises(json.JSONDecodeError):
        streamed_text(sdk(url))


def test_reset_is_a_connection_error(where: Callable[..., str]) -> None:
    url = where(scenario("[{fault: reset, after_chunks: 2}]"))
    with pytest.raises(openai.APIConnectionError):
        streamed_text(sdk(url))
    with pytest.raises(openai.APIConnectionError):
        sdk(url).chat.completions.create(model="gpt-4o", messages=MESSAGES)


def test_reset_on_a_plain_reply_is_retried_by_the_sdk(live: Callable[..., Live]) -> None:
    server = live(scenario("[{fault: reset, first: 1}]"))
    reply = sdk(server.url, retries=1).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert reply.choices[0].message.content == CONTENT
    assert [e.fault for e in server.engine.journal] == ["reset", None]


def test_error_event_mid_stream(where: Callable[..., str]) -> None:
    url = where(scenario("[{fault: error_event, after_chunks: 2, status: 503, message: gone}]"))
    with pytest.raises(openai.APIError, match="gone"):
        streamed_text(sdk(url))


@pytest.mark.parametrize("kind", ["split_utf8", "split_json", "no_done"])
def test_split_chunks_and_missing_done_still_parse(where: Callable[..., str], kind: str) -> None:
    url = where(scenario(f"[{{fault: {kind}}}]"))
    assert streamed_text(sdk(url)) == CONTENT


def test_split_utf8_cuts_a_character_across_two_writes() -> None:
    engine = MockEngine(load_text(scenario("[{fault: split_utf8}]")), EngineConfig(seed=3))
    frames = engine.handle_chat(body(stream=True)).frames
    assert frames is not None
    cut = [n for n, f in enumerate(frames) if f.data and 0x80 <= f.data[0] < 0xC0]
    assert len(cut) == 1
    before, after = frames[cut[0] - 1].data, frames[cut[0]].data
    with pytest.raises(UnicodeDecodeError):
        before.decode()
    (before + after).decode()
    assert frames[cut[0]].delay > 0  # a separate write, after a pause


def test_split_json_and_no_done_bytes() -> None:
    engine = MockEngine(
        load_text(
            scenario("[{fault: split_json, after_chunks: 1, first: 1}, {fault: no_done, every: 2}]")
        ),
        EngineConfig(seed=3),
    )
    split = engine.handle_chat(body(stream=True))
    assert split.frames is not None and len(split.frames) == 2
    first = split.frames[0].data.split(b"\n\n")[-1]
    assert first.startswith(b"data: {") and not first.endswith(b"}")
    assert split.content().endswith(b"data: [DONE]\n\n")
    assert not engine.handle_chat(body(stream=True)).content().endswith(b"data: [DONE]\n\n")
    assert [e.fault for e in engine.journal] == ["split_json", "no_done"]


def test_duplicate_chunk_repeats_a_token(where: Callable[..., str]) -> None:
    url = where(scenario("[{fault: duplicate, after_chunks: 1}]", "content: 'one two'"))
    assert streamed_text(sdk(url)) == "oneone two"


def test_dribble_sends_bytes_slowly(live: Callable[..., Live]) -> None:
    server = live(scenario("[{fault: dribble, bytes_per_second: 2000}]"))
    started = time.monotonic()
    reply = sdk(server.url).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    elapsed = time.monotonic() - started
    size = len(server.engine.handle_chat(body()).content())
    assert reply.choices[0].message.content == CONTENT
    assert size / 2000 * 0.9 <= elapsed < size / 2000 + 1.5


@pytest.mark.parametrize("stream", [False, True])
def test_bad_tool_arguments_do_not_parse(where: Callable[..., str], stream: bool) -> None:
    url = where(
        scenario(
            "[{fault: bad_tool_arguments}]",
            "tool_calls: [{name: get_weather, arguments: {city: Paris}}]",
        )
    )
    client = sdk(url)
    if stream:
        chunks = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        arguments = "".join(
            c.choices[0].delta.tool_calls[0].function.arguments or ""
            for c in chunks
            if c.choices and c.choices[0].delta.tool_calls
        )
    else:
        reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        arguments = reply.choices[0].message.tool_calls[0].function.arguments  # type: ignore[union-attr]
    assert arguments and '{"city":"Paris"}'.startswith(arguments)
    with pytest.raises(json.JSONDecodeError):
        json.loads(arguments)


def test_journal_route_shows_the_fault(live: Callable[..., Live]) -> None:
    server = live(scenario("[{fault: http, status: 500, name: boom, first: 1}]"))
    with pytest.raises(openai.InternalServerError):
        sdk(server.url).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    entries = httpx2.get(server.url.removesuffix("/v1") + "/_mockserver/journal").json()["data"]
    assert [e["fault"] for e in entries] == ["boom"]


# -- schedules and seeds -----------------------------------------------------------------------


def test_schedules() -> None:
    import random

    rng = random.Random(0)
    assert [n for n in range(1, 13) if When(every=5).fires(n, rng)] == [5, 10]
    assert [n for n in range(1, 13) if When(first=2).fires(n, rng)] == [1, 2]
    assert [n for n in range(1, 13) if When(on_requests=frozenset({3, 7})).fires(n, rng)] == [3, 7]
    hits = sum(When(probability=0.25).fires(n, rng) for n in range(1, 4001))
    assert 900 < hits < 1100
    assert not any(When(probability=0.0).fires(n, rng) for n in range(1, 100))
    dice = Dice(rng)
    assert dice.pick(()) is None


CHAOS = (
    "[{fault: http, status: 503, probability: 0.2}, {fault: reset, probability: 0.1}, "
    "{fault: stall, stall_ms: {median: 50, p99: 400}, probability: 0.1}, "
    "{fault: malformed, probability: 0.1}, {fault: split_utf8, probability: 0.1}, "
    "{fault: duplicate, probability: 0.1}]"
)


def _run(seed: int) -> tuple[list[str | None], list[tuple[int, bytes, tuple[float, ...]]]]:
    engine = MockEngine(
        load_text(scenario(CHAOS, f"content: {CONTENT!r}, stream: {{tokens_per_second: 200}}")),
        EngineConfig(seed=seed),
    )
    outcomes = [engine.handle_chat(body(stream=n % 3 != 0)) for n in range(40)]
    shapes = [
        (o.status, o.content(), tuple(round(f.delay, 6) for f in o.frames or ())) for o in outcomes
    ]
    return [e.fault for e in engine.journal], shapes


def test_the_same_seed_gives_the_same_faults_bytes_and_waits() -> None:
    faults, shapes = _run(11)
    assert (faults, shapes) == _run(11)
    assert len(set(faults)) >= 5  # the chaos did happen, in several kinds
    assert _run(12)[0] != faults


# -- reading faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "problem"),
    [
        ("[{fault: boom}]", "s.faults[0].fault: unknown value 'boom' (allowed: http"),
        ("[{fault: http}]", "missing required key 'status'"),
        ("[{fault: reset, stall_ms: 5}]", "`stall_ms` does not apply to fault reset"),
        ("[{fault: reset, probability: 2}]", "expected a probability from 0 to 1"),
        ("[{fault: reset, every: 2, first: 1}]", "give one of probability, every"),
        ("[{fault: stall, stall_ms: {median: 5}}]", "missing required key 'p99'"),
        ("[{fault: reset, on_requests: []}]", "expected a non-empty list of request numbers"),
        ("{fault: reset}", "expected a list of faults"),
        ("[{fault: http, status: 700}]", "expected an integer between 400 and 599"),
    ],
)
def test_fault_problems_name_file_line_and_key(faults: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_text(scenario(faults).replace("name: s", "name: s"), "f.yaml")
    text = str(caught.value)
    assert text.startswith("f.yaml:") and problem in text.replace("scenarios[0].", "s.")


def test_faults_file_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "faults.yaml"
    bad.write_text("faults:\n  - {fault: reset, every: 0}\n")
    assert (
        cli.main(["serve", str(Path(__file__).parent.parent / "scenarios"), "--faults", str(bad)])
        == 2
    )
    assert f"{bad}:2: faults[0].every: expected an integer between 1" in capsys.readouterr().err
    with pytest.raises(ScenarioError, match="cannot read"):
        load_faults(tmp_path / "missing.yaml")
    other = tmp_path / "other.yaml"
    other.write_text("scenarios: []\n")
    with pytest.raises(ScenarioError, match="unknown key 'scenarios'"):
        load_faults(other)


def test_check_reads_a_faults_file_and_scenario_faults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "faults.yaml"
    good.write_text("faults:\n  - {fault: http, status: 503, every: 3}\n  - {fault: no_done}\n")
    assert cli.main(["check", "--faults", str(good)]) == 0
    assert capsys.readouterr().out == f"ok: 2 faults in {good}\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "faults:\n  - fault: stall\n    stall_ms: {median: 5}\n  - {fault: reset, then: drop}\n"
    )
    scenarios = tmp_path / "s.yaml"
    scenarios.write_text(
        "version: 1\nscenarios:\n  - name: s\n    faults:\n      - {fault: http, status: 99}\n"
        "    reply: {content: hi}\n"
    )
    assert cli.main(["check", str(scenarios), "--faults", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{scenarios}:5: scenarios[0].faults[0].status: expected an integer between 400 and 599,"
        " got 99",
        f"{bad}:3: faults[0].stall_ms: missing required key 'p99'",
        f"{bad}:4: faults[1].then: `then` does not apply to fault reset (it takes after_chunks,"
        " fault, name, probability, every, first, on_requests)",
        "mockserver: 3 problems in the scenario files",
    ]
    assert cli.main(["check", str(scenarios).replace("s.yaml", "bad.yaml"), "--faults", str(good)])
    with pytest.raises(SystemExit):
        cli.main(["check"])
    assert "give scenario PATHs, --faults FILE or both" in capsys.readouterr().err


def test_plain_replies_stall_and_drop_and_reset_restarts_counts() -> None:
    engine = MockEngine(
        load_text(scenario("[{fault: stall, stall_ms: 250, then: drop, first: 1}]")),
        EngineConfig(seed=1),
    )
    dropped = engine.handle_chat(body())
    assert dropped.frames is not None
    assert [(f.delay, f.abort) for f in dropped.frames] == [(0.25, True)]
    assert engine.handle_chat(body()).frames is None  # only the first
    engine.reset()
    assert engine.handle_chat(body()).frames is not None  # counted from 1 again


def test_split_utf8_without_such_a_character_splits_the_json() -> None:
    engine = MockEngine(
        load_text(scenario("[{fault: split_utf8, after_chunks: 0}]", "content: plain ascii")),
        EngineConfig(seed=1),
    )
    frames = engine.handle_chat(body(stream=True)).frames
    assert frames is not None and len(frames) == 2
    assert frames[0].data.startswith(b"data: {") and not frames[0].data.endswith(b"\n\n")


def test_dribble_keeps_a_scripted_interrupt() -> None:
    engine = MockEngine(
        load_text(
            scenario(
                "[{fault: dribble, bytes_per_second: 100000}]",
                "content: one two three, stream: {interrupt: {after_chunks: 2}}",
            )
        ),
        EngineConfig(seed=1),
    )
    frames = engine.handle_chat(body(stream=True)).frames
    assert frames is not None and frames[-1].abort
    assert all(len(f.data) <= 5000 for f in frames)
    assert frames[0].delay == pytest.approx(5000 / 100000)


def test_faults_leave_errors_and_other_kinds_alone() -> None:
    engine = MockEngine(
        load_text(
            scenario(
                "[{fault: malformed}, {fault: bad_tool_arguments}, {fault: no_done}]",
                "content: hi",
            )
        ),
        EngineConfig(seed=1),
    )
    plain = engine.handle_chat(body())  # neither a stream nor a tool call: nothing applies
    assert json.loads(plain.body)["choices"][0]["message"]["content"] == "hi"
    assert engine.journal[-1].fault is None
    refused = engine.handle_chat(b"{")
    assert refused.status == 400 and engine.journal[-1].fault is None


def test_stream_stall_then_drop_and_faults_skip_recorded_errors() -> None:
    text = """
        version: 1
        scenarios:
          - name: recorded failure
            match: {last_user_message: raw}
            faults: [{fault: reset}]
            reply: {raw: {status: 500, body: {error: {message: boom}}}}
          - name: s
            faults: [{fault: stall, after_chunks: 1, stall_ms: 100, then: drop}]
            reply: {content: one two}
    """
    engine = MockEngine(load_text(textwrap.dedent(text)), EngineConfig(seed=1))
    frames = engine.handle_chat(body(stream=True)).frames
    assert frames is not None and (frames[-1].delay, frames[-1].abort) == (0.1, True)
    raw = json.dumps({"model": "m", "messages": [{"role": "user", "content": "raw"}]})
    recorded = engine.handle_chat(raw.encode())
    assert recorded.status == 500 and recorded.frames is None  # a reset needs a 200
    assert [e.fault for e in engine.journal] == ["stall", None]


def test_bad_arguments_of_a_legacy_function_call() -> None:
    engine = MockEngine(
        load_text(
            scenario("[{fault: bad_tool_arguments}]", "tool_calls: [{name: f, arguments: {a: 1}}]")
        ),
        EngineConfig(seed=1),
    )
    request = {"model": "m", "messages": MESSAGES, "functions": [{"name": "f", "parameters": {}}]}
    message = json.loads(engine.handle_chat(json.dumps(request).encode()).body)["choices"][0][
        "message"
    ]
    assert message["function_call"]["arguments"] == '{"a'  # half of {"a":1}


def test_server_wide_stream_faults_follow_the_scenario_own(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  - {fault: no_done, name: server-no-done, every: 2}\n")
    engine = MockEngine(
        load_text(
            scenario(
                "[{fault: duplicate, on_requests: [2]}]",
                "content: one two, stream: {ttft_ms: 50, tokens_per_second: 100, "
                "interrupt: {after_chunks: 3}}",
            )
        ),
        EngineConfig(seed=1, faults=load_faults(faults)),
    )
    outcomes = [engine.handle_chat(body(stream=True)) for _ in range(4)]
    assert [e.fault for e in engine.journal] == [None, "duplicate", None, "server-no-done"]
    for outcome in outcomes:  # paced, and still cut off where the scenario says
        assert outcome.frames is not None and outcome.frames[-1].abort
        assert outcome.frames[0].delay == 0.05


def test_a_file_faults_break_every_scenario_of_the_file() -> None:
    text = """
        version: 1
        faults: [{fault: http, status: 500, name: file-wide, every: 2}]
        scenarios:
          - name: a
            match: {last_user_message: a}
            reply: {content: A}
          - name: b
            reply: {content: B}
    """
    engine = MockEngine(load_text(textwrap.dedent(text)), EngineConfig(seed=1))

    def ask(text: str) -> int:
        request = {"model": "m", "messages": [{"role": "user", "content": text}]}
        return engine.handle_chat(json.dumps(request).encode()).status

    assert [ask("a"), ask("b"), ask("a"), ask("b")] == [200, 500, 200, 500]
    assert [e.fault for e in engine.journal] == [None, "file-wide", None, "file-wide"]


def test_the_same_seed_gives_the_same_bytes_on_the_wire(live: Callable[..., Live]) -> None:
    import httpx

    def run() -> tuple[list[str | None], list[bytes]]:
        server = live(
            scenario(CHAOS.replace("stall_ms: {median: 50, p99: 400}", "stall_ms: 1")),
            seed=21,
        )
        seen = []
        with httpx.Client(base_url=server.url) as client:
            for n in range(12):
                try:
                    response = client.post("/chat/completions", content=body(stream=n % 3 > 0))
                    seen.append(response.content)
                except httpx.RemoteProtocolError:
                    seen.append(b"<reset>")
        return [e.fault for e in server.engine.journal], seen

    first = run()
    assert first == run()
    assert len(set(first[0])) >= 3


# -- replies that are valid JSON but wrong for the request -------------------------------------


class Weather(pydantic.BaseModel):
    city: str
    days: int


WEATHER_TOOL = openai.pydantic_function_tool(Weather)
WEATHER_CALL = "tool_calls: [{name: Weather, arguments: {city: Paris, days: 3}}]"
WEATHER_JSON = """content: '{"city": "Paris", "days": 3}'"""


def _arguments(client: openai.OpenAI, stream: bool, **extra: Any) -> tuple[str, str]:
    """The first tool call's name and arguments, read plainly or from the stream."""
    if not stream:
        reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, **extra)
        call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
        return call.function.name, call.function.arguments  # type: ignore[union-attr]
    name = arguments = ""
    for chunk in client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, **extra
    ):
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name += call.function.name or ""  # type: ignore[union-attr]
            arguments += call.function.arguments or ""  # type: ignore[union-attr]
    return name, arguments


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("tool_arguments_missing", {"days": 3}),  # `city` is required
        ("tool_arguments_wrong_type", {"city": 12345, "days": 3}),
    ],
)
def test_tool_arguments_parse_but_break_the_tools_schema(
    live: Callable[..., Live], kind: str, expected: dict[str, object], stream: bool
) -> None:
    server = live(scenario(f"[{{fault: {kind}}}]", WEATHER_CALL), seed=1)
    name, arguments = _arguments(server.client, stream, tools=[WEATHER_TOOL])
    assert (name, json.loads(arguments)) == ("Weather", expected)  # parses: only a schema sees it
    with pytest.raises(pydantic.ValidationError):  # the SDK's parse() checks the schema
        server.client.chat.completions.parse(
            model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL]
        )
    assert [e.fault for e in server.engine.journal] == [kind, kind]


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_to_a_tool_the_request_did_not_offer(
    live: Callable[..., Live], stream: bool
) -> None:
    server = live(scenario("[{fault: unknown_tool}]", WEATHER_CALL), seed=1)
    name, arguments = _arguments(server.client, stream, tools=[WEATHER_TOOL])
    assert (name, json.loads(arguments)) == ("Weather_v2", {"city": "Paris", "days": 3})
    parsed = server.client.chat.completions.parse(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL]
    )
    call = parsed.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.parsed_arguments is None  # the SDK does not know it: the app must see


@pytest.mark.parametrize("stream", [False, True])
def test_structured_output_that_breaks_the_response_format(
    live: Callable[..., Live], stream: bool
) -> None:
    server = live(scenario("[{fault: bad_structured_output}]", WEATHER_JSON), seed=1)
    response_format = openai.lib._pydantic.to_strict_json_schema(Weather)
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": response_format}}
    if stream:
        chunks = server.client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, response_format=fmt
        )
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        reply = server.client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, response_format=fmt
        )
        content = reply.choices[0].message.content or ""
    assert json.loads(content) == {"days": 3}
    with pytest.raises(pydantic.ValidationError):
        server.client.chat.completions.parse(
            model="gpt-4o", messages=MESSAGES, response_format=Weather
        )
    plain = server.client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert plain.choices[0].message.content == '{"city": "Paris", "days": 3}'  # no schema asked
    assert server.engine.journal[-1].fault is None


@pytest.mark.parametrize("stream", [False, True])
def test_empty_choices_and_missing_content(live: Callable[..., Live], stream: bool) -> None:
    text = textwrap.dedent(
        """
        version: 1
        scenarios:
          - name: s
            faults: [{fault: empty_choices, first: 1}, {fault: missing_content, on_requests: [2]}]
            reply: {content: hi}
        """
    )
    server = live(text, seed=1)
    client = server.client
    if stream:
        chunks = list(
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        )
        assert chunks and all(c.choices == [] for c in chunks)
        assert streamed_text(client) == ""
    else:
        assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices == []
        reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        message = reply.choices[0].message
        assert (message.content, message.tool_calls, reply.choices[0].finish_reason) == (
            None,
            None,
            "stop",
        )
    assert [e.fault for e in server.engine.journal] == ["empty_choices", "missing_content"]


@pytest.mark.parametrize("stream", [False, True])
def test_finish_reasons_the_reply_contradicts(live: Callable[..., Live], stream: bool) -> None:
    text = textwrap.dedent(
        f"""
        version: 1
        scenarios:
          - name: calls
            match: {{last_user_message: call}}
            faults: [{{fault: wrong_finish_reason}}]
            reply: {{{WEATHER_CALL}}}
          - name: s
            faults: [{{fault: wrong_finish_reason, first: 1}},
                     {{fault: wrong_finish_reason, finish_reason: length}}]
            reply: {{content: hi}}
        """
    )
    server = live(text, seed=1)
    client = server.client

    def finish(messages: list[dict[str, str]]) -> tuple[str | None, bool]:
        if not stream:
            choice = client.chat.completions.create(model="gpt-4o", messages=messages).choices[0]
            return choice.finish_reason, bool(choice.message.tool_calls)
        reason, calls = None, False
        for chunk in client.chat.completions.create(model="gpt-4o", messages=messages, stream=True):
            for choice in chunk.choices:
                reason = choice.finish_reason or reason
                calls = calls or bool(choice.delta.tool_calls)
        return reason, calls

    assert finish(MESSAGES) == ("tool_calls", False)  # says calls, has none
    assert finish([{"role": "user", "content": "call"}]) == ("stop", True)  # calls, says stop
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(model="gpt-4o", messages=MESSAGES)


def test_wrong_replies_are_seeded_and_apply_only_where_they_can() -> None:
    text = scenario(
        "[{fault: bad_structured_output}, {fault: tool_arguments_missing},"
        " {fault: missing_content, probability: 0.5}]"
    )

    def run() -> list[bytes]:
        engine = MockEngine(load_text(text), EngineConfig(seed=4))
        out = [engine.handle_chat(body(stream=n % 2 == 1)).content() for n in range(12)]
        faults = [e.fault for e in engine.journal]
        assert set(faults) == {"missing_content", None}  # nothing asked a schema of the others
        return out

    first = run()
    assert first == run()
    assert len(set(first)) > 2


def test_wrong_reply_problems() -> None:
    for given, problem in [
        ("[{fault: wrong_finish_reason, finish_reason: done}]", "unknown value 'done'"),
        ("[{fault: empty_choices, finish_reason: stop}]", "`finish_reason` does not apply"),
        ("[{fault: unknown_tool, after_chunks: 1}]", "`after_chunks` does not apply"),
    ]:
        with pytest.raises(ScenarioError, match=re.escape(problem)):
            load_text(scenario(given), "f.yaml")


@pytest.mark.parametrize("stream", [False, True])
def test_legacy_function_calls_plain_and_streamed(stream: bool) -> None:
    engine = MockEngine(
        load_text(
            scenario(
                "[{fault: tool_arguments_missing}]", "tool_calls: [{name: f, arguments: {a: 1}}]"
            )
        ),
        EngineConfig(seed=1),
    )
    parameters = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    request = {"model": "m", "messages": MESSAGES, "stream": stream}
    request["functions"] = [{"name": "f", "parameters": parameters}]
    outcome = engine.handle_chat(json.dumps(request).encode())
    if stream:
        deltas = [
            json.loads(e.data)["choices"][0]["delta"]
            for e in sse.parse(outcome.content())
            if e.data.startswith('{"') and '"function_call":{' in e.data
        ]
        arguments = "".join(d["function_call"].get("arguments", "") for d in deltas if d)
    else:
        message = json.loads(outcome.body)["choices"][0]["message"]
        arguments = message["function_call"]["arguments"]
    assert json.loads(arguments) == {}
    assert engine.journal[-1].fault == "tool_arguments_missing"


def test_wrong_replies_leave_the_responses_api_alone(live: Callable[..., Live]) -> None:
    server = live(scenario("[{fault: unknown_tool}, {fault: empty_choices}]", WEATHER_CALL))
    tool = {"type": "function", "name": "Weather", "parameters": {"type": "object"}}
    reply = server.client.responses.create(model="gpt-4o", input="hi", tools=[tool])  # type: ignore[list-item]
    assert [item.name for item in reply.output if item.type == "function_call"] == ["Weather"]
    assert server.engine.journal[-1].fault is None  # they break chat completions only


def test_the_readme_documents_every_fault_kind() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for kind in faults.KINDS:
        assert f"| `{kind}` |" in readme, kind


def test_schemas_of_any_shape_leave_what_they_cannot_break() -> None:
    city = '{"city":"Paris"}'
    for schema in (
        {"required": "city"},
        {"required": [{"x": 1}]},
        {"properties": [1]},
        {"properties": {"city": True}},
        {"properties": {"city": {"type": ["string", "null"]}}},
    ):
        assert wrong._violate(city, schema) == city, schema
    assert wrong._violate("[1]", {"required": ["a"]}) == "[1]"
    assert wrong._violate("not json", {"required": ["a"]}) == "not json"
    assert wrong._violate('{"é":1,"a":2}', {"required": ["a"]}) == '{"é":1}'


@pytest.mark.parametrize("stream", [False, True])
def test_wrong_replies_in_process_as_on_a_socket(where: Callable[..., str], stream: bool) -> None:
    url = where(scenario("[{fault: tool_arguments_wrong_type}]", WEATHER_CALL))
    client = sdk(url)
    name, arguments = _arguments(client, stream, tools=[WEATHER_TOOL])
    assert (name, json.loads(arguments)) == ("Weather", {"city": 12345, "days": 3})
