"""The recorder's parts as plain functions: scrubbing, the tape, and the file writer."""

from __future__ import annotations

import json
import os
import threading

import pytest
import yaml

from mockserver.engine import MockEngine
from mockserver.recording.cassette import RecordingError, Writer, render, write_atomically
from mockserver.recording.exchange import Exchange, Tape, kept_headers
from mockserver.recording.scrub import REDACTED, Scrubber, literals_of
from mockserver.scenarios import RawEvent, load_scenarios

# -- scrubbing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("key sk-proj-abcdefghijklmnopqrstuvwx end", "key <scrubbed> end"),
        (
            "Incorrect API key provided: sk-abc1***************************wxyz.",
            "Incorrect API key provided: <scrubbed>.",
        ),
        ("sess-AbCdEfGhIjKlMnOpQrStUvWx", "<scrubbed>"),
        ("in organization org-AbCdEfGhIjKlMnOpQrSt on", "in organization <scrubbed> on"),
        ("proj_AbCdEfGhIjKlMnOpQrSt", "<scrubbed>"),
        ("Authorization: Bearer abc.def-ghi_jkl.mno-pqr", "Authorization: Bearer <scrubbed>"),
        ("a bearer instrument", "a bearer instrument"),
        ("AIzaSyA1234567890abcdefghijklmnopqrstu", "<scrubbed>"),
        ("gsk_abcdefghijklmnopqrstuvwxyz0123", "<scrubbed>"),
        (
            "https://x/v1/chat?api-version=2024&api-key=abc123&key=zz",
            "https://x/v1/chat?api-version=2024&api-key=<scrubbed>&key=<scrubbed>",
        ),
        # ordinary text stays as it is
        (
            "ask-me anything, task-force, sk-learn, sk-short",
            "ask-me anything, task-force, sk-learn, sk-short",
        ),
        ("organization org-mockserver", "organization org-mockserver"),
    ],
)
def test_key_shaped_strings_are_scrubbed(text, scrubbed):
    assert Scrubber().text(text) == scrubbed


def test_literal_secret_values_are_scrubbed_everywhere():
    scrubber = Scrubber()
    values = literals_of(
        [
            ("Authorization", "Bearer my-own-token-123"),
            ("api-key", "azurekey0123456789"),
            ("Cookie", "a=cookie-value-1; b=cookie-value-2"),
            ("OpenAI-Project", "proj_short"),
            ("x-team", "not-a-secret-header"),
            ("openai-organization", "tiny"),  # too short to search for
        ]
    )
    assert values == {
        "Bearer my-own-token-123",
        "my-own-token-123",
        "azurekey0123456789",
        "a=cookie-value-1; b=cookie-value-2",
        "cookie-value-1",
        "cookie-value-2",
        "proj_short",
    }
    scrubber.remember(values)
    tree = {"a": ["my-own-token-123 and azurekey0123456789"], "cookie-value-2": 1, "n": 3}
    assert scrubber.tree(tree) == {"a": [f"{REDACTED} and {REDACTED}"], REDACTED: 1, "n": 3}
    assert scrubber.check("fine") == []
    assert scrubber.check("x cookie-value-1") == ["a secret header value (14 characters)"]
    assert scrubber.check("sk-abcdefghijklmnopqrstu") == [
        "a key matching '(?<![A-Za-z0-9])(?:sk|sess|rk|pk)-[A-Za-z0-9_*-]{16,}'"
    ]


def test_user_patterns_scrub_the_match_or_only_its_groups():
    scrubber = Scrubber([r"password=(\w+)", r"ACME-\d{4}", r"(a)(b)?c"])
    assert scrubber.text("password=hunter2 ACME-1234") == f"password={REDACTED} {REDACTED}"
    assert scrubber.text("xacx") == f"x{REDACTED}cx"
    assert scrubber.check(f"password={REDACTED}") == []
    assert scrubber.check("password=hunter2") == ["a match of --scrub 'password=(\\\\w+)'"]


# -- the tape ---------------------------------------------------------------------------------


def test_the_tape_times_each_event_from_the_one_before():
    times = iter([0.0, 0.100, 0.150, 0.400, 0.400])
    tape = Tape("POST", "u", b"{}", (), clock=lambda: next(times))
    tape.head(200, [("Content-Type", "text/event-stream")])  # 100 ms after sending
    tape.chunk(b"data: one\n\nda")  # 50 ms after the head
    tape.chunk(b"ta: two\n\nevent: error\ndata: three\n\n")  # 250 ms later
    exchange = tape.finish()
    assert exchange.waited_ms == 100.0
    assert exchange.events == (
        RawEvent(data="one", delay_ms=50.0),
        RawEvent(data="two", delay_ms=250.0),
        RawEvent(data="three", event="error", delay_ms=0.0),
    )
    assert exchange.body is None
    assert exchange.end == "close"


def test_the_tape_keeps_a_body_and_marks_a_broken_stream():
    tape = Tape("POST", "u", b"{}")
    tape.head(500, [("content-type", "application/json")])
    tape.chunk(b'{"error":')
    tape.chunk(b"{}}")
    assert tape.finish().body == b'{"error":{}}'
    broken = Tape("POST", "u", b"{}")
    broken.head(200, [("content-type", "text/event-stream")])
    broken.chunk(b"data: one\n\ndata: half")
    exchange = broken.finish(aborted=True)
    assert [e.data for e in exchange.events] == ["one"]  # the half event never arrived whole
    assert exchange.end == "abort"


def test_only_useful_response_headers_are_kept():
    headers = [
        ("Content-Type", "application/json"),
        ("X-Request-ID", "req_1"),
        ("x-ratelimit-remaining-tokens", "9"),
        ("openai-processing-ms", "12"),
        ("retry-after-ms", "20"),
        ("Set-Cookie", "a=b"),
        ("openai-organization", "acme"),
        ("openai-project", "proj_x"),
        ("Date", "today"),
        ("CF-RAY", "x"),
    ]
    assert [k for k, _ in kept_headers(headers)] == [
        "content-type",
        "x-request-id",
        "x-ratelimit-remaining-tokens",
        "openai-processing-ms",
        "retry-after-ms",
    ]


# -- the writer -------------------------------------------------------------------------------


def exchange(text: str = "hi", reply: bytes = b'{"id": "x"}\n', **fields) -> Exchange:
    body = {"model": "m", "messages": [{"role": "user", "content": text}], **fields}
    return Exchange(
        method="POST",
        url="http://up/v1/chat/completions",
        request_body=json.dumps(body).encode(),
        status=200,
        headers=(("content-type", "application/json"),),
        body=reply,
    )


def test_a_folder_gets_one_file_per_conversation(tmp_path):
    writer = Writer(tmp_path, clock=lambda: 1_767_225_600)
    first = writer.write(exchange("hello"))
    again = writer.write(exchange("hello", b"second"))
    other = writer.write(exchange("bye"))
    assert first.path == again.path != other.path
    assert (first.reply, again.reply, other.reply) == (0, 1, 0)
    text = first.path.read_text()
    assert "recorded_at: '2026-01-01T00:00:00Z'" in text
    assert "sequence:" in text
    loaded = load_scenarios([tmp_path])
    assert [len(s.replies) for s in loaded.scenarios] == [1, 2]


def test_update_modes(tmp_path):
    path = tmp_path / "cassette.yaml"
    Writer(path, one_file=True).write(exchange("a"))
    Writer(path, one_file=True).write(exchange("a", b"again"))
    Writer(path, one_file=True).write(exchange("b"))
    assert [len(s.replies) for s in load_scenarios([path]).scenarios] == [2, 1]
    replacing = Writer(path, one_file=True, update="replace")  # vcrpy's `all`
    replacing.write(exchange("a", b"new 1"))
    replacing.write(exchange("a", b"new 2"))
    scenarios = load_scenarios([path]).scenarios
    assert [len(s.replies) for s in scenarios] == [2, 1]
    assert [r.raw.body for r in scenarios[0].replies] == [b"new 1", b"new 2"]
    Writer(path, one_file=True, update="fresh").write(exchange("c"))  # pytest's `rewrite`
    (only,) = load_scenarios([path]).scenarios
    assert only.name == "cassette-1"


def test_a_file_that_is_not_a_scenario_file_is_never_touched(tmp_path):
    path = tmp_path / "notes.yaml"
    for content in ("- a list\n", "key: [unclosed\n", "scenarios: {a: 1}\n"):
        path.write_text(content)
        with pytest.raises(RecordingError, match="not touching it"):
            Writer(path, one_file=True).write(exchange())
        assert path.read_text() == content
    path.write_text("scenarios:\n  - reply: {contnt: x}\n")
    with pytest.raises(RecordingError, match="would not load"):
        Writer(path, one_file=True).write(exchange())
    with pytest.raises(RecordingError, match="not a JSON object"):
        Writer(path, one_file=True).write(
            Exchange(method="POST", url="u", request_body=b"[]", status=200, body=b"")
        )


def test_an_empty_file_is_started_over(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("")
    Writer(path, one_file=True).write(exchange())
    assert len(load_scenarios([path]).scenarios) == 1


def test_a_secret_that_survives_scrubbing_is_never_written(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    writer = Writer(path, one_file=True)
    monkeypatch.setattr(writer.scrubber, "tree", lambda value: value)  # a scrubbing bug
    with pytest.raises(RecordingError, match=r"refusing to write .* a key matching"):
        writer.write(exchange("my key is sk-abcdefghijklmnopqrstuvwx"))
    assert not path.exists()


def test_bodies_round_trip_exactly_whatever_they_hold():
    bodies = [
        "plain",
        "two\nlines\n",
        "  leading spaces\n",
        "trailing spaces  \nx",
        "tab\there",
        "no final newline\nx",
        "many final newlines\n\n\n",
        "unicode é ✓ 🎉 and \u2028 separator",
        "control \x07 char",
        "",
        '{"quote": "it\'s"}',
    ]
    for body in bodies:
        document = {"scenarios": [{"reply": {"raw": {"status": 200, "body": body}}}]}
        assert yaml.safe_load(render(document)) == document, repr(body)


def test_replies_replay_their_body_and_events_exactly(tmp_path):
    body = b'{\n  "id": "x",\n  "text": "it\'s \\"quoted\\"\\n"\n}\n'
    writer = Writer(tmp_path)
    writer.write(exchange("whole", body))
    streamed = Exchange(
        method="POST",
        url="u",
        request_body=json.dumps(
            {"model": "m", "stream": True, "messages": [{"role": "user", "content": "s"}]}
        ).encode(),
        status=200,
        headers=(("content-type", "text/event-stream"),),
        events=(
            RawEvent(data='{"a":"it\'s"}', delay_ms=5),
            RawEvent(data="two\nlines", delay_ms=1.25),
            RawEvent(data="[DONE]"),
        ),
    )
    writer.write(streamed)
    engine = MockEngine(load_scenarios([tmp_path]))
    whole = engine.handle_chat(exchange("whole").request_body)
    assert whole.body == body
    events = engine.handle_chat(streamed.request_body)
    assert events.content() == (
        b'data: {"a":"it\'s"}\n\ndata: two\ndata: lines\n\ndata: [DONE]\n\n'
    )
    text = next(tmp_path.glob("s-*.yaml")).read_text()
    assert "delay_ms: 5\n" in text
    assert "delay_ms: 1.2\n" in text


def test_atomic_writes_leave_the_old_file_or_the_new_one(tmp_path, monkeypatch):
    path = tmp_path / "f.yaml"
    write_atomically(path, "old\n")
    assert oct(path.stat().st_mode & 0o777) == "0o644"

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.yaml"]  # the temporary file is gone


def test_threads_writing_one_file_lose_nothing(tmp_path):
    path = tmp_path / "c.yaml"
    writer = Writer(path, one_file=True)

    def work(n: int) -> None:
        writer.write(exchange(f"q{n % 3}", f"reply {n}".encode()))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    scenarios = load_scenarios([path]).scenarios
    assert sorted(len(s.replies) for s in scenarios) == [10, 10, 10]
    bodies = sorted(r.raw.body for s in scenarios for r in s.replies)
    assert bodies == sorted(f"reply {n}".encode() for n in range(30))


WRITER_PROCESS = """
import json, sys
from pathlib import Path
from mockserver.recording.cassette import Writer
from mockserver.recording.exchange import Exchange

path, tag = Path(sys.argv[1]), sys.argv[2]
writer = Writer(path, one_file=True)
for n in range(15):
    body = {"model": "m", "messages": [{"role": "user", "content": f"q{n % 2}"}]}
    writer.write(Exchange(method="POST", url="u", request_body=json.dumps(body).encode(),
                          status=200, body=f"{tag} {n}".encode()))
"""


def test_processes_writing_one_file_lose_nothing(tmp_path):
    """Two recorders (or xdist workers) on one cassette: the folder lock serialises them."""
    import subprocess
    import sys

    path = tmp_path / "shared.yaml"
    workers = [
        subprocess.Popen([sys.executable, "-c", WRITER_PROCESS, str(path), tag])
        for tag in ("a", "b", "c")
    ]
    assert [w.wait(60) for w in workers] == [0, 0, 0]
    scenarios = load_scenarios([path]).scenarios
    assert sorted(len(s.replies) for s in scenarios) == [21, 24]
    assert len({r.raw.body for s in scenarios for r in s.replies}) == 45


def test_a_header_the_file_could_not_hold_is_left_out_and_the_file_loads(tmp_path, caplog):
    """An upstream (or a vcr cassette) may send a kept header with a control character or a
    character past Latin-1: it is left out, said in the log, and the recording still loads."""
    from mockserver.recording.cassette import Writer
    from mockserver.recording.exchange import Exchange
    from mockserver.scenarios import load_scenarios

    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    reply = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "yo", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
    }
    headers = (
        ("content-type", "application/json"),
        ("x-request-id", "req\x01bad"),
        ("openai-model", "gpt-4o \u2013 mini"),
        ("openai-version", "2020-10-01"),
    )
    Writer(tmp_path).write(
        Exchange(
            method="POST",
            url="https://api.openai.com/v1/chat/completions",
            request_body=body,
            status=200,
            headers=headers,
            body=json.dumps(reply).encode(),
        )
    )
    raw = load_scenarios([tmp_path]).scenarios[0].replies[0].raw
    assert raw is not None
    assert dict(raw.headers) == {"content-type": "application/json", "openai-version": "2020-10-01"}
    assert "not recording the x-request-id header" in caplog.text
    assert "not recording the openai-model header" in caplog.text
