"""In-process and fixture benchmark for mockserver (a script, not a test).

In one run it measures:

  sdk3-mockserver     per call, openai 3.x `chat.completions.create` answered in process by
                      mockserver (the `mockserver` fixture's path: httpx2's transport patched,
                      the engine parsing, matching and encoding the reply)
  sdk3-bare           the same call through a bare `httpx2.MockTransport` returning the same
                      fixed JSON bytes: the floor, nearly all of it the SDK itself
  server start/stop   `mockserver_session_server`'s BackgroundServer, cold (first in a fresh
                      process) and warm
  per-test reset      what `mockserver_server` does before each test (a fresh engine swapped
                      into the running server), and `engine.reset()`
  inprocess start/stop  the `mockserver` fixture's patching, per test
  sdk2-*              where `.venv-openai2` exists (see tests/test_inprocess_openai2.py): openai
                      2.x through mockserver (respx), through the `openai-responses` plugin, and
                      through a bare `httpx.MockTransport`

    python bench/inprocess.py [--calls 1500] [--rounds 5] [--json bench/results/inprocess.json]

Targets: sdk3-mockserver <= 1.15x sdk3-bare; start and stop < 5 ms; per-test reset < 1 ms.

Per-call figures are CPU time (`time.thread_time`) of the best of alternating rounds: on a
shared 2-core machine the wall clock moves by +-30% with other work, CPU time by about 1%.
The median wall clock is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
import openai  # noqa: E402

from mockserver.app import create_app  # noqa: E402
from mockserver.engine import EngineConfig, MockEngine  # noqa: E402
from mockserver.inprocess import InProcessMock  # noqa: E402
from mockserver.scenarios import ScenarioSet, load_scenarios, load_text  # noqa: E402
from mockserver.server import BackgroundServer  # noqa: E402

SCENARIO = """
version: 1
scenarios:
  - name: hello
    match: {last_user_message: hello}
    reply: {content: "Hello! How can I help you today?"}
"""
MESSAGES = [{"role": "user", "content": "hello"}]
OPENAI2 = ROOT / ".venv-openai2" / "bin" / "python"


def per_call(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    """Seconds per call over `calls` calls: (CPU time of this thread, wall clock)."""
    cpu, wall = time.thread_time(), time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.thread_time() - cpu) / calls, (time.perf_counter() - wall) / calls


def interleaved(
    candidates: dict[str, Callable[[], object]], calls: int, rounds: int
) -> dict[str, float]:
    """Per call, in alternating rounds: the best round's CPU time (`name`), which other work on
    the machine barely moves, and the median round's wall clock (`name-wall`)."""
    for fn in candidates.values():
        per_call(fn, max(50, calls // 10))  # warm up
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            samples[name].append(per_call(fn, calls))
    out: dict[str, float] = {}
    for name, values in samples.items():
        out[name] = min(cpu for cpu, _ in values)
        out[f"{name}-wall"] = statistics.median(wall for _, wall in values)
    return out


def sdk3(calls: int, rounds: int) -> dict[str, float]:
    engine = MockEngine(load_text(SCENARIO), EngineConfig(seed=1))
    fixed = engine.handle(
        "POST",
        "/v1/chat/completions",
        json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES}).encode(),
    )
    engine.reset()

    def bare_handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=fixed.headers, content=fixed.body)

    bare = openai.OpenAI(
        api_key="sk-bench",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(bare_handler)),
    )
    ours = openai.OpenAI(api_key="sk-bench", max_retries=0, http_client=httpx2.Client())

    def call_bare() -> object:
        return bare.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def call_ours() -> object:
        return ours.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    with InProcessMock(engine):
        assert call_ours().choices[0].message.content == call_bare().choices[0].message.content
        result = interleaved({"sdk3-bare": call_bare, "sdk3-mockserver": call_ours}, calls, rounds)
        engine.reset()
    return result


COLD = """
import json, time
t0 = time.perf_counter()
from mockserver.app import create_app
from mockserver.engine import MockEngine
from mockserver.scenarios import ScenarioSet
from mockserver.server import BackgroundServer
imported = time.perf_counter()
server = BackgroundServer(create_app(MockEngine(ScenarioSet()))).start()
started = time.perf_counter()
server.stop()
stopped = time.perf_counter()
print(json.dumps({"import": imported - t0, "start": started - imported, "stop": stopped - started}))
"""


def server_start_stop(repeats: int = 30) -> dict[str, float]:
    cold = json.loads(
        subprocess.run(
            [sys.executable, "-c", COLD], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    )
    starts, stops = [], []
    for _ in range(repeats):
        begin = time.perf_counter()
        server = BackgroundServer(create_app(MockEngine(ScenarioSet()))).start()
        started = time.perf_counter()
        with httpx2.Client() as client:  # an idle keep-alive connection, as a test leaves
            client.get(server.url + "/models")
            before_stop = time.perf_counter()
            server.stop()
            stopped = time.perf_counter()
        starts.append(started - begin)
        stops.append(stopped - before_stop)
    return {
        "server-start-cold": cold["start"],
        "server-stop-cold": cold["stop"],
        "server-start": statistics.median(starts),
        "server-start-max": max(starts),
        "server-stop": statistics.median(stops),
        "server-stop-max": max(stops),
    }


def resets(repeats: int = 500) -> dict[str, float]:
    scenarios = load_scenarios([ROOT / "scenarios"])
    config = EngineConfig(seed=1)
    server = BackgroundServer(create_app(MockEngine(ScenarioSet()))).start()
    try:
        swaps = []
        for _ in range(repeats):
            begin = time.perf_counter()
            engine = MockEngine(scenarios, config)  # what `mockserver_server` builds per test
            server.app = create_app(engine)
            swaps.append(time.perf_counter() - begin)
    finally:
        server.stop()
    engine = MockEngine(scenarios, config)
    clears = []
    for _ in range(repeats):
        begin = time.perf_counter()
        engine.reset()
        clears.append(time.perf_counter() - begin)
    patches = []
    for _ in range(repeats // 5):
        begin = time.perf_counter()
        with InProcessMock(engine):
            pass
        patches.append(time.perf_counter() - begin)
    return {
        "per-test-reset": statistics.median(swaps),
        "per-test-reset-max": max(swaps),
        "engine-reset": statistics.median(clears),
        "inprocess-start-stop": statistics.median(patches),
        "scenarios": len(scenarios.scenarios),
    }


SDK2 = """
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import httpx, openai
from openai_responses import OpenAIMock
from mockserver.engine import EngineConfig, MockEngine
from mockserver.inprocess import InProcessMock
from mockserver.scenarios import load_text

calls, rounds = int(sys.argv[2]), int(sys.argv[3])
messages = [{"role": "user", "content": "hello"}]
engine = MockEngine(load_text(sys.stdin.read()), EngineConfig(seed=1))
body = json.dumps({"model": "gpt-4o-mini", "messages": messages}).encode()
fixed = engine.handle("POST", "/v1/chat/completions", body)
fixed_response = lambda request: httpx.Response(200, headers=fixed.headers, content=fixed.body)
transport = httpx.MockTransport(fixed_response)
bare = openai.OpenAI(api_key="k", max_retries=0, http_client=httpx.Client(transport=transport))
client = openai.OpenAI(api_key="k", max_retries=0)
theirs = OpenAIMock()
theirs.chat.completions.create.response = {"choices": [{"index": 0, "finish_reason": "stop",
    "message": {"role": "assistant", "content": "Hello! How can I help you today?"}}]}
ours = InProcessMock(engine)

def per_call(c):
    start = time.thread_time()
    for _ in range(calls):
        c.chat.completions.create(model="gpt-4o-mini", messages=messages)
    return (time.thread_time() - start) / calls

samples = {"sdk2-bare": [], "sdk2-mockserver": [], "sdk2-openai-responses": []}
for r in range(rounds + 1):  # the first round warms up
    got = {"sdk2-bare": per_call(bare)}
    with ours:
        got["sdk2-mockserver"] = per_call(client)
        engine.reset()
    with theirs.router:
        got["sdk2-openai-responses"] = per_call(client)
    for name, value in got.items():
        if r:
            samples[name].append(value)
result = {name: min(values) for name, values in samples.items()}
result["openai2"] = openai.__version__
print(json.dumps(result))
"""


def sdk2(calls: int, rounds: int) -> dict[str, float] | str:
    if not OPENAI2.exists():
        build = "python tests/test_inprocess_openai2.py --build"
        return f"skipped: {OPENAI2.parent.parent.name} not found ({build})"
    done = subprocess.run(
        [str(OPENAI2), "-c", SDK2, str(ROOT), str(calls), str(rounds)],
        input=SCENARIO,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        return "failed: " + done.stderr.strip().splitlines()[-1]
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1500, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per candidate")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    results: dict[str, object] = {"openai": openai.__version__, "httpx2": httpx2.__version__}
    results.update(sdk3(args.calls, args.rounds))
    results.update(server_start_stop())
    results.update(resets())
    side = sdk2(max(200, args.calls // 3), args.rounds)
    if isinstance(side, dict):
        results.update(side)
    else:
        results["sdk2"] = side

    def ms(key: str) -> str:
        value = results.get(key)
        return f"{value * 1000:8.3f} ms" if isinstance(value, float) else "       n/a"

    ratio = results["sdk3-mockserver"] / results["sdk3-bare"]  # type: ignore[operator]
    wall_ratio = results["sdk3-mockserver-wall"] / results["sdk3-bare-wall"]  # type: ignore[operator]
    lines = [
        f"openai {results['openai']} (httpx2 {results['httpx2']}), "
        f"{args.rounds} rounds x {args.calls} calls; per call: CPU time of the best round "
        "(wall clock, median round)",
        f"  sdk3-bare (httpx2.MockTransport, fixed JSON) {ms('sdk3-bare')} "
        f"({ms('sdk3-bare-wall')})",
        f"  sdk3-mockserver (in process)                  {ms('sdk3-mockserver')} "
        f"({ms('sdk3-mockserver-wall')})   ratio {ratio:.3f}x (target <= 1.15x), wall "
        f"{wall_ratio:.3f}x",
        "BackgroundServer (the mockserver_session_server fixture)",
        f"  start, cold (first in a process)             {ms('server-start-cold')}",
        f"  stop, cold                                   {ms('server-stop-cold')}",
        f"  start, warm: median / max                    {ms('server-start')} /"
        f"{ms('server-start-max')}   (target < 5 ms)",
        f"  stop with an idle keep-alive: median / max   {ms('server-stop')} /"
        f"{ms('server-stop-max')}   (target < 5 ms)",
        f"Per test ({results['scenarios']} scenarios from scenarios/)",
        f"  mockserver_server reset (new engine + swap)  {ms('per-test-reset')} /"
        f"{ms('per-test-reset-max')} max   (target < 1 ms)",
        f"  engine.reset()                               {ms('engine-reset')}",
        f"  mockserver fixture patch start + stop        {ms('inprocess-start-stop')}",
    ]
    if "sdk2-bare" in results:
        theirs = results["sdk2-openai-responses"] / results["sdk2-mockserver"]  # type: ignore[operator]
        ours2 = results["sdk2-mockserver"] / results["sdk2-bare"]  # type: ignore[operator]
        lines += [
            f"openai {results['openai2']} in .venv-openai2 (httpx, respx)",
            f"  sdk2-bare (httpx.MockTransport)              {ms('sdk2-bare')}",
            f"  sdk2-mockserver (in process, respx)          {ms('sdk2-mockserver')}"
            f"   ratio {ours2:.3f}x",
            f"  sdk2-openai-responses                        {ms('sdk2-openai-responses')}"
            f"   {theirs:.2f}x mockserver's time",
        ]
    else:
        lines.append(f"openai 2.x: {results['sdk2']}")
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    main()
