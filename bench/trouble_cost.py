"""What faults and rate limits cost a request that they leave alone (microseconds, in process).

It times `MockEngine.handle_chat` on the load benchmark's request (the last of 100 scenarios,
the same body every time, so the engine's memo serves it, where any added cost shows most):

- `none`: no faults, no limits, instant timing (the engine keeps no `Trouble` at all);
- `2 faults`: one server-wide HTTP fault (probability 1e-12) and a stall on every scenario
  (`every: 10^9`): what a suite that sets a fault or two pays;
- `8 faults`: six server-wide faults and two on every scenario, none firing (a probability of
  1e-12, so each still draws, or a request number never reached);
- `limits`: `--rate-limit rpm=10^12,tpm=10^12` (every request counted, none refused).

Rounds interleave the configurations and the best round of each is kept (many short rounds:
the best of them is the one the machine's other load disturbed least).

    python bench/trouble_cost.py [--requests 5000] [--rounds 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import load_payloads as payloads

from mockserver.engine import EngineConfig, MockEngine
from mockserver.faults import load_faults
from mockserver.ratelimit import RateLimit
from mockserver.scenarios import load_scenarios

SERVER_FAULTS = """
faults:
  - {fault: http, status: 503, probability: 1.0e-12}
  - {fault: reset, probability: 1.0e-12}
  - {fault: stall, on_requests: [1000000000]}
  - {fault: malformed, every: 1000000000}
  - {fault: dribble, probability: 1.0e-12}
  - {fault: bad_tool_arguments, probability: 1.0e-12}
"""
SCENARIO_FAULTS = (
    "    faults: [{fault: http, status: 500, probability: 1.0e-12}, "
    "{fault: split_utf8, on_requests: [1000000000]}]\n"
)


SERVER_RPS = 26_780
BARE_RPS = 33_268
"""The README's load figures: mockserver, 100 scenarios, the last matching; the bare stack."""


def points(added_us: float) -> float:
    """Points of the mockserver / bare-stack ratio lost when each request costs `added_us` more."""
    slower = 1 / (1 / SERVER_RPS + added_us / 1e6)
    return (SERVER_RPS - slower) / BARE_RPS * 100


def with_scenario_faults(yaml: str) -> str:
    """Every scenario of the load benchmark's file, with two faults that never fire."""
    return yaml.replace("    reply:", SCENARIO_FAULTS + "    reply:")


def per_call_us(engine: MockEngine, body: bytes, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        engine.handle_chat(body)
    return (time.perf_counter() - started) / count * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    body = payloads.non_stream_request()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "plain").mkdir()
        (root / "plain" / "bench.yaml").write_text(payloads.scenario_yaml())
        (root / "faulty").mkdir()
        (root / "faulty" / "bench.yaml").write_text(with_scenario_faults(payloads.scenario_yaml()))
        (root / "faults.yaml").write_text(SERVER_FAULTS)
        (root / "one").mkdir()
        (root / "one" / "bench.yaml").write_text(
            payloads.scenario_yaml().replace(
                "    reply:", "    faults: [{fault: stall, every: 1000000000}]\n    reply:"
            )
        )
        plain, faulty = load_scenarios([root / "plain"]), load_scenarios([root / "faulty"])
        one_each = load_scenarios([root / "one"])
        server_faults = load_faults(root / "faults.yaml")
    engines = {
        "none": MockEngine(plain, EngineConfig(seed=1, journal_size=1000)),
        "2 faults": MockEngine(
            one_each, EngineConfig(seed=1, journal_size=1000, faults=server_faults[:1])
        ),
        "8 faults": MockEngine(
            faulty, EngineConfig(seed=1, journal_size=1000, faults=server_faults)
        ),
        "limits": MockEngine(
            plain,
            EngineConfig(
                seed=1, journal_size=1000, rate_limits=(RateLimit(10**12, 10**12, "key"),)
            ),
        ),
    }
    best: dict[str, float] = {}
    for engine in engines.values():
        if engine.handle_chat(body).status != 200:
            raise SystemExit("the benchmark request was not answered 200")
        per_call_us(engine, body, 2000)  # warm the memo
    for _ in range(args.rounds):
        for name, engine in engines.items():
            us = per_call_us(engine, body, args.requests)
            best[name] = min(best.get(name, us), us)
    faults = [e.fault for name in engines for e in engines[name].journal]
    if any(faults):
        raise SystemExit(f"a fault fired: {set(faults)}")
    base = best["none"]
    print(f"{'configuration':<14}{'µs/request':>12}{'added µs':>10}{'ratio points':>14}")
    for name, us in best.items():
        print(f"{name:<14}{us:>12.2f}{us - base:>10.2f}{points(us - base):>14.2f}")
    print(
        f"ratio points: what the added µs would cost the load benchmark's ratio, from the "
        f"README's figures ({SERVER_RPS:,} req/s against the bare stack's {BARE_RPS:,})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
