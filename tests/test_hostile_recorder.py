"""The recorder against a hostile upstream: silent, non-UTF-8, huge (issue 10).

Each test drives `RecordingProxy` under uvicorn on 127.0.0.1 in front of a local upstream that
misbehaves, asserts the documented answer, and that a well-formed request through the same
recorder is still answered promptly meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from mockserver.app import create_app
from mockserver.cli import _upstream_timeout
from mockserver.engine import MockEngine
from mockserver.recording.cassette import Writer
from mockserver.recording.proxy import ProxySettings, RecordingProxy
from mockserver.scenarios import load_scenarios
from mockserver.server import BackgroundServer

MB = 1024 * 1024
# Two events whose data holds bytes that are not UTF-8 (a lone continuation byte, a truncated
# sequence, Latin-1 text), and a valid one between them.
ODD_EVENTS = (
    b'data: {"x":"\xff\xfe"}\n\n',
    'data: {"x":"d\u00e9j\u00e0 vu"}\n\n'.encode(),
    b'data: {"x":"caf\xe9 \xe2\x82"}\n\n',
    b"data: [DONE]\n\n",
)


class Upstream:
    """A local upstream that misbehaves on purpose, chosen by the last user message."""

    def __init__(self) -> None:
        self.huge = 100 * MB

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"].endswith("/models"):
            payload = b'{"object":"list","data":[]}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return
        text = json.loads(body)["messages"][-1]["content"]
        if text == "silent":  # accept, read the request, never answer
            await receive()  # until the recorder gives up and disconnects
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        if text == "stall":  # one event, then silence
            event = b'data: {"choices":[]}\n\n'
            await send({"type": "http.response.body", "body": event, "more_body": True})
            await receive()
            return
        if text == "slow":  # an event every 100 ms for 30 s
            for _ in range(300):
                await send(
                    {"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True}
                )
                await asyncio.sleep(0.1)
        if text == "odd":
            for event in ODD_EVENTS:
                await send({"type": "http.response.body", "body": event, "more_body": True})
        elif text == "huge":
            event = b'data: {"choices":[{"delta":{"content":"' + b"x" * 200 + b'"}}]}\n\n'
            chunk = event * (64 * 1024 // len(event))
            for _ in range(self.huge // len(chunk)):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Recorder:
    url: str
    out: Path
    writer: Writer
    lines: list[str] = field(default_factory=list)

    def wait(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.writer.written) < count:
            assert time.monotonic() < deadline, f"not written: {self.lines}"
            time.sleep(0.005)


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Callable[..., Recorder]]:
    servers: list[BackgroundServer] = []

    def start(**settings: object) -> Recorder:
        up = BackgroundServer(Upstream()).start()  # type: ignore[arg-type]
        servers.append(up)
        out = tmp_path / "recorded"
        writer = Writer(out)
        rec = Recorder("", out, writer)
        proxy = RecordingProxy(
            ProxySettings(upstream=up.url, **settings),  # type: ignore[arg-type]
            writer,
            report=rec.lines.append,
        )
        server = BackgroundServer(proxy).start()  # type: ignore[arg-type]
        servers.append(server)
        rec.url = server.url
        return rec

    yield start
    for server in reversed(servers):
        server.stop()


def chat(text: str, **fields: object) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **fields}


class Prober:
    """Asks the recorder for /v1/models every 20 ms in a thread; keeps the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.slowest = 0.0
        self.answered = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                began = time.perf_counter()
                response = client.get(self.url + "/models")
                self.slowest = max(self.slowest, time.perf_counter() - began)
                if response.status_code != 200:
                    self.failed.append(f"{response.status_code} {response.text}")
                self.answered += 1
                self._stop.wait(0.02)

    def __enter__(self) -> Prober:
        self._thread.start()
        deadline = time.monotonic() + 5  # the first probe answered: the prober is running
        while not self.answered and not self.failed and time.monotonic() < deadline:
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)


# -- 1. an upstream that never answers ---------------------------------------------------------


def test_a_silent_upstream_is_a_504_within_the_read_timeout_and_is_recorded(recorder):
    rec = recorder(read_timeout=0.5)
    with Prober(rec.url) as prober, httpx.Client(timeout=10) as client:
        began = time.perf_counter()
        response = client.post(rec.url + "/chat/completions", json=chat("silent"))
        took = time.perf_counter() - began
    assert response.status_code == 504
    assert response.headers["x-should-retry"] == "false"  # the SDK does not retry it
    error = response.json()["error"]
    assert error["code"] == "upstream_timeout"
    assert "did not answer within 0.5 seconds" in error["message"]
    assert "--upstream-timeout" in error["message"]
    assert 0.5 <= took < 2
    assert prober.answered >= 5 and prober.slowest < 0.3 and not prober.failed
    rec.wait(1)
    assert any(line.startswith("recorded 504 (body) -> ") for line in rec.lines), rec.lines
    # ... and it replays as it was answered
    replay = BackgroundServer(create_app(MockEngine(load_scenarios([rec.out])))).start()
    try:
        again = httpx.post(replay.url + "/chat/completions", json=chat("silent"), timeout=5)
    finally:
        replay.stop()
    assert again.status_code == 504
    assert again.json()["error"]["code"] == "upstream_timeout"


def test_a_stream_that_stalls_past_the_read_timeout_is_dropped_and_recorded_as_broken(recorder):
    rec = recorder(read_timeout=0.5)
    with httpx.Client(timeout=10) as client:
        began = time.perf_counter()
        with client.stream(
            "POST", rec.url + "/chat/completions", json=chat("stall", stream=True)
        ) as response:
            pieces: list[bytes] = []
            with pytest.raises(httpx.RemoteProtocolError):
                pieces.extend(response.iter_raw())
            got = b"".join(pieces)
        took = time.perf_counter() - began
    assert got == b'data: {"choices":[]}\n\n'
    assert 0.5 <= took < 2
    rec.wait(1)
    assert "upstream stalled mid-reply for POST /v1/chat/completions" in rec.lines[0]
    assert rec.lines[1].startswith("recorded 200 (1 events, connection broken) -> ")
    assert "end: abort" in next(rec.out.glob("*.yaml")).read_text()


@pytest.fixture
def full_listener() -> Iterator[str]:
    """A loopback port whose accept queue is full: a connection to it waits (the kernel drops
    the SYN), as to an upstream that cannot be reached in time."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    for filler in fillers:
        filler.close()
    server.close()


def test_a_connect_timeout_is_a_504_and_is_not_recorded(full_listener, tmp_path):
    writer = Writer(tmp_path / "out")
    lines: list[str] = []
    settings = ProxySettings(upstream=full_listener, connect_timeout=0.3)
    proxy = BackgroundServer(RecordingProxy(settings, writer, report=lines.append)).start()  # type: ignore[arg-type]
    try:
        began = time.perf_counter()
        response = httpx.post(proxy.url + "/chat/completions", json=chat("hello"), timeout=10)
        took = time.perf_counter() - began
    finally:
        proxy.stop()
    assert response.status_code == 504, response.text
    assert "could not be connected to within 0.3 seconds" in response.json()["error"]["message"]
    assert took < 2
    assert not writer.written
    assert lines[0].startswith("upstream timed out for POST /v1/chat/completions: ConnectTimeout")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("120", (10.0, 120.0)), ("3", (3.0, 3.0)), ("5,60", (5.0, 60.0)), ("0.5,2.5", (0.5, 2.5))],
)
def test_upstream_timeout_flag(text, expected):
    assert _upstream_timeout(text) == expected


@pytest.mark.parametrize("text", ["0", "x", "1,2,3", "-1", "inf", "5,"])
def test_upstream_timeout_flag_says_what_it_wants(text, capsys):
    from mockserver.cli import main

    with pytest.raises(SystemExit):
        main(["record", "--upstream", "http://u/v1", "--out", "x", "--upstream-timeout", text])
    assert "expected READ or CONNECT,READ seconds" in capsys.readouterr().err


# -- 2. bytes that are not UTF-8 -----------------------------------------------------------------


def test_non_utf8_events_pass_through_unchanged_are_recorded_and_replay_to_the_same_bytes(
    recorder,
):
    rec = recorder()
    with Prober(rec.url) as prober, httpx.Client(timeout=10) as client:
        response = client.post(rec.url + "/chat/completions", json=chat("odd", stream=True))
    assert response.status_code == 200
    assert response.content == b"".join(ODD_EVENTS)  # passed on byte for byte, with its end
    assert prober.answered >= 1 and not prober.failed
    rec.wait(1)
    assert rec.lines[0].startswith("recorded 200 (4 events) -> "), rec.lines
    text = next(rec.out.glob("*.yaml")).read_text(encoding="utf-8")
    assert "\\uDCFF\\uDCFE" in text  # the escaped form: one \uDCxx per stray byte
    replay = BackgroundServer(create_app(MockEngine(load_scenarios([rec.out])))).start()
    try:
        again = httpx.post(replay.url + "/chat/completions", json=chat("odd", stream=True))
    finally:
        replay.stop()
    assert again.content == b"".join(ODD_EVENTS)


# -- 3. a huge reply -------------------------------------------------------------------------------


def test_a_100_mb_reply_passes_through_whole_unrecorded_and_others_are_still_answered(recorder):
    rec = recorder(max_record_size=4 * MB)
    size = 0
    with Prober(rec.url) as prober, httpx.Client(timeout=30) as client:
        began = time.perf_counter()
        with client.stream(
            "POST", rec.url + "/chat/completions", json=chat("huge", stream=True)
        ) as response:
            for chunk in response.iter_raw():
                size += len(chunk)
        took = time.perf_counter() - began
    assert response.status_code == 200
    assert size >= 99 * MB
    assert prober.answered >= 5, prober.answered
    assert prober.slowest < 0.5, f"a /v1/models request waited {prober.slowest:.3f}s"
    assert not prober.failed
    assert took < 30
    assert rec.lines == [
        "not recorded: the reply to POST /v1/chat/completions passed 4194304 bytes "
        "(mockserver record --max-record-size); it was passed on whole"
    ]
    assert not rec.writer.written


def test_the_log_line_names_the_path_the_client_asked_for(tmp_path):
    lines: list[str] = []
    settings = ProxySettings(upstream="http://127.0.0.1:9/v1")
    proxy = BackgroundServer(
        RecordingProxy(settings, Writer(tmp_path), report=lines.append)  # type: ignore[arg-type]
    ).start()
    try:
        httpx.post(proxy.url + "/chat/completions?api-version=1", json=chat("x"), timeout=10)
    finally:
        proxy.stop()
    assert lines[0].startswith(
        "upstream unreachable for POST /v1/chat/completions?api-version=1: "
    ), lines


def test_a_request_body_over_the_limit_is_a_413(recorder):
    rec = recorder(max_body_size=1000)
    response = httpx.post(rec.url + "/chat/completions", json=chat("x" * 2000), timeout=10)
    assert response.status_code == 413
    assert "--max-body-size" in response.json()["error"]["message"]


def test_record_on_a_signal_cuts_open_streams_at_once_in_one_line_and_warns_on_a_network_bind(
    tmp_path,
):
    from tests.test_cli import BIN, read_line

    up = BackgroundServer(Upstream()).start()  # type: ignore[arg-type]
    command = [str(BIN), "record", "--upstream", up.url, "--out", str(tmp_path), "--port", "0"]
    process = subprocess.Popen(
        [*command, "--host", "0.0.0.0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = read_line(process, timeout=10)
        port = int(line.split("/v1 -> ", 1)[0].rsplit(":", 1)[1])
        body = json.dumps(chat("slow", stream=True)).encode()
        request = (
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode() + body
        streams = []
        for _ in range(10):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(request)
            streams.append(sock)
        for sock in streams:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        sent = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        for sock in streams:
            sock.settimeout(2)
            with contextlib.suppress(ConnectionResetError):
                while sock.recv(65536):
                    pass
            assert time.perf_counter() - sent < 1, "a stream stayed open"
            sock.close()
        assert process.wait(2) == 0
        assert time.perf_counter() - sent < 1
        err = process.stderr.read().decode()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        up.stop()
    warning, stopped = err.splitlines()
    assert warning.startswith("mockserver: warning: listening on 0.0.0.0, which other machines")
    assert "anyone who reaches it can send requests upstream" in warning
    assert stopped == "mockserver: stopped (0 exchanges recorded; cut 10 open responses)"
