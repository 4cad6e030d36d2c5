"""The server against hostile clients: huge or endless heads, bodies that never arrive, idle
connections, a shutdown with streams open, admin routes from the network (issue 10).

Raw sockets send what no HTTP client library would; each test asserts the documented answer,
and that a well-formed request sent meanwhile is still answered promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from mockserver.app import create_app
from mockserver.control import Admin
from mockserver.engine import MockEngine
from mockserver.ids import SEEDED_EPOCH
from mockserver.protocol import Limits
from mockserver.scenarios import load_text
from mockserver.server import BackgroundServer
from tests.test_cli import BIN, LISTENING, ROOT, read_line

SCENARIOS = """
version: 1
scenarios:
  - match: {last_user_message: slow}
    reply: {content: "a b c d e f g h i j k l m n o p", stream: {chunk_delay_ms: 300}}
  - match: {last_user_message: late}
    reply: {content: "a b c", stream: {first_chunk_delay_ms: 400}}
  - match: {last_user_message: big}
    reply: {content: "BIG", stream: {chunk_size: 200}}
  - reply: {content: "Hello there."}
"""
SCENARIOS = SCENARIOS.replace('"BIG"', '"' + "w " * 200_000 + '"')  # a 400 kB stream
HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
SHORT = Limits(max_header_size=8 * 1024, max_headers=20, read_timeout=0.5, idle_timeout=1.0)


@dataclass
class Served:
    url: str
    engine: MockEngine
    host: str
    port: int

    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=5)
        return sock

    def answers_promptly(self) -> None:
        """A well-formed chat completion, answered 200 within 500 ms."""
        began = time.perf_counter()
        response = httpx.post(self.url + "/chat/completions", json=HELLO, timeout=5)
        took = time.perf_counter() - began
        assert response.status_code == 200, response.text
        assert took < 0.5, f"a well-formed request took {took:.3f}s"


@pytest.fixture
def served() -> Iterator[Callable[..., Served]]:
    servers: list[BackgroundServer] = []

    def start(limits: Limits = SHORT, admin: Admin | None = None) -> Served:
        engine = MockEngine(load_text(SCENARIOS, "test.yaml"))
        server = BackgroundServer(create_app(engine, admin), limits=limits).start()
        servers.append(server)
        host, port = server.url.removeprefix("http://").removesuffix("/v1").rsplit(":", 1)
        return Served(server.url, engine, host, int(port))

    yield start
    for server in servers:
        server.stop()


def read_all(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (or `timeout`)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def error_of(raw: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"connection: close" in head.lower()
    return status, json.loads(body)["error"]


def head(extra: str = "", length: int | None = None) -> bytes:
    lines = ["POST /v1/chat/completions HTTP/1.1", "host: x", "content-type: application/json"]
    if length is not None:
        lines.append(f"content-length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra).encode()


# -- heads ------------------------------------------------------------------------------------


def test_a_header_larger_than_the_limit_is_a_431(served):
    server = served()
    with server.connect() as sock:
        sock.sendall(head(f"x-big: {'a' * 9000}\r\n\r\n", 0))
        status, error = error_of(read_all(sock))
    assert status == 431
    assert error["code"] == "request_header_fields_too_large"
    assert "more than 8192 bytes" in error["message"]
    assert "--max-header-size" in error["message"]
    server.answers_promptly()


def test_a_head_that_never_ends_is_cut_at_the_limit_not_buffered(served):
    server = served()
    with server.connect() as sock:
        sock.sendall(head("x-endless: "))
        sent = 0
        while sent < 16 * 1024 * 1024:  # the 16 MB header of the issue, stopped early
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(b"a" * 4096)
            sent += 4096
            if sent == 4096 * 4:
                server.answers_promptly()
        status, _ = error_of(read_all(sock))
    assert status == 431
    assert sent < 1024 * 1024, f"{sent} bytes were read before the refusal"
    server.answers_promptly()


def test_more_headers_than_the_limit_is_a_431(served):
    server = served()
    many = "".join(f"x-h{n}: v\r\n" for n in range(100_000))
    with server.connect() as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head(many + "\r\n", 0))  # the server stops reading at the 21st
        status, error = error_of(read_all(sock))
    assert status == 431
    assert "more than 20 header fields" in error["message"]
    assert "--max-headers" in error["message"]
    server.answers_promptly()


def test_a_few_headers_too_many_in_one_packet_is_a_431(served):
    server = served()
    with server.connect() as sock:
        sock.sendall(head("".join(f"x-h{n}: v\r\n" for n in range(20)) + "\r\n", 0))
        status, error = error_of(read_all(sock))
    assert status == 431
    assert "more than 20 header fields" in error["message"]


def test_a_big_body_in_the_same_packet_as_its_head_is_not_mistaken_for_a_big_head(served):
    server = served()
    content = "x" * 1024 * 1024
    body = json.dumps({**HELLO, "messages": [{"role": "user", "content": content}]}).encode()
    with server.connect() as sock:
        sock.sendall(head("connection: close\r\n\r\n", len(body)) + body)
        assert read_all(sock).startswith(b"HTTP/1.1 200 ")


def test_a_head_that_stops_arriving_is_a_408_after_the_read_timeout(served):
    server = served()
    with server.connect() as sock:
        sock.sendall(head())  # no blank line: the head never ends
        began = time.perf_counter()
        server.answers_promptly()
        status, error = error_of(read_all(sock))
        took = time.perf_counter() - began
    assert status == 408
    assert error["code"] == "request_timeout"
    assert "within 0.5 seconds (mockserver --read-timeout)" in error["message"]
    assert 0.4 < took < 2


def test_a_dribbled_head_is_still_cut_at_the_read_timeout(served):
    server = served()
    with server.connect() as sock:
        began = time.perf_counter()
        sock.sendall(head())
        for _ in range(20):  # a byte every 100 ms: the deadline counts from the first byte
            if select.select([sock], [], [], 0.1)[0]:
                break
            sock.sendall(b"x")
        status, _ = error_of(read_all(sock))
        took = time.perf_counter() - began
    assert status == 408
    assert took < 1.5


def test_bytes_that_are_not_http_are_a_400_in_openais_envelope(served):
    server = served()
    with server.connect() as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
        status, error = error_of(read_all(sock))
    assert status == 400
    assert error["code"] == "invalid_http_request"
    assert error["message"].startswith("The request is not valid HTTP/1.1 (")
    server.answers_promptly()


# -- bodies -----------------------------------------------------------------------------------


def test_a_body_that_never_finishes_arriving_is_a_408_and_not_journaled(served):
    server = served()
    with server.connect() as sock:
        sock.sendall(head("\r\n", 1000) + b'{"model": "gpt-4o-mini"')
        began = time.perf_counter()
        server.answers_promptly()
        server.answers_promptly()
        status, error = error_of(read_all(sock))
        took = time.perf_counter() - began
    assert status == 408
    assert "--read-timeout" in error["message"]
    assert 0.4 < took < 2
    assert len(server.engine.journal) == 2  # the two well-formed requests only
    server.answers_promptly()


# -- idle connections ---------------------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed_after_the_idle_timeout(served):
    server = served()
    with server.connect() as sock:
        began = time.perf_counter()
        server.answers_promptly()
        assert read_all(sock) == b""  # closed, no response
        took = time.perf_counter() - began
    assert 0.9 < took < 2.5


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(served):
    server = served()
    body = json.dumps(HELLO).encode()
    with server.connect() as sock:
        sock.sendall(head("\r\n", len(body)) + body)
        sock.settimeout(5)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        began = time.perf_counter()
        assert read_all(sock) == b""
        took = time.perf_counter() - began
    assert 0.9 < took < 2.5


def test_the_default_limits_are_the_documented_ones():
    assert Limits() == Limits(
        max_header_size=64 * 1024, max_headers=100, read_timeout=30.0, idle_timeout=5.0
    )


def test_well_formed_requests_are_untouched_by_the_limits(served):
    server = served(Limits())
    with httpx.Client(timeout=5) as client:
        for _ in range(3):  # keep-alive reuse
            response = client.post(
                server.url + "/chat/completions", json=HELLO, headers={"x-pad": "p" * 30_000}
            )
            assert response.status_code == 200


# -- admin routes -------------------------------------------------------------------------------


def admin(url: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, url.removesuffix("/v1") + path, timeout=5, **kwargs)  # type: ignore[arg-type]


def test_state_changing_admin_requests_need_json_or_the_admin_header(served):
    server = served()
    text_post = admin(server.url, "POST", "/_mockserver/reset", content=b"x",
                      headers={"content-type": "text/plain"})  # fmt: skip
    form_post = admin(server.url, "POST", "/_mockserver/reset", data={"a": "b"})
    assert text_post.status_code == form_post.status_code == 403
    assert text_post.json()["error"]["code"] == "admin_request_not_json"
    assert "x-mockserver-admin" in text_post.json()["error"]["message"]
    assert admin(server.url, "POST", "/_mockserver/reset", json={}).status_code == 200
    by_header = admin(server.url, "POST", "/_mockserver/reset", headers={"x-mockserver-admin": "1"})
    assert by_header.status_code == 200
    assert admin(server.url, "GET", "/_mockserver/journal").status_code == 200


def test_get_on_reset_is_a_405_with_allow(served):
    server = served()
    response = admin(server.url, "GET", "/_mockserver/reset")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "Unknown request URL" not in response.text


def test_admin_routes_off_and_with_a_token(served):
    off = served(admin=Admin(enabled=False))
    refused = admin(off.url, "GET", "/_mockserver/journal")
    assert refused.status_code == 403
    assert "--admin-token" in refused.json()["error"]["message"]
    assert admin(off.url, "POST", "/_mockserver/reset", json={}).status_code == 403
    off.answers_promptly()  # the API itself is served
    guarded = served(admin=Admin(token="s3cret"))
    assert admin(guarded.url, "GET", "/_mockserver/journal").status_code == 401
    wrong = {"authorization": "Bearer nope"}
    assert admin(guarded.url, "GET", "/_mockserver/journal", headers=wrong).status_code == 401
    right = {"authorization": "Bearer s3cret"}
    assert admin(guarded.url, "GET", "/_mockserver/journal", headers=right).status_code == 200
    assert admin(guarded.url, "POST", "/_mockserver/reset", headers=right).status_code == 403
    reset = admin(guarded.url, "POST", "/_mockserver/reset", headers=right, json={})
    assert reset.status_code == 200


# -- the command: network binds, --seed, shutdown -----------------------------------------------------


@pytest.fixture
def cli() -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], str]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> tuple[subprocess.Popen[bytes], str]:
        process = subprocess.Popen(
            [str(BIN), "serve", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        started.append(process)
        found = LISTENING.fullmatch(read_line(process, timeout=10))
        assert found
        return process, f"http://127.0.0.1:{found['port']}/v1"

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> str:
    process.send_signal(sig)
    assert process.wait(5) == 0
    return process.stderr.read().decode()  # type: ignore[union-attr]


def test_a_network_bind_warns_and_turns_the_admin_routes_off(cli, tmp_path):
    scenarios = tmp_path / "s.yaml"
    scenarios.write_text(SCENARIOS)
    process, url = cli(str(scenarios), "--host", "0.0.0.0")
    assert admin(url, "GET", "/_mockserver/journal").status_code == 403
    assert httpx.post(url + "/chat/completions", json=HELLO, timeout=5).status_code == 200
    err = stop(process)
    assert err.startswith("mockserver: warning: listening on 0.0.0.0, which other machines can")
    assert "admin routes are off (see --admin-token)" in err
    process, url = cli(str(scenarios), "--host", "0.0.0.0", "--admin-token", "t0k")
    right = {"authorization": "Bearer t0k"}
    assert admin(url, "GET", "/_mockserver/journal", headers=right).status_code == 200
    assert admin(url, "GET", "/_mockserver/journal").status_code == 401
    assert "need the --admin-token" in stop(process)


def test_loopback_binds_do_not_warn(cli, tmp_path):
    scenarios = tmp_path / "s.yaml"
    scenarios.write_text(SCENARIOS)
    process, url = cli(str(scenarios))
    assert admin(url, "GET", "/_mockserver/journal").status_code == 200
    assert stop(process) == "mockserver: stopped\n"


def test_the_date_header_is_fixed_under_seed(cli, tmp_path):
    scenarios = tmp_path / "s.yaml"
    scenarios.write_text(SCENARIOS)
    runs = []
    for _ in range(2):
        process, url = cli(str(scenarios), "--seed", "7")
        response = httpx.post(url + "/chat/completions", json=HELLO, timeout=5)
        runs.append((response.headers.multi_items(), response.content))
        stop(process)
    assert runs[0] == runs[1]  # the same bytes, head included, run after run
    assert dict(runs[0][0])["date"] == formatdate(SEEDED_EPOCH, usegmt=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_with_50_streams_open_cuts_them_at_once_in_one_line(cli, tmp_path, sig):
    scenarios = tmp_path / "s.yaml"
    scenarios.write_text(SCENARIOS)
    process, url = cli(str(scenarios))
    port = int(url.rsplit(":", 1)[1].removesuffix("/v1"))
    body = json.dumps({**HELLO, "stream": True, "messages": [{"role": "user", "content": "slow"}]})
    request = head("\r\n", len(body.encode())) + body.encode()
    streams = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(request)
        streams.append(sock)
    for sock in streams:  # every stream has begun
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    sent = time.perf_counter()
    process.send_signal(sig)
    for sock in streams:
        rest = read_all(sock, timeout=2)
        assert b"[DONE]" not in rest
        assert time.perf_counter() - sent < 1, "a stream stayed open"
        sock.close()
    assert process.wait(2) == 0
    took = time.perf_counter() - sent
    assert took < 1, f"exited {took:.2f}s after the signal"
    err = process.stderr.read().decode()  # type: ignore[union-attr]
    assert err == "mockserver: stopped (cut 50 open responses)\n"


def test_python_is_the_one_running_the_suite():  # the CLI under test is this venv's
    assert Path(sys.executable).parent == BIN.parent


class _SlowOnBigBodies(MockEngine):
    """An engine that takes 0.6 s over a body larger than 1 MB, as parsing 120 MB would."""

    def handle(self, method, path, body, headers=()):  # type: ignore[no-untyped-def]
        if len(body) > 1024 * 1024:
            time.sleep(0.6)
        return super().handle(method, path, body, headers)


def test_a_big_body_is_handled_off_the_event_loop():
    engine = _SlowOnBigBodies(load_text(SCENARIOS, "test.yaml"))
    server = BackgroundServer(create_app(engine)).start()
    try:
        content = "x" * 2 * 1024 * 1024
        body = {**HELLO, "messages": [{"role": "user", "content": content}]}
        statuses: list[int] = []
        sender = threading.Thread(
            target=lambda: statuses.append(
                httpx.post(server.url + "/chat/completions", json=body, timeout=10).status_code
            )
        )
        sender.start()
        time.sleep(0.2)  # the body has arrived; the engine is busy with it
        began = time.perf_counter()
        health = httpx.get(server.url.removesuffix("/v1") + "/health", timeout=5)
        took = time.perf_counter() - began
        sender.join()
    finally:
        server.stop()
    assert health.status_code == 200
    assert statuses == [200]
    assert took < 0.2, f"/health waited {took:.3f}s behind a big body"


# -- joined writes --------------------------------------------------------------------------------


class _CountingTransport:
    """A stand-in transport that keeps each write (what `send` would be called with)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_writes_of_one_loop_turn_leave_in_one_write_and_big_ones_at_once():
    from mockserver.protocol import _JOIN_LIMIT, _JoinedWrites

    async def scenario() -> list[list[bytes]]:
        real = _CountingTransport()
        joined = _JoinedWrites(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        seen = []
        joined.write(b"HTTP/1.1 200 OK\r\n\r\n")
        joined.write(b"body")
        seen.append(list(real.writes))  # nothing yet: held until the turn ends
        await asyncio.sleep(0)
        seen.append(list(real.writes))  # the head and body as one write
        joined.write(b"x" * _JOIN_LIMIT)  # past the limit: through at once, flow control sees it
        seen.append(list(real.writes[1:]))
        joined.write(b"a")
        joined.write(b"b" * _JOIN_LIMIT)  # the held bytes pass the limit: all out, in order
        seen.append(list(real.writes[2:]))
        joined.write(b"tail")
        joined.close()  # close writes what is held first
        seen.append(list(real.writes[3:]))
        joined.write(b"late")
        await asyncio.sleep(0)  # nothing is written to a closed transport
        assert joined.get_extra_info("peername") == "info:peername"
        return seen

    seen = asyncio.run(scenario())
    assert seen == [
        [],
        [b"HTTP/1.1 200 OK\r\n\r\nbody"],
        [b"x" * _JOIN_LIMIT],
        [b"a" + b"b" * _JOIN_LIMIT],
        [b"tail"],
    ]


def test_a_delayed_streams_head_leaves_before_its_first_frame(served):
    server = served(Limits())
    body = {**HELLO, "messages": [{"role": "user", "content": "late"}], "stream": True}
    with httpx.Client(timeout=5) as client:
        began = time.perf_counter()
        with client.stream("POST", server.url + "/chat/completions", json=body) as response:
            head_at = time.perf_counter() - began
            frames = list(response.iter_lines())
        total = time.perf_counter() - began
    assert response.status_code == 200
    assert head_at < 0.2, f"the head took {head_at:.3f}s: it waited for the first frame"
    assert total >= 0.4, f"the stream took {total:.3f}s: the first frame was not delayed"
    assert [line for line in frames if line][-1] == "data: [DONE]"


def _responses(sock: socket.socket, count: int, timeout: float = 5.0) -> list[tuple[bytes, bytes]]:
    """`count` HTTP/1.1 responses (head, body) read from a keep-alive connection."""
    sock.settimeout(timeout)
    data = b""
    out: list[tuple[bytes, bytes]] = []
    while len(out) < count:
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, data = data.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 100"):
            out.append((head, b""))
            continue
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(data) < length:
            data += sock.recv(65536)
        out.append((head, data[:length]))
        data = data[length:]
    return out


def test_pipelined_requests_are_answered_in_order_on_the_real_socket(served):
    server = served(Limits())
    chat = json.dumps(HELLO).encode()
    with server.connect() as sock:
        sock.sendall(
            b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"
            + head(length=len(chat))
            + b"\r\n"
            + chat
            + b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"
        )
        (h1, b1), (h2, b2), (h3, b3) = _responses(sock, 3)
    assert [h.split(b" ")[1] for h in (h1, h2, h3)] == [b"200", b"200", b"200"]
    assert json.loads(b1)["status"] == "ok" and json.loads(b3)["status"] == "ok"
    assert json.loads(b2)["choices"][0]["message"]["content"] == "Hello there."


def test_expect_100_continue_and_head_on_the_real_socket(served):
    server = served(Limits())
    chat = json.dumps(HELLO).encode()
    with server.connect() as sock:
        sock.sendall(head("expect: 100-continue\r\n", length=len(chat)) + b"\r\n")
        ((cont, _),) = _responses(sock, 1)
        assert cont.startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(chat)
        ((answer, body),) = _responses(sock, 1)
        assert answer.split(b" ")[1] == b"200"
        assert json.loads(body)["object"] == "chat.completion"
        sock.sendall(b"HEAD /health HTTP/1.1\r\nhost: x\r\n\r\n")
        sock.settimeout(5)
        got = sock.recv(65536)
        assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"\r\n\r\n")  # a head only
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")  # still usable
        ((again, _),) = _responses(sock, 1)
        assert again.split(b" ")[1] == b"200"


def test_a_slow_reader_of_a_big_stream_gets_every_byte_and_others_are_answered(served):
    """A 600 kB stream to a client with a small receive window that reads late: every byte
    arrives, in order, through the joined writes, and other clients are answered meanwhile."""
    server = served(Limits())
    body = {**HELLO, "messages": [{"role": "user", "content": "big"}], "stream": True}
    raw = json.dumps(body).encode()
    with server.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        sock.sendall(head(length=len(raw)) + b"\r\n" + raw)
        time.sleep(0.3)  # the server fills the socket buffers and must wait
        server.answers_promptly()
        sock.settimeout(10)
        data = b""
        while not data.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(16384)
            assert chunk, "the connection closed before the stream ended"
            data += chunk
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content", "") or ""
        for line in data.split(b"\n")
        if line.startswith(b"data: {") and b'"choices":[{' in line
    )
    assert text == "w " * 200_000
