"""What recorded files add to the scenario format: `recorded_at`, event names, recorded timing,
and the engine's `answers` (does a scenario answer this request, without using it up)."""

from __future__ import annotations

import textwrap

import pytest

from mockserver.engine import EngineConfig, MockEngine
from mockserver.errors import ScenarioError
from mockserver.scenarios import ScenarioSet, load_text

RECORDED = """
    version: 1
    recorded_at: '2026-11-20T10:00:00Z'
    scenarios:
      - name: streamed
        match: {stream: true}
        reply:
          raw:
            status: 200
            headers: {content-type: text/event-stream}
            events:
              - {data: '{"id":"c1"}', delay_ms: 30}
              - {data: '{"error":{"message":"boom"}}', event: error, delay_ms: 10}
"""


def engine(text: str = RECORDED, **config) -> MockEngine:
    return MockEngine(load_text(textwrap.dedent(text), "rec.yaml"), EngineConfig(**config))


def body(stream: bool = True) -> bytes:
    s = "true" if stream else "false"
    return b'{"model":"m","stream":%s,"messages":[{"role":"user","content":"hi"}]}' % s.encode()


def test_recorded_at_is_accepted_as_a_string_or_a_timestamp():
    engine()
    engine(RECORDED.replace("'2026-11-20T10:00:00Z'", "2026-11-20T10:00:00Z"))
    with pytest.raises(ScenarioError, match=r"recorded_at: expected when the file was recorded"):
        engine(RECORDED.replace("'2026-11-20T10:00:00Z'", "[1]"))


def test_event_names_are_replayed():
    outcome = engine().handle_chat(body())
    assert outcome.content() == (
        b'data: {"id":"c1"}\n\nevent: error\ndata: {"error":{"message":"boom"}}\n\n'
    )


def test_recorded_timing_replays_the_waits_of_every_raw_stream():
    fast = engine().handle_chat(body())
    assert [f.delay for f in fast.frames] == [0.0]
    timed = engine(recorded_timing=True).handle_chat(body())
    assert [f.delay for f in timed.frames] == [0.03, 0.01]
    assert timed.content() == fast.content()


def test_on_miss_is_asked_only_for_valid_requests_nothing_matched():
    asked: list[bytes] = []
    e = engine("""
        scenarios:
          - name: once
            match: {stream: false}
            sequence: [{content: a}, {content: b}]
            after: next
    """)
    e.on_miss = lambda raw, headers: asked.append(raw) or ()
    assert e.handle_chat(body(stream=False)).status == 200
    assert e.handle_chat(body(stream=True)).status == 404
    assert asked == [body(stream=True)]
    assert e.uses() == {"once": 1}
    e.handle_chat(body(stream=False))
    assert e.handle_chat(body(stream=False)).status == 404  # used up, `after: next`
    assert e.handle_chat(b"not json").status == 400  # refused, not missed
    assert asked == [body(stream=True), body(stream=False)]


def test_the_former_recording_engine_still_builds_one_with_a_warning(tmp_path):
    from mockserver.recording.cassette import Writer
    from mockserver.recording.forwarding import Recorder, RecordingEngine

    with pytest.warns(DeprecationWarning, match=r"on_miss=Recorder"):
        e = RecordingEngine(
            ScenarioSet(), writer=Writer(tmp_path / "c.yaml"), upstream="http://127.0.0.1:9"
        )
    assert isinstance(e.on_miss, Recorder)
    assert e.on_miss.upstream == "http://127.0.0.1:9"
