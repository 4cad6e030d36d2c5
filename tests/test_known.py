"""Messages met before (`mockserver.known`): the kept validation and normal keys must be exactly
what a fresh validation and `normal_key` give, and the table stays bounded."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mockserver import known
from mockserver.errors import ApiError
from mockserver.normal import items_key, joined, normal_key
from mockserver.validation import decode_exact, parse_chat_request
from mockserver.validation.fast import fast_message
from tests.test_matching_index import json_values

messages = st.lists(st.dictionaries(st.sampled_from(["role", "content", "a", "b"]), json_values))


@pytest.fixture(autouse=True)
def _empty_table():
    known.clear()
    yield
    known.clear()


@settings(max_examples=500, deadline=None)
@given(messages)
def test_the_kept_items_key_is_the_items_key_of_the_list(raws):
    keys = tuple(known.key_of(raw) for raw in raws)
    assert known.items_key(keys, raws) == items_key(raws)
    assert known.items_key(keys, raws) == items_key(raws)  # from the kept keys this time


@settings(max_examples=1000, deadline=None)
@given(messages, messages)
@example([{"role": "user", "content": "x", "b": None}], [{"content": "x", "role": "user"}])
@example([{"content": [{"type": "text", "text": "x"}]}], [{"content": "x"}])
@example([{"a": 1}], [{"a": 1.0}])
@example([{"a": 1}, {"b": 2}], [{"a": 1, "b": 2}])
def test_items_keys_are_equal_exactly_when_the_normal_keys_are(a, b):
    """The index looks `messages` up by `items_key`: it must decide equality as `normal_key`
    of the whole list does (that one is the normal form's text, tested against it)."""
    assert (items_key(a) == items_key(b)) == (normal_key(a) == normal_key(b))
    assert joined(items_key(a)) == normal_key(a)  # what a request without kept keys gives
    assert items_key(a) == items_key(json.loads(json.dumps(a)))


TOOL_LOOP = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "weather?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    {"role": "user", "content": [{"type": "text", "text": "and tomorrow?"}]},
]


def parse(raw: bytes):
    """As the server parses a body: keyed when orjson read it."""
    body, exact = decode_exact(raw)
    return parse_chat_request(body, keyed=exact)


def request(messages_: list[object], **extra: object) -> bytes:
    return json.dumps({"model": "m", "messages": messages_, **extra}).encode()


def test_a_message_seen_before_gives_what_fresh_validation_gives():
    first = parse(request(TOOL_LOOP))
    assert len(known.MESSAGES) == len(TOOL_LOOP)  # every message has a common shape
    again = parse(request(TOOL_LOOP, user="other"))
    assert again.messages == first.messages
    assert all(a is b for a, b in zip(again.messages, first.messages, strict=True))
    assert [fast_message(raw) for raw in TOOL_LOOP] == list(first.messages)
    assert again.messages_key == items_key(TOOL_LOOP)


def test_the_conversation_is_still_checked_when_every_message_is_known():
    parse(request(TOOL_LOOP))
    unanswered = TOOL_LOOP[:3] + TOOL_LOOP[4:]  # the tool message left out
    with pytest.raises(ApiError, match="did not have response messages: c1"):
        parse(request(unanswered))


def test_an_invalid_message_is_never_kept_and_still_refused():
    bad = {"role": "user", "content": 7}
    for _ in range(2):
        with pytest.raises(ApiError, match=r"messages\[0\]"):
            parse(request([bad]))
    assert known.MESSAGES == {}


def test_other_key_order_is_a_miss_not_a_mix_up():
    a = {"role": "user", "content": "hi", "name": "ann"}
    b = {"name": "ann", "content": "hi", "role": "user"}
    assert known.key_of(a) != known.key_of(b)
    assert parse(request([a])).messages == (parse(request([b])).messages)
    assert len(known.MESSAGES) == 2


def test_numbers_past_64_bits_and_long_messages_get_no_key():
    huge = {"role": "user", "content": "hi", "name": None, "x": 2**70}
    assert known.key_of(huge) is None
    long = {"role": "user", "content": "x" * known.MAX_VALUE}
    assert known.key_of(long) is None
    parse(request([long]))
    assert known.MESSAGES == {}


def test_the_table_is_cleared_when_its_bytes_are_spent(monkeypatch):
    monkeypatch.setattr(known, "MAX_BYTES", 4096)
    for i in range(100):  # about 250 bytes of key and entry each
        parse(request([{"role": "user", "content": f"{i:040}"}]))
        assert known._held[0] <= 4096
    assert 0 < len(known.MESSAGES) < 100


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def test_a_tool_list_seen_before_gives_its_names_and_a_bad_one_is_refused_each_time():
    first = parse(request(TOOL_LOOP[:2], tools=TOOLS))
    again = parse(request(TOOL_LOOP[:2], tools=TOOLS, user="x"))
    assert first.tools == again.tools == ("get_weather",)
    assert [t.names for t in known.TOOLS.values()] == [("get_weather",)]
    bad = [{"type": "function", "function": {"name": "w", "parameters": {"type": "nope"}}}]
    for _ in range(2):
        with pytest.raises(ApiError, match="Invalid schema for function 'w'"):
            parse(request(TOOL_LOOP[:2], tools=bad))
    assert len(known.TOOLS) == 1


# -- what must never be keyed, or keyed wrongly -----------------------------------------------------


def _key_is_the_normal_key(request) -> None:
    key, messages = request.messages_key, request.body["messages"]
    assert key == (items_key(messages) if type(key) is tuple else normal_key(messages))


@pytest.mark.parametrize("vllm_first", [True, False])
def test_a_profile_that_rewrites_messages_never_mixes_their_keys(vllm_first):
    """vLLM drops a message's `reasoning` before validating: its keys are the rewritten
    messages', so the request's messages key must come from what was sent."""
    from mockserver import profiles

    sent = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo", "reasoning": "think"},
        {"role": "user", "content": "again"},
    ]
    plain = [sent[0], {"role": "assistant", "content": "yo"}, sent[2]]
    vllm = lambda: profiles.get("vllm").parse(request(sent))  # noqa: E731
    openai = lambda: profiles.get("openai").parse(request(plain))  # noqa: E731
    for parse in (vllm, openai) if vllm_first else (openai, vllm):
        _key_is_the_normal_key(parse())
        _key_is_the_normal_key(parse())  # from what was kept, too


def test_a_number_python_reads_as_infinity_is_never_taken_for_a_null():
    """orjson writes infinity as `null`: a body only Python's decoder reads (1e400 overflows)
    is not keyed, so a kept message with `content: null` cannot stand in for it."""
    from mockserver import profiles

    openai = profiles.get("openai")
    call = {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    kept = {"role": "assistant", "content": None, "tool_calls": [call]}
    answer = {"role": "tool", "tool_call_id": "c1", "content": "ok"}
    openai.parse(request([kept, answer]))
    raw = request([kept, answer]).replace(b'"content": null', b'"content": 1e400', 1)
    assert b"1e400" in raw
    with pytest.raises(ApiError, match=r"messages\[0\]\.content"):
        openai.parse(raw)


def test_a_scenario_value_orjson_writes_otherwise_is_compared_by_json_rules():
    from mockserver.scenarios import load_text

    text = """
scenarios:
  - name: nan
    match: {params: {stop: .nan}}
    reply: {content: nan}
  - name: date
    match: {params: {metadata: {d: 2024-01-01}}}
    reply: {content: date}
  - reply: {content: neither}
"""
    from mockserver.engine import MockEngine

    engine = MockEngine(load_text(text))
    for extra in ({"stop": None}, {"metadata": {"d": "2024-01-01"}}):
        outcome = engine.handle_chat(request([{"role": "user", "content": "x"}], **extra))
        assert json.loads(outcome.body)["choices"][0]["message"]["content"] == "neither"


@pytest.mark.parametrize("profile", ["openai", "vllm"])
def test_the_tools_key_is_what_was_sent_or_none(profile):
    """A `params: {tools: ...}` condition compares the request's `tools_key` (validation's
    bytes of the list): it must be the list sent, never one a profile rewrote."""
    from mockserver import profiles

    parse = profiles.get(profile).parse
    request_ = parse(request(TOOL_LOOP[:2], tools=TOOLS))
    assert request_.tools_key == orjson.dumps(request_.body["tools"])
    if profile == "vllm":  # vLLM fills in a tool's missing `type`: the list is rewritten
        untyped = [{"function": TOOLS[0]["function"]}]
        assert parse(request(TOOL_LOOP[:2], tools=untyped)).tools_key is None


def test_a_rewritten_tool_list_is_compared_as_sent():
    """Under vLLM a tool without `type` is read as a function tool, but a scenario naming the
    typed list must not match it: matching compares what was sent."""
    from mockserver.engine import EngineConfig, MockEngine
    from mockserver.scenarios import load_text

    text = f"""
scenarios:
  - name: typed
    match: {{params: {{tools: {json.dumps(TOOLS)}}}}}
    reply: {{content: typed}}
  - reply: {{content: other}}
"""
    engine = MockEngine(load_text(text), EngineConfig(profile="vllm"))
    for tools, answer in (([{"function": TOOLS[0]["function"]}], "other"), (TOOLS, "typed")):
        for _ in range(2):  # and again, from what `known` kept
            outcome = engine.handle_chat(request(TOOL_LOOP[:2], tools=tools))
            assert json.loads(outcome.body)["choices"][0]["message"]["content"] == answer


@pytest.mark.parametrize("keyed", [True, False])
def test_a_messages_scenario_matches_with_and_without_kept_keys(keyed):
    """A keyed chat body gives its messages' `items_key`, a body Python's decoder read (a
    number past 64 bits: no keys) the joined text: the scenario matches either way."""
    from mockserver.engine import MockEngine
    from mockserver.scenarios import load_text

    text = f"""
scenarios:
  - name: loop
    match: {{messages: {json.dumps(TOOL_LOOP)}}}
    reply: {{content: matched}}
  - reply: {{content: other}}
"""
    engine = MockEngine(load_text(text))
    extra = {} if keyed else {"x_extra": 2**70}  # past 64 bits: read by Python, no keys
    for _ in range(2):
        raw = request(TOOL_LOOP, **extra)
        assert type(engine._parse(raw, ()).messages_key) is (tuple if keyed else str)
        outcome = engine.handle_chat(raw)
        assert json.loads(outcome.body)["choices"][0]["message"]["content"] == "matched"
