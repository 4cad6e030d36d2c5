"""Timing models: distributions drawn from the seed, streams paced per token, --timing."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import statistics
import textwrap
import time
from collections.abc import Callable

import openai
import pytest

from mockserver import cli, timing
from mockserver.engine import EngineConfig, MockEngine
from mockserver.errors import ScenarioError
from mockserver.inprocess import InProcessMock
from mockserver.scenarios import load_text
from mockserver.timing import Delay, split_events
from tests.conftest import Live

MESSAGES = [{"role": "user", "content": "hi"}]


def scenario(reply: str) -> str:
    return textwrap.dedent(
        f"""
        version: 1
        scenarios:
          - name: s
            reply: {{{reply}}}
        """
    )


def body(stream: bool = False) -> bytes:
    return json.dumps({"model": "gpt-4o", "messages": MESSAGES, "stream": stream}).encode()


def test_distributions_have_the_asked_median_and_p99() -> None:
    rng = random.Random(5)
    draws = sorted(Delay("lognormal", 400, 1500).draw(rng) for _ in range(20_000))
    assert statistics.median(draws) == pytest.approx(0.400, rel=0.03)
    assert draws[int(len(draws) * 0.99)] == pytest.approx(1.500, rel=0.06)
    uniform = [Delay("uniform", 100, 300).draw(rng) for _ in range(2000)]
    assert 0.1 <= min(uniform) < 0.11 and 0.29 < max(uniform) <= 0.3
    assert Delay("fixed", 250).draw(rng) == 0.25
    assert Delay("lognormal", 10, 10).draw(rng) == 0.01
    assert Delay("uniform", 100, 300).typical_ms == 200


def test_a_stream_is_paced_per_token() -> None:
    engine = MockEngine(
        load_text(
            scenario("content: one two three four, stream: {ttft_ms: 200, tokens_per_second: 50}")
        ),
        EngineConfig(seed=1),
    )
    frames = engine.handle_chat(body(stream=True)).frames
    assert frames is not None
    assert [round(f.delay, 6) for f in frames] == [0.2, 0.02, 0.02, 0.02]
    first = split_events(frames[0].data)
    assert len(first) == 2 and b'"role":"assistant"' in first[0] and b'"one"' in first[1]
    last = split_events(frames[-1].data)  # the finish chunk and [DONE] ride with the last token
    assert (
        b'" four"' in last[0]
        and b'"finish_reason":"stop"' in last[1]
        and last[2] == (b"data: [DONE]\n\n")
    )


def test_a_plain_reply_waits_as_long_as_its_tokens() -> None:
    engine = MockEngine(
        load_text(
            scenario("content: one two three four, stream: {ttft_ms: 200, tokens_per_second: 10}")
        ),
        EngineConfig(seed=1),
    )
    assert engine.handle_chat(body()).delay == pytest.approx(0.2 + 3 * 0.1)


def test_drawn_delays_follow_the_seed() -> None:
    text = scenario(
        "content: one two, delay_ms: {min: 10, max: 50}, "
        "stream: {ttft_ms: {median: 400, p99: 1500}, chunk_delay_ms: {min: 1, max: 9}}"
    )

    def waits(seed: int) -> list[tuple[float, ...]]:
        engine = MockEngine(load_text(text), EngineConfig(seed=seed))
        outcomes = [engine.handle_chat(body(stream=n % 2 == 0)) for n in range(6)]
        return [(o.delay, *(f.delay for f in o.frames or ())) for o in outcomes]

    first = waits(3)
    assert first == waits(3)
    assert first != waits(4)
    assert all(0.01 <= w[0] <= 0.05 for w in first[::2])  # streams: delay_ms, then ttft
    assert all(w[0] > 0.01 for w in first[1::2])  # plain replies wait for their last token
    assert len({w[1] for w in first[::2]}) == 3  # a fresh ttft for every stream


def test_realistic_timing_is_a_default_only() -> None:
    text = """
        version: 1
        scenarios:
          - name: plain
            match: {last_user_message: plain}
            reply: {content: one two three}
          - name: own
            match: {last_user_message: own}
            reply: {content: one two three, stream: {chunk_delay_ms: 1}}
    """
    engine = MockEngine(load_text(textwrap.dedent(text)), EngineConfig(seed=1, timing="realistic"))

    def ask(text: str, stream: bool) -> object:
        request = {"model": "m", "messages": [{"role": "user", "content": text}], "stream": stream}
        return engine.handle_chat(json.dumps(request).encode())

    plain = ask("plain", True)
    assert plain.frames is not None  # type: ignore[attr-defined]
    delays = [f.delay for f in plain.frames]  # type: ignore[attr-defined]
    assert 0.05 < delays[0] < 10 and delays[1:] == [0.02, 0.02]
    assert ask("plain", False).delay > 0.05  # type: ignore[attr-defined]
    own = ask("own", True)
    untouched = MockEngine(load_text(textwrap.dedent(text)), EngineConfig(seed=1))
    request = {"model": "m", "messages": [{"role": "user", "content": "own"}], "stream": True}
    instant = untouched.handle_chat(json.dumps(request).encode())
    assert instant.frames is not None and len(instant.frames) > 2
    assert [f.delay for f in own.frames] == [f.delay for f in instant.frames]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("content: a, delay_ms: {median: 5}", "reply.delay_ms: missing required key 'p99'"),
        ("content: a, delay_ms: {median: 10, p99: 5}", "expected 0 < median <= p99"),
        ("content: a, delay_ms: {min: 5, max: 1}", "expected min <= max"),
        ("content: a, delay_ms: {median: 5, max: 9}", "either {median, p99}"),
        ("content: a, delay_ms: {mean: 5}", "unknown key 'mean'"),
        ("content: a, delay_ms: 4000000", "expected at most 3600000 ms"),
        ("content: a, delay_ms: {min: 0, max: 4000000}", "expected at most 3600000 ms"),
        ("content: a, stream: {tokens_per_second: 0}", "tokens per second > 0"),
        (
            "content: a, stream: {tokens_per_second: 5, chunk_delay_ms: 1}",
            "either tokens_per_second or chunk_delay_ms",
        ),
        (
            "content: a, stream: {ttft_ms: 5, first_chunk_delay_ms: 1}",
            "either ttft_ms or first_chunk_delay_ms",
        ),
    ],
)
def test_timing_problems_name_the_key(reply: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_text(scenario(reply), "t.yaml")
    assert problem in str(caught.value)
    assert str(caught.value).startswith("t.yaml:")
    assert len(caught.value.problems) == 1  # said once


def test_cli_timing_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["serve", "scenarios", "--timing", "slow"])
    err = capsys.readouterr().err
    assert "--timing: invalid choice: 'slow'" in err and "realistic" in err


def _arrivals(client: openai.OpenAI) -> list[float]:
    started = time.monotonic()
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    return [time.monotonic() - started for c in stream if c.choices and c.choices[0].delta.content]


def _check_paced(arrivals: list[float]) -> None:
    """Five tokens: the first after 300 ms, each next 50 ms after the one before (a chunk the
    client reads late shortens the gap after it, not the stream)."""
    assert len(arrivals) == 5
    assert 0.3 <= arrivals[0] < 0.6
    assert 0.5 <= arrivals[-1] < 0.9
    assert all(b - a < 0.2 for a, b in itertools.pairwise(arrivals))


PACED = scenario("content: one two three four five, stream: {ttft_ms: 300, tokens_per_second: 20}")


@pytest.mark.parametrize("pacer", [True, False])
def test_paced_stream_over_a_socket(
    live: Callable[..., Live], monkeypatch: pytest.MonkeyPatch, pacer: bool
) -> None:
    if not pacer:  # the loop's own timers, as where there is no timerfd
        monkeypatch.setattr(timing, "_timerfd", lambda: None)
    server = live(PACED)
    _check_paced(_arrivals(openai.OpenAI(base_url=server.url, api_key="k", max_retries=0)))


@pytest.mark.anyio
async def test_the_pacer_wakes_each_waiter_on_time_and_then_lets_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timing, "_IDLE_CLOSE", 0.02)
    loop = asyncio.get_running_loop()
    pacer = timing.Pacer.of(loop)
    if pacer is None:  # pragma: no cover - not Linux
        pytest.skip("no timerfd here")
    assert timing.Pacer.of(loop) is pacer
    start = time.monotonic()
    dues = [start + s for s in (0.030, 0.010, 0.020, 0.010, 0.025)]
    woke: list[tuple[float, float]] = []
    futures = [pacer.at(due) for due in dues]
    for due, future in zip(dues, futures, strict=True):
        future.add_done_callback(lambda f, due=due: woke.append((due, time.monotonic())))
    futures[4].cancel()  # a client that went away: the others are still woken
    await asyncio.wait(futures)
    assert [due for due, _ in woke if due != dues[4]] == sorted(dues[:4])  # in their order
    assert all(due - 0.0001 <= at < due + 0.05 for due, at in woke if due != dues[4])
    assert pacer._fd >= 0
    await asyncio.sleep(0.1)
    assert pacer._fd == -1  # idle: the timer is given back
    late = pacer.at(time.monotonic() - 1)  # already due: woken at once
    await asyncio.wait_for(late, 1)
    pacer.close()


def test_paced_stream_in_process() -> None:
    engine = MockEngine(load_text(PACED), EngineConfig(seed=1))
    with InProcessMock(engine, ["http://mock.test/v1"]):
        client = openai.OpenAI(base_url="http://mock.test/v1", api_key="k", max_retries=0)
        arrivals = _arrivals(client)
    _check_paced(arrivals)


def test_error_and_recorded_replies_draw_their_delay() -> None:
    text = """
        version: 1
        scenarios:
          - name: failing
            match: {last_user_message: fail}
            reply: {error: 503, delay_ms: {min: 100, max: 200}}
          - name: recorded
            match: {last_user_message: raw}
            reply: {raw: {status: 200, body: {ok: true}}, delay_ms: {min: 300, max: 400}}
    """
    engine = MockEngine(load_text(textwrap.dedent(text)), EngineConfig(seed=2))

    def ask(text: str) -> float:
        request = {"model": "m", "messages": [{"role": "user", "content": text}]}
        return engine.handle_chat(json.dumps(request).encode()).delay

    failing = [ask("fail") for _ in range(5)]
    recorded = [ask("raw") for _ in range(5)]
    assert all(0.1 <= d <= 0.2 for d in failing) and len(set(failing)) == 5
    assert all(0.3 <= d <= 0.4 for d in recorded) and len(set(recorded)) == 5


def test_a_slow_reader_in_process_keeps_the_streams_schedule() -> None:
    """Frames are due on the server's schedule: a client that takes 6 ms over each 10 ms chunk
    still gets 30 chunks in about 0.3 s (waiting each delay after its read took 0.48 s)."""
    text = "version: 1\nscenarios:\n  - reply: {content: a, stream: {chunk_size: 1, chunk_delay_ms: 10}}\n"
    engine = MockEngine(load_text(text.replace("content: a", "content: " + "x" * 30)))
    with InProcessMock(engine, ["http://mock.test/v1"]):
        client = openai.OpenAI(base_url="http://mock.test/v1", api_key="k", max_retries=0)
        started = time.monotonic()
        chunks = 0
        stream = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_body={"stream_options": None},
        )
        for chunk in stream:
            chunks += bool(chunk.choices and chunk.choices[0].delta.content)
            time.sleep(0.006)
        took = time.monotonic() - started
    assert chunks == 30
    assert took < 0.45, f"{took:.3f} s: the reader's own time was added to each delay"
