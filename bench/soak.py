"""Soak test for `mockserver serve` (a script, not a test): hours of abuse, in minutes.

Runs the real command (`python -m mockserver serve`) for `--duration` seconds under a mixed
load from threads of this process:

  well-formed   chat completions (whole and streamed) from `--clients` threads, back to back;
                their latency and status are what the report judges
  huge          20 MB request bodies (a base64 image), one after another
  hostile       raw sockets: a 1 MB header, 500 headers, garbage bytes, a body that never
                finishes (cut by --read-timeout), a lying content-length, a non-finite number,
                deeply nested JSON, unknown fields
  disconnects   streams dropped half way, requests reset (RST) while their body is sent
  resets        `POST /_mockserver/reset` and `GET /_mockserver/journal` every second

and samples the server's resident memory (RSS, from /proc) every `--sample` seconds. The report
(stdout) gives RSS over time; after the warm-up (the first 20% of the run, at least 30 s) the
floor (lowest RSS) of each fifth of the rest, which must stay within 10% of each other, and
each fifth's peak (single samples swing with the 20 MB bodies in flight; a leak lifts the
floor); the p50/p99 of well-formed requests, and how many of them got a 5xx. Exit status 1
when the floors spread by more than 10%, or any well-formed request got a 5xx or failed.

    python bench/soak.py                     # 10 minutes
    python bench/soak.py --duration 120      # a quick figure
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SCENARIOS = """\
version: 1
scenarios:
  - name: stream
    match: {last_user_message: {contains: stream}}
    reply: {content: "one two three four five six seven eight", stream: {chunk_delay_ms: 5}}
  - name: slow-stream
    match: {last_user_message: {contains: slow}}
    reply: {content: "a b c d e f g h i j", stream: {chunk_delay_ms: 100}}
  - name: hello
    reply: {content: "Hello there, this is the soak test."}
"""
LISTENING = re.compile(r"mockserver: listening on (http://\S+/v1)")


@dataclass
class Tally:
    """What the load saw; every thread adds to it under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    well_formed: int = 0
    well_formed_5xx: int = 0
    well_formed_failed: list[str] = field(default_factory=list)
    other: dict[str, int] = field(default_factory=dict)

    def ok(self, seconds: float, status: int) -> None:
        with self.lock:
            self.well_formed += 1
            self.latencies.append(seconds)
            if status >= 500:
                self.well_formed_5xx += 1
            elif status != 200:
                self.well_formed_failed.append(f"status {status}")

    def failed(self, why: str) -> None:
        with self.lock:
            self.well_formed += 1
            self.well_formed_failed.append(why)

    def count(self, what: str) -> None:
        with self.lock:
            self.other[what] = self.other.get(what, 0) + 1


def chat(text: str, **fields: object) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **fields}


def well_formed(url: str, stop: threading.Event, tally: Tally, n: int) -> None:
    with httpx.Client(timeout=30) as client:
        i = 0
        while not stop.is_set():
            i += 1
            stream = i % 3 == 0
            body = chat(f"{'stream ' if stream else ''}hello {n} {i}", stream=stream)
            began = time.perf_counter()
            try:
                response = client.post(url + "/chat/completions", json=body)
                if stream and response.status_code == 200 and b"[DONE]" not in response.content:
                    tally.failed("a stream without [DONE]")
                    continue
                tally.ok(time.perf_counter() - began, response.status_code)
            except httpx.HTTPError as exc:
                tally.failed(f"{type(exc).__name__}: {exc}")


def huge(url: str, stop: threading.Event, tally: Tally) -> None:
    image = base64.b64encode(os.urandom(15 * 1024 * 1024)).decode()
    with httpx.Client(timeout=60) as client:
        i = 0
        while not stop.is_set():
            i += 1
            part = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}}
            content = [{"type": "text", "text": f"huge {i}"}, part]
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
            try:
                response = client.post(url + "/chat/completions", json=body)
                tally.count(f"huge {response.status_code}")
            except httpx.HTTPError as exc:
                tally.count(f"huge {type(exc).__name__}")
            stop.wait(0.5)


def _raw(host: str, port: int, data: bytes, *, linger: bool = False, wait: float = 2) -> bytes:
    with socket.create_connection((host, port), timeout=wait) as sock:
        if linger:  # close with a RST, not a FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.sendall(data)
        if linger:
            return b""
        got = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                got += chunk
        return got


def _request(body: bytes, extra: str = "", length: int | None = None) -> bytes:
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body) if length is None else length}\r\n{extra}\r\n"
    )
    return head.encode() + body


HOSTILE = {
    "big-header": lambda: _request(b"{}", f"x-big: {'a' * 1024 * 1024}\r\n"),
    "many-headers": lambda: _request(b"{}", "".join(f"x-h{n}: v\r\n" for n in range(500))),
    "garbage": lambda: os.urandom(4096),
    "lying-length": lambda: _request(b'{"model": "x"}', length=5),
    "non-finite": lambda: _request(json.dumps(chat("x", top_k=1e999)).encode()),
    "nested": lambda: _request(b'{"a":' * 5000 + b"1" + b"}" * 5000),
    "unknown": lambda: _request(json.dumps(chat("x", frobnicate={"a": [1, 2]})).encode()),
    "not-json": lambda: _request(b"{nope"),
}


def hostile(host: str, port: int, stop: threading.Event, tally: Tally) -> None:
    slow: list[socket.socket] = []
    i = 0
    while not stop.is_set():
        i += 1
        for name, make in HOSTILE.items():
            got = _raw(host, port, make())
            status = got.split(b" ", 2)[1].decode() if got.startswith(b"HTTP/") else "closed"
            tally.count(f"hostile {name} {status}")
        if len(slow) < 20:  # bodies that never finish (closed by --read-timeout)
            sock = socket.create_connection((host, port), timeout=2)
            sock.sendall(_request(b'{"model":', length=1000))
            slow.append(sock)
        else:
            for sock in slow:
                sock.close()
            slow.clear()
            tally.count("hostile slow-body batch")
        stop.wait(0.2)
    for sock in slow:
        sock.close()


def disconnects(url: str, host: str, port: int, stop: threading.Event, tally: Tally) -> None:
    body = json.dumps(chat("slow stream", stream=True)).encode()
    while not stop.is_set():
        with (
            httpx.Client(timeout=10) as client,
            client.stream("POST", url + "/chat/completions", content=body) as response,
        ):
            for _ in response.iter_raw():
                break  # drop the stream after its first piece
        tally.count("dropped stream")
        half = _request(body)[: len(body) // 2]
        _raw(host, port, half, linger=True)
        tally.count("reset mid-body")
        stop.wait(0.1)


def admin(url: str, stop: threading.Event, tally: Tally) -> None:
    base = url.removesuffix("/v1")
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            journal = client.get(base + "/_mockserver/journal")
            tally.count(f"journal {journal.status_code}")
            reset = client.post(base + "/_mockserver/reset", json={})
            tally.count(f"reset {reset.status_code}")
            stop.wait(1)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds (default 600)")
    parser.add_argument("--clients", type=int, default=4, help="well-formed threads (4)")
    parser.add_argument("--sample", type=float, default=1, help="RSS sample period (1 s)")
    parser.add_argument(
        "--read-timeout", type=float, default=2, help="the server's --read-timeout (2 s)"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="mockserver-soak-"))
    (folder / "soak.yaml").write_text(SCENARIOS)
    command = [sys.executable, "-m", "mockserver", "serve", str(folder), "--port", "0"]
    command += ["--read-timeout", str(args.read_timeout)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert server.stdout is not None
    assert server.stderr is not None
    found = LISTENING.search(server.stdout.readline().decode())
    if not found:
        print("mockserver did not start:", server.stderr.read().decode(), file=sys.stderr)
        return 1
    url = found[1]
    host, port = url.removeprefix("http://").removesuffix("/v1").rsplit(":", 1)
    print(f"soak: {url} pid {server.pid} for {args.duration:g}s", file=sys.stderr)

    stop = threading.Event()
    tally = Tally()
    threads = [
        threading.Thread(target=well_formed, args=(url, stop, tally, n), daemon=True)
        for n in range(args.clients)
    ]
    threads += [
        threading.Thread(target=huge, args=(url, stop, tally), daemon=True),
        threading.Thread(target=hostile, args=(host, int(port), stop, tally), daemon=True),
        threading.Thread(target=disconnects, args=(url, host, int(port), stop, tally), daemon=True),
        threading.Thread(target=admin, args=(url, stop, tally), daemon=True),
    ]
    samples: list[tuple[float, int]] = []
    began = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        while (elapsed := time.monotonic() - began) < args.duration:
            samples.append((elapsed, rss_kb(server.pid)))
            if len(samples) % 10 == 1:
                print(f"  {elapsed:6.0f}s  RSS {samples[-1][1] / 1024:7.1f} MB", file=sys.stderr)
            time.sleep(min(args.sample, max(0.0, args.duration - elapsed)))
        samples.append((time.monotonic() - began, rss_kb(server.pid)))
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        server.send_signal(signal.SIGTERM)
        server.wait(10)

    # 20 MB bodies come and go (each held while it is read, parsed and journaled, until a
    # reset), so single samples swing between a floor and transient peaks. A leak lifts the
    # floor: the run after the warm-up is cut into five windows, and the lowest RSS of each
    # (what stays allocated) must be within 10% of the others. The peaks are reported too.
    warm = max(30.0, args.duration * 0.2)
    rest = [(t, kb) for t, kb in samples if t >= warm] or samples[-1:]
    width = (rest[-1][0] - rest[0][0]) / 5 or 1
    floors: dict[int, int] = {}
    peaks: dict[int, int] = {}
    for t, kb in rest:
        window = min(4, int((t - rest[0][0]) / width))
        floors[window] = min(floors.get(window, kb), kb)
        peaks[window] = max(peaks.get(window, 0), kb)
    spread = (max(floors.values()) - min(floors.values())) / min(floors.values()) * 100
    p50 = percentile(tally.latencies, 0.5) * 1000
    p99 = percentile(tally.latencies, 0.99) * 1000
    python = sys.version.split()[0]
    print(f"soak: {args.duration:g}s, {args.clients} well-formed clients, python {python}")
    every = max(1, len(samples) // 20)
    shown = samples[::every]
    print("RSS over time (MB): " + ", ".join(f"{t:.0f}s {kb / 1024:.0f}" for t, kb in shown))
    print(
        f"RSS after warm-up ({warm:.0f}s), per fifth of the rest (MB): floor "
        + ", ".join(f"{kb / 1024:.0f}" for _, kb in sorted(floors.items()))
        + f" (spread {spread:.1f}%, goal <= 10%); peak "
        + ", ".join(f"{kb / 1024:.0f}" for _, kb in sorted(peaks.items()))
    )
    print(
        f"well-formed: {tally.well_formed} requests, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"5xx {tally.well_formed_5xx}, failed {len(tally.well_formed_failed)}"
    )
    for why in sorted(set(tally.well_formed_failed))[:10]:
        print(f"  failed: {why}")
    print("other traffic: " + ", ".join(f"{k} x{v}" for k, v in sorted(tally.other.items())))
    stderr = server.stderr.read().decode()
    tracebacks = stderr.count("Traceback")
    print(f"server stderr: {len(stderr.splitlines())} lines, {tracebacks} tracebacks")
    good = spread <= 10 and tally.well_formed_5xx == 0 and not tally.well_formed_failed
    print("soak: " + ("PASS" if good else "FAIL"))
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
