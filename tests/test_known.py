"""Messages met before (`mockserver.known`): the kept validation and normal keys must be exactly
what a fresh validation and `normal_key` give, and the table stays bounded."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver import known
from mockserver.errors import ApiError
from mockserver.normal import normal_key
from mockserver.validation import decode_body, parse_chat_request
from mockserver.validation.fast import fast_message
from tests.test_matching_index import json_values

messages = st.lists(st.dictionaries(st.sampled_from(["role", "content", "a", "b"]), json_values))


@pytest.fixture(autouse=True)
def _empty_table():
    known._clear()
    yield
    known._clear()


@settings(max_examples=500, deadline=None)
@given(messages)
def test_the_joined_key_is_the_normal_key_of_the_list(raws):
    keys = tuple(known.key_of(raw) for raw in raws)
    assert known.joined_key(keys, raws) == normal_key(raws)
    assert known.joined_key(keys, raws) == normal_key(raws)  # from the kept keys this time


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


def request(messages_: list[object], **extra: object) -> bytes:
    return json.dumps({"model": "m", "messages": messages_, **extra}).encode()


def test_a_message_seen_before_gives_what_fresh_validation_gives():
    first = parse_chat_request(decode_body(request(TOOL_LOOP)))
    assert len(known.MESSAGES) == len(TOOL_LOOP)  # every message has a common shape
    again = parse_chat_request(decode_body(request(TOOL_LOOP, user="other")))
    assert again.messages == first.messages
    assert all(a is b for a, b in zip(again.messages, first.messages, strict=True))
    assert [fast_message(raw) for raw in TOOL_LOOP] == list(first.messages)
    assert again.messages_key == normal_key(TOOL_LOOP)


def test_the_conversation_is_still_checked_when_every_message_is_known():
    parse_chat_request(decode_body(request(TOOL_LOOP)))
    unanswered = TOOL_LOOP[:3] + TOOL_LOOP[4:]  # the tool message left out
    with pytest.raises(ApiError, match="did not have response messages: c1"):
        parse_chat_request(decode_body(request(unanswered)))


def test_an_invalid_message_is_never_kept_and_still_refused():
    bad = {"role": "user", "content": 7}
    for _ in range(2):
        with pytest.raises(ApiError, match=r"messages\[0\]"):
            parse_chat_request(decode_body(request([bad])))
    assert known.MESSAGES == {}


def test_other_key_order_is_a_miss_not_a_mix_up():
    a = {"role": "user", "content": "hi", "name": "ann"}
    b = {"name": "ann", "content": "hi", "role": "user"}
    assert known.key_of(a) != known.key_of(b)
    assert parse_chat_request(decode_body(request([a]))).messages == (
        parse_chat_request(decode_body(request([b]))).messages
    )
    assert len(known.MESSAGES) == 2


def test_numbers_past_64_bits_and_long_messages_get_no_key():
    huge = {"role": "user", "content": "hi", "name": None, "x": 2**70}
    assert known.key_of(huge) is None
    long = {"role": "user", "content": "x" * known.MAX_VALUE}
    assert known.key_of(long) is None
    parse_chat_request(decode_body(request([long])))
    assert known.MESSAGES == {}


def test_the_table_is_cleared_when_its_bytes_are_spent(monkeypatch):
    monkeypatch.setattr(known, "MAX_BYTES", 4096)
    for i in range(100):  # about 250 bytes of key and entry each
        parse_chat_request(decode_body(request([{"role": "user", "content": f"{i:040}"}])))
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
    first = parse_chat_request(decode_body(request(TOOL_LOOP[:2], tools=TOOLS)))
    again = parse_chat_request(decode_body(request(TOOL_LOOP[:2], tools=TOOLS, user="x")))
    assert first.tools == again.tools == ("get_weather",)
    assert list(known.TOOLS.values()) == [("get_weather",)]
    bad = [{"type": "function", "function": {"name": "w", "parameters": {"type": "nope"}}}]
    for _ in range(2):
        with pytest.raises(ApiError, match="Invalid schema for function 'w'"):
            parse_chat_request(decode_body(request(TOOL_LOOP[:2], tools=bad)))
    assert len(known.TOOLS) == 1
