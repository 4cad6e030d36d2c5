"""`mockserver.builder`: Python keyword arguments give the very scenarios the YAML gives."""

from __future__ import annotations

import dataclasses
import inspect
import textwrap
from pathlib import Path

import pytest

from mockserver import builder
from mockserver.builder import (
    audio,
    choice,
    error,
    interrupt,
    reply,
    scenario,
    scenario_set,
    stream,
    tool_call,
)
from mockserver.errors import ScenarioError
from mockserver.scenarios import (
    CHOICE_KEYS,
    REPLY_KEYS,
    STREAM_KEYS,
    TOOL_CALL_KEYS,
    Scenario,
    load_text,
)


def from_yaml(text: str) -> tuple[Scenario, ...]:
    return load_text(textwrap.dedent(text), "same.yaml", Path(__file__).parent).scenarios


def same(built: Scenario, yaml_text: str) -> None:
    """Equal to the YAML's scenario in everything but where it was written (the file's
    conditions know their key path from the file's top, `scenarios[0].match...`)."""
    (expected,) = from_yaml(yaml_text)
    conditions = tuple(
        dataclasses.replace(c, key=c.key.removeprefix("scenarios[0].")) for c in expected.conditions
    )
    where = {"file": "x", "line": None}
    assert dataclasses.replace(built, **where) == dataclasses.replace(
        expected, conditions=conditions, **where
    )


def test_text_reply_and_string_shorthand():
    yaml_text = """
        version: 1
        scenarios:
          - name: greet
            match: {last_user_message: hi}
            reply: {content: "Hello!"}
    """
    same(scenario("greet", match={"last_user_message": "hi"}, reply="Hello!"), yaml_text)
    same(scenario("greet", match={"last_user_message": "hi"}, reply=reply("Hello!")), yaml_text)


def test_tool_calls_with_object_arguments():
    same(
        scenario(
            "weather",
            match={"tools": ["get_weather"], "last_user_message": {"contains": "weather"}},
            reply=reply(
                tool_calls=[
                    tool_call("get_weather", {"city": "Paris", "days": [1, 2]}, id="call_1"),
                    tool_call("get_time", '{"tz": "CET"}'),
                ],
                finish_reason="tool_calls",
            ),
        ),
        """
        version: 1
        scenarios:
          - name: weather
            match: {tools: [get_weather], last_user_message: {contains: weather}}
            reply:
              finish_reason: tool_calls
              tool_calls:
                - {name: get_weather, arguments: {city: Paris, days: [1, 2]}, id: call_1}
                - {name: get_time, arguments: '{"tz": "CET"}'}
        """,
    )


def test_refusal_audio_usage_headers_stream():
    same(
        scenario(
            "all",
            reply=reply(
                "spoken",
                audio=audio("Hello there", format="wav"),
                usage={"prompt_tokens": 3},
                headers={"x-extra": "1", "openai-organization": None},
                stream=stream(chunk_size=3, chunk_delay_ms=5, interrupt=interrupt(2)),
                delay_ms=10,
                model="gpt-4o-audio-preview",
            ),
        ),
        """
        version: 1
        scenarios:
          - name: all
            reply:
              content: spoken
              audio: {transcript: Hello there, format: wav}
              usage: {prompt_tokens: 3}
              headers: {x-extra: "1", openai-organization: null}
              stream: {chunk_size: 3, chunk_delay_ms: 5, interrupt: {after_chunks: 2}}
              delay_ms: 10
              model: gpt-4o-audio-preview
        """,
    )
    same(
        scenario("refused", reply=reply(refusal="I can't.")),
        'version: 1\nscenarios:\n  - name: refused\n    reply: {refusal: "I can\'t."}\n',
    )


def test_errors_sequences_and_interrupt_errors():
    same(
        scenario(
            "flaky",
            sequence=[
                error(429, "slow down", headers={"retry-after-ms": "5"}),
                reply(error=503),
                reply("streamed", stream=stream(interrupt=interrupt(1, error=error(500)))),
                "ok",
            ],
            after="error",
            priority=3,
            optional=True,
        ),
        """
        version: 1
        scenarios:
          - name: flaky
            priority: 3
            optional: true
            after: error
            sequence:
              - error: {status: 429, message: slow down, headers: {retry-after-ms: "5"}}
              - error: 503
              - content: streamed
                stream: {interrupt: {after_chunks: 1, error: {status: 500}}}
              - content: ok
        """,
    )


def test_choices_and_strict():
    same(
        scenario("two", reply=reply(choices=[choice("a"), choice(refusal="b")]), strict=True),
        """
        version: 1
        strict: true
        scenarios:
          - name: two
            reply:
              choices: [{content: a}, {refusal: b}]
        """,
    )


def test_unnamed_scenarios_are_named_and_located_where_they_are_written():
    made = scenario(reply="x")
    assert made.file.endswith("test_plugin_builder.py")
    assert made.line is not None
    assert made.name == f"{made.file}:{made.line}"
    assert made.where == f"{made.file}:{made.line}"


def test_mistakes_name_the_call_and_the_key_path():
    with pytest.raises(ScenarioError) as caught:
        scenario(reply={"tool_calls": [{"arguments": {}}]})
    message = str(caught.value)
    assert "test_plugin_builder.py:" in message
    assert "reply.tool_calls[0]: missing required key 'name'" in message
    with pytest.raises(ScenarioError, match="did you mean 'content'"):
        scenario(reply={"conten": "x"})
    with pytest.raises(ScenarioError, match="either reply or sequence"):
        scenario(reply="a", sequence=["b"])


def test_values_yaml_cannot_hold_are_refused():
    with pytest.raises(TypeError, match=r"reply\.content: object is not a scenario value"):
        scenario(reply={"content": object()})


def test_audio_files_are_read_next_to_the_test(tmp_path):
    (tmp_path / "hello.wav").write_bytes(b"RIFF....WAVEfmt ")
    made = scenario(reply=reply(audio=audio("hi", file="hello.wav")), where=("t.py", 1, tmp_path))
    assert made.replies[0].choices[0].audio.data == b"RIFF....WAVEfmt "


def test_scenario_set_refuses_duplicate_names():
    one = scenario("same", reply="a")
    assert len(scenario_set(one, scenario("other", reply="b")).scenarios) == 2
    with pytest.raises(ScenarioError, match="duplicate scenario name 'same'"):
        scenario_set(one, scenario("same", reply="b"))


def test_every_reply_key_of_the_yaml_is_a_builder_argument():
    def names(function) -> set[str]:
        return set(inspect.signature(function).parameters)

    assert set(REPLY_KEYS) - names(builder.reply) <= {"function_call", "raw"}
    assert set(CHOICE_KEYS) - names(builder.choice) <= {"function_call"}
    assert set(STREAM_KEYS) <= names(builder.stream)
    assert set(TOOL_CALL_KEYS) - names(builder.tool_call) <= {"input"}
