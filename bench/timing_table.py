"""The timing model as a client sees it: time to first token and gaps between chunks.

Starts `mockserver serve --seed 1` with one scenario streaming 21 tokens at
`tokens_per_second: 50` after `ttft_ms: {median: 400, p99: 1500}`, opens `--streams` streams
(`--concurrency` at a time) and times each content chunk's arrival. It prints the observed
median and p99 of the time to first token and of the gaps between content chunks against what
was asked: the distribution's own figures, and those of the very delays the seeded server drew
(an engine with the same seed, asked the same number of times, gives them).

The measuring client (`--client kernel`, the default) takes each chunk's arrival from the
kernel's receive timestamp (`SO_TIMESTAMPNS`), so it measures the server and the network, not
when the client process got round to reading; `--client raw` timestamps each read as an
asyncio protocol receives it; `--client httpx` reads through httpx as an application would
(its parsing runs on the same core, and late reads show as long gaps). `--server-cpu` and
`--client-cpu` pin each to a CPU (`taskset`), `--rounds` repeats the whole measurement and
prints the spread, and `--probe` has the server record, for each frame, how late it was
written against its schedule (the server's own lateness, apart from the client's). With
`--probe`, `TIMING_TABLE_PACER=off` has the server pace with the event loop's own timers
instead of the timerfd, and `TIMING_TABLE_LOOP=asyncio` run on asyncio's loop instead of
uvloop, to compare.

    python bench/timing_table.py [--streams 500] [--concurrency 25] [--client kernel|raw|httpx]
                                 [--server-cpu N --client-cpu N] [--rounds 1] [--probe]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import itertools
import json
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from mockserver import app, cli, server, timing
from mockserver.engine import EngineConfig, MockEngine
from mockserver.scenarios import load_scenarios

WORDS = " ".join(f"w{n:02d}" for n in range(21))
SCENARIO = f"""
version: 1
scenarios:
  - name: paced
    reply:
      content: "{WORDS}"
      stream: {{ttft_ms: {{median: 400, p99: 1500}}, tokens_per_second: 50}}
"""
BODY = json.dumps(
    {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "go"}]}
).encode()
CONTENT = re.compile(rb'"content":" ?w\d\d"')
DONE = b"data: [DONE]"
TIMEOUT = 60.0
"""Seconds a stream may take before the measurement gives up on it."""


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- the measuring clients ----------------------------------------------------------------------


class _Stream(asyncio.Protocol):
    """One streamed request on its own connection; each read is timestamped on arrival."""

    def __init__(self, request: bytes, done: asyncio.Future[None]) -> None:
        self.request = request
        self.done = done
        self.data = bytearray()
        self.arrivals: list[float] = []
        self.reads_with_several = 0
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.started = time.perf_counter()
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter() - self.started
        start = max(len(self.data) - 16, 0)  # a marker split across reads is found whole
        self.data += data
        found = len(CONTENT.findall(self.data, start))
        seen_before = len(CONTENT.findall(self.data, start, len(self.data) - len(data)))
        new = found - seen_before
        if new > 1:
            self.reads_with_several += 1
        self.arrivals += [now] * new
        if DONE in self.data[-64:]:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _raw_stream(host: str, port: int, path: str) -> tuple[list[float], int]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    request = (
        f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(BODY)}\r\nconnection: close\r\n\r\n"
    ).encode() + BODY
    transport, protocol = await loop.create_connection(lambda: _Stream(request, done), host, port)
    try:
        await asyncio.wait_for(done, TIMEOUT)
    finally:
        transport.close()
    return protocol.arrivals, protocol.reads_with_several


SO_TIMESTAMPNS = 35
"""Linux: the kernel stamps each received packet (`SCM_TIMESTAMPNS`, CLOCK_REALTIME)."""


async def _kernel_stream(host: str, port: int, path: str) -> tuple[list[float], int]:
    """One stream read with the kernel's receive timestamps: when each chunk reached this
    machine's socket, whatever the client process was doing then."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setblocking(False)
    done: asyncio.Future[None] = loop.create_future()
    data = bytearray()
    arrivals: list[float] = []
    several = 0
    try:
        await loop.sock_connect(sock, (host, port))
        request = (
            f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(BODY)}\r\n"
            "connection: close\r\n\r\n"
        ).encode() + BODY
        started = time.time()
        await loop.sock_sendall(sock, request)

        def readable() -> None:
            nonlocal several
            while True:
                try:
                    chunk, ancillary, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(16))
                except BlockingIOError:
                    return
                if not chunk or DONE in chunk:
                    done.done() or done.set_result(None)
                stamp = time.time()
                for level, kind, value in ancillary:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", value[:16])
                        stamp = sec + nsec / 1e9
                start = max(len(data) - 16, 0)
                seen_before = len(CONTENT.findall(data, start))
                data.extend(chunk)
                new = len(CONTENT.findall(data, start)) - seen_before
                several += new > 1
                arrivals.extend([stamp - started] * new)
                if not chunk:
                    return

        loop.add_reader(sock.fileno(), readable)
        try:
            await asyncio.wait_for(done, TIMEOUT)
        finally:
            loop.remove_reader(sock.fileno())
    finally:
        sock.close()
    return arrivals, several


async def _httpx_stream(client: httpx.AsyncClient, url: str) -> tuple[list[float], int]:
    started = time.perf_counter()
    arrivals: list[float] = []
    buffer = b""
    several = 0
    async with client.stream("POST", url, content=BODY) as response:
        async for data in response.aiter_raw():
            now = time.perf_counter() - started
            buffer += data
            *events, buffer = buffer.split(b"\n\n")
            new = [now for e in events if CONTENT.search(e)]
            several += len(new) > 1
            arrivals += new
    return arrivals, several


async def measure(
    url: str, streams: int, concurrency: int, client: str
) -> list[tuple[list[float], int]]:
    gate = asyncio.Semaphore(concurrency)
    base = url.split("://", 1)[1]
    hostport, _, prefix = base.partition("/")
    host, _, port = hostport.rpartition(":")
    path = f"/{prefix}/chat/completions" if prefix else "/chat/completions"
    if client in ("raw", "kernel"):
        read = _raw_stream if client == "raw" else _kernel_stream

        async def raw() -> tuple[list[float], int]:
            async with gate:
                return await read(host, int(port), path)

        return await asyncio.gather(*(raw() for _ in range(streams)))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=TIMEOUT) as session:

        async def gated() -> tuple[list[float], int]:
            async with gate:
                return await _httpx_stream(session, url + "/chat/completions")

        return await asyncio.gather(*(gated() for _ in range(streams)))


# -- the server ----------------------------------------------------------------------------------


def probed_server(argv: list[str], out: str) -> None:
    """Run `mockserver serve` with each stream's writes timed against their schedule."""
    if os.environ.get("TIMING_TABLE_LOOP") == "asyncio":  # to compare with uvloop's timers
        server.LOOP = "asyncio"
    if os.environ.get("TIMING_TABLE_PACER") == "off":  # the loop's own (whole ms) timers
        timing._timerfd = lambda: None  # type: ignore[method-assign]
    original = app._send_frames
    late: list[list[float]] = []

    async def send_frames(frames: Any, send: Any, receive: Any) -> None:
        started = time.perf_counter()
        due = started
        offsets: list[float] = []
        delays = iter(frames)

        async def timed(message: Any) -> None:
            nonlocal due
            if message.get("body"):
                frame = next(delays)
                due += frame.delay
                offsets.append(time.perf_counter() - due)
            await send(message)

        await original(frames, timed, receive)
        late.append(offsets)

    app._send_frames = send_frames  # type: ignore[assignment]
    atexit.register(lambda: Path(out).write_text(json.dumps(late)))
    cli.main(argv)


def start_server(folder: Path, cpu: int | None, probe: str | None) -> subprocess.Popen[str]:
    argv = ["serve", str(folder), "--port", "0", "--seed", "1"]
    if probe is None:
        command = [sys.executable, "-m", "mockserver", *argv]
    else:
        command = [sys.executable, __file__, "--serve-probed", probe, "--", *argv]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def drawn(folder: Path, streams: int) -> list[float]:
    """The ttft the seeded server drew for each of its first `streams` requests (seconds)."""
    engine = MockEngine(load_scenarios([folder]), EngineConfig(seed=1))
    out = []
    for _ in range(streams):
        frames = engine.handle_chat(BODY).frames
        assert frames is not None
        out.append(frames[0].delay)
    return out


# -- the table -----------------------------------------------------------------------------------


def one_round(args: argparse.Namespace, folder: Path, probe: str | None) -> dict[str, Any]:
    proc = start_server(folder, args.server_cpu, probe)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split("listening on ", 1)[1].split()[0]
        results = asyncio.run(measure(url, args.streams, args.concurrency, args.client))
    finally:
        proc.terminate()
        proc.wait(10)
    if any(len(arrivals) != 21 for arrivals, _ in results):
        raise SystemExit("a stream did not deliver its 21 content chunks")
    ttft = [arrivals[0] for arrivals, _ in results]
    gaps = [b - a for arrivals, _ in results for a, b in itertools.pairwise(arrivals)]
    return {
        "ttft": ttft,
        "gaps": gaps,
        "several": sum(several for _, several in results),
    }


def _row(name: str, nominal: float, seeded: float, seen: float) -> str:
    return f"| {name} | {nominal:.0f} ms | {seeded:.1f} ms | {seen:.1f} ms | {seen / seeded:.3f} |"


def table(args: argparse.Namespace, asked: list[float], measured: dict[str, Any]) -> list[str]:
    ttft, gaps = measured["ttft"], measured["gaps"]
    return [
        f"| {args.streams} streams, {args.concurrency} at a time | asked | drawn (seed 1) "
        "| observed | observed / drawn |",
        "|---|---|---|---|---|",
        _row(
            "time to first token, median",
            400.0,
            statistics.median(asked) * 1000,
            statistics.median(ttft) * 1000,
        ),
        _row(
            "time to first token, p99",
            1500.0,
            percentile(asked, 0.99) * 1000,
            percentile(ttft, 0.99) * 1000,
        ),
        _row("gap between chunks, median", 20.0, 20.0, statistics.median(gaps) * 1000),
        _row("gap between chunks, p99", 20.0, 20.0, percentile(gaps, 0.99) * 1000),
    ]


def lateness(path: str) -> str:
    """The server's own lateness: each write against its due time, and the gaps it makes."""
    streams = json.loads(Path(path).read_text())
    late = [x * 1000 for offsets in streams for x in offsets[1:]]
    gaps = [20 + (b - a) * 1000 for offsets in streams for a, b in itertools.pairwise(offsets[1:])]
    return (
        f"server writes late by median {statistics.median(late):.2f} ms, p99 "
        f"{percentile(late, 0.99):.2f} ms, max {max(late):.2f} ms; the gaps it wrote: median "
        f"{statistics.median(gaps):.2f} ms, p99 {percentile(gaps, 0.99):.2f} ms"
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve-probed"]:
        probed_server(argv[3:], argv[1])
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=25)
    parser.add_argument("--client", choices=("kernel", "raw", "httpx"), default="kernel")
    parser.add_argument("--server-cpu", type=int)
    parser.add_argument("--client-cpu", type=int)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--probe", action="store_true")
    args = parser.parse_args(argv)
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {args.client_cpu})
    command = "python bench/timing_table.py " + " ".join(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "paced.yaml").write_text(SCENARIO)
        asked = drawn(folder, args.streams)
        rounds = []
        for n in range(args.rounds):
            probe = str(folder / f"probe{n}.json") if args.probe else None
            measured = one_round(args, folder, probe)
            rounds.append(measured)
            print(
                f"round {n + 1}: {len(measured['gaps'])} gaps, "
                f"{measured['several']} reads carried more than one chunk"
            )
            if probe is not None:
                print("  " + lateness(probe))
            if args.rounds > 1:
                print("\n".join("  " + line for line in table(args, asked, measured)[2:]))
    print(f"\n{command.strip()}  (load average {os.getloadavg()[0]:.1f})\n")
    print("\n".join(table(args, asked, rounds[-1] if args.rounds == 1 else _median_round(rounds))))
    if args.rounds > 1:
        ratio = [percentile(r["gaps"], 0.99) / 0.020 for r in rounds]
        print(
            f"\ngap p99 / asked over {args.rounds} rounds: " + ", ".join(f"{x:.3f}" for x in ratio)
        )
    return 0


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round whose gap p99 is the median of the rounds'."""
    ordered = sorted(rounds, key=lambda r: percentile(r["gaps"], 0.99))
    return ordered[len(ordered) // 2]


if __name__ == "__main__":
    raise SystemExit(main())
