"""What recording costs: `mockserver record` in front of an upstream vs the upstream itself.

A script, not a test. It starts two processes: an upstream (`mockserver serve` on scripted
scenarios) and a recorder (`mockserver record --upstream <it> --out <a temporary folder>`),
then, from this process, over keep-alive connections with `http.client`:

1. time to first byte (the response head) of the same request sent straight to the upstream
   and through the recorder, alternately, whole replies and streams (goal: the medians within
   5 ms of each other);
2. when each event of a stream whose upstream waits `--gap-ms` between events arrives, straight
   and through the recorder: the recorder must pass each event on as it comes (not buffer the
   stream), so the arrival times must match the upstream's schedule.

    python bench/record.py [--requests 300] [--streams 20] [--gap-ms 50] [--events 10]

Exit status 0; 1 if a goal is missed (with --strict).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

URL = re.compile(r"http://127\.0\.0\.1:(\d+)/v1")
UPSTREAM = """
scenarios:
  - name: gaps
    match: {{last_user_message: {{contains: gaps}}}}
    reply:
      content: "{words}"
      stream: {{chunk_size: 6, first_chunk_delay_ms: {gap}, chunk_delay_ms: {gap}}}
  - name: anything
    reply: {{content: "A short answer of a few words."}}
"""


@contextmanager
def process(*args: str) -> Iterator[int]:
    """Run `mockserver ARGS`, yield the port it printed, stop it on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mockserver", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        found = URL.search(line)
        if not found:
            raise SystemExit(f"mockserver {args[0]} did not start: {line!r}")
        # the recorder prints a line per exchange: a full pipe would stall it
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield int(found.group(1))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def body(text: str, stream: bool) -> bytes:
    message = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    if stream:
        message["stream"] = True
    return json.dumps(message).encode()


def ask(conn: http.client.HTTPConnection, payload: bytes) -> tuple[float, list[float]]:
    """Time to the response head, and the arrival time of each event (seconds from sending)."""
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    sent = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", payload, headers)
    response = conn.getresponse()
    head = time.perf_counter() - sent
    arrivals: list[float] = []
    pending = b""
    while chunk := response.read1(65536):
        now = time.perf_counter() - sent
        pending += chunk
        while b"\n\n" in pending:
            _, pending = pending.split(b"\n\n", 1)
            arrivals.append(now)
    response.read()  # marks the response done, so the connection takes the next request
    return head, arrivals


def ms(values: list[float]) -> str:
    values = sorted(values)
    p90 = values[int(len(values) * 0.9)]
    return f"median {statistics.median(values) * 1000:6.2f} ms  p90 {p90 * 1000:6.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="TTFB samples per kind")
    parser.add_argument("--streams", type=int, default=20, help="gapped streams per path")
    parser.add_argument("--gap-ms", type=float, default=50.0, help="upstream wait per event")
    parser.add_argument("--events", type=int, default=10, help="content events per stream")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()

    words = " ".join(["word"] * args.events)  # chunk_size 6: one "word " per event
    missed = False
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        scenarios = Path(tmp) / "upstream.yaml"
        scenarios.write_text(UPSTREAM.format(words=words, gap=args.gap_ms))
        out = Path(tmp) / "recorded"
        up = stack.enter_context(process("serve", str(scenarios), "--port", "0"))
        rec = stack.enter_context(
            process(
                "record",
                "--upstream",
                f"http://127.0.0.1:{up}/v1",
                "--out",
                str(out),
                "--port",
                "0",
            )
        )
        direct = http.client.HTTPConnection("127.0.0.1", up)
        proxied = http.client.HTTPConnection("127.0.0.1", rec)
        print(
            f"upstream :{up}, recorder :{rec}, python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPUs",
            file=sys.stderr,
        )

        for _ in range(20):  # warm both paths (connections, imports, caches)
            ask(direct, body("warm", False))
            ask(proxied, body("warm", False))

        print("\n1. time to first byte (response head), same request alternately")
        for stream in (False, True):
            straight: list[float] = []
            through: list[float] = []
            for n in range(args.requests):
                payload = body(f"question {n}", stream)  # one conversation file per request
                straight.append(ask(direct, payload)[0])
                through.append(ask(proxied, payload)[0])
            kind = "stream" if stream else "whole "
            gap = (statistics.median(through) - statistics.median(straight)) * 1000
            print(f"  {kind} straight        {ms(straight)}")
            print(f"  {kind} via recorder    {ms(through)}")
            ok = gap <= 5.0
            missed |= not ok
            print(
                f"  {kind} recorder adds   {gap:+.2f} ms at the median "
                f"(goal <= 5 ms: {'met' if ok else 'MISSED'})"
            )

        print(f"\n2. event arrival, upstream waits {args.gap_ms:g} ms before each event")
        lags: list[float] = []
        gaps: list[float] = []
        for n in range(args.streams):
            payload = body(f"gaps {n}", True)
            _, straight_at = ask(direct, payload)
            _, through_at = ask(proxied, payload)
            lags += [b - a for a, b in zip(straight_at, through_at, strict=True)]
            gaps += [b - a for a, b in itertools.pairwise(through_at)][: args.events - 1]
        expected = args.gap_ms / 1000
        print(f"  events per stream {len(through_at)}, streams {args.streams}")
        print(f"  gap between events via recorder: {ms(gaps)} (upstream: {args.gap_ms:g} ms)")
        print(
            f"  each event's arrival, recorder minus straight: {ms(lags)}, "
            f"max {max(lags) * 1000:.2f} ms"
        )
        streamed = statistics.median(gaps) >= expected * 0.8 and max(lags) < expected / 2
        missed |= not streamed
        print(f"  events pass through as they arrive: {'yes' if streamed else 'NO (buffered?)'}")
        files = list(out.glob("*.yaml"))
        print(f"\n{len(files)} files recorded")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
