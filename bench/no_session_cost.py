"""What sessions cost a request without one: `engine.handle_chat` and the ASGI app in process.

Run it on two trees (before and after) and compare; CPU time, best of 15 rounds of 20,000:

    PYTHONPATH=/path/to/tree python bench/no_session_cost.py
"""

from __future__ import annotations

import asyncio
import json
import time
import timeit
from typing import Any

from mockserver.app import create_app
from mockserver.engine import MockEngine
from mockserver.scenarios import load_text

SCENARIOS = """
scenarios:
  - name: greet
    match: {last_user_message: {contains: hello}}
    reply: {content: Hi there}
"""
BODY = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}).encode()
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"content-type", b"application/json"),
    (b"authorization", b"Bearer sk-x"),
    (b"user-agent", b"OpenAI/Python"),
    (b"accept", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]
ROUNDS, COUNT = 15, 20_000


def engine_us() -> float:
    engine = MockEngine(load_text(SCENARIOS))
    headers = tuple(HEADERS)
    for _ in range(5000):
        engine.handle_chat(BODY, headers)
    times = timeit.repeat(
        lambda: engine.handle_chat(BODY, headers),
        number=COUNT,
        repeat=ROUNDS,
        timer=time.process_time,
    )
    return min(times) / COUNT * 1e6


async def asgi_us() -> float:
    app = create_app(MockEngine(load_text(SCENARIOS)))
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": HEADERS}
    message = {"type": "http.request", "body": BODY, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    async def send(_: Any) -> None:
        return None

    async def run(n: int) -> None:
        for _ in range(n):
            await app(scope, receive, send)

    await run(5000)
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.process_time()
        await run(COUNT)
        best = min(best, (time.process_time() - started) / COUNT)
    return best * 1e6


if __name__ == "__main__":
    print(f"engine.handle_chat: {engine_us():.3f} us")
    print(f"ASGI app, /v1/chat/completions: {asyncio.run(asgi_us()):.3f} us")
