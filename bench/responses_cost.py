"""What a Responses request costs next to the chat completion of the same scenario (CPU µs).

The ASGI app driven in process (no sockets, no uvicorn: what the two APIs do differently), on
the load benchmark's scenarios and bodies (`load_payloads`, `bench/load.py`'s `responses` and
`responses-stream` targets): the plain request matching the last of 100 scenarios, and the
50-delta stream, each through `/v1/chat/completions` and `/v1/responses`. CPU time, so other
work on a shared machine counts little; the best of `--rounds` rounds of `--requests`.
The issue's goal (issue 12) is a Responses rate >= 0.8x chat's, so a cost <= 1.25x.

    python bench/responses_cost.py [--requests 5000] [--rounds 5] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from collections.abc import Sequence
from typing import Any

import load_payloads as payloads

from mockserver.app import MockApp, create_app
from mockserver.engine import EngineConfig, MockEngine
from mockserver.scenarios import load_text

GOAL = 1.25


def bodies() -> dict[str, tuple[str, bytes]]:
    """Each case: the API path and the body (the same as bench/load.py sends)."""
    ask = {
        "model": payloads.MODEL,
        "instructions": payloads.SYSTEM_PROMPT,
        "input": payloads.question(payloads.LAST_INDEX),
    }
    streamed = {
        "model": payloads.MODEL,
        "instructions": payloads.SYSTEM_PROMPT,
        "input": payloads.STREAM_PROMPT,
        "stream": True,
    }
    return {
        "chat": ("/v1/chat/completions", payloads.non_stream_request()),
        "responses": ("/v1/responses", payloads.encode(ask)),
        "chat-stream": ("/v1/chat/completions", payloads.stream_request()),
        "responses-stream": ("/v1/responses", payloads.encode(streamed)),
    }


def headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]


async def run(app: MockApp, path: str, body: bytes, count: int) -> float:
    """CPU seconds for `count` requests; checks that each is answered 200."""
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers(body)}
    message = {"type": "http.request", "body": body, "more_body": False}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(sent: dict[str, Any]) -> None:
        if sent["type"] == "http.response.start":
            statuses.append(sent["status"])

    started = time.process_time()
    for _ in range(count):
        await app(scope, receive, send)
    spent = time.process_time() - started
    if any(status != 200 for status in statuses):
        raise SystemExit(f"{path}: answered {set(statuses)}")
    return spent


def app() -> MockApp:
    engine = MockEngine(load_text(payloads.scenario_yaml()), EngineConfig(seed=1))
    return create_app(engine)


async def measure(count: int, rounds: int) -> dict[str, float]:
    """µs per request for each case (the best round; cases interleaved round by round)."""
    cases = bodies()
    apps = {name: app() for name in cases}
    best = dict.fromkeys(cases, float("inf"))
    for name, (path, body) in cases.items():
        await run(apps[name], path, body, min(count, 2000))  # warm: templates, memos
    for _ in range(rounds):
        for name, (path, body) in cases.items():
            best[name] = min(best[name], await run(apps[name], path, body, count) / count * 1e6)
    return best


def profile(name: str, count: int) -> None:
    path, body = bodies()[name]
    served = app()
    asyncio.run(run(served, path, body, 2000))
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(run(served, path, body, count))
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--profile", choices=tuple(bodies()), help="print cProfile's table for one case instead"
    )
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile, args.requests)
        return 0
    best = asyncio.run(measure(args.requests, args.rounds))
    print(f"{'case':<18}{'µs/request':>12}{'x chat':>9}  goal <= {GOAL}x")
    for name, cost in best.items():
        chat = best[name.replace("responses", "chat")]
        ratio = f"{cost / chat:>9.2f}" if name.startswith("responses") else ""
        print(f"{name:<18}{cost:>12.1f}{ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
