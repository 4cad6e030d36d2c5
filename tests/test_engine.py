"""The engine as a pure function: request bytes in, status / headers / bytes out."""

from __future__ import annotations

import base64
import json
import textwrap
import wave
from io import BytesIO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver import journal, memo, templates, tokens
from mockserver.engine import EngineConfig, MockEngine
from mockserver.scenarios import load_text
from tests.support import schema_errors, sse_data


def engine(yaml: str, **config) -> MockEngine:
    return MockEngine(load_text(textwrap.dedent(yaml), "e.yaml"), EngineConfig(seed=1, **config))


def body(text: str = "hi", **fields) -> bytes:
    payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    payload.update(fields)
    return json.dumps(payload).encode()


def chunks(outcome) -> list[dict]:
    events = sse_data(outcome.content())
    assert events[-1] == "[DONE]"
    parsed = [json.loads(e) for e in events[:-1]]
    for chunk in parsed:
        assert schema_errors("CreateChatCompletionStreamResponse", chunk) == []
    return parsed


def deltas(parsed: list[dict]) -> list[dict]:
    return [c["choices"][0]["delta"] for c in parsed if c["choices"]]


TEXT = """
    scenarios:
      - name: t
        reply: {content: "Hello there, friend!"}
"""


@given(st.text())
def test_tokens_join_back_into_the_text(text):
    assert "".join(tokens.split(text)) == text
    assert tokens.count(text) == len(tokens.split(text))


def test_tokens_look_like_words():
    assert tokens.split("Hello, world! It's 42.") == [
        "Hello",
        ",",
        " world",
        "!",
        " It",
        "'",
        "s",
        " 42",
        ".",
    ]


def test_completion_is_valid_and_usage_adds_up():
    reply = json.loads(engine(TEXT).handle_chat(body()).body)
    assert schema_errors("CreateChatCompletionResponse", reply) == []
    usage = reply["usage"]
    assert usage["completion_tokens"] == 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_prompt_tokens_grow_with_the_prompt():
    e = engine(TEXT)
    short = json.loads(e.handle_chat(body("hi")).body)["usage"]["prompt_tokens"]
    long = json.loads(e.handle_chat(body("hi " * 100)).body)["usage"]["prompt_tokens"]
    assert long - short == 100


def test_pinned_usage_wins_and_total_follows():
    e = engine("""
        scenarios:
          - reply:
              content: x
              usage: {prompt_tokens: 1000, prompt_tokens_details: {cached_tokens: 512}}
    """)
    usage = json.loads(e.handle_chat(body()).body)["usage"]
    assert usage["prompt_tokens"] == 1000
    assert usage["total_tokens"] == 1000 + usage["completion_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 512, "audio_tokens": 0}


def test_max_tokens_truncates_with_finish_length():
    e = engine(TEXT)
    reply = json.loads(e.handle_chat(body(max_completion_tokens=2)).body)
    assert reply["choices"][0]["message"]["content"] == "Hello there"
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"]["completion_tokens"] == 2


def test_stop_sequences_cut_before_the_stop():
    reply = json.loads(engine(TEXT).handle_chat(body(stop=[","])).body)
    assert reply["choices"][0]["message"]["content"] == "Hello there"
    assert reply["choices"][0]["finish_reason"] == "stop"


def test_text_stream_sequence():
    parsed = chunks(engine(TEXT).handle_chat(body(stream=True)))
    assert deltas(parsed) == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Hello"},
        {"content": " there"},
        {"content": ","},
        {"content": " friend"},
        {"content": "!"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in parsed][-2:] == [None, "stop"]
    assert len({(c["id"], c["created"]) for c in parsed}) == 1
    assert all("usage" not in c for c in parsed)
    assert all(c["obfuscation"] for c in parsed)


def test_include_usage_adds_the_usage_chunk_and_nulls():
    parsed = chunks(
        engine(TEXT).handle_chat(body(stream=True, stream_options={"include_usage": True}))
    )
    assert all(c["usage"] is None for c in parsed[:-1])
    assert parsed[-1]["choices"] == []
    assert parsed[-1]["usage"]["completion_tokens"] == 5


def test_obfuscation_can_be_turned_off():
    parsed = chunks(
        engine(TEXT).handle_chat(body(stream=True, stream_options={"include_obfuscation": False}))
    )
    assert all("obfuscation" not in c for c in parsed)


def test_chunk_size_counts_characters():
    e = engine("""
        scenarios:
          - reply: {content: "abcdefghij", stream: {chunk_size: 4}}
    """)
    assert [d.get("content") for d in deltas(chunks(e.handle_chat(body(stream=True))))][1:-1] == [
        "abcd",
        "efgh",
        "ij",
    ]


def test_parallel_tool_call_stream():
    e = engine("""
        scenarios:
          - reply:
              tool_calls:
                - {name: get_weather, arguments: {city: Paris}}
                - {name: get_time, id: call_fixed, arguments: {tz: CET}}
    """)
    parsed = chunks(e.handle_chat(body(stream=True)))
    ds = deltas(parsed)
    first = ds[0]
    assert first["role"] == "assistant"
    assert first["content"] is None
    assert first["refusal"] is None
    assert first["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ""}
    assert first["tool_calls"][0]["id"].startswith("call_")
    joined: dict[int, str] = {}
    for d in ds:
        for call in d.get("tool_calls", []):
            joined[call["index"]] = joined.get(call["index"], "") + call["function"].get(
                "arguments", ""
            )
    assert {k: json.loads(v) for k, v in joined.items()} == {0: {"city": "Paris"}, 1: {"tz": "CET"}}
    heads = [c for d in ds for c in d.get("tool_calls", []) if "id" in c]
    assert [h["id"] for h in heads][1] == "call_fixed"
    assert parsed[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_refusal_stream():
    e = engine("""
        scenarios:
          - reply: {refusal: "I can't."}
    """)
    ds = deltas(chunks(e.handle_chat(body(stream=True))))
    assert ds[0] == {"role": "assistant", "content": None, "refusal": ""}
    assert "".join(d.get("refusal", "") for d in ds[1:]) == "I can't."


def test_n_choices_interleave_with_index_zero_first():
    e = engine("""
        scenarios:
          - reply:
              choices: [{content: "one two"}, {content: "three"}]
    """)
    parsed = chunks(e.handle_chat(body(stream=True, n=3)))
    order = [c["choices"][0]["index"] for c in parsed]
    assert order[:3] == [0, 1, 2]
    for i, text in enumerate(["one two", "three", "one two"]):
        mine = [c["choices"][0] for c in parsed if c["choices"][0]["index"] == i]
        assert mine[0]["delta"]["role"] == "assistant"
        assert "".join(m["delta"].get("content") or "" for m in mine) == text
        assert [m["finish_reason"] for m in mine][-1] == "stop"
    reply = json.loads(e.handle_chat(body(n=3)).body)
    assert [c["message"]["content"] for c in reply["choices"]] == ["one two", "three", "one two"]


def test_logprobs_are_deterministic_and_complete():
    e = engine(TEXT)
    first = json.loads(e.handle_chat(body(logprobs=True, top_logprobs=3)).body)
    second = json.loads(e.handle_chat(body(logprobs=True, top_logprobs=3)).body)
    lp = first["choices"][0]["logprobs"]
    assert lp == second["choices"][0]["logprobs"]
    assert [t["token"] for t in lp["content"]] == ["Hello", " there", ",", " friend", "!"]
    assert all(len(t["top_logprobs"]) == 3 for t in lp["content"])
    assert all(t["top_logprobs"][0]["token"] == t["token"] for t in lp["content"])
    streamed = chunks(e.handle_chat(body(stream=True, logprobs=True, top_logprobs=1)))
    tokens_streamed = [
        c["choices"][0]["logprobs"]["content"][0]["token"]
        for c in streamed
        if c["choices"][0]["logprobs"]
    ]
    assert tokens_streamed == ["Hello", " there", ",", " friend", "!"]


AUDIO = """
    scenarios:
      - reply: {audio: {transcript: "Hello there, this is audio."}}
"""
WANTS_AUDIO = {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}


def test_audio_reply_is_a_real_wav_of_plausible_length():
    reply = json.loads(engine(AUDIO).handle_chat(body(**WANTS_AUDIO)).body)
    message = reply["choices"][0]["message"]
    assert message["content"] is None
    assert message["audio"]["transcript"] == "Hello there, this is audio."
    assert message["audio"]["id"].startswith("audio_")
    assert message["audio"]["expires_at"] == reply["created"] + 3600
    with wave.open(BytesIO(base64.b64decode(message["audio"]["data"]))) as w:
        seconds = w.getnframes() / w.getframerate()
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24000)
    assert 1.0 < seconds < 3.0
    assert reply["usage"]["completion_tokens_details"]["audio_tokens"] > 0


def test_audio_stream_pieces_join_into_the_same_audio():
    e = engine(AUDIO)
    whole = json.loads(
        e.handle_chat(body(**{**WANTS_AUDIO, "audio": {"voice": "alloy", "format": "pcm16"}})).body
    )
    ds = deltas(
        chunks(
            e.handle_chat(
                body(stream=True, **{**WANTS_AUDIO, "audio": {"voice": "alloy", "format": "pcm16"}})
            )
        )
    )
    assert ds[0]["audio"]["transcript"] == ""
    data = b"".join(
        base64.b64decode(d["audio"]["data"]) for d in ds if "data" in d.get("audio", {})
    )
    assert data == base64.b64decode(whole["choices"][0]["message"]["audio"]["data"])
    assert (
        "".join(d["audio"].get("transcript", "") for d in ds if "audio" in d)
        == "Hello there, this is audio."
    )
    assert any("expires_at" in d.get("audio", {}) for d in ds)


def test_text_reply_is_spoken_when_audio_is_asked_and_audio_is_text_otherwise():
    spoken = json.loads(engine(TEXT).handle_chat(body(**WANTS_AUDIO)).body)["choices"][0]["message"]
    assert spoken["content"] is None
    assert spoken["audio"]["transcript"] == "Hello there, friend!"
    plain = json.loads(engine(AUDIO).handle_chat(body()).body)["choices"][0]["message"]
    assert plain["content"] == "Hello there, this is audio."
    assert "audio" not in plain


def test_audio_format_that_cannot_be_made_is_a_clear_error():
    outcome = engine(AUDIO).handle_chat(
        body(modalities=["text", "audio"], audio={"voice": "alloy", "format": "mp3"})
    )
    assert outcome.status == 500
    error = json.loads(outcome.body)["error"]
    assert error["type"] == "mockserver_scenario_error"
    assert "mp3" in error["message"]
    assert "file" in error["message"]
    assert outcome.header("x-should-retry") == "false"


def test_error_defaults_by_status():
    e = engine("""
        scenarios:
          - {name: rate, match: {last_user_message: rate}, reply: {error: 429}}
          - name: quota
            match: {last_user_message: quota}
            reply: {error: {status: 429, type: insufficient_quota, code: insufficient_quota}}
          - name: plain
            match: {last_user_message: plain}
            reply: {error: {status: 503, headers: {retry-after-ms: null, x-custom: v}}}
    """)
    rate = e.handle_chat(body("rate", model="gpt-4o"))
    error = json.loads(rate.body)["error"]
    assert (rate.status, error["type"], error["code"]) == (429, "requests", "rate_limit_exceeded")
    assert "gpt-4o" in error["message"]
    assert rate.header("retry-after-ms") == "10"
    quota = e.handle_chat(body("quota"))
    assert quota.header("x-should-retry") == "false"
    assert json.loads(quota.body)["error"]["code"] == "insufficient_quota"
    plain = e.handle_chat(body("plain"))
    assert plain.header("retry-after-ms") is None
    assert plain.header("x-custom") == "v"
    assert json.loads(plain.body)["error"]["type"] == "server_error"
    assert schema_errors("ErrorResponse", json.loads(plain.body)) == []


SEQUENCES = """
    scenarios:
      - name: again
        match: {last_user_message: again}
        sequence: [{content: one}, {content: two}]
      - name: strict
        match: {last_user_message: strict}
        sequence: [{content: once}]
        after: error
      - name: handoff
        match: {last_user_message: handoff}
        sequence: [{content: first}]
        after: next
      - name: fallback
        reply: {content: fallback}
"""


def contents(e: MockEngine, text: str, n: int) -> list[object]:
    out = []
    for _ in range(n):
        outcome = e.handle_chat(body(text))
        payload = json.loads(outcome.body)
        out.append(
            payload["choices"][0]["message"]["content"]
            if outcome.status == 200
            else payload["error"]["type"]
        )
    return out


def test_sequences_and_what_comes_after():
    e = engine(SEQUENCES)
    assert contents(e, "again", 3) == ["one", "two", "two"]
    assert contents(e, "strict", 2) == ["once", "mockserver_sequence_exhausted"]
    assert contents(e, "handoff", 2) == ["first", "fallback"]
    assert e.uses() == {"again": 3, "strict": 2, "handoff": 1, "fallback": 1}
    e.reset()
    assert contents(e, "again", 1) == ["one"]
    assert len(e.journal) == 1


def test_journal_records_what_answered():
    e = engine(SEQUENCES)
    e.handle_chat(body("again"))
    e.handle_chat(b"not json")
    first, second = e.journal
    assert (first.scenario, first.reply_index, first.status) == ("again", 0, 200)
    assert first.request is not None
    assert first.request.last_user_message == "again"
    assert second.request is None
    assert second.status == 400
    assert second.error is not None


def test_a_journal_entry_keeps_its_headers_packed_and_reads_them_as_sent():
    e = engine(SEQUENCES)
    e.handle_chat(body("again"), [("x-str", "a str header")])  # not the API's bytes, still kept
    assert e.journal[0].headers == (("x-str", "a str header"),)
    e.reset()
    sent = ((b"content-type", b"application/json"), (b"x-trace", b"a: b, c"), (b"empty", b""))
    e.handle_chat(body("again"), sent)
    (entry,) = e.journal
    assert isinstance(entry.headers, journal.PackedHeaders)  # one object kept, not seven
    assert entry.headers == sent and tuple(entry.headers) == sent and len(entry.headers) == 3
    assert entry.headers[1] == (b"x-trace", b"a: b, c") and entry.headers[1:] == sent[1:]
    assert hash(entry.headers) == hash(sent) and dict(entry.headers)[b"empty"] == b""
    assert entry.request is not None and entry.request.headers["x-trace"] == "a: b, c"
    assert journal.cost(entry.raw, entry.headers) == journal.cost(entry.raw, sent) + 5  # NULs


@given(
    st.lists(
        st.tuples(st.binary(max_size=6), st.binary(max_size=6)).map(tuple),
        max_size=5,
    )
)
def test_packed_headers_read_back_exactly_what_was_packed(pairs):
    kept = journal.unpack(journal.pack_headers(pairs))
    assert tuple(kept) == tuple(pairs) and len(kept) == len(pairs) and kept == tuple(pairs)
    if any(b"\x00" in name + value for name, value in pairs) or not pairs:
        assert (
            type(journal.pack_headers(pairs)) is tuple
        )  # a NUL (the packing's separator) or nothing: as given


def test_a_journal_entry_is_an_immutable_record_with_the_dataclass_manners():
    import copy
    import pickle

    from mockserver.engine import JournalEntry

    entry = JournalEntry(raw=b"{}", headers=((b"a", b"b"),), status=200, scenario="s", at=1.5)
    assert (entry.raw, entry.status, entry.scenario, entry.api, entry.profile) == (
        b"{}",
        200,
        "s",
        "chat",
        "openai",
    )
    assert (entry.reply_index, entry.error, entry.omitted, entry.fault, entry.meter) == (
        None,
        None,
        0,
        None,
        None,
    )
    assert entry.notes == () and entry.at == 1.5 and entry.body == {}
    assert repr(entry).startswith(
        "JournalEntry(raw=b'{}', headers=PackedHeaders(((b'a', b'b'),)), status=200"
    )
    with pytest.raises(AttributeError, match="immutable"):
        entry.status = 500  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        entry.extra = 1  # type: ignore[attr-defined]
    assert copy.copy(entry) == entry and pickle.loads(pickle.dumps(entry)) == entry
    assert type(copy.deepcopy(entry)) is JournalEntry
    assert JournalEntry(raw=b"{}", headers=((b"a", b"b"),), status=200, scenario="s", at=1.5) == (
        entry
    )
    assert hash(entry) == hash(
        JournalEntry(raw=b"{}", headers=((b"a", b"b"),), status=200, scenario="s", at=1.5)
    )
    assert entry != JournalEntry(raw=b"{}", headers=(), status=200, scenario="s", at=1.5)
    journaled = engine(SEQUENCES)
    journaled.handle_chat(body("again"), [(b"a", b"b")])
    (kept,) = journaled.journal
    fields = {name: getattr(kept, name) for name in ("scenario", "reply_index", "at", "meter")}
    again = JournalEntry(kept.raw, ((b"a", b"b"),), kept.status, **fields)
    assert again == kept and hash(again) == hash(kept) and again.cost() == kept.cost()
    assert kept.headers != [1] and kept.headers != "ab"


def test_no_match_names_the_closest_scenario():
    e = engine("""
        scenarios:
          - name: greet
            match: {last_user_message: hello}
            reply: {content: hi}
    """)
    outcome = e.handle_chat(body("goodbye"))
    error = json.loads(outcome.body)["error"]
    assert outcome.status == 404
    assert error["type"] == "mockserver_no_match"
    assert error["message"] == (
        "No scenario matched this request (1 loaded). Closest: 'greet' (e.yaml:3), which failed "
        "match.last_user_message: expected equal to 'hello', got 'goodbye'."
    )
    empty = MockEngine(load_text("scenarios: []"), EngineConfig())
    assert (
        "no scenarios are loaded" in json.loads(empty.handle_chat(body()).body)["error"]["message"]
    )


def test_frames_group_unless_delays_are_asked():
    fast = engine(TEXT).handle_chat(body(stream=True))
    assert fast.frames is not None
    assert len(fast.frames) == 1
    slow = engine("""
        scenarios:
          - reply: {content: "a b c", stream: {first_chunk_delay_ms: 50, chunk_delay_ms: 10}, delay_ms: 5}
    """).handle_chat(body(stream=True))
    assert slow.delay == 0.005
    assert [f.delay for f in slow.frames] == [0.05, 0.01, 0.01, 0.01, 0.01, 0.01]
    assert slow.frames[-1].data == b"data: [DONE]\n\n"


def test_interrupt_sends_an_error_event_or_drops():
    e = engine("""
        scenarios:
          - name: err
            match: {last_user_message: err}
            reply: {content: "a b c d", stream: {interrupt: {after_chunks: 2, error: {status: 500}}}}
          - name: drop
            match: {last_user_message: drop}
            reply: {content: "a b c d", stream: {interrupt: {after_chunks: 1}}}
    """)
    events = sse_data(e.handle_chat(body("err", stream=True)).content())
    assert len(events) == 3
    assert json.loads(events[-1])["error"]["type"] == "server_error"
    dropped = e.handle_chat(body("drop", stream=True))
    assert dropped.frames[-1].abort
    assert len(sse_data(dropped.content())) == 1


def test_same_seed_same_bytes_and_no_seed_differs():
    requests = [body("hi"), body("hi", stream=True), body("hi", n=2)]
    a, b = engine(TEXT), engine(TEXT)
    assert [a.handle_chat(r).content() for r in requests] == [
        b.handle_chat(r).content() for r in requests
    ]
    unseeded = [
        MockEngine(load_text(textwrap.dedent(TEXT))).handle_chat(body()).body for _ in range(2)
    ]
    assert unseeded[0] != unseeded[1]


def test_models_are_listed_and_found():
    e = engine(
        """
        scenarios:
          - {match: {model: gpt-4o}, reply: {content: x}}
    """,
        models=("extra-model",),
    )
    listing = json.loads(e.handle("GET", "/v1/models").body)
    assert [m["id"] for m in listing["data"]] == ["gpt-4o", "extra-model"]
    assert schema_errors("ListModelsResponse", listing) == []
    assert json.loads(e.handle("GET", "/v1/models/extra-model").body)["id"] == "extra-model"
    missing = e.handle("GET", "/v1/models/nope")
    assert missing.status == 404
    assert json.loads(missing.body)["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/chat/completions"), ("POST", "/v1/embeddings"), ("GET", "/v1")],
)
def test_unknown_routes_get_openais_404(method, path):
    outcome = engine(TEXT).handle(method, path)
    assert outcome.status == 404
    assert json.loads(outcome.body)["error"]["code"] == "unknown_url"


def test_headers_carry_request_id_and_scenario_headers():
    e = engine("""
        scenarios:
          - reply: {content: x, headers: {x-ratelimit-remaining-requests: "0", openai-organization: null}}
    """)
    outcome = e.handle_chat(body())
    assert outcome.header("x-request-id").startswith("req_")
    assert len(outcome.header("x-request-id")) == 36
    assert outcome.header("x-ratelimit-remaining-requests") == "0"
    assert outcome.header("openai-organization") is None
    assert outcome.header("content-type") == "application/json"


RAW = """
    scenarios:
      - name: whole
        match: {stream: false}
        reply:
          raw:
            status: 200
            headers: {content-type: application/json, x-request-id: req_recorded}
            body: |
              {
                "id": "chatcmpl-recorded"
              }
      - name: streamed
        match: {last_user_message: stream}
        reply:
          raw:
            status: 200
            headers: {content-type: text/event-stream}
            timing: true
            events:
              - {data: '{"id":"c1"}', delay_ms: 20}
              - data: {id: c2}
              - data: "[DONE]"
      - name: broken
        match: {last_user_message: broken}
        reply:
          raw:
            status: 200
            events: ['{"id":"c1"}']
            end: abort
"""


def test_raw_replies_replay_bytes_headers_and_timing():
    e = engine(RAW)
    whole = e.handle_chat(body())
    assert whole.body == b'{\n  "id": "chatcmpl-recorded"\n}\n'
    assert whole.header("x-request-id") == "req_recorded"
    assert whole.header("openai-version") is None
    streamed = e.handle_chat(body("stream", stream=True))
    assert [f.delay for f in streamed.frames] == [0.02, 0.0, 0.0]
    assert streamed.content() == b'data: {"id":"c1"}\n\ndata: {"id":"c2"}\n\ndata: [DONE]\n\n'
    broken = e.handle_chat(body("broken", stream=True))
    assert broken.frames[-1].abort
    assert broken.content() == b'data: {"id":"c1"}\n\n'


def test_raw_reply_problems():
    from mockserver.errors import ScenarioError

    with pytest.raises(ScenarioError, match="needs exactly one of body"):
        engine("scenarios: [{reply: {raw: {status: 200}}}]")
    with pytest.raises(ScenarioError, match="a raw reply cannot also have content"):
        engine("scenarios: [{reply: {raw: {status: 200, body: x}, content: y}}]")


def test_a_strict_file_refusal_does_not_use_up_a_turn():
    e = engine("""
        strict: true
        scenarios:
          - name: s
            sequence: [{content: first}, {content: second}]
    """)
    refused = e.handle_chat(body(top_k=5))
    assert refused.status == 400
    assert json.loads(refused.body)["error"]["code"] == "unknown_parameter"
    assert json.loads(e.handle_chat(body()).body)["choices"][0]["message"]["content"] == "first"


MEMO = """
    scenarios:
      - name: text
        match: {last_user_message: text}
        reply: {content: "Hello there, friend!"}
      - name: pinned-tools
        match: {last_user_message: pinned}
        reply: {tool_calls: [{name: f, id: call_pinned, arguments: {a: 1}}]}
      - name: generated-tools
        match: {last_user_message: generated}
        reply: {tool_calls: [{name: f, arguments: {a: 1}}]}
      - name: slow
        match: {last_user_message: slow}
        reply: {content: "a b c", stream: {chunk_delay_ms: 1, interrupt: {after_chunks: 2, error: 500}}}
      - name: pinned-request-id
        match: {last_user_message: pinned id}
        reply: {content: x, headers: {x-request-id: req_pinned}}
      - name: no-request-id
        match: {last_user_message: no id}
        reply: {content: x, headers: {x-request-id: null}}
      - name: many
        reply: {choices: [{content: one}, {refusal: two}]}
"""


def longer(text: str, history: int, **fields) -> bytes:
    """A request for `text` after `history` earlier turns: another prompt token count."""
    turns = [{"role": "user", "content": f"turn {i} of a longer talk"} for i in range(history)]
    messages = [*turns, {"role": "user", "content": text}]
    return json.dumps({"model": "gpt-4o-mini", "messages": messages, **fields}).encode()


def test_replies_rendered_from_memory_are_the_bytes_of_a_fresh_render():
    requests = [
        longer("text", 3),
        longer("text", 7, user="someone"),
        longer("text", 2, stream=True, stream_options={"include_usage": True}),
        longer("text", 9, stream=True, stream_options={"include_usage": True}),
        longer("text", 4, n=2, logprobs=True, top_logprobs=1),
        longer("text", 5, stop=["friend"]),
        longer("text", 6, model="gpt-4o"),
        body("text"),
        body("text"),
        body("text", stream=True, stream_options={"include_usage": True}),
        body("text", stream=True, stream_options={"include_usage": True}),
        body("text", max_completion_tokens=2, logprobs=True, top_logprobs=2),
        body("pinned"),
        body("pinned", stream=True),
        body("generated"),
        body("generated", stream=True),
        body("slow", stream=True),
        body("slow", stream=True),
        body("other", n=3),
        body("other", n=3, stream=True),
        body("pinned id"),
        body("no id"),
    ] * 3
    remembering, fresh = engine(MEMO), engine(MEMO)
    for raw in requests:
        fresh._parsed = memo.Bounded(1)
        fresh._templates.find = lambda *_: None  # every reply rendered afresh
        a, b = remembering.handle_chat(raw), fresh.handle_chat(raw)
        assert a.content() == b.content()
        assert a.headers == b.headers
        assert [f.delay for f in a.frames or ()] == [f.delay for f in b.frames or ()]
    assert len(remembering._templates) > 0
    kept = [value for value, _ in fresh._templates.table._items.values()]
    assert not any(isinstance(value, templates.Template) for value in kept)
    assert remembering.handle_chat(body("pinned id")).header("x-request-id") == "req_pinned"
    assert remembering.handle_chat(body("no id")).header("x-request-id") is None


def test_header_conditions_see_each_requests_headers_through_the_memory():
    e = engine("""
        scenarios:
          - {name: blue, match: {headers: {x-team: blue}}, reply: {content: blue}}
          - {name: other, reply: {content: other}}
    """)
    raw = body("same body")
    for team, expected in [("blue", "blue"), ("red", "other"), ("blue", "blue")]:
        outcome = e.handle_chat(raw, [(b"x-team", team.encode())])
        assert json.loads(outcome.body)["choices"][0]["message"]["content"] == expected


def test_on_miss_adds_scenarios_for_one_retry_or_answers_with_its_error():
    from mockserver.builder import scenario
    from mockserver.errors import ApiError

    e = engine("scenarios: [{name: hi, match: {last_user_message: hi}, reply: {content: a}}]")
    seen: list[int] = []

    def on_miss(raw, headers):
        seen.append(len(e.journal))  # outside the lock: the engine is free to use
        if b"boom" in raw:
            raise ApiError(status=502, message="upstream down", type="mockserver_record_error")
        if b"empty" in raw:
            return ()
        if b"twice" in raw:
            return [scenario("hi", reply="a name in use")]
        return [scenario(f"learned{len(seen)}", match={"last_user_message": "new"}, reply="b")]

    e.on_miss = on_miss
    assert json.loads(e.handle_chat(body("hi")).body)["choices"][0]["message"]["content"] == "a"
    learned = e.handle_chat(body("new"))
    assert json.loads(learned.body)["choices"][0]["message"]["content"] == "b"
    assert e.handle_chat(body("new")).status == 200  # answered by what was added: no call
    assert e.handle_chat(body("empty")).status == 404
    failed = e.handle_chat(body("boom"))
    assert (failed.status, json.loads(failed.body)["error"]["message"]) == (502, "upstream down")
    twice = e.handle_chat(body("twice"))
    assert twice.status == 500
    assert "duplicate scenario name 'hi'" in json.loads(twice.body)["error"]["message"]
    assert seen == [1, 3, 4, 5]
    assert [j.scenario for j in e.journal] == ["hi", "learned1", "learned1", None, None, None]


def test_one_template_answers_bodies_whose_messages_differ():
    """A reply is kept by what rendering it read (not by the body): fifty conversations of
    different lengths share one template per request shape, with their own usage filled in."""
    scenario = """
        scenarios:
          - reply: {content: "Counted 4000000000000123 and 7000000000000001 tokens."}
    """
    remembering, fresh = engine(scenario), engine(scenario)
    fresh._templates.find = lambda *_: None
    for n in range(50):
        for fields in ({}, {"stream": True, "stream_options": {"include_usage": True}}):
            raw = longer("hi", n, **fields)
            a, b = remembering.handle_chat(raw), fresh.handle_chat(raw)
            assert a.content() == b.content()
            assert a.headers == b.headers
    kept = [value for value, _ in remembering._templates.table._items.values()]
    assert not any(isinstance(value, templates.Template) for value in kept)  # the text's numbers

    plain = engine("scenarios:\n  - reply: {content: Hello}\n")
    usages = set()
    for n in range(30):
        answer = json.loads(plain.handle_chat(longer("hi", n, user=f"u{n}")).body)
        usages.add(answer["usage"]["prompt_tokens"])
        assert answer["usage"]["total_tokens"] == answer["usage"]["prompt_tokens"] + 1
    assert len(usages) == 30
    kept = [value for value, _ in plain._templates.table._items.values()]
    assert sum(isinstance(value, templates.Template) for value in kept) == 1
