"""The timing model as a client sees it: time to first token and gaps between chunks.

Starts `mockserver serve --seed 1` with one scenario streaming 21 tokens at
`tokens_per_second: 50` after `ttft_ms: {median: 400, p99: 1500}`, opens `--streams` streams
(`--concurrency` at a time) with httpx, and times each content chunk's arrival. It prints the
observed median and p99 of the time to first token and of the gaps between content chunks
against what was asked: the distribution's own figures, and those of the very delays the
seeded server drew (an engine with the same seed, asked the same number of times, gives them).

    python bench/timing_table.py [--streams 500] [--concurrency 25]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

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


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_stream(client: httpx.AsyncClient, url: str) -> list[float]:
    """Arrival times (seconds after sending) of each content chunk."""
    started = time.perf_counter()
    arrivals: list[float] = []
    buffer = b""
    async with client.stream("POST", url, content=BODY) as response:
        async for data in response.aiter_raw():
            now = time.perf_counter() - started
            buffer += data
            *events, buffer = buffer.split(b"\n\n")
            arrivals += [now for e in events if b'"content":"w' in e or b'"content":" w' in e]
    return arrivals


async def measure(url: str, streams: int, concurrency: int) -> list[list[float]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def gated() -> list[float]:
            async with gate:
                return await one_stream(client, url + "/chat/completions")

        return await asyncio.gather(*(gated() for _ in range(streams)))


def drawn(folder: Path, streams: int) -> list[float]:
    """The ttft the seeded server drew for each of its first `streams` requests (seconds)."""
    engine = MockEngine(load_scenarios([folder]), EngineConfig(seed=1))
    out = []
    for _ in range(streams):
        frames = engine.handle_chat(BODY).frames
        assert frames is not None
        out.append(frames[0].delay)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=25)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "paced.yaml").write_text(SCENARIO)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mockserver",
                "serve",
                str(folder),
                "--port",
                "0",
                "--seed",
                "1",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            url = line.split("listening on ", 1)[1].split()[0]
            results = asyncio.run(measure(url, args.streams, args.concurrency))
        finally:
            server.terminate()
            server.wait(10)
        asked = drawn(folder, args.streams)
    ttft = [r[0] for r in results]
    gaps = [b - a for r in results for a, b in itertools.pairwise(r)]
    if any(len(r) != 21 for r in results):
        raise SystemExit("a stream did not deliver its 21 content chunks")
    rows = [
        (
            "time to first token, median",
            400.0,
            statistics.median(asked) * 1000,
            statistics.median(ttft) * 1000,
        ),
        (
            "time to first token, p99",
            1500.0,
            percentile(asked, 0.99) * 1000,
            percentile(ttft, 0.99) * 1000,
        ),
        ("gap between chunks, median", 20.0, 20.0, statistics.median(gaps) * 1000),
        ("gap between chunks, p99", 20.0, 20.0, percentile(gaps, 0.99) * 1000),
    ]
    print(f"{args.streams} streams, {args.concurrency} at a time, {len(gaps)} gaps")
    print(f"| {'':<28} | asked | drawn (seed 1) | observed | observed / drawn |")
    print("|---|---|---|---|---|")
    for name, nominal, seeded, seen in rows:
        ratio = seen / seeded
        print(f"| {name} | {nominal:.0f} ms | {seeded:.1f} ms | {seen:.1f} ms | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
