"""The `messages:` condition and the `match:` a recorded request gets (`--match-on`)."""

from __future__ import annotations

import textwrap

import pytest

from mockserver.engine import MockEngine
from mockserver.errors import ScenarioError
from mockserver.matching import Matcher, json_difference, normal_json
from mockserver.recording.match_on import DEFAULT, MatchOnError, derive_match, parse_match_on
from mockserver.scenarios import load_text
from mockserver.validation import parse_chat_request

TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}


def request(messages, **fields):
    return parse_chat_request({"model": "gpt-4o-mini", "messages": messages, **fields})


def matcher(yaml: str) -> Matcher:
    return Matcher(load_text(textwrap.dedent(yaml), "m.yaml").scenarios)


CONVERSATION = [
    {"role": "system", "content": "Be terse."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
]


def test_messages_condition_compares_the_whole_list_normalised():
    m = matcher("""
        scenarios:
          - match:
              messages:
                - {role: system, content: Be terse.}
                - {role: user, content: [{type: text, text: 'Weather in Paris?'}]}
                - role: assistant
                  tool_calls:
                    - function: {arguments: '{"city":"Paris"}', name: get_weather}
                      id: call_1
                      type: function
                - {content: sunny, role: tool, tool_call_id: call_1}
            reply: {content: ok}
    """)
    # key order, null members and a single text part do not matter
    assert m.find(request(CONVERSATION)) == 0
    # a different, a missing or an extra message does
    changed = [*CONVERSATION[:3], {**CONVERSATION[3], "content": "rainy"}]
    assert m.find(request(changed)) is None
    assert m.find(request(CONVERSATION[:2])) is None
    assert m.find(request([*CONVERSATION, {"role": "user", "content": "thanks"}])) is None


@pytest.mark.parametrize(
    ("actual", "expected", "reason"),
    [
        ([{"role": "user", "content": "a"}], [{"role": "user", "content": "a"}], None),
        (
            [{"role": "user", "content": "b"}],
            [{"role": "user", "content": "a"}],
            "expected messages[0].content 'a', got 'b'",
        ),
        (
            [{"role": "user", "content": "a"}] * 2,
            [{"role": "user", "content": "a"}],
            "expected 1 items in messages, got 2",
        ),
        (
            [{"role": "user", "content": "a", "name": "bob"}],
            [{"role": "user", "content": "a"}],
            "the request has messages[0].name, which the scenario has not",
        ),
        (
            [{"role": "user"}],
            [{"role": "user", "content": "a"}],
            "expected messages[0].content, the request has none",
        ),
        ([{"n": 1}], [{"n": 1.0}], None),
        ([{"n": True}], [{"n": 1}], "expected messages[0].n 1, got true"),
        ([{"n": {"a": 1}}], [{"n": [1]}], 'expected messages[0].n to be a list, got {"a": 1}'),
        ([{"n": [1]}], [{"n": {"a": 1}}], "expected messages[0].n to be a mapping, got [1]"),
    ],
)
def test_json_difference_names_the_first_difference(actual, expected, reason):
    assert json_difference(normal_json(actual), normal_json(expected), "messages") == reason


def test_normal_json_keeps_a_lone_non_text_part():
    part = {"type": "image_url", "image_url": {"url": "https://x/cat.png"}}
    assert normal_json({"content": [part]}) == {"content": [part]}
    text = {"type": "text", "text": "hi"}
    assert normal_json({"content": [text, text]}) == {"content": [text, text]}


def test_a_miss_on_messages_is_explained():
    engine = MockEngine(
        load_text(
            textwrap.dedent("""
            scenarios:
              - name: recorded
                match:
                  model: gpt-4o-mini
                  messages: [{role: user, content: 'What is 2+2?'}]
                reply: {content: "4"}
            """),
            "r.yaml",
        )
    )
    outcome = engine.handle_chat(
        b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"What is 3+3?"}]}'
    )
    assert outcome.status == 404
    assert (
        "failed match.messages: expected messages[0].content 'What is 2+2?', got 'What is 3+3?'"
        in outcome.body.decode()
    )


@pytest.mark.parametrize("value", ["[]", "hello", "[hello]", "{role: user}"])
def test_messages_condition_wants_a_list_of_messages(value):
    with pytest.raises(ScenarioError, match="expected a non-empty list of messages"):
        load_text(f"scenarios: [{{match: {{messages: {value}}}, reply: {{content: x}}}}]")


# -- --match-on ---------------------------------------------------------------------------------

BODY = {
    "model": "gpt-4o-mini",
    "stream": True,
    "messages": [{"role": "user", "content": "hi", "name": None}],
    "tools": [TOOL],
    "tool_choice": "auto",
    "response_format": {"type": "json_object"},
    "temperature": 0.2,
    "seed": None,
    "stream_options": {"include_usage": True},
    "user": "bob",
    "metadata": {"run": "42"},
    "store": False,
}


def test_the_default_match_compares_what_changes_the_answer():
    assert derive_match(BODY) == {
        "api": "chat",  # a recorded chat completion answers no Responses request
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
        "params": {
            "tools": [TOOL],
            "tool_choice": "auto",
            "response_format": {"type": "json_object"},
            "temperature": 0.2,
            "stream_options": {"include_usage": True},
        },
        "no_other_params": True,
    }


def test_the_derived_match_matches_its_request_and_not_a_changed_one():
    import yaml

    text = yaml.safe_dump({"scenarios": [{"match": derive_match(BODY), "reply": {"content": "x"}}]})
    m = Matcher(load_text(text).scenarios)
    assert m.find(parse_chat_request(dict(BODY))) == 0
    assert m.find(parse_chat_request({**BODY, "user": "alice", "metadata": {}})) == 0
    assert m.find(parse_chat_request({**BODY, "temperature": 0.9})) is None
    assert m.find(parse_chat_request({**BODY, "stream": False, "stream_options": None})) is None
    assert m.find(parse_chat_request({**BODY, "tools": [TOOL, TOOL]})) is None
    assert m.find(parse_chat_request({**BODY, "top_p": 0.5})) is None  # an added parameter
    assert m.find(parse_chat_request({**BODY, "top_p": None})) == 0  # null is unset


def test_no_other_params_refuses_an_answer_changing_parameter_the_scenario_does_not_set():
    m = matcher("""
        scenarios:
          - name: plain
            match: {no_other_params: true}
            reply: {content: x}
          - name: cold
            match: {params: {temperature: 0, metadata: {a: b}}, no_other_params: true}
            reply: {content: y}
          - name: loose
            match: {no_other_params: false}
            reply: {content: z}
    """)
    assert m.find(request([{"role": "user", "content": "hi"}])) == 0
    assert m.find(request([{"role": "user", "content": "hi"}], user="u", metadata={})) == 0
    assert (
        m.find(request([{"role": "user", "content": "hi"}], temperature=0, metadata={"a": "b"}))
        == 1
    )
    assert m.find(request([{"role": "user", "content": "hi"}], temperature=0, seed=1)) == 2
    strict = matcher("scenarios: [{match: {no_other_params: true}, reply: {content: x}}]")
    reason = strict.explain(request([{"role": "user", "content": "hi"}], seed=1)).reason
    assert reason == "expected no seed (the scenario's params do not set it), got 1"


def test_no_other_params_is_a_boolean():
    with pytest.raises(ScenarioError, match="no_other_params: expected true or false"):
        load_text("scenarios: [{match: {no_other_params: yes please}, reply: {content: x}}]")


def test_match_on_chooses_the_fields():
    assert derive_match(BODY, ("model", "last_user_message")) == {
        "api": "chat",
        "model": "gpt-4o-mini",
        "last_user_message": "hi",
    }
    assert derive_match(BODY, ("tools", "response_format", "params"))["no_other_params"]
    assert derive_match(BODY, ("messages", "user")) == {
        "api": "chat",
        "messages": [{"role": "user", "content": "hi"}],
        "params": {"user": "bob"},
    }
    assert derive_match({"model": "m"}, ("stream",)) == {"api": "chat", "stream": False}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("model,messages", ("model", "messages")),
        (" model , params,,model", ("model", "params")),
        ("temperature", ("temperature",)),
    ],
)
def test_parse_match_on(text, names):
    assert parse_match_on(text) == names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "give at least one field; allowed: model, stream, messages"),
        ("mesages", "unknown field 'mesages' (did you mean 'messages'?); allowed: model"),
        (
            "nonsense",
            "unknown field 'nonsense'; allowed: model, stream, messages, last_user_message",
        ),
    ],
)
def test_parse_match_on_says_what_is_allowed(text, message):
    with pytest.raises(
        MatchOnError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")
    ):
        parse_match_on(text)


def test_default_names_are_valid():
    assert parse_match_on(",".join(DEFAULT)) == DEFAULT


RESPONSES_CONVERSATION = {
    "model": "gpt-4o-mini",
    "instructions": "Be terse.",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ],
}


def test_messages_reads_a_responses_request_as_the_same_conversation():
    """`messages:` compares a Responses request's conversation in chat's form, so a chat
    recording answers the same conversation asked through the Responses API, and a miss says
    where they differ."""
    from mockserver.responses_api import parse_responses_request

    m = Matcher(
        load_text(
            "scenarios: [{name: chat, reply: {content: hi}, match: {messages: "
            + _json(CONVERSATION)
            + "}}]",
            "m.yaml",
        ).scenarios
    )
    asked = parse_responses_request(dict(RESPONSES_CONVERSATION))
    assert asked.chat_messages == normal_json(CONVERSATION)
    assert m.find(asked) == 0
    other = dict(RESPONSES_CONVERSATION, instructions="Be verbose.")
    found = m.explain(parse_responses_request(other))
    assert found.reason is not None and "messages[0].content" in found.reason, found


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def test_previous_response_id_is_never_a_match_key():
    with pytest.raises(MatchOnError, match="'previous_response_id' cannot be matched on"):
        parse_match_on("model,previous_response_id")
    assert parse_match_on("model,max_output_tokens,text") == ("model", "max_output_tokens", "text")
