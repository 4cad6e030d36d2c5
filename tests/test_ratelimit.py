"""Rate limits: the sliding window's arithmetic, its headers, and the 429 through the SDK."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import openai
import pytest

from mockserver import cli, ratelimit
from mockserver.ratelimit import RateLimit, RateLimiter, api_key, duration, parse_rate_limit
from mockserver.validation import parse_chat_request
from tests.conftest import Live

HELLO = """
version: 1
scenarios:
  - name: hello
    reply: {content: Hello}
"""
MESSAGES = [{"role": "user", "content": "what is the time"}]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def headers(decision: ratelimit.Decision | None) -> dict[str, str]:
    assert decision is not None
    return {k.decode(): v.decode() for k, v in decision.headers}


def test_requests_count_down_then_429_until_the_oldest_leaves() -> None:
    clock = Clock()
    limiter = RateLimiter([RateLimit(rpm=3)], clock)
    seen = []
    for at in (0, 10, 20):
        clock.now = 1000.0 + at
        decision = limiter.admit("gpt-4o", "k", 5)
        assert decision is not None and decision.error is None
        seen.append(headers(decision))
    assert [h["x-ratelimit-remaining-requests"] for h in seen] == ["2", "1", "0"]
    assert {h["x-ratelimit-limit-requests"] for h in seen} == {"3"}
    assert {h["x-ratelimit-reset-requests"] for h in seen} == {"1m0s"}  # newest leaves in 60 s
    assert "x-ratelimit-limit-tokens" not in seen[0]
    clock.now = 1030.0
    refused = limiter.admit("gpt-4o", "k", 5)
    assert refused is not None and refused.error is not None
    error = refused.error
    assert (error.status, error.type, error.code) == (429, "requests", "rate_limit_exceeded")
    assert dict(error.headers) == {"retry-after-ms": "30000", "retry-after": "30"}
    assert "on requests per min (RPM): Limit 3, Used 3, Requested 1." in error.message
    assert "Please try again in 30s." in error.message
    assert headers(refused)["x-ratelimit-remaining-requests"] == "0"
    assert headers(refused)["x-ratelimit-reset-requests"] == "50s"  # the one at +20 leaves
    clock.now = 1060.0  # the first request's minute is over: room for one
    admitted = limiter.admit("gpt-4o", "k", 5)
    assert admitted is not None and admitted.error is None
    assert headers(admitted)["x-ratelimit-remaining-requests"] == "0"


def test_tokens_count_prompt_and_max_tokens_and_free_in_order() -> None:
    clock = Clock()
    limiter = RateLimiter([RateLimit(tpm=100)], clock)
    first = limiter.admit("m", "", 40)
    clock.now += 1.5
    second = limiter.admit("m", "", 40)
    assert headers(first)["x-ratelimit-remaining-tokens"] == "60"
    assert headers(second)["x-ratelimit-remaining-tokens"] == "20"
    assert headers(second)["x-ratelimit-reset-tokens"] == "1m0s"
    clock.now += 0.25
    refused = limiter.admit("m", "", 40)
    assert refused is not None and refused.error is not None
    assert refused.error.type == "tokens"
    assert "(TPM): Limit 100, Used 80, Requested 40." in refused.error.message
    assert dict(refused.error.headers)["retry-after-ms"] == "58250"  # when the first 40 leave
    small = limiter.admit("m", "", 20)  # what fits still fits
    assert small is not None and small.error is None
    too_big = limiter.admit("m", "", 101)
    assert too_big is not None and too_big.error is not None
    assert "Request too large for m" in too_big.error.message
    assert dict(too_big.error.headers) == {"x-should-retry": "false"}


def test_keys_models_and_rules_have_their_own_windows() -> None:
    clock = Clock()
    limiter = RateLimiter(
        [RateLimit(rpm=1, per="key"), RateLimit(rpm=2, per="server", model="special")], clock
    )
    assert limiter.admit("a", "key-1", 1).error is None  # type: ignore[union-attr]
    assert limiter.admit("b", "key-2", 1).error is None  # type: ignore[union-attr]
    assert limiter.admit("b", "key-1", 1).error is not None  # type: ignore[union-attr]
    assert limiter.admit("special", "key-1", 1).error is None  # type: ignore[union-attr]
    assert limiter.admit("special", "key-3", 1).error is None  # type: ignore[union-attr]
    assert limiter.admit("special", "key-4", 1).error is not None  # type: ignore[union-attr]
    limiter.reset()
    assert limiter.admit("b", "key-1", 1).error is None  # type: ignore[union-attr]
    only_model = RateLimiter([RateLimit(rpm=1, model="x")], clock)
    assert only_model.admit("y", "", 1) is None  # no rule for y: not limited


def test_windows_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_KEYS", 3)
    limiter = RateLimiter([RateLimit(rpm=1, per="key")], Clock())
    for n in range(10):
        limiter.admit("m", f"key-{n}", 1)
    assert len(limiter._windows) == 3
    assert limiter.admit("m", "key-0", 1).error is None  # type: ignore[union-attr]  # forgotten


def test_flag_syntax_and_its_errors() -> None:
    assert parse_rate_limit("rpm=60,tpm=40000") == RateLimit(60, 40000)
    assert parse_rate_limit("tpm=5, per=key+model, model=gpt-4o") == RateLimit(
        None, 5, "key+model", "gpt-4o"
    )
    for text, message in [
        ("rpm=0", "rpm must be a whole number from 1"),
        ("rpm=60,rpm=3", "rpm given twice"),
        ("per=key", "expected rpm and/or tpm"),
        ("rpm=1,per=org", "per must be one of model, key, key+model, server"),
        ("rps=3", "expected rpm=N,tpm=N"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_rate_limit(text)


def test_cli_names_the_allowed_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["serve", "scenarios", "--rate-limit", "rpm=60,per=team"])
    assert "--rate-limit: per must be one of model, key, key+model, server" in (
        capsys.readouterr().err
    )


def test_durations_and_api_keys() -> None:
    assert [duration(s) for s in (0.0, 0.0201, 1.5, 59.9984, 60.0, 61.25)] == [
        "0ms",
        "21ms",
        "1.5s",
        "59.999s",
        "1m0s",
        "1m1.25s",
    ]
    assert api_key([(b"authorization", b"Bearer sk-1 ")]) == "sk-1"
    assert api_key([(b"authorization", b"sk-2")]) == "sk-2"
    assert api_key([]) == ""


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(?:(\d+)m)?(?:([\d.]+)s)?(?:(\d+)ms)?", text)
    assert match, text
    minutes, secs, ms = match.groups()
    return int(minutes or 0) * 60 + float(secs or 0) + int(ms or 0) / 1000


def test_sdk_sees_headers_count_down_and_keys_limited_apart(live: Callable[..., Live]) -> None:
    server = live(HELLO, rate_limits=(RateLimit(rpm=3, tpm=1000, per="key"),))
    tokens = parse_chat_request({"model": "gpt-4o", "messages": MESSAGES}).prompt_tokens

    def client(key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=server.url, api_key=key, max_retries=0)

    alice, bob = client("sk-alice"), client("sk-bob")
    for n in range(1, 4):
        raw = alice.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
        assert raw.parse().choices[0].message.content == "Hello"
        h = raw.headers
        assert h["x-ratelimit-limit-requests"] == "3"
        assert h["x-ratelimit-remaining-requests"] == str(3 - n)
        assert h["x-ratelimit-limit-tokens"] == "1000"
        assert h["x-ratelimit-remaining-tokens"] == str(1000 - n * tokens)
        assert 59.0 < _seconds(h["x-ratelimit-reset-requests"]) <= 60.0
        assert h["x-ratelimit-reset-tokens"] == h["x-ratelimit-reset-requests"]
    with pytest.raises(openai.RateLimitError) as caught:
        alice.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    response = caught.value.response
    wait_ms = int(response.headers["retry-after-ms"])
    assert 50_000 < wait_ms <= 60_000
    assert response.headers["retry-after"] == str(-(-wait_ms // 1000))
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert "Limit 3, Used 3, Requested 1" in caught.value.message
    assert caught.value.code == "rate_limit_exceeded"
    raw = bob.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.headers["x-ratelimit-remaining-requests"] == "2"  # bob has his own window
    journal = server.engine.journal
    assert [(e.status, e.fault) for e in journal] == [
        (200, None),
        (200, None),
        (200, None),
        (429, "rate_limit"),
        (200, None),
    ]
    assert json.loads(journal[3].raw)["model"] == "gpt-4o"


def test_engine_reset_empties_the_windows() -> None:
    from mockserver.engine import EngineConfig, MockEngine
    from mockserver.scenarios import load_text

    engine = MockEngine(load_text(HELLO), EngineConfig(rate_limits=(RateLimit(rpm=1),)))
    body = json.dumps({"model": "gpt-4o", "messages": MESSAGES}).encode()
    assert [engine.handle_chat(body).status for _ in range(2)] == [200, 429]
    engine.reset()
    assert engine.handle_chat(body).status == 200


def test_stepped_clock_counts_whole_seconds_from_the_first_reading() -> None:
    real = Clock()
    clock = ratelimit.SteppedClock(real=real)
    real.now = 5.73
    assert clock() == 0.0  # the first reading is step 0, whenever it comes
    real.now = 6.72
    assert clock() == 0.0
    real.now = 36.8
    assert clock() == 31.0
    clock.reset()
    assert clock() == 0.0


def _seeded_run(jitter: list[float]) -> list[tuple[int, dict[str, str]]]:
    """Requests at 0, 0.2, 0.4, then one at 10 s and a retry after the 429's retry-after-ms:
    the real times shifted by `jitter` (the few ms two runs differ by)."""
    from mockserver.engine import EngineConfig, MockEngine
    from mockserver.scenarios import load_text

    real = Clock()
    engine = MockEngine(load_text(HELLO), EngineConfig(seed=7, rate_limits=(RateLimit(rpm=3),)))
    assert engine._trouble is not None
    limiter = engine._trouble._limiter
    assert limiter is not None
    limiter._clock = ratelimit.SteppedClock(real=real)
    body = json.dumps({"model": "gpt-4o", "messages": MESSAGES}).encode()
    seen = []
    for at, shift in zip((0.0, 0.2, 0.4, 10.0), jitter, strict=False):
        real.now = 1000.0 + at + shift
        outcome = engine.handle_chat(body)
        seen.append((outcome.status, {k.decode(): v.decode() for k, v in outcome.headers}))
    wait = int(seen[-1][1]["retry-after-ms"]) / 1000
    real.now += wait + jitter[-1]  # the client waits what it was told, and a little more
    outcome = engine.handle_chat(body)
    seen.append((outcome.status, {k.decode(): v.decode() for k, v in outcome.headers}))
    return [
        (status, {k: v for k, v in h.items() if "ratelimit" in k or k.startswith("retry-after")})
        for status, h in seen
    ]


def test_same_seed_same_requests_same_headers_though_the_clock_jitters() -> None:
    steady = _seeded_run([0.0, 0.0, 0.0, 0.0, 0.0])
    jittery = _seeded_run([0.013, 0.151, 0.09, 0.31, 0.2])
    assert steady == jittery
    assert [s for s, _ in steady] == [200, 200, 200, 429, 200]
    refused = steady[3][1]
    # the first request (step 0) leaves the window at 60: 50 s after the 429 at step 10
    assert (refused["retry-after-ms"], refused["retry-after"]) == ("50000", "50")
    assert refused["x-ratelimit-reset-requests"] == "50s"  # the newest (step 0) leaves at 60
    # admitted after the wait: the three of step 0 left together, this one is counted
    assert steady[4][1]["x-ratelimit-remaining-requests"] == "2"
    assert steady[4][1]["x-ratelimit-reset-requests"] == "1m0s"


def test_a_seeded_server_gives_the_same_headers_twice(live: Callable[..., Live]) -> None:
    runs = []
    for _ in range(2):
        server = live(HELLO, seed=3, rate_limits=(RateLimit(rpm=2, tpm=500),))
        client = openai.OpenAI(base_url=server.url, api_key="sk", max_retries=0)
        seen = []
        for _ in range(2):
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=MESSAGES
            )
            seen.append({k: v for k, v in raw.headers.items() if "ratelimit" in k})
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        h = caught.value.response.headers
        seen.append({k: v for k, v in h.items() if "ratelimit" in k or "retry-after" in k})
        runs.append(seen)
    assert runs[0] == runs[1]
    assert runs[0][-1]["retry-after-ms"] == "60000"  # whole seconds: the burst is step 0
