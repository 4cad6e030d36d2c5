"""Run wrk (with bench/load_post.lua) against one URL and parse its `--latency` report."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from load_procs import BenchError, pin_prefix, run_captured

LUA_SCRIPT = Path(__file__).resolve().with_name("load_post.lua")
DISTINCT_LUA_SCRIPT = LUA_SCRIPT.with_name("load_post_distinct.lua")
INSTALL_HINT = "install it with: sudo apt-get install -y wrk   (Debian/Ubuntu)"

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_RPS_RE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL_RE = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_NON2XX_RE = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_RE = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass(frozen=True)
class WrkSettings:
    """The load, identical for every target."""

    threads: int
    connections: int
    duration_s: int
    timeout_s: int


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: dict[str, int]


def wrk_missing() -> str | None:
    """Why wrk cannot run, or None when it can."""
    if shutil.which("wrk") is None:
        return f"wrk not found on PATH; {INSTALL_HINT}"
    return None


def _latency_ms(text: str, percent: int) -> float:
    match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.MULTILINE)
    if match is None:
        raise BenchError(f"wrk output has no {percent}% latency line:\n{text}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_wrk(text: str) -> WrkResult:
    """Requests/sec, the 50%/99% latency lines, and the error counters of `wrk --latency`."""
    rps = _RPS_RE.search(text)
    total = _TOTAL_RE.search(text)
    if rps is None or total is None:
        raise BenchError(f"cannot parse wrk output:\n{text}")
    non_2xx = _NON2XX_RE.search(text)
    sockets = _SOCKET_RE.search(text)
    names = ("connect", "read", "write", "timeout")
    errors = {name: int(sockets.group(i + 1)) if sockets else 0 for i, name in enumerate(names)}
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        p50_ms=_latency_ms(text, 50),
        p99_ms=_latency_ms(text, 99),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=errors,
    )


def wrk_command(
    url: str,
    settings: WrkSettings,
    duration_s: int,
    cpu: int | None,
    script: Path = LUA_SCRIPT,
) -> list[str]:
    return [
        *pin_prefix(cpu),
        "wrk",
        f"-t{settings.threads}",
        f"-c{settings.connections}",
        f"-d{duration_s}s",
        f"--timeout={settings.timeout_s}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]


def run_wrk(
    url: str,
    body_file: Path,
    settings: WrkSettings,
    duration_s: int,
    cpu: int | None,
    script: Path = LUA_SCRIPT,
) -> WrkResult:
    """POST body_file's bytes to url for duration_s seconds; parse the report."""
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
    cmd = wrk_command(url, settings, duration_s, cpu, script)
    done = run_captured(cmd, env=env, timeout_s=duration_s + settings.timeout_s + 30)
    if done.returncode != 0:
        raise BenchError(f"wrk exited with {done.returncode}: {done.stderr.strip()}")
    return parse_wrk(done.stdout)
