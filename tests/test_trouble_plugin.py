"""Faults, rate limits and timing through the pytest plugin's in-process fixture."""

from __future__ import annotations

import openai
import pytest

SCENARIOS = """
version: 1
scenarios:
  - name: hello
    reply: {content: "Hello there", stream: {ttft_ms: 200, tokens_per_second: 100}}
  - name: stalling
    match: {last_user_message: stall}
    priority: 1
    faults: [{fault: stall, after_chunks: 1, stall_ms: 5000}]
    reply: {content: "one two three"}
"""
USER = [{"role": "user", "content": "hi"}]


def client(key: str = "sk-a", **kwargs: object) -> openai.OpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(api_key=key, **kwargs)  # type: ignore[arg-type]


@pytest.mark.mockserver(rate_limits=["rpm=2,per=key"], assert_all_used=False)
def test_rate_limits_and_faults_in_process(mockserver) -> None:  # type: ignore[no-untyped-def]
    mockserver.load_text(SCENARIOS)
    for _ in range(2):
        client().chat.completions.create(model="gpt-4o", messages=USER)
    with pytest.raises(openai.RateLimitError):
        client().chat.completions.create(model="gpt-4o", messages=USER)
    stream = client("sk-b", timeout=0.3).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "stall"}], stream=True
    )
    with pytest.raises(openai.APITimeoutError):
        list(stream)
    assert [c.fault for c in mockserver.calls] == [None, None, "rate_limit", "stall"]
    assert "(fault 'rate_limit')" in mockserver.calls[2].describe()


@pytest.mark.mockserver(faults="data/faults.yaml", timing="realistic", assert_all_used=False)
def test_a_faults_file_and_realistic_timing(mockserver) -> None:  # type: ignore[no-untyped-def]
    mockserver.load_text(SCENARIOS)
    reply = client(max_retries=1).chat.completions.create(model="gpt-4o", messages=USER)
    assert reply.choices[0].message.content == "Hello there"
    assert [(c.status, c.fault) for c in mockserver.calls] == [(503, "overloaded"), (200, None)]


def test_bad_settings_fail_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.mockserver(timing="slow")
        def test_timing(mockserver):
            pass

        @pytest.mark.mockserver(rate_limits="rpm=0")
        def test_limits(mockserver):
            pass
        """
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*mockserver timing must be instant or realistic, got 'slow'*",
            "*mockserver rate_limits: rpm must be a whole number from 1 to 10^12*",
        ]
    )


def test_the_builder_writes_faults_and_timing() -> None:
    from mockserver import builder
    from mockserver.engine import EngineConfig, MockEngine

    made = builder.scenario(
        "built",
        reply=builder.reply(
            "one two", stream=builder.stream(ttft_ms={"min": 5, "max": 9}, tokens_per_second=100)
        ),
        faults=[{"fault": "http", "status": 500, "first": 1}],
    )
    assert made.faults[0].kind == "http" and made.replies[0].timing is not None
    engine = MockEngine(builder.scenario_set(made), EngineConfig(seed=1))
    body = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}'
    assert engine.handle_chat(body).status == 500
    frames = engine.handle_chat(body).frames
    assert frames is not None and 0.005 <= frames[0].delay <= 0.009
