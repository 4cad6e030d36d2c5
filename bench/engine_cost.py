"""What a request costs inside the engine (microseconds), per scenario set: no HTTP, no loop.

For each set of load_sets.py and the 100 equalities of the load benchmark, it times
`MockEngine.handle_chat` on the request that matches the set's last scenario, the same body
every time (repeated) and a new `user` value every time (distinct), and the matcher's
search alone on a parsed request (`match µs`, without the memory a repeated body gets).
For the recording it also times a replay as a test suite sends it (`replay µs`): every
recorded request once, in the order recorded, to a fresh engine with nothing kept from an
earlier run (the messages an agent sends again are the only help).

    python bench/engine_cost.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import load_payloads as payloads
import load_sets as sets

from mockserver import known
from mockserver.engine import EngineConfig, MockEngine
from mockserver.scenarios import load_scenarios
from mockserver.validation import decode_body, parse_chat_request


def per_call_us(call: Callable[[int], object], count: int) -> float:
    for i in range(min(count, 2000)):  # warm: the memo keeps bodies from their second sighting
        call(i)
    started = time.process_time()  # CPU time: other work on the machine does not count
    for i in range(count):
        call(i)
    return (time.process_time() - started) / count * 1e6


def replay_us(folder: Path, requests: tuple[bytes, ...], rounds: int = 5) -> float:
    """CPU per request of a whole replay, best of `rounds`, each on a fresh engine."""
    best = float("inf")
    for _ in range(rounds):
        engine = MockEngine(load_scenarios([folder]), EngineConfig(seed=1, journal_size=1000))
        known.clear()
        started = time.process_time()
        for raw in requests:
            if engine.handle_chat(raw).status != 200:
                raise SystemExit("a recorded request was not answered 200")
        best = min(best, (time.process_time() - started) / len(requests) * 1e6)
    return best


def measure(name: str, folder: Path, body: bytes, count: int) -> str:
    engine = MockEngine(load_scenarios([folder]), EngineConfig(seed=1, journal_size=1000))
    status = engine.handle_chat(body).status
    if status != 200:
        raise SystemExit(f"{name}: the request was answered {status}")
    distinct = payloads.distinct(body)
    bodies = [distinct.replace(payloads.COUNTER.encode(), str(i).encode()) for i in range(count)]
    repeated = per_call_us(lambda _: engine.handle_chat(body), count)
    fresh = per_call_us(lambda i: engine.handle_chat(bodies[i]), count)
    request = parse_chat_request(decode_body(body))
    matcher = engine._matcher
    find = per_call_us(lambda _: matcher._search(request, None), count)  # no memory
    return f"{name:<18}{repeated:>12.1f}{fresh:>12.1f}{find:>12.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args(argv)
    print(f"{'set':<18}{'repeated µs':>12}{'distinct µs':>12}{'match µs':>12}{'replay µs':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        eq = root / "equalities"
        eq.mkdir()
        (eq / "bench.yaml").write_text(payloads.scenario_yaml())
        print(measure("equalities-100", eq, payloads.non_stream_request(), args.requests))
        for name, make in sets.SETS.items():
            folder = root / name
            folder.mkdir()
            written = make(folder)
            row = measure(name, folder, written.body, args.requests)
            if written.replay:
                row += f"{replay_us(folder, written.replay):>12.1f}"
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
