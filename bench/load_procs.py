"""Child processes of the load benchmark: spawn, CPU pinning, readiness, and cleanup.

Every child runs in its own session (process group) and is registered here, so `stop_all()`
(run on normal exit, on errors, on Ctrl-C and on SIGTERM/SIGHUP) kills whole groups.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

URL_RE = re.compile(r"http://\S+/v1")
STOP_GRACE_S = 3.0

_live: list[subprocess.Popen[bytes]] = []
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BenchError(Exception):
    """A target could not be started, verified or measured."""


@dataclass
class Server:
    """A spawned server: its process, its stdout lines (drained by a thread), its stderr log."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    lines: queue.Queue[str] = field(default_factory=queue.Queue)

    def log_tail(self, count: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-count:])

    def failure(self, message: str) -> BenchError:
        tail = self.log_tail()
        detail = f"\n--- {self.name} stderr (tail) ---\n{tail}" if tail else ""
        return BenchError(f"{self.name}: {message}{detail}")


def pin_prefix(cpu: int | None) -> list[str]:
    """`taskset -c CPU` when pinning, else nothing."""
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def default_cpus() -> tuple[int, int] | None:
    """(server cpu, load generator cpu) when taskset exists and two CPUs are usable."""
    usable = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None or len(usable) < 2:
        return None
    return usable[0], usable[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _drain(stream: IO[bytes], lines: queue.Queue[str]) -> None:
    with contextlib.suppress(ValueError, OSError):  # stop() may close the pipe under us
        for raw in iter(stream.readline, b""):
            lines.put(raw.decode(errors="replace").rstrip("\n"))


def spawn(
    name: str,
    cmd: Sequence[str],
    log_dir: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Server:
    """Start a long-running server in its own process group; stderr goes to a log file."""
    log_path = log_dir / f"{name}.stderr.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=cwd,
            env=None if env is None else dict(env),
            start_new_session=True,
        )
    _live.append(proc)
    assert proc.stdout is not None
    server = Server(name, proc, log_path)
    threading.Thread(target=_drain, args=(proc.stdout, server.lines), daemon=True).start()
    return server


def _next_line(server: Server) -> str | None:
    """The next stdout line, or None if none arrived within a millisecond."""
    try:
        return server.lines.get(timeout=0.001)
    except queue.Empty:
        return None


def wait_for_url(server: Server, timeout_s: float) -> str:
    """Read the server's stdout until a line holds its base URL (http://.../v1)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = _next_line(server)
        match = URL_RE.search(line) if line is not None else None
        if match:
            return match.group(0)
        if line is None and server.proc.poll() is not None:
            raise server.failure(f"exited with {server.proc.returncode} before printing a URL")
    raise server.failure(f"printed no http://.../v1 URL within {timeout_s:.0f}s")


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with _opener.open(url, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def wait_for_health(server: Server, url: str, timeout_s: float) -> None:
    """Poll `GET url` until it answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if http_ok(url):
            return
        if server.proc.poll() is not None:
            raise server.failure(f"exited with {server.proc.returncode} before {url} answered")
        time.sleep(0.02)
    raise server.failure(f"{url} did not answer 200 within {timeout_s:.0f}s")


def _kill_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers."""
    _kill_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        _kill_group(proc, signal.SIGKILL)
        proc.wait()
    _kill_group(proc, signal.SIGKILL)  # stragglers the leader left behind
    if proc.stdout is not None:
        proc.stdout.close()
    if proc in _live:
        _live.remove(proc)


def stop_all() -> None:
    while _live:
        stop(_live[-1])  # stop() unregisters it


def run_captured(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a short-lived command (in its own group, registered for cleanup); capture output."""
    proc = subprocess.Popen(
        list(cmd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=None if env is None else dict(env),
        start_new_session=True,
    )
    _live.append(proc)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{cmd[0]} did not finish within {timeout_s}s") from exc
    finally:
        stop(proc)
    return subprocess.CompletedProcess(list(cmd), proc.returncode, out.decode(), err.decode())


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    """Kill every child group on exit, and turn SIGTERM/SIGHUP into a clean exit."""
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
