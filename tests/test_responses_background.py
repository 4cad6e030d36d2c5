"""Background responses (`background: true`, polled with `GET`), `POST /v1/responses/{id}/cancel`
and `POST /v1/responses/input_tokens`, through the openai SDK with strict response validation;
every reply is checked against OpenAI's schema (the `live` fixture)."""

from __future__ import annotations

import time

import httpx2
import openai
import pytest

from mockserver.responses_api import background

SCENARIOS = """
version: 1
scenarios:
  - name: slow
    match: {last_user_message: {contains: slow}}
    reply: {content: "Finally done.", delay_ms: 60000}
  - name: brief
    match: {last_user_message: {contains: brief}}
    reply: {content: "Soon.", delay_ms: 300}
  - name: hello
    reply: {content: "Hello there!"}
"""


@pytest.fixture
def server(live):
    return live(SCENARIOS, seed=11)


def test_background_is_queued_then_in_progress_then_completed(server):
    client = server.client
    started = client.responses.create(model="gpt-4.1", input="hi", background=True)
    assert (started.status, started.background, started.output, started.usage) == (
        "queued",
        True,
        [],
        None,
    )
    running = client.responses.retrieve(started.id)
    assert (running.status, running.output) == ("in_progress", [])
    done = client.responses.retrieve(started.id)
    assert done.status == "completed"
    assert done.output_text == "Hello there!"
    assert done.usage.output_tokens > 0
    assert client.responses.retrieve(started.id).status == "completed"  # and it stays so
    assert [e.api for e in server.engine.journal] == ["responses"]  # matched once, at creation


def test_background_completes_after_the_replys_delay(server):
    client = server.client
    started = client.responses.create(model="gpt-4.1", input="brief", background=True)
    took = time.monotonic()
    statuses = []
    while not statuses or statuses[-1] != "completed":
        statuses.append(client.responses.retrieve(started.id).status)
        time.sleep(0.05)
    assert time.monotonic() - took >= 0.25  # not before the reply's delay_ms
    assert statuses[0] == "in_progress"
    assert statuses.count("in_progress") >= 3
    assert client.responses.retrieve(started.id).output_text == "Soon."


def test_cancel_a_running_background_response(server):
    client = server.client
    started = client.responses.create(model="gpt-4.1", input="slow", background=True)
    cancelled = client.responses.cancel(started.id)
    assert (cancelled.id, cancelled.status, cancelled.output) == (started.id, "cancelled", [])
    assert client.responses.retrieve(started.id).status == "cancelled"
    again = client.responses.cancel(started.id)  # cancelling twice: the same answer
    assert again.status == "cancelled"
    follow = client.responses.create(model="m", input="hi", previous_response_id=started.id)
    assert follow.output_text == "Hello there!"  # continues from its input, no output


def test_cancel_a_finished_background_response_returns_it_unchanged(server):
    client = server.client
    started = client.responses.create(model="gpt-4.1", input="hi", background=True)
    client.responses.retrieve(started.id)
    client.responses.retrieve(started.id)
    kept = client.responses.cancel(started.id)
    assert (kept.status, kept.output_text) == ("completed", "Hello there!")


@pytest.mark.anyio
async def test_only_background_responses_can_be_cancelled(server):
    plain = await server.aclient.responses.create(model="gpt-4.1", input="hi")
    with pytest.raises(openai.BadRequestError) as refused:
        await server.aclient.responses.cancel(plain.id)
    assert "background=true" in refused.value.message
    with pytest.raises(openai.NotFoundError):
        await server.aclient.responses.cancel("resp_unknown")
    streamed = await server.aclient.responses.create(
        model="gpt-4.1", input="hi", background=True, stream=True
    )
    events = [event async for event in streamed]
    final = events[-1].response
    assert (final.status, final.background) == ("completed", True)
    assert (await server.aclient.responses.cancel(final.id)).status == "completed"


def test_deleting_or_resetting_forgets_a_running_response(server):
    client = server.client
    first = client.responses.create(model="m", input="slow", background=True)
    second = client.responses.create(model="m", input="slow", background=True)
    assert len(server.engine.responses_api.pending) == 2
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel(first.id)
    server.engine.reset()
    assert len(server.engine.responses_api.pending) == 0
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)


def test_background_needs_store(server):
    raw = httpx2.post(
        server.url + "/responses",
        json={"model": "m", "input": "hi", "background": True, "store": False},
    )
    assert raw.status_code == 400
    assert raw.json()["error"]["param"] == "background"


def test_pending_responses_are_bounded(monkeypatch):
    monkeypatch.setattr(background, "MAX_PENDING", 2)
    now = [0.0]
    pending = background.Pending(clock=lambda: now[0])
    for name in ("a", "b", "c"):
        pending.start(name, 5.0)
    assert len(pending) == 2
    assert pending.poll("a") is None  # the oldest counts as finished
    assert pending.poll("b") == "in_progress"
    assert pending.poll("b") == "in_progress"  # before its time
    now[0] = 5.0
    assert pending.poll("b") is None
    assert pending.poll("c") == "in_progress"  # the first poll always sees it running


def test_input_tokens_counts_as_usage_counts(server):
    client = server.client
    ask = {
        "model": "gpt-4.1",
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "hello there"}]}],
    }
    reply = client.responses.create(**ask)
    counted = client.responses.input_tokens.count(**ask)
    assert counted.object == "response.input_tokens"
    assert counted.input_tokens == reply.usage.input_tokens
    assert counted.input_tokens > 0
    longer = client.responses.input_tokens.count(input="hello there", previous_response_id=reply.id)
    alone = client.responses.input_tokens.count(input="hello there")  # `model` may be left out
    assert longer.input_tokens > alone.input_tokens  # the earlier turns count too
    assert server.engine.journal[-1].api == "responses"  # counting is not a call to a scenario
    assert len(server.engine.journal) == 1


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"input": 5}, 400, "input"),
        ({"input": "x", "previous_response_id": "resp_nope"}, 400, "previous_response_id"),
        ({"input": [{"type": "teleport"}]}, 400, "input[0].type"),
    ],
)
def test_input_tokens_checks_the_request(server, body, status, param):
    raw = httpx2.post(server.url + "/responses/input_tokens", json=body)
    assert raw.status_code == status, raw.text
    assert raw.json()["error"]["param"] == param


def test_input_tokens_in_strict_mode(live):
    strict = live(SCENARIOS, strict=True)
    body = {"input": "hi", "frobnicate": 1}
    raw = httpx2.post(strict.url + "/responses/input_tokens", json=body)
    assert raw.status_code == 400
    assert raw.json()["error"]["param"] == "frobnicate"
