"""Match conditions, precedence and the closest-miss explanation, as pure functions."""

from __future__ import annotations

import textwrap

import pytest

from mockserver.matching import Matcher
from mockserver.request import ChatRequest
from mockserver.scenarios import load_text
from mockserver.validation import parse_chat_request


def request(*messages: dict, headers: dict[str, str] | None = None, **fields) -> ChatRequest:
    body = {
        "model": "gpt-4o-mini",
        "messages": list(messages) or [{"role": "user", "content": "hi"}],
    }
    body.update(fields)
    raw = tuple((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())
    return parse_chat_request(body, raw)


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def matcher(yaml: str) -> tuple[Matcher, list[str]]:
    loaded = load_text(textwrap.dedent(yaml), "m.yaml")
    return Matcher(loaded.scenarios), [s.name for s in loaded.scenarios]


def first(yaml: str, req: ChatRequest) -> str | None:
    m, names = matcher(yaml)
    found = m.find(req)
    return None if found is None else names[found]


def one(match: str) -> str:
    return f"""
        scenarios:
          - name: it
            match: {match}
            reply: {{content: x}}
    """


IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
FILE = {"type": "file", "file": {"file_id": "file-abc"}}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("match", "req", "matches"),
    [
        ("{model: gpt-4o-mini}", request(), True),
        ("{model: gpt-4o}", request(), False),
        ('{model: "gpt-4o*"}', request(), True),
        ('{model: "gpt-3*"}', request(), False),
        ("{stream: true}", request(stream=True), True),
        ("{stream: false}", request(), True),
        ("{stream: true}", request(), False),
        ("{last_user_message: hi}", request(), True),
        ("{last_user_message: hi there}", request(), False),
        ("{last_user_message: {contains: ell}}", request(user("hello")), True),
        ("{last_user_message: {contains: [he, lo]}}", request(user("hello")), True),
        ("{last_user_message: {contains: [he, xx]}}", request(user("hello")), False),
        ("{last_user_message: {regex: '^h.l+o$'}}", request(user("hello")), True),
        ("{last_user_message: {equals: hello, regex: '^x'}}", request(user("hello")), False),
        (
            "{last_user_message: first}",
            request(user("first"), {"role": "assistant", "content": "a"}, user("second")),
            False,
        ),
        (
            "{last_user_message: second}",
            request(user("first"), {"role": "assistant", "content": "a"}, user("second")),
            True,
        ),
        ("{any_message: {contains: first}}", request(user("first"), user("second")), True),
        ("{any_message: {contains: third}}", request(user("first"), user("second")), False),
        (
            "{system_message: {contains: pirate}}",
            request({"role": "system", "content": "Be a pirate."}, user("x")),
            True,
        ),
        (
            "{system_message: {contains: pirate}}",
            request({"role": "developer", "content": "Be a pirate."}, user("x")),
            True,
        ),
        ("{system_message: {contains: pirate}}", request(user("pirate")), False),
        (
            "{last_message: {role: tool}}",
            request(
                user("w?"),
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            ),
            True,
        ),
        (
            "{last_message: {role: tool, contains: rain}}",
            request(
                user("w?"),
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            ),
            False,
        ),
        (
            "{last_message: {role: user, name: ann}}",
            request({"role": "user", "name": "ann", "content": "x"}),
            True,
        ),
        ("{tools: [get_weather]}", request(tools=[TOOL]), True),
        ("{tools: [get_weather, get_time]}", request(tools=[TOOL]), False),
        ("{tools: [get_weather]}", request(), False),
        (
            "{response_format: json_object}",
            request(user("json please"), response_format={"type": "json_object"}),
            True,
        ),
        ("{response_format: text}", request(), True),
        (
            "{response_format: {type: json_schema, name: city}}",
            request(
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "city", "schema": {"type": "object"}},
                }
            ),
            True,
        ),
        (
            "{response_format: {name: town}}",
            request(
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "city", "schema": {"type": "object"}},
                }
            ),
            False,
        ),
        (
            "{modalities: [audio]}",
            request(modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"}),
            True,
        ),
        ("{modalities: [audio]}", request(), False),
        (
            "{content_parts: [image]}",
            request({"role": "user", "content": [{"type": "text", "text": "what?"}, IMAGE]}),
            True,
        ),
        (
            "{content_parts: [image_url, input_audio]}",
            request({"role": "user", "content": [IMAGE, AUDIO]}),
            True,
        ),
        ("{content_parts: [file]}", request({"role": "user", "content": [IMAGE]}), False),
        (
            "{content_parts: [file]}",
            request({"role": "user", "content": [{"type": "text", "text": "read"}, FILE]}),
            True,
        ),
        (
            "{last_user_message: {contains: what is}}",
            request({"role": "user", "content": [{"type": "text", "text": "what is this"}, IMAGE]}),
            True,
        ),
        ("{headers: {x-team: blue}}", request(headers={"X-Team": "blue"}), True),
        ("{headers: {x-team: {contains: lu}}}", request(headers={"X-Team": "blue"}), True),
        ("{headers: {x-team: red}}", request(headers={"X-Team": "blue"}), False),
        ("{headers: {x-team: red}}", request(), False),
        ("{params: {temperature: 0}}", request(temperature=0.0), True),
        ("{params: {temperature: 0}}", request(temperature=1), False),
        ("{params: {n: 1}}", request(), False),
        ("{params: {store: true}}", request(store=True), True),
        ("{params: {top_k: 1}}", request(top_k=True), False),  # JSON: true is not 1
        ("{params: {metadata: {team: a}}}", request(metadata={"team": "a", "run": "7"}), True),
        ("{params: {metadata: {team: b}}}", request(metadata={"team": "a"}), False),
        # written alike (orjson's bytes) or not, `params` holds by JSON's rules
        ("{params: {metadata: {b: '1', a: '2'}}}", request(metadata={"a": "2", "b": "1"}), True),
        ("{params: {stop: [a, b]}}", request(stop=["a", "b"]), True),
        ("{params: {stop: [a, b]}}", request(stop=["b", "a"]), False),
        ("{params: {metadata: {'5': '1'}}}", request(metadata={"5": "1", "6": "x"}), True),
        (
            "{params: {prediction: {type: content, content: [{type: text, text: a}]}}}",
            request(prediction={"type": "content", "content": [{"type": "text", "text": "a"}]}),
            True,
        ),
        ("{params: {top_p: 1}}", request(top_p=1.0), True),
        ("{params: {big: 18446744073709551616}}", request(big=18446744073709551616), True),
        ("{params: {big: 18446744073709551616}}", request(big=18446744073709551617), False),
        ("{no_other_params: true}", request(temperature=None, user="u"), True),
        ("{no_other_params: true}", request(temperature=0), False),
        ("{params: {temperature: 0}, no_other_params: true}", request(temperature=0), True),
        ("{}", request(), True),
        ("null", request(), True),
    ],
)
def test_each_condition(match, req, matches):
    assert (first(one(match), req) == "it") is matches


def test_all_conditions_must_hold():
    yaml = one("{model: gpt-4o-mini, last_user_message: hello}")
    assert first(yaml, request(user("hello"))) == "it"
    assert first(yaml, request(user("hello"), model="o3")) is None


def test_priority_then_file_order():
    yaml = """
        scenarios:
          - {name: general, reply: {content: a}}
          - {name: specific, match: {last_user_message: hi}, reply: {content: b}}
          - {name: urgent, priority: 5, match: {last_user_message: {contains: h}}, reply: {content: c}}
          - {name: later, priority: 5, reply: {content: d}}
    """
    assert first(yaml, request()) == "urgent"
    assert first(yaml, request(user("zzz"))) == "later"


def test_file_order_when_priorities_tie():
    yaml = """
        scenarios:
          - {name: a, match: {last_user_message: {contains: h}}, reply: {content: a}}
          - {name: b, match: {last_user_message: hi}, reply: {content: b}}
    """
    assert first(yaml, request()) == "a"


def test_indexed_equality_keeps_precedence_with_unindexed_scenarios():
    rows = "\n".join(
        f"  - {{name: q{i}, match: {{last_user_message: 'question {i}'}}, reply: {{content: a}}}}"
        for i in range(50)
    )
    yaml = (
        "scenarios:\n"
        + rows
        + "\n  - {name: catch-all, reply: {content: z}}\n  - {name: top, priority: 1, match: {model: o3}, reply: {content: t}}\n"
    )
    m, names = matcher(yaml)
    assert names[m.find(request(user("question 49")))] == "q49"
    assert names[m.find(request(user("question 7")))] == "q7"
    assert names[m.find(request(user("question 99")))] == "catch-all"
    assert names[m.find(request(user("question 3"), model="o3"))] == "top"


def test_skip_lets_later_scenarios_answer():
    m, names = matcher("""
        scenarios:
          - {name: a, reply: {content: a}}
          - {name: b, reply: {content: b}}
    """)
    assert names[m.find(request(), skip=lambda position: position == 0)] == "b"
    assert m.find(request(), skip=lambda position: True) is None


def test_closest_miss_names_the_scenario_and_condition():
    m, names = matcher("""
        scenarios:
          - name: weather
            match: {tools: [get_weather], last_user_message: {contains: weather}}
            reply: {content: a}
          - name: greeting
            match: {last_user_message: hello}
            reply: {content: b}
    """)
    miss = m.explain(request(user("what's the weather like"), model="gpt-4o"))
    assert names[miss.scenario] == "weather"
    assert miss.condition == "scenarios[0].match.tools"
    assert miss.reason == "expected tools get_weather; the request has none"
    miss = m.explain(request(user("hello there")))
    assert names[miss.scenario] == "greeting"
    assert miss.reason == "expected equal to 'hello', got 'hello there'"


@pytest.mark.parametrize(
    ("match", "req", "reason"),
    [
        ("{model: gpt-4o}", request(), "expected model 'gpt-4o', got 'gpt-4o-mini'"),
        ("{stream: true}", request(), "expected stream true, got false"),
        ("{last_user_message: {regex: '^x'}}", request(), "expected matching /^x/, got 'hi'"),
        (
            "{last_user_message: hi}",
            request({"role": "system", "content": "s"}),
            "expected a message equal to 'hi', found no such message",
        ),
        (
            "{any_message: {contains: zz}}",
            request(),
            "expected some message containing 'zz', none is",
        ),
        (
            "{last_message: {role: tool}}",
            request(),
            "expected the last message's role 'tool', got 'user'",
        ),
        (
            "{response_format: json_object}",
            request(),
            "expected response_format 'json_object', got 'text'",
        ),
        ("{headers: {x-a: b}}", request(), "expected header 'x-a', the request has none"),
        ("{params: {n: 2}}", request(n=3), "expected n = 2, got 3"),
    ],
)
def test_miss_reasons_read_well(match, req, reason):
    m, _ = matcher(one(match))
    assert m.explain(req).reason == reason
