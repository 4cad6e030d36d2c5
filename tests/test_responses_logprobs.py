"""Logprobs in the Responses API: `include: ["message.output_text.logprobs"]` (with
`top_logprobs`) gives the output text's parts and streamed deltas the logprobs chat completions
gives the same scenario; without it they are `[]`. Through the openai SDK with strict response
validation; every reply and event is checked against OpenAI's schema (the `live` fixture)."""

from __future__ import annotations

import httpx2
import pytest

from mockserver import tokens

SCENARIOS = """
version: 1
scenarios:
  - name: refuse
    match: {last_user_message: {contains: forbidden}}
    reply: {refusal: "I can't help with that."}
  - name: chunked
    match: {last_user_message: {contains: chunks}}
    reply: {content: "abcdefgh", stream: {chunk_size: 3}}
  - name: hello
    reply: {content: "Hello there, friend!"}
"""
INCLUDE = ["message.output_text.logprobs"]


@pytest.fixture
def server(live):
    return live(SCENARIOS, seed=3)


def test_output_text_carries_logprobs_as_chat_gives_them(server):
    reply = server.client.responses.create(
        model="gpt-4.1", input="hi", include=INCLUDE, top_logprobs=2
    )
    part = reply.output[0].content[0]
    assert [lp.token for lp in part.logprobs] == tokens.split("Hello there, friend!")
    assert all(len(lp.top_logprobs) == 2 for lp in part.logprobs)
    assert reply.top_logprobs == 2
    chat = server.client.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "hi"}],
        logprobs=True,
        top_logprobs=2,
    )
    from_chat = chat.choices[0].logprobs.content
    assert [lp.model_dump() for lp in part.logprobs] == [lp.model_dump() for lp in from_chat]


def test_without_include_logprobs_are_empty(server):
    for extra in ({}, {"top_logprobs": 3}, {"include": ["reasoning.encrypted_content"]}):
        reply = server.client.responses.create(model="gpt-4.1", input="hi", **extra)
        assert reply.output[0].content[0].logprobs == []
    plain = server.client.responses.create(model="gpt-4.1", input="hi", include=INCLUDE)
    n = len(tokens.split("Hello there, friend!"))
    assert [lp.top_logprobs for lp in plain.output[0].content[0].logprobs] == [[]] * n


def test_stream_deltas_and_done_carry_logprobs(server):
    with server.client.responses.stream(
        model="gpt-4.1", input="hi", include=INCLUDE, top_logprobs=1
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert [d.logprobs[0].token for d in deltas] == [d.delta for d in deltas]
    assert all(len(d.logprobs) == 1 and len(d.logprobs[0].top_logprobs) == 1 for d in deltas)
    done = next(e for e in events if e.type == "response.output_text.done")
    assert [lp.token for lp in done.logprobs] == tokens.split("Hello there, friend!")
    added = next(e for e in events if e.type == "response.content_part.added")
    assert added.part.logprobs == []
    kept = final.output[0].content[0].logprobs
    assert [lp.logprob for lp in kept] == [lp.logprob for lp in done.logprobs]
    part_done = next(e for e in events if e.type == "response.content_part.done")
    assert part_done.part.logprobs == kept


def test_stream_without_include_has_empty_logprobs(server):
    with server.client.responses.create(model="gpt-4.1", input="hi", stream=True) as stream:
        events = list(stream)
    texts = [
        e for e in events if e.type in ("response.output_text.delta", "response.output_text.done")
    ]
    assert texts
    assert all(e.logprobs == [] for e in texts)


def test_chunked_deltas_take_each_piece_as_a_token(server):
    with server.client.responses.create(
        model="gpt-4.1", input="chunks", include=INCLUDE, stream=True
    ) as stream:
        deltas = [e for e in stream if e.type == "response.output_text.delta"]
    assert [d.delta for d in deltas] == ["abc", "def", "gh"]
    assert [d.logprobs[0].logprob for d in deltas] == [
        tokens.logprob(piece) for piece in ("abc", "def", "gh")
    ]


def test_a_refusal_has_no_logprobs_and_templates_keep_them(server):
    refused = server.client.responses.create(model="gpt-4.1", input="forbidden", include=INCLUDE)
    assert refused.output[0].content[0].type == "refusal"
    replies = [
        server.client.responses.create(model="m", input="hi", include=INCLUDE, top_logprobs=1)
        for _ in range(3)  # the third from the template the second made
    ]
    assert len({r.id for r in replies}) == 3
    parts = [r.output[0].content[0].logprobs for r in replies]
    assert parts[0] == parts[1] == parts[2]
    assert server.client.responses.retrieve(replies[2].id).output[0].content[0].logprobs == parts[2]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"include": ["message.output_text.logprob"]}, "include[0]"),
        ({"include": INCLUDE, "top_logprobs": 21}, "top_logprobs"),
    ],
)
def test_bad_include_and_top_logprobs_are_refused(server, extra, param):
    raw = httpx2.post(server.url + "/responses", json={"model": "m", "input": "x", **extra})
    assert raw.status_code == 400, raw.text
    error = raw.json()["error"]
    assert error["param"] == param
    if param == "include[0]":
        assert "message.output_text.logprobs" in error["message"]
