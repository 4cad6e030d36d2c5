"""Streams on the wire: raw HTTP (httpx2) against the live server, byte by byte and over time.

These tests read the Server-Sent Events themselves, so they see what the SDK hides: exact
delta shapes (wire-format §4.3), `usage`/`obfuscation` keys, framing, and when each frame
arrives.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field

import httpx2
import openai
import pytest

from tests.support import schema_errors

USER = [{"role": "user", "content": "x"}]


@dataclass
class Received:
    """A streamed response as it arrived: headers, then each SSE event with its arrival time."""

    status: int
    headers: httpx2.Headers
    started: float
    head_at: float
    events: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    raw: bytes = b""
    ended_at: float = 0.0

    @property
    def chunks(self) -> list[dict]:
        return [json.loads(e) for e in self.events if e != "[DONE]"]

    def choices(self) -> list[tuple[int, dict, str | None]]:
        """(index, delta, finish_reason) of every chunk that carries a choice."""
        out = []
        for chunk in self.chunks:
            assert len(chunk["choices"]) <= 1, "one choice a chunk"
            out += [(c["index"], c["delta"], c["finish_reason"]) for c in chunk["choices"]]
        return out


def post(url: str, body: dict, *, timeout: float = 5.0) -> Received:
    """POST a chat completion and read the reply, timing each event as it arrives."""
    with httpx2.Client(timeout=timeout) as client:
        started = time.perf_counter()
        with client.stream("POST", f"{url}/chat/completions", json=body) as response:
            got = Received(response.status_code, response.headers, started, time.perf_counter())
            sse = response.headers.get("content-type", "").startswith("text/event-stream")
            buffer = b""
            for data in response.iter_raw():
                now = time.perf_counter()
                got.raw += data
                buffer += data
                while sse and b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    assert block.startswith(b"data: "), block
                    assert b"\n" not in block, "one line an event"
                    got.events.append(block[6:].decode())
                    got.times.append(now)
            assert not sse or buffer == b"", "the body ends with a complete event"
            got.ended_at = time.perf_counter()
    return got


def stream(url: str, **body) -> Received:
    body = {"model": "gpt-4o-mini", "messages": USER, "stream": True, **body}
    got = post(url, body)
    assert got.status == 200, got.raw
    assert got.headers["content-type"] == "text/event-stream; charset=utf-8"
    for n, chunk in enumerate(got.chunks):
        schema = "ErrorResponse" if "error" in chunk else "CreateChatCompletionStreamResponse"
        assert schema_errors(schema, chunk) == [], (n, chunk)
    return got


def one_reply(reply: str, **extra: str) -> str:
    """A scenario file with one catch-all scenario whose reply is the given YAML flow map."""
    specific = "".join(
        f"  - {{match: {{last_user_message: {k}}}, reply: {v}}}\n" for k, v in extra.items()
    )
    return f"version: 1\nscenarios:\n{specific}  - reply: {reply}\n"


def check_common(got: Received) -> None:
    """What every chat stream has: [DONE] last, one id/created/model, the chunk object."""
    assert got.events[-1] == "[DONE]"
    assert got.events.count("[DONE]") == 1
    assert got.raw.endswith(b"data: [DONE]\n\n")
    chunks = got.chunks
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert len({c["created"] for c in chunks}) == 1
    assert isinstance(chunks[0]["created"], int)
    assert len({c["model"] for c in chunks}) == 1
    assert len({c["system_fingerprint"] for c in chunks}) == 1
    assert b"event:" not in got.raw


# -- canonical sequences (wire-format §4.3) ---------------------------------------------------


def test_text_sequence(live):
    mock = live(one_reply('{content: "Hello world, again!", stream: {chunk_size: 6}}'))
    got = stream(mock.url)
    check_common(got)
    assert got.choices() == [
        (0, {"role": "assistant", "content": "", "refusal": None}, None),
        (0, {"content": "Hello "}, None),
        (0, {"content": "world,"}, None),
        (0, {"content": " again"}, None),
        (0, {"content": "!"}, None),
        (0, {}, "stop"),
    ]
    assert all(c["choices"][0]["logprobs"] is None for c in got.chunks)


def test_default_pieces_are_word_sized(live):
    mock = live(one_reply('{content: "The quick brown fox, jumping."}'))
    got = stream(mock.url)
    pieces = [d["content"] for _, d, _ in got.choices()[1:-1]]
    assert pieces == ["The", " quick", " brown", " fox", ",", " jumping", "."]


def test_chunk_size_splits_into_n_character_pieces(live):
    text = "Streamed ten characters at a time instead of word by word."
    mock = live(one_reply(f'{{content: "{text}", stream: {{chunk_size: 10}}}}'))
    pieces = [d["content"] for _, d, _ in stream(mock.url).choices()[1:-1]]
    assert "".join(pieces) == text
    assert all(len(p) == 10 for p in pieces[:-1])
    assert 0 < len(pieces[-1]) <= 10
    assert len(pieces) == -(-len(text) // 10)


def test_parallel_tool_call_sequence(live):
    mock = live(
        one_reply(
            "{tool_calls: [{name: get_weather, id: call_A, arguments: {city: Paris}},"
            ' {name: get_time, id: call_B, arguments: \'{"tz":"CET"}\'}],'
            " stream: {chunk_size: 7}}"
        )
    )
    got = stream(mock.url)
    check_common(got)

    def head(k, call_id, name):
        return {
            "index": k,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }

    def piece(k, text):
        return (0, {"tool_calls": [{"index": k, "function": {"arguments": text}}]}, None)

    assert got.choices() == [
        (
            0,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [head(0, "call_A", "get_weather")],
                "refusal": None,
            },
            None,
        ),
        piece(0, '{"city"'),
        piece(0, ':"Paris'),
        piece(0, '"}'),
        (0, {"tool_calls": [head(1, "call_B", "get_time")]}, None),
        piece(1, '{"tz":"'),
        piece(1, 'CET"}'),
        (0, {}, "tool_calls"),
    ]


def test_generated_tool_call_ids_in_a_stream(live):
    mock = live(one_reply("{tool_calls: [{name: a}, {name: b}]}"))
    heads = [d["tool_calls"][0] for _, d, _ in stream(mock.url).choices() if "tool_calls" in d]
    ids = [h["id"] for h in heads if "id" in h]
    assert len(ids) == 2
    assert ids[0] != ids[1]
    assert all(i.startswith("call_") and len(i) == 29 and i[5:].isalnum() for i in ids)
    # arguments default to an empty object
    assert [h["function"]["arguments"] for h in heads if "id" not in h] == ["{}", "{}"]


def test_refusal_sequence(live):
    mock = live(one_reply('{refusal: "I can\'t help with that."}'))
    got = stream(mock.url)
    check_common(got)
    assert got.choices() == [
        (0, {"role": "assistant", "content": None, "refusal": ""}, None),
        (0, {"refusal": "I"}, None),
        (0, {"refusal": " can"}, None),
        (0, {"refusal": "'"}, None),
        (0, {"refusal": "t"}, None),
        (0, {"refusal": " help"}, None),
        (0, {"refusal": " with"}, None),
        (0, {"refusal": " that"}, None),
        (0, {"refusal": "."}, None),
        (0, {}, "stop"),
    ]


def test_audio_sequence(live):
    mock = live(one_reply('{audio: {transcript: "Hello there, friend."}}'))
    got = stream(
        mock.url,
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": "pcm16"},
    )
    check_common(got)
    choices = got.choices()
    first = choices[0][1]
    assert set(first) == {"role", "content", "refusal", "audio"}
    assert (first["role"], first["content"], first["refusal"]) == ("assistant", None, None)
    assert set(first["audio"]) == {"id", "transcript"}
    assert first["audio"]["id"].startswith("audio_")
    assert first["audio"]["transcript"] == ""
    assert choices[-1] == (0, {}, "stop")
    assert list(choices[-2][1]) == ["audio"]
    assert list(choices[-2][1]["audio"]) == ["expires_at"]
    assert choices[-2][1]["audio"]["expires_at"] > got.chunks[0]["created"]
    middle = [d["audio"] for _, d, _ in choices[1:-2]]
    assert all(len(a) == 1 and set(a) <= {"transcript", "data"} for a in middle)
    kinds = [next(iter(a)) for a in middle]
    assert kinds[:4] == ["transcript", "data", "transcript", "data"]  # interleaved
    assert "".join(a.get("transcript", "") for a in middle) == "Hello there, friend."
    data = b"".join(base64.b64decode(a["data"]) for a in middle if "data" in a)
    # pcm16 at 24 kHz, about 15 characters a second: 20 characters is about 1.3 s
    assert len(data) % 2 == 0
    assert 1.0 < len(data) / 2 / 24_000 < 2.0


def test_audio_data_fragments_join_as_strings_too(live):
    """Clients (and the SDK's stream helper) concatenate `data` strings before decoding."""
    mock = live(one_reply('{audio: {transcript: "a b c d e f g"}}'))
    for fmt in ("pcm16", "wav"):
        got = stream(
            mock.url, modalities=["text", "audio"], audio={"voice": "alloy", "format": fmt}
        )
        fragments = [
            d["audio"]["data"] for _, d, _ in got.choices() if "data" in d.get("audio", {})
        ]
        decoded = b"".join(base64.b64decode(f) for f in fragments)
        assert base64.b64decode("".join(fragments), validate=True) == decoded, fmt


def test_n_choices_sequence(live):
    mock = live(one_reply('{choices: [{content: "Alpha beta"}, {refusal: "No way"}]}'))
    got = stream(mock.url, n=2)
    check_common(got)
    choices = got.choices()
    assert choices[0][0] == 0
    assert [i for i, _, _ in choices].index(1) > 0
    expected = (
        (0, {"role": "assistant", "content": "", "refusal": None}, "content", "Alpha beta"),
        (1, {"role": "assistant", "content": None, "refusal": ""}, "refusal", "No way"),
    )
    for index, role_delta, text_key, text in expected:
        own = [(d, f) for i, d, f in choices if i == index]
        assert own[0] == (role_delta, None)
        assert own[-1] == ({}, "stop")
        assert [f for _, f in own].count("stop") == 1
        assert "".join(d[text_key] for d, _ in own[1:-1]) == text
        assert all(set(d) == {text_key} for d, _ in own[1:-1])


def test_include_usage(live):
    mock = live(one_reply('{content: "Hi there."}'))
    got = stream(mock.url, stream_options={"include_usage": True})
    check_common(got)
    chunks = got.chunks
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"] == []
    usage = last["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == 3
    assert set(usage["prompt_tokens_details"]) >= {"cached_tokens", "audio_tokens"}
    assert set(usage["completion_tokens_details"]) >= {
        "reasoning_tokens",
        "audio_tokens",
        "accepted_prediction_tokens",
        "rejected_prediction_tokens",
    }
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert got.events[-1] == "[DONE]"


def test_no_usage_key_without_include_usage(live):
    mock = live(one_reply('{content: "Hi there."}'))
    for options in ({}, {"stream_options": {"include_usage": False}}):
        got = stream(mock.url, **options)
        assert all("usage" not in c for c in got.chunks)
        assert got.chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_obfuscation(live):
    mock = live(one_reply('{content: "Hi there."}'))
    got = stream(mock.url, stream_options={"include_usage": True})
    pads = [c.get("obfuscation") for c in got.chunks]
    assert all(isinstance(p, str) and p for p in pads)
    assert len(set(pads)) > 1  # random padding, not a constant
    plain = stream(mock.url, stream_options={"include_usage": True, "include_obfuscation": False})
    assert all("obfuscation" not in c for c in plain.chunks)
    assert len(plain.chunks) == len(got.chunks)


def test_logprobs_on_each_content_chunk(live):
    mock = live(one_reply('{content: "Hi there."}'))
    got = stream(mock.url, logprobs=True, top_logprobs=2)
    for chunk in got.chunks:
        choice = chunk["choices"][0]
        if choice["delta"].get("content"):
            lp = choice["logprobs"]
            assert lp["refusal"] is None
            assert "".join(t["token"] for t in lp["content"]) == choice["delta"]["content"]
            assert all(len(t["top_logprobs"]) == 2 for t in lp["content"])
        else:
            assert choice["logprobs"] is None


# -- framing and headers ----------------------------------------------------------------------


def test_non_stream_reply_has_a_content_length(live):
    mock = live(one_reply('{content: "Hi there."}'))
    got = post(mock.url, {"model": "m", "messages": USER})
    assert got.status == 200
    assert got.headers["content-type"] == "application/json"
    assert int(got.headers["content-length"]) == len(got.raw)
    assert "transfer-encoding" not in got.headers
    body = json.loads(got.raw)
    assert schema_errors("CreateChatCompletionResponse", body) == []
    error = post(mock.url, {"model": "m", "messages": []})
    assert error.status == 400
    assert int(error.headers["content-length"]) == len(error.raw)


def test_stream_headers(live):
    mock = live(one_reply('{content: "Hi.", headers: {x-custom: "1"}}'))
    got = stream(mock.url)
    assert got.headers["x-request-id"].startswith("req_")
    assert got.headers["x-custom"] == "1"
    assert got.headers["openai-version"] == "2020-10-01"
    assert "content-length" not in got.headers


def test_stream_ends_promptly_after_done(live):
    mock = live(one_reply('{content: "Hi there.", stream: {chunk_delay_ms: 5}}'))
    for _ in range(3):
        got = stream(mock.url)  # the client's 5 s read timeout turns a hang into an error
        assert got.events[-1] == "[DONE]"
        assert got.ended_at - got.times[-1] < 0.25


@pytest.mark.anyio
async def test_sdk_async_stream_closes_without_the_drain_wait(live):
    """After [DONE] the async SDK drains the body for up to 100 ms; the mock closes at once."""
    mock = live(one_reply('{content: "Hi there."}'))
    tails = []
    for _ in range(5):
        s = await mock.aclient.chat.completions.create(model="m", messages=USER, stream=True)
        async for chunk in s:
            if chunk.choices[0].finish_reason:
                last = time.perf_counter()
        tails.append(time.perf_counter() - last)
    tails.sort()
    assert tails[2] < 0.05, tails  # the median; a drain wait would be 0.1 s every time


# -- timing -----------------------------------------------------------------------------------


def test_frames_arrive_one_by_one(live):
    mock = live(
        one_reply(
            '{content: "one two three four", stream: {first_chunk_delay_ms: 80, chunk_delay_ms: 50}}'
        )
    )
    got = stream(mock.url)
    # role, 4 words, finish, [DONE]: each event is written after its own wait, so event k
    # cannot arrive before 80 + 50 k ms (bounds that a late reader cannot break)
    assert len(got.events) == 7
    for k, at in enumerate(got.times):
        assert at - got.started >= 0.08 + 0.05 * k - 0.002 * (k + 1), (k, at - got.started)
    # and they were not held back and sent together: the first came long before the last
    assert got.times[-1] - got.times[0] >= 0.25
    assert got.head_at <= got.times[0] - 0.03  # the head went out before the first wait
    assert got.times[-1] - got.started < 0.08 + 6 * 0.05 + 1.0


def test_first_chunk_delay_alone_sends_the_rest_at_once(live):
    mock = live(one_reply('{content: "one two three four", stream: {first_chunk_delay_ms: 60}}'))
    got = stream(mock.url)
    assert got.times[0] - got.started >= 0.055
    assert got.times[-1] - got.times[0] < 0.03


def test_delay_ms_delays_the_head(live):
    mock = live(one_reply('{content: "Done thinking.", delay_ms: 120}'))
    got = stream(mock.url)
    assert got.head_at - got.started >= 0.115
    plain = post(mock.url, {"model": "m", "messages": USER})
    assert plain.head_at - plain.started >= 0.115
    assert json.loads(plain.raw)["choices"][0]["message"]["content"] == "Done thinking."


def test_delays_do_not_block_other_requests(live):
    mock = live(one_reply('{content: "slow", delay_ms: 500}', fast='{content: "fast"}'))
    done: dict[str, float] = {}

    def slow() -> None:
        post(mock.url, {"model": "m", "messages": USER})
        done["slow"] = time.perf_counter()

    thread = threading.Thread(target=slow)
    thread.start()
    deadline = time.monotonic() + 5
    while not mock.engine.journal:  # the slow request is in, and waiting out its delay
        assert time.monotonic() < deadline
        time.sleep(0.001)
    fast = post(mock.url, {"model": "m", "messages": [{"role": "user", "content": "fast"}]})
    done["fast"] = time.perf_counter()
    thread.join(5)
    assert json.loads(fast.raw)["choices"][0]["message"]["content"] == "fast"
    assert done["fast"] < done["slow"]


# -- interrupted streams ----------------------------------------------------------------------

BROKEN = """
version: 1
scenarios:
  - match: {last_user_message: error}
    reply:
      content: "This stream fails part of the way through the answer."
      stream:
        interrupt:
          after_chunks: 4
          error: {status: 500, message: "The server had an error while streaming."}
  - match: {last_user_message: error-slow}
    reply:
      content: "This stream fails part of the way through the answer."
      stream:
        chunk_delay_ms: 5
        interrupt: {after_chunks: 2, error: {status: 429, code: rate_limit_exceeded}}
  - match: {last_user_message: drop}
    reply:
      content: "The connection drops before this sentence ends."
      stream: {interrupt: {after_chunks: 3}}
  - match: {last_user_message: drop-slow}
    reply:
      content: "The connection drops before this sentence ends."
      stream: {chunk_delay_ms: 5, interrupt: {after_chunks: 3}}
"""


def said(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("message", ["error", "error-slow"])
def test_interrupt_with_an_error_event(live, message):
    mock = live(BROKEN)
    got = stream(mock.url, messages=said(message))
    assert "[DONE]" not in got.events
    *chunks, last = got.chunks
    assert len(chunks) == (4 if message == "error" else 2)
    assert all("error" not in c for c in chunks)
    assert set(last) == {"error"}
    assert set(last["error"]) == {"message", "type", "param", "code"}
    if message == "error":
        assert last["error"]["message"] == "The server had an error while streaming."
        assert last["error"]["type"] == "server_error"
    else:
        assert last["error"]["code"] == "rate_limit_exceeded"
        # OpenAI's default message for the status, naming the model of the request
        assert last["error"]["message"].startswith("Rate limit reached for gpt-4o-mini in ")
    assert got.raw.endswith(b"\n\n")


@pytest.mark.parametrize("message", ["error", "error-slow"])
def test_interrupt_with_an_error_raises_in_the_sdk(live, message):
    mock = live(BROKEN)
    s = mock.client.chat.completions.create(model="m", messages=said(message), stream=True)
    with pytest.raises(openai.APIError) as caught:
        for _ in s:
            pass
    assert caught.value.body["type"] in ("server_error", "requests")
    assert len(mock.engine.journal) == 1


@pytest.mark.parametrize("message", ["drop", "drop-slow"])
def test_interrupt_without_an_error_drops_the_connection(live, message):
    mock = live(BROKEN)
    with pytest.raises(httpx2.RemoteProtocolError):
        post(
            mock.url,
            {"model": "m", "messages": said(message), "stream": True},
        )
    # what arrived before the drop: the first chunks, no [DONE]
    received: list[bytes] = []
    with (
        httpx2.Client(timeout=5) as client,
        client.stream(
            "POST",
            f"{mock.url}/chat/completions",
            json={"model": "m", "messages": said(message), "stream": True},
        ) as response,
        pytest.raises(httpx2.RemoteProtocolError),
    ):
        received.extend(response.iter_raw())
    body = b"".join(received)
    assert body.count(b"data: ") == 3
    assert b"[DONE]" not in body


def test_interrupt_without_an_error_in_the_sdk(live):
    mock = live(BROKEN)
    s = mock.client.with_options(max_retries=0).chat.completions.create(
        model="m", messages=said("drop"), stream=True
    )
    seen: list = []
    with pytest.raises(openai.APIConnectionError) as caught:
        seen.extend(s)
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)
    assert [c.choices[0].delta.content for c in seen] == ["", "The", " connection"]
    assert len(mock.engine.journal) == 1  # a broken body is not retried


# -- the ASGI messages a stream becomes -------------------------------------------------------------


def _messages(frames: tuple, sent: list[dict] | None = None) -> tuple[list[dict], float]:
    """The ASGI messages `send_outcome` writes for `frames` (into `sent`), and how long it
    took."""
    import asyncio

    from mockserver.app import send_outcome
    from mockserver.outcome import Outcome

    sent = [] if sent is None else sent

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        await asyncio.sleep(10)  # the client stays
        return {"type": "http.disconnect"}

    async def run() -> float:
        began = time.perf_counter()
        outcome = Outcome(200, [(b"content-type", b"text/event-stream")], frames=frames)
        await send_outcome(outcome, send, receive)
        return time.perf_counter() - began

    took = asyncio.run(run())
    return sent[1:], took  # after http.response.start


def test_frames_due_at_once_share_a_message_and_the_last_ends_the_body():
    from mockserver.outcome import Frame

    frames = (Frame(0, b"a"), Frame(0, b"b"), Frame(0.05, b"c"), Frame(0, b"d"), Frame(0, b"e"))
    sent, took = _messages(frames)
    assert [(m["body"], m.get("more_body", False)) for m in sent] == [
        (b"ab", True),
        (b"cde", False),
    ]
    assert took >= 0.05  # the delayed frame still waited


def test_an_empty_stream_still_ends_its_body():
    sent, _ = _messages(())
    assert [(m["body"], m.get("more_body", False)) for m in sent] == [(b"", False)]


def test_an_abort_frame_is_never_joined_to_the_frames_before_it():
    from mockserver.app import StreamAborted
    from mockserver.outcome import Frame

    sent: list[dict] = []
    frames = (Frame(0, b"a"), Frame(0, b"b"), Frame(0, b"", abort=True), Frame(0, b"c"))
    with pytest.raises(StreamAborted):
        _messages(frames, sent)
    assert [(m["body"], m.get("more_body", False)) for m in sent[1:]] == [(b"ab", True)]
