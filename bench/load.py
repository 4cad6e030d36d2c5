"""Load benchmark for mockserver (owned by bench/: a script, not a test).

In one sitting and under the same wrk load it measures requests/s and p50/p99 latency of

  mockserver          `mockserver serve DIR --port 0 --seed 1`, non-streaming, matching the last
                      of 100 scenarios
  mockserver-stream   the same server, `"stream": true`, a 50-chunk reply without delays
  mockserver-mixed    the same server, a request of 5 messages of mixed parts (image, tool call
                      and result, audio, file) matching the same scenario
  mockserver-distinct, mockserver-mixed-distinct
                      the plain and the mixed request with a counter in `user`, so no two
                      bodies are equal and mockserver's per-body memory never helps
  mockserver-nosessions
                      bench/nosessions_app.py: the same server with the session seam taken
                      out of the ASGI app, for what sessions cost a request without one
  bare-uvloop         bench/bare_app.py: Starlette + uvicorn (uvloop, httptools), a fixed reply;
                      the ceiling of mockserver's stack
  bare-asyncio        the same app on asyncio + h11, for context
  wiremock            WireMock standalone (Java, jar from npm) with one stub, same fixed reply,
                      tuned for speed (its request journal off, fewer threads: see load_wiremock)
  wiremock-default    the same WireMock with its default flags (it journals every request, as
                      mockserver does)

plus mockserver's startup time (spawn to first answered chat completion), and prints the ratios
against their goals. Every target is verified with one real request before it is measured.

    python bench/load.py [--duration 10] [--connections 32] [--json bench/results/run.json]

See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import load_payloads as payloads
import load_procs as procs
import load_report as report
import load_sets as sets
import load_verify as verify
import load_wiremock as wiremock
import load_wrk as wrk
from load_procs import BenchError, Server
from load_report import FAILED, OK, SKIPPED, StartupResult, TargetResult

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
BARE_APP = BENCH_DIR / "bare_app.py"
NOSESSIONS_APP = BENCH_DIR / "nosessions_app.py"

MOCKSERVER = "mockserver"
MOCKSERVER_STREAM = "mockserver-stream"
MOCKSERVER_MIXED = "mockserver-mixed"
MOCKSERVER_DISTINCT = "mockserver-distinct"
MOCKSERVER_MIXED_DISTINCT = "mockserver-mixed-distinct"
MOCKSERVER_TARGETS = (
    MOCKSERVER,
    MOCKSERVER_STREAM,
    MOCKSERVER_MIXED,
    MOCKSERVER_DISTINCT,
    MOCKSERVER_MIXED_DISTINCT,
)
SET_TARGETS = tuple(n for name in sets.SETS for n in (name, f"{name}-distinct"))
VARIANT_TARGETS = ("responses", "responses-stream", "mockserver-vllm", "mockserver-faults")
NOSESSIONS = "mockserver-nosessions"
BARE_UVLOOP = "bare-uvloop"
BARE_ASYNCIO = "bare-asyncio"
WIREMOCK = "wiremock"
WIREMOCK_DEFAULT = "wiremock-default"
STARTUP = "startup"
TARGETS = (
    *MOCKSERVER_TARGETS,
    *VARIANT_TARGETS,
    NOSESSIONS,
    *SET_TARGETS,
    BARE_UVLOOP,
    BARE_ASYNCIO,
    WIREMOCK,
    WIREMOCK_DEFAULT,
    STARTUP,
)

DESCRIPTIONS = {
    MOCKSERVER: "mockserver, non-streaming, last of 100 scenarios",
    MOCKSERVER_STREAM: "mockserver, stream: true, 50 content chunks",
    MOCKSERVER_MIXED: "mockserver, 5 messages of mixed parts",
    MOCKSERVER_DISTINCT: "mockserver, every body different",
    MOCKSERVER_MIXED_DISTINCT: "mockserver, mixed parts, every body different",
    BARE_UVLOOP: "bare Starlette+uvicorn, uvloop+httptools",
    BARE_ASYNCIO: "bare Starlette+uvicorn, asyncio+h11",
    WIREMOCK: "WireMock standalone, one stub, tuned",
    WIREMOCK_DEFAULT: "WireMock standalone, one stub, default flags",
}
DESCRIPTIONS.update(
    {name: f"mockserver, {name} set, request matches the last" for name in sets.SETS}
    | {f"{name}-distinct": f"mockserver, {name} set, every body different" for name in sets.SETS}
)
DESCRIPTIONS.update(
    {
        "responses": "mockserver, POST /v1/responses, the last of 100 scenarios",
        "responses-stream": "mockserver, POST /v1/responses streamed, 50 content deltas",
        "mockserver-vllm": "mockserver --profile vllm, the last of 100 scenarios",
        "mockserver-faults": "mockserver --faults (8 faults, none firing), the last of 100",
        NOSESSIONS: "mockserver without the session seam (bench/nosessions_app.py)",
    }
)
BARE_STACKS = {BARE_UVLOOP: ("uvloop", "httptools"), BARE_ASYNCIO: ("asyncio", "h11")}

READY_TIMEOUT_S = 30.0
JVM_READY_TIMEOUT_S = 120.0
STARTUP_POLL_S = 0.002
BUSY_LOAD_AVG = 0.5  # 1-minute load average above which other work skews the numbers


@dataclass(frozen=True)
class Config:
    """Everything a run depends on, fixed before the first target starts."""

    targets: tuple[str, ...]
    load: wrk.WrkSettings
    warmup_s: int
    jvm_warmup_s: int
    startup_runs: int
    rounds: int
    server_cpu: int | None
    wrk_cpu: int | None
    mockserver_cmd: tuple[str, ...]
    wiremock_version: str
    wiremock_flags: tuple[str, ...]
    java_opts: tuple[str, ...]
    cache_dir: Path
    work_dir: Path
    scenario_dir: Path
    non_stream_body: Path
    stream_body: Path
    mixed_body: Path
    distinct_body: Path
    mixed_distinct_body: Path
    sets: dict[str, SetInputs]


@dataclass(frozen=True)
class SetInputs:
    """A scenario set's folder, the request matching its last scenario (and its distinct-body
    form), and the content the answer carries."""

    folder: Path
    body: Path
    distinct_body: Path
    content: str


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- command line


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def target_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown target(s) {unknown}; pick from {TARGETS}")
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load benchmark: mockserver vs a bare Starlette app vs WireMock (wrk).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--duration", type=positive, default=10, help="measured seconds per target")
    add("--connections", type=positive, default=32, help="wrk connections (-c)")
    add("--threads", type=positive, default=1, help="wrk threads (-t)")
    add("--timeout", type=positive, default=2, help="wrk request timeout, seconds")
    add("--warmup", type=not_negative, default=3, help="wrk warm-up seconds before measuring")
    add("--jvm-warmup", type=not_negative, default=60, help="warm-up seconds for WireMock (JIT)")
    add("--rounds", type=positive, default=3, help="interleaved measured runs per target (median)")
    add("--startup-runs", type=positive, default=5, help="startup measurements (median reported)")
    add("--targets", type=target_list, default=",".join(TARGETS), help="comma-separated subset")
    add("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    add("--no-pin", action="store_true", help="do not pin server and wrk to CPUs (taskset)")
    add("--server-cpu", type=int, help="CPU for the servers (None: the first usable CPU)")
    add("--wrk-cpu", type=int, help="CPU for wrk (None: the second usable CPU)")
    add("--mockserver-cmd", default=f"{sys.executable} -m mockserver", help="how to run it")
    add("--wiremock-version", default=wiremock.VERSION, help="npm version of `wiremock`")
    add("--wiremock-flags", default=shlex.join(wiremock.TUNING_FLAGS), help="tuning flags")
    add("--java-opts", default="", help="extra JVM options for WireMock, e.g. -Xmx512m")
    add("--cache-dir", type=Path, default=BENCH_DIR / ".cache", help="where the jar goes")
    add("--strict", action="store_true", help="exit 1 when a ratio misses its goal")
    return parser.parse_args(argv)


def pinning(args: argparse.Namespace) -> tuple[int | None, int | None]:
    if args.no_pin:
        return None, None
    defaults = procs.default_cpus()
    if defaults is None:
        log("not pinning CPUs (needs taskset and two usable CPUs)")
        return None, None
    server = defaults[0] if args.server_cpu is None else args.server_cpu
    client = defaults[1] if args.wrk_cpu is None else args.wrk_cpu
    return server, client


def write_inputs(work_dir: Path) -> tuple[Path, dict[str, Path]]:
    """The generated scenario directory, and the request body files wrk sends, by name."""
    scenario_dir = work_dir / "scenarios"
    scenario_dir.mkdir()
    (scenario_dir / "bench.yaml").write_text(payloads.scenario_yaml())
    bodies = {
        "non_stream": payloads.non_stream_request(),
        "stream": payloads.stream_request(),
        "mixed": payloads.mixed_request(),
        "distinct": payloads.distinct(payloads.non_stream_request()),
        "mixed_distinct": payloads.distinct(payloads.mixed_request()),
    }
    files = {}
    for name, body in bodies.items():
        files[name] = work_dir / f"{name}.json"
        files[name].write_bytes(body)
    return scenario_dir, files


def write_sets(work_dir: Path, wanted: Sequence[str]) -> dict[str, SetInputs]:
    """The scenario sets (load_sets) that some wanted target uses, each in its own folder."""
    out: dict[str, SetInputs] = {}
    for name, make in sets.SETS.items():
        if name not in wanted and f"{name}-distinct" not in wanted:
            continue
        folder = work_dir / "sets" / name
        folder.mkdir(parents=True)
        log(f"{name}: writing the scenario set")
        written = make(folder)
        body, distinct = work_dir / f"{name}.json", work_dir / f"{name}-distinct.json"
        body.write_bytes(written.body)
        distinct.write_bytes(payloads.distinct(written.body))
        out[name] = SetInputs(folder, body, distinct, written.content)
    return out


def make_config(args: argparse.Namespace, work_dir: Path) -> Config:
    server_cpu, wrk_cpu = pinning(args)
    scenario_dir, bodies = write_inputs(work_dir)
    return Config(
        targets=args.targets,
        load=wrk.WrkSettings(args.threads, args.connections, args.duration, args.timeout),
        warmup_s=args.warmup,
        jvm_warmup_s=args.jvm_warmup,
        startup_runs=args.startup_runs,
        rounds=args.rounds,
        server_cpu=server_cpu,
        wrk_cpu=wrk_cpu,
        mockserver_cmd=tuple(shlex.split(args.mockserver_cmd)),
        wiremock_version=args.wiremock_version,
        wiremock_flags=wiremock.split_flags(args.wiremock_flags),
        java_opts=tuple(shlex.split(args.java_opts)),
        cache_dir=args.cache_dir.resolve(),
        work_dir=work_dir,
        scenario_dir=scenario_dir,
        non_stream_body=bodies["non_stream"],
        stream_body=bodies["stream"],
        mixed_body=bodies["mixed"],
        distinct_body=bodies["distinct"],
        mixed_distinct_body=bodies["mixed_distinct"],
        sets=write_sets(
            work_dir, (*args.targets, *((sets.BIG,) if STARTUP in args.targets else ()))
        ),
    )


# --------------------------------------------------------------------------- servers


@contextlib.contextmanager
def running(
    cfg: Config, name: str, cmd: Sequence[str], cwd: Path | None = None
) -> Iterator[Server]:
    """A server pinned to the server CPU, stopped (whole process group) on the way out."""
    server = procs.spawn(name, [*procs.pin_prefix(cfg.server_cpu), *cmd], cfg.work_dir, cwd=cwd)
    try:
        yield server
    finally:
        procs.stop(server.proc)


def origin(base_url: str) -> str:
    """http://host:port of a base URL such as http://host:port/v1."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


def ready_url(server: Server) -> str:
    """Wait for the printed base URL and a 200 from GET /health; return the completions URL."""
    base = procs.wait_for_url(server, READY_TIMEOUT_S)
    procs.wait_for_health(server, f"{origin(base)}/health", READY_TIMEOUT_S)
    return f"{base}/chat/completions"


def mockserver_serve(cfg: Config, folder: Path | None = None) -> list[str]:
    where = str(folder or cfg.scenario_dir)
    return [*cfg.mockserver_cmd, "serve", where, "--port", "0", "--seed", "1"]


def bare_app_cmd(name: str) -> list[str]:
    loop, http = BARE_STACKS[name]
    return [sys.executable, str(BARE_APP), "--port", "0", "--loop", loop, "--http", http]


def mockserver_missing(cfg: Config) -> str | None:
    """Why the mockserver CLI cannot be benchmarked yet, or None when `serve --help` works."""
    cmd = [*cfg.mockserver_cmd, "serve", "--help"]
    try:
        done = procs.run_captured(cmd, cwd=REPO_ROOT, timeout_s=60)
    except (OSError, BenchError) as err:
        return f"mockserver CLI not available yet ({shlex.join(cmd)}: {err})"
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    last = lines[-1] if lines else "no output"
    return f"mockserver CLI not available yet ({shlex.join(cmd)} exited {done.returncode}: {last})"


# --------------------------------------------------------------------------- measuring


@dataclass
class Live:
    """A verified, warmed-up target whose server is running, and its measured rounds."""

    name: str
    server: Server
    url: str
    body: Path
    reply_bytes: int
    warmup_s: int
    script: Path = wrk.LUA_SCRIPT
    rounds: list[wrk.WrkResult] = field(default_factory=list)
    error: str = ""


def skipped(name: str, reason: str) -> TargetResult:
    return TargetResult(name, DESCRIPTIONS[name], SKIPPED, reason)


def failed(name: str, err: Exception | str) -> TargetResult:
    log(f"!!! {name} FAILED: {err}")
    return TargetResult(name, DESCRIPTIONS[name], FAILED, str(err))


def load_once(cfg: Config, live: Live, duration_s: int) -> wrk.WrkResult:
    """One wrk run; any non-2xx reply, socket error or dead server is a BenchError."""
    res = wrk.run_wrk(live.url, live.body, cfg.load, duration_s, cfg.wrk_cpu, live.script)
    if live.server.proc.poll() is not None:
        raise live.server.failure(f"exited with {live.server.proc.returncode} during the load")
    hard_errors = {k: v for k, v in res.socket_errors.items() if v and k != "timeout"}
    if res.non_2xx or hard_errors:
        raise BenchError(f"{res.non_2xx} non-2xx replies, socket errors {hard_errors or 'none'}")
    return res


def warm_up(cfg: Config, live: Live) -> Live:
    if live.warmup_s > 0:
        log(f"{live.name}: warm-up {live.warmup_s}s")
        load_once(cfg, live, live.warmup_s)
    return live


class Session:
    """Targets of one run: started and verified first, then measured in interleaved rounds."""

    def __init__(self, cfg: Config, stack: contextlib.ExitStack) -> None:
        self.cfg = cfg
        self.stack = stack
        self.live: list[Live] = []
        self.finished: dict[str, TargetResult] = {}
        self.variant_servers: dict[tuple[str, ...], Server] = {}

    def start(self, name: str, cmd: Sequence[str], cwd: Path | None = None) -> Server:
        """A pinned server that runs until the session ends."""
        return self.stack.enter_context(running(self.cfg, name, cmd, cwd))

    def add(self, name: str, prepare: Callable[[], Live]) -> None:
        """Start/verify/warm one target; an error marks it failed, loudly."""
        try:
            self.live.append(warm_up(self.cfg, prepare()))
        except (BenchError, OSError) as err:  # OSError: e.g. the admin API refused the stub
            self.finished[name] = failed(name, err)

    def skip(self, names: Sequence[str], reason: str) -> None:
        for name in names:
            self.finished[name] = skipped(name, reason)

    def measure(self) -> None:
        """cfg.rounds rounds; each round loads every live target once, in turn."""
        for index in range(self.cfg.rounds):
            for live in self.live:
                if live.error:
                    continue
                log(
                    f"{live.name}: round {index + 1}/{self.cfg.rounds}, {self.cfg.load.duration_s}s"
                )
                try:
                    res = load_once(self.cfg, live, self.cfg.load.duration_s)
                except BenchError as err:
                    live.error = str(err)
                    log(f"!!! {live.name} FAILED: {err}")
                    continue
                live.rounds.append(res)
                log(
                    f"{live.name}: {res.requests_per_s:,.0f} req/s, p50 {res.p50_ms:.2f} ms, "
                    f"p99 {res.p99_ms:.2f} ms"
                )

    def results(self) -> list[TargetResult]:
        done = dict(self.finished)
        done.update((live.name, summarize(live)) for live in self.live)
        return [done[name] for name in TARGETS if name in done]


def summarize(live: Live) -> TargetResult:
    """The median round by req/s (its own p50/p99 with it), and every round's req/s."""
    if live.error:
        return TargetResult(live.name, DESCRIPTIONS[live.name], FAILED, live.error)
    ranked = sorted(live.rounds, key=lambda res: res.requests_per_s)
    median = ranked[len(ranked) // 2]  # the upper median when the count is even
    timeouts = sum(res.socket_errors.get("timeout", 0) for res in live.rounds)
    return TargetResult(
        name=live.name,
        description=DESCRIPTIONS[live.name],
        status=OK,
        reason=f"{timeouts} wrk timeouts" if timeouts else "",
        requests_per_s=median.requests_per_s,
        p50_ms=median.p50_ms,
        p99_ms=median.p99_ms,
        requests=median.requests,
        reply_bytes=live.reply_bytes,
        warmup_s=live.warmup_s,
        rounds_rps=[res.requests_per_s for res in live.rounds],
        socket_errors=median.socket_errors,
    )


def verified_completion(name: str, url: str, cfg: Config, body: Path | None = None) -> int:
    want = payloads.answer(payloads.LAST_INDEX)
    sent = (body or cfg.non_stream_body).read_bytes().replace(payloads.COUNTER.encode(), b"0")
    size = verify.check_completion(url, sent, want)
    log(f"{name}: verified (chat.completion {want!r}, {size} bytes)")
    return size


def verified_stream(name: str, url: str, cfg: Config) -> int:
    size = verify.check_stream(url, cfg.stream_body.read_bytes(), payloads.STREAM_WORDS)
    log(f"{name}: verified ({payloads.STREAM_CHUNKS} content chunks + [DONE], {size} bytes)")
    return size


def prepare_mockserver(session: Session, server: Server, url: str, name: str) -> Live:
    cfg = session.cfg
    if name == MOCKSERVER_STREAM:
        size = verified_stream(name, url, cfg)
        return Live(name, server, url, cfg.stream_body, size, cfg.warmup_s)
    body, script = {
        MOCKSERVER: (cfg.non_stream_body, wrk.LUA_SCRIPT),
        MOCKSERVER_MIXED: (cfg.mixed_body, wrk.LUA_SCRIPT),
        MOCKSERVER_DISTINCT: (cfg.distinct_body, wrk.DISTINCT_LUA_SCRIPT),
        MOCKSERVER_MIXED_DISTINCT: (cfg.mixed_distinct_body, wrk.DISTINCT_LUA_SCRIPT),
    }[name]
    size = verified_completion(name, url, cfg, body)
    return Live(name, server, url, body, size, cfg.warmup_s, script)


def add_mockserver(session: Session, missing: str | None) -> None:
    """Every mockserver target, against one server process."""
    cfg = session.cfg
    wanted = [name for name in MOCKSERVER_TARGETS if name in cfg.targets]
    if not wanted or missing:
        session.skip(wanted, missing or "")
        return
    log(f"mockserver: starting {shlex.join(mockserver_serve(cfg))}")
    try:
        server = session.start(MOCKSERVER, mockserver_serve(cfg), cwd=REPO_ROOT)
        url = ready_url(server)
    except BenchError as err:
        for name in wanted:
            session.finished[name] = failed(name, err)
        return
    for name in wanted:
        session.add(name, partial(prepare_mockserver, session, server, url, name))


def prepare_set(session: Session, server: Server, url: str, name: str, inputs: SetInputs) -> Live:
    distinct = name.endswith("-distinct")
    body = inputs.distinct_body if distinct else inputs.body
    sent = body.read_bytes().replace(payloads.COUNTER.encode(), b"0")
    size = verify.check_completion(url, sent, inputs.content)
    log(f"{name}: verified (chat.completion {inputs.content!r}, {size} bytes)")
    script = wrk.DISTINCT_LUA_SCRIPT if distinct else wrk.LUA_SCRIPT
    return Live(name, server, url, body, size, session.cfg.warmup_s, script)


FAULTS_YAML = """faults:
""" + "".join(
    f"  - {{fault: {kind}, on_requests: [1000000000]}}\n"
    for kind in (
        "http, status: 503",
        "error_event",
        "reset",
        "stall",
        "malformed",
        "no_done",
        "duplicate",
        "split_json",
    )
)
"""Eight server-wide faults that never fire: what configured faults cost on the hot path."""


def variant_inputs(
    cfg: Config,
) -> dict[str, tuple[list[str], str, bytes, Callable[[str, bytes], int]]]:
    """Each variant target: the serve arguments added, the API path, the body, the check."""
    instructions = payloads.SYSTEM_PROMPT
    ask = {
        "model": payloads.MODEL,
        "instructions": instructions,
        "input": payloads.question(payloads.LAST_INDEX),
    }
    streamed = {
        "model": payloads.MODEL,
        "instructions": instructions,
        "input": payloads.STREAM_PROMPT,
        "stream": True,
    }
    want = payloads.answer(payloads.LAST_INDEX)
    faults = cfg.work_dir / "faults.yaml"
    faults.write_text(FAULTS_YAML)
    plain = cfg.non_stream_body.read_bytes()
    return {
        "responses": (
            [],
            "/responses",
            payloads.encode(ask),
            lambda u, b: verify.check_response(u, b, want),
        ),
        "responses-stream": (
            [],
            "/responses",
            payloads.encode(streamed),
            lambda u, b: verify.check_response_stream(u, b, payloads.STREAM_WORDS),
        ),
        "mockserver-vllm": (
            ["--profile", "vllm"],
            "/chat/completions",
            plain,
            lambda u, b: verify.check_completion(u, b, want),
        ),
        "mockserver-faults": (
            ["--faults", str(faults)],
            "/chat/completions",
            plain,
            lambda u, b: verify.check_completion(u, b, want),
        ),
    }


def add_variants(session: Session, missing: str | None) -> None:
    """The Responses API on the plain server's scenarios, and servers with a profile or faults."""
    cfg = session.cfg
    wanted = [n for n in VARIANT_TARGETS if n in cfg.targets]
    if not wanted or missing:
        session.skip(wanted, missing or "")
        return
    inputs = variant_inputs(cfg)
    servers: dict[tuple[str, ...], str] = {}
    for name in wanted:
        extra, path, body, check = inputs[name]
        key = tuple(extra)
        if key not in servers:
            cmd = [*mockserver_serve(cfg), *extra]
            log(f"{name}: starting {shlex.join(cmd)}")
            try:
                server = session.start(name, cmd, cwd=REPO_ROOT)
                servers[key] = ready_url(server).removesuffix("/chat/completions")
            except BenchError as err:
                session.finished[name] = failed(name, err)
                continue
            session.variant_servers[key] = server
        url = servers[key] + path
        body_file = cfg.work_dir / f"{name}.json"
        body_file.write_bytes(body)

        def prepare(
            name: str = name,
            url: str = url,
            body_file: Path = body_file,
            check: Callable[[str, bytes], int] = check,
            key: tuple[str, ...] = key,
        ) -> Live:
            size = check(url, body_file.read_bytes())
            log(f"{name}: verified ({size} bytes)")
            return Live(name, session.variant_servers[key], url, body_file, size, cfg.warmup_s)

        session.add(name, prepare)


def add_nosessions(session: Session, missing: str | None) -> None:
    """The plain mockserver target's server and request, the session seam taken out."""
    cfg = session.cfg
    if NOSESSIONS not in cfg.targets or missing:
        session.skip([NOSESSIONS] if NOSESSIONS in cfg.targets else [], missing or "")
        return
    command = cfg.mockserver_cmd
    python = command[0] if tuple(command[1:]) == ("-m", "mockserver") else sys.executable
    cmd = [python, str(NOSESSIONS_APP), *mockserver_serve(cfg)[len(command) :]]
    log(f"{NOSESSIONS}: starting {shlex.join(cmd)}")

    def prepare() -> Live:
        server = session.start(NOSESSIONS, cmd, cwd=REPO_ROOT)
        url = ready_url(server)
        size = verified_completion(NOSESSIONS, url, cfg)
        return Live(NOSESSIONS, server, url, cfg.non_stream_body, size, cfg.warmup_s)

    session.add(NOSESSIONS, prepare)


def add_sets(session: Session, missing: str | None) -> None:
    """Each scenario set on a server of its own: its repeated-body and distinct-body targets."""
    for set_name, inputs in session.cfg.sets.items():
        wanted = [n for n in (set_name, f"{set_name}-distinct") if n in session.cfg.targets]
        if not wanted or missing:
            session.skip(wanted, missing or "")
            continue
        cmd = mockserver_serve(session.cfg, inputs.folder)
        log(f"{set_name}: starting {shlex.join(cmd)}")
        try:
            server = session.start(set_name, cmd, cwd=REPO_ROOT)
            url = ready_url(server)
        except BenchError as err:
            for name in wanted:
                session.finished[name] = failed(name, err)
            continue
        for name in wanted:
            session.add(name, partial(prepare_set, session, server, url, name, inputs))


def prepare_bare(session: Session, name: str) -> Live:
    log(f"{name}: starting bench/bare_app.py")
    server = session.start(name, bare_app_cmd(name))
    url = ready_url(server)
    size = verified_completion(name, url, session.cfg)
    return Live(name, server, url, session.cfg.non_stream_body, size, session.cfg.warmup_s)


def prepare_wiremock(session: Session, name: str) -> Live:
    cfg = session.cfg
    jar = wiremock.install_jar(cfg.cache_dir, cfg.wiremock_version)
    port = procs.free_port()
    root = cfg.work_dir / name
    root.mkdir()
    flags = cfg.wiremock_flags if name == WIREMOCK else ()
    cmd = wiremock.command(jar, port, root, cfg.java_opts, flags)
    log(f"{name}: starting {shlex.join(cmd)}")
    server = session.start(name, cmd)
    base = f"http://127.0.0.1:{port}"
    procs.wait_for_health(server, f"{base}/__admin/health", JVM_READY_TIMEOUT_S)
    wiremock.register_stub(base, payloads.chat_completion_body())
    url = f"{base}/v1/chat/completions"
    size = verified_completion(name, url, cfg)
    return Live(name, server, url, cfg.non_stream_body, size, cfg.jvm_warmup_s)


def add_wiremock(session: Session) -> None:
    wanted = [name for name in (WIREMOCK, WIREMOCK_DEFAULT) if name in session.cfg.targets]
    if not wanted:
        return
    missing = wiremock.unavailable(session.cfg.cache_dir, session.cfg.wiremock_version)
    if missing:
        session.skip(wanted, missing)
        return
    for name in wanted:
        session.add(name, partial(prepare_wiremock, session, name))


def bench_load(cfg: Config, missing: str | None) -> list[TargetResult]:
    """Start and verify every target, warm each up, then measure them in rounds."""
    with contextlib.ExitStack() as stack:
        session = Session(cfg, stack)
        add_mockserver(session, missing)
        add_variants(session, missing)
        add_nosessions(session, missing)
        add_sets(session, missing)
        for name in (BARE_UVLOOP, BARE_ASYNCIO):
            if name in cfg.targets:
                session.add(name, partial(prepare_bare, session, name))
        add_wiremock(session)
        session.measure()
        return session.results()


# --------------------------------------------------------------------------- startup


def answered(host: str, port: int, body: bytes) -> bool:
    """One chat completion attempt on a fresh connection: True on a 200 chat.completion."""
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
    except OSError:
        return False
    finally:
        conn.close()
    return response.status == 200 and b'"chat.completion"' in data


def time_to_first_answer(
    cfg: Config, name: str, cmd: Sequence[str], cwd: Path | None, body_file: Path | None = None
) -> float:
    """Milliseconds from spawning cmd to its first answered chat completion (2 ms polling)."""
    body = (body_file or cfg.non_stream_body).read_bytes()
    started = time.perf_counter()
    with running(cfg, f"{name}-startup", cmd, cwd=cwd) as server:
        parts = urlsplit(procs.wait_for_url(server, READY_TIMEOUT_S))
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not answered(host, port, body):
            if server.proc.poll() is not None:
                raise server.failure(f"exited with {server.proc.returncode} before answering")
            if time.monotonic() > deadline:
                raise server.failure(f"no chat completion answered within {READY_TIMEOUT_S:.0f}s")
            time.sleep(STARTUP_POLL_S)
        return (time.perf_counter() - started) * 1000


def startup(
    cfg: Config, name: str, cmd: Sequence[str], cwd: Path | None, body_file: Path | None = None
) -> StartupResult:
    result = StartupResult(name, OK)
    try:
        for _ in range(cfg.startup_runs):
            result.runs_ms.append(time_to_first_answer(cfg, name, cmd, cwd, body_file))
    except BenchError as err:
        log(f"!!! startup of {name} FAILED: {err}")
        return StartupResult(name, FAILED, str(err), result.runs_ms)
    log(f"startup {name}: median {result.median_ms:.0f} ms over {cfg.startup_runs} runs")
    return result


def bench_startup(cfg: Config, missing: str | None) -> list[StartupResult]:
    """mockserver's startup time, and the bare app's as the floor of the stack (context)."""
    if STARTUP not in cfg.targets:
        return []
    bare = startup(cfg, BARE_UVLOOP, bare_app_cmd(BARE_UVLOOP), None)
    if missing:
        return [StartupResult(MOCKSERVER, SKIPPED, missing), bare]
    big = cfg.sets[sets.BIG]
    return [
        startup(cfg, MOCKSERVER, mockserver_serve(cfg), REPO_ROOT),
        startup(cfg, report.BIG_STARTUP, mockserver_serve(cfg, big.folder), REPO_ROOT, big.body),
        bare,
    ]


# --------------------------------------------------------------------------- report


def version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def meta(
    cfg: Config, results: Sequence[TargetResult], loads: tuple[float, float]
) -> dict[str, Any]:
    ran_wiremock = any(
        r.name in (WIREMOCK, WIREMOCK_DEFAULT) and r.status != SKIPPED for r in results
    )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average_at_start": loads[0],
        "load_average_at_end": loads[1],
        "rounds": cfg.rounds,
        "python": platform.python_version(),
        "versions": {p: version_of(p) for p in ("uvicorn", "starlette", "uvloop", "httptools")},
        "wrk": shlex.join(wrk.wrk_command("URL", cfg.load, cfg.load.duration_s, cfg.wrk_cpu)),
        "warmup_s": cfg.warmup_s,
        "jvm_warmup_s": cfg.jvm_warmup_s,
        "server_cpu": cfg.server_cpu,
        "wrk_cpu": cfg.wrk_cpu,
        "mockserver_cmd": shlex.join(mockserver_serve(cfg)),
        "wiremock": {
            "version": cfg.wiremock_version,
            "flags": list(cfg.wiremock_flags),
            "java_opts": list(cfg.java_opts),
            "java": wiremock.java_version() if ran_wiremock else None,
        },
    }


def busy_warning(load_avg: float) -> str | None:
    if load_avg <= BUSY_LOAD_AVG:
        return None
    return (
        f"WARNING: load average {load_avg:.2f} at start: other processes compete for the CPUs, "
        "numbers will be noisy (and multi-threaded WireMock wins CPU share from one-thread servers)"
    )


def header(cfg: Config, loads: tuple[float, float]) -> str:
    load = cfg.load
    pins = (
        f"servers on CPU {cfg.server_cpu}, wrk on CPU {cfg.wrk_cpu}"
        if cfg.server_cpu is not None
        else "no CPU pinning"
    )
    text = (
        f"mockserver load benchmark: wrk -t{load.threads} -c{load.connections} "
        f"-d{load.duration_s}s x {cfg.rounds} interleaved rounds (median shown), "
        f"warm-up {cfg.warmup_s}s (WireMock {cfg.jvm_warmup_s}s)\n"
        f"{pins}; 1-min load average {loads[0]:.2f} at start, {loads[1]:.2f} at end "
        "(the run itself adds ~2)"
    )
    warning = busy_warning(loads[0])
    return f"{text}\n{warning}" if warning else text


def exit_code(
    results: Sequence[TargetResult],
    startups: Sequence[StartupResult],
    ratios: Sequence[report.Ratio],
    strict: bool,
) -> int:
    """1 when a target failed, or (with --strict) when a ratio missed its goal; else 0."""
    statuses = [r.status for r in results] + [s.status for s in startups]
    if FAILED in statuses:
        return 1
    if strict and any(r.verdict == "FAIL" for r in ratios):
        return 1
    return 0


# --------------------------------------------------------------------------- main


def run(cfg: Config) -> tuple[list[TargetResult], list[StartupResult]]:
    missing = None
    if {*MOCKSERVER_TARGETS, *VARIANT_TARGETS, *SET_TARGETS, STARTUP} & set(cfg.targets):
        missing = mockserver_missing(cfg)
        if missing:
            log(f"skipping mockserver targets: {missing}")
    results = bench_load(cfg, missing)  # every server is stopped again before startup timing
    return results, bench_startup(cfg, missing)


def bench(args: argparse.Namespace) -> int:
    load_avg = os.getloadavg()[0]
    warning = busy_warning(load_avg)
    if warning:
        log(warning)
    with tempfile.TemporaryDirectory(prefix="mockserver-bench-") as tmp:
        cfg = make_config(args, Path(tmp))
        results, startups = run(cfg)
    loads = (load_avg, os.getloadavg()[0])
    ratios = report.all_ratios(results, startups)
    print(report.render(header(cfg, loads), results, startups, ratios), flush=True)
    if args.json:
        report.write_json(args.json, meta(cfg, results, loads), results, startups, ratios)
        log(f"wrote {args.json}")
    return exit_code(results, startups, ratios, args.strict)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing_wrk = wrk.wrk_missing()
    if missing_wrk:
        print(f"error: {missing_wrk}", file=sys.stderr)
        return 2
    procs.install_cleanup()
    try:
        return bench(args)
    except KeyboardInterrupt:
        log("interrupted; stopping servers")
        return 130
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
