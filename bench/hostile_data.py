"""Hostile data against a real `mockserver serve` process (a script, not a test).

    python bench/hostile_data.py big-reply [--words 2200] [--n 8] [--top 20] [--stream]
                                           [--max-reply-size 32m]
    python bench/hostile_data.py big-bodies [--count 6] [--mb 60]

`big-reply` asks for a reply with `logprobs` and `top_logprobs` on a long text from a separate
client process, while this process polls `/health` every 5 ms, and prints the reply's status,
size and time, the server's peak RSS and the `/health` latencies (median, worst).

`big-bodies` sends `--count` requests of `--mb` MB (a base64 image each), then reads
`GET /_mockserver/journal`, and prints the server's RSS before, after the requests, and at its
peak while the journal is read (sampled every 2 ms).

Run it with a mockserver other than the installed one with `--tree PATH` (a checkout whose
`mockserver/` is imported instead): that is how the figures before a change are taken.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2

LAUNCH_TREE = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in "
    "repr(f).lower()]; sys.path.insert(0, sys.argv.pop(1)); from mockserver.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


STARTED: list[subprocess.Popen[str]] = []


def start(scenario: str, tree: str | None, *flags: str) -> tuple[subprocess.Popen[str], str]:
    folder = Path(tempfile.mkdtemp())
    (folder / "s.yaml").write_text(scenario)
    launch = (
        [sys.executable, "-c", LAUNCH_TREE, tree] if tree else [sys.executable, "-m", "mockserver"]
    )
    process = subprocess.Popen(
        [*launch, "serve", str(folder / "s.yaml"), "--port", "0", *flags],
        stdout=subprocess.PIPE,
        text=True,
    )
    STARTED.append(process)
    assert process.stdout is not None
    found = re.search(r"(http://\S+/v1)", process.stdout.readline())
    assert found, "the server did not start"
    return process, found.group(1)


def memory(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {
        k: int(re.search(k + r":\s+(\d+)", status).group(1)) // 1024 for k in ("VmRSS", "VmHWM")
    }  # type: ignore[union-attr]


def big_reply(args: argparse.Namespace) -> None:
    text = " ".join(f"word{i % 97}" for i in range(args.words))
    process, url = start(
        f"scenarios:\n  - reply: {{content: '{text}'}}\n",
        args.tree,
        *(["--max-reply-size", args.max_reply_size] if args.max_reply_size else []),
    )
    base = url.removesuffix("/v1")
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "n": args.n,
        "logprobs": True,
        "top_logprobs": args.top,
        "stream": args.stream,
    }
    client_code = (
        "import httpx2,json,sys; r=httpx2.post(sys.argv[1], json=json.loads(sys.argv[2]), "
        "timeout=600); print(r.status_code, len(r.content))"
    )
    result: dict[str, object] = {}

    def ask() -> None:
        began = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", client_code, url + "/chat/completions", json.dumps(body)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        result.update(
            status=int(out[0]), bytes=int(out[1]), seconds=round(time.perf_counter() - began, 3)
        )

    waits: list[float] = []
    with httpx2.Client(timeout=120) as client:
        client.get(base + "/health")
        worker = threading.Thread(target=ask)
        worker.start()
        while worker.is_alive():
            began = time.perf_counter()
            client.get(base + "/health")
            waits.append(time.perf_counter() - began)
            time.sleep(0.005)
    worker.join()
    peak = memory(process.pid)["VmHWM"]
    process.terminate()
    process.wait()
    waits.sort()
    print(json.dumps(result), f"server peak RSS {peak} MB")
    if waits:
        print(
            f"/health while it rendered: {len(waits)} polls, median "
            f"{waits[len(waits) // 2] * 1000:.1f} ms, worst {waits[-1] * 1000:.1f} ms"
        )


def big_bodies(args: argparse.Namespace) -> None:
    process, url = start("scenarios:\n  - reply: {content: ok}\n", args.tree)
    base = url.removesuffix("/v1")
    image = base64.b64encode(os.urandom(args.mb * 1024 * 1024 * 3 // 4)).decode()
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + image}}
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": [part]}]}).encode()
    print(
        f"{args.count} bodies of {len(body) / 2**20:.0f} MB; server at start {memory(process.pid)}"
    )
    waits: list[float] = []
    sending = threading.Event()

    def poll() -> None:
        with httpx2.Client(timeout=120) as health:
            while not sending.is_set():
                began = time.perf_counter()
                health.get(base + "/health")
                waits.append(time.perf_counter() - began)
                time.sleep(0.005)

    poller = threading.Thread(target=poll)
    poller.start()
    with httpx2.Client(timeout=300) as client:
        for _ in range(args.count):
            sent = client.post(
                url + "/chat/completions",
                content=body,
                headers={"content-type": "application/json"},
            )
            assert sent.status_code == 200, sent.text[:300]
        sending.set()
        poller.join()
        waits.sort()
        print(
            f"after the requests {memory(process.pid)}; /health meanwhile: {len(waits)} polls, "
            f"median {waits[len(waits) // 2] * 1000:.1f} ms, worst {waits[-1] * 1000:.1f} ms"
        )
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], memory(process.pid)["VmRSS"])
                time.sleep(0.002)

        sampler = threading.Thread(target=sample)
        sampler.start()
        began = time.perf_counter()
        size = 0
        with client.stream("GET", base + "/_mockserver/journal") as response:
            for chunk in response.iter_raw():
                size += len(chunk)
        took = time.perf_counter() - began
        done.set()
        sampler.join()
    print(
        f"GET /_mockserver/journal: {response.status_code}, {size / 2**20:.0f} MB in {took:.2f} s; "
        f"server RSS at most {peak[0]} MB while writing it, {memory(process.pid)['VmRSS']} MB after"
    )
    process.terminate()
    process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", help="import mockserver from this checkout instead")
    commands = parser.add_subparsers(dest="command", required=True)
    reply = commands.add_parser("big-reply")
    reply.add_argument("--words", type=int, default=2200)
    reply.add_argument("--n", type=int, default=8)
    reply.add_argument("--top", type=int, default=20)
    reply.add_argument("--stream", action="store_true")
    reply.add_argument("--max-reply-size")
    bodies = commands.add_parser("big-bodies")
    bodies.add_argument("--count", type=int, default=6)
    bodies.add_argument("--mb", type=int, default=60)
    args = parser.parse_args()
    try:
        big_reply(args) if args.command == "big-reply" else big_bodies(args)
    finally:
        for process in STARTED:
            process.kill()


if __name__ == "__main__":
    main()
