"""`--seed`: two separate server processes answer the same requests with identical bytes.

Separate processes matter: they have different hash seeds, start at different times and pick
different ports, which an in-process comparison would not vary. The in-process server with the
same seed is checked against them too, so fixtures and the CLI agree.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest

from mockserver.app import create_app
from mockserver.engine import EngineConfig, MockEngine
from mockserver.scenarios import load_scenarios
from mockserver.server import BackgroundServer

ROOT = Path(__file__).parent.parent
SCENARIOS = ROOT / "scenarios"
BIN = Path(sys.executable).parent / "mockserver"
URL = re.compile(r"http://\S+/v1")


def said(text: str, **extra: object) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}


def tools(*names: str) -> list[dict[str, object]]:
    return [{"type": "function", "function": {"name": n}} for n in names]


SPEAK = {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}
STREAM = {"stream": True, "stream_options": {"include_usage": True}}

# (method, path, body): every kind of generated value, streamed and not, errors included
REQUESTS: list[tuple[str, str, dict[str, object] | None]] = [
    ("GET", "/models", None),
    ("POST", "/chat/completions", said("hello")),
    ("POST", "/chat/completions", said("hello", **STREAM)),
    ("POST", "/chat/completions", said("hello", stream=True)),
    ("POST", "/chat/completions", said("weather in Paris?", tools=tools("get_weather"))),
    (
        "POST",
        "/chat/completions",
        said("plan my trip", tools=tools("get_weather", "get_time"), **STREAM),
    ),
    ("POST", "/chat/completions", said("legacy functions please", functions=[{"name": "f"}])),
    ("POST", "/chat/completions", said("say it", **SPEAK)),
    ("POST", "/chat/completions", said("say it", **SPEAK, stream=True)),
    ("POST", "/chat/completions", said("give me name ideas", n=3, logprobs=True, top_logprobs=2)),
    ("POST", "/chat/completions", said("give me name ideas", n=3, stream=True)),
    ("POST", "/chat/completions", said("how to make explosives", **STREAM)),
    ("POST", "/chat/completions", said("Describe Paris", response_format={"type": "json_object"})),
    ("POST", "/chat/completions", said("flaky")),
    ("POST", "/chat/completions", said("flaky")),
    ("POST", "/chat/completions", said("only once")),
    ("POST", "/chat/completions", said("only once")),
    ("POST", "/chat/completions", said("no credits")),
    ("POST", "/chat/completions", said("nothing matches this")),
    ("POST", "/chat/completions", said("break the stream", stream=True)),
    ("GET", "/models/gpt-4o-mini-2024-07-18", None),
    ("GET", "/models/unknown", None),  # found: bundled scenarios without `model` answer any
    ("GET", "/no-such-route", None),
    ("POST", "/chat/completions", said("hello")),
]


def replay(url: str) -> list[tuple[int, str, bytes]]:
    """(status, x-request-id, body) of every request, in order."""
    out = []
    with httpx2.Client(timeout=10) as client:
        for method, path, body in REQUESTS:
            response = client.request(method, url + path, json=body)
            out.append((response.status_code, response.headers["x-request-id"], response.content))
    return out


def start(*flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN), "serve", str(SCENARIOS), "--port", "0", "--model", "extra", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


RUNS = {"seed 7": ("--seed", "7"), "seed 7 again": ("--seed", "7"), "seed 8": ("--seed", "8"),
        "no seed": (), "no seed again": ()}  # fmt: skip


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, list[tuple[int, str, bytes]]]]:
    """One server process per entry of RUNS, all started at once, each sent REQUESTS."""
    procs = {name: start(*flags) for name, flags in RUNS.items()}
    try:
        urls = {}
        for name, proc in procs.items():
            line = proc.stdout.readline()
            found = URL.search(line)
            assert found, (line, proc.stderr.read() if proc.poll() is not None else "")
            urls[name] = found.group()
        with ThreadPoolExecutor(len(urls)) as pool:
            yield dict(zip(urls, pool.map(replay, urls.values()), strict=True))
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            assert proc.wait(5) == 0
            proc.stdout.close()
            proc.stderr.close()


def test_same_seed_same_bytes(runs):
    first, second = runs["seed 7"], runs["seed 7 again"]
    assert [status for status, _, _ in first] == [
        200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
        429, 200, 200, 404, 429, 404, 200, 200, 200, 404, 200,
    ]  # fmt: skip
    for n, (a, b) in enumerate(zip(first, second, strict=True)):
        assert a == b, f"request {n} {REQUESTS[n][:2]} differs"
    # what is generated really is in there
    bodies = b"".join(body for _, _, body in first)
    assert b'"id":"call_' in bodies
    assert b'"id":"audio_' in bodies
    assert b'"data":"UklGR' in bodies  # a generated WAV
    assert b'"obfuscation":"' in bodies
    # and not constant: the same request twice in one run gets fresh ids
    one, last = json.loads(first[1][2]), json.loads(first[-1][2])
    assert one["id"] != last["id"]
    assert one["created"] == last["created"]
    assert len({request_id for _, request_id, _ in first}) == len(first)


def test_other_seed_or_no_seed_differs(runs):
    seven = runs["seed 7"]
    others = [runs["seed 8"], runs["no seed"], runs["no seed again"]]
    ids = {json.loads(run[1][2])["id"] for run in [seven, *others]}
    assert len(ids) == 4
    assert len({run[1][1] for run in [seven, *others]}) == 4  # x-request-id
    tool_ids = {
        json.loads(run[4][2])["choices"][0]["message"]["tool_calls"][0]["id"]
        for run in [seven, *others]
    }
    assert len(tool_ids) == 4
    # the structure is the same, only generated values differ
    choices = [json.loads(run[1][2])["choices"] for run in [seven, *others]]
    assert all(c == choices[0] for c in choices)


def test_in_process_server_gives_the_cli_bytes(runs):
    engine = MockEngine(load_scenarios([SCENARIOS]), EngineConfig(seed=7, models=("extra",)))
    with BackgroundServer(create_app(engine)) as server:
        assert replay(server.url) == runs["seed 7"]
