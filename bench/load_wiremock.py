"""WireMock standalone for the load benchmark: fetch the jar via npm, start it, register the stub.

The `wiremock` npm package ships the standalone jar (node_modules/wiremock/build/*.jar); it is
installed into bench/.cache/ (gitignored), once per version.
"""

from __future__ import annotations

import json
import shlex
import shutil
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from load_procs import BenchError, run_captured

VERSION = "3.13.2"

# Tuning: each flag is there to give WireMock its best, fair shot (see bench/README.md).
TUNING_FLAGS: tuple[str, ...] = (
    "--no-request-journal",  # the journal keeps every request: ~2x slower and a growing heap
    "--disable-request-logging",  # no per-request notifier logging ("useful when perf testing")
    "--use-chunked-encoding=never",  # Content-Length replies, like uvicorn sends for JSON
    "--disable-gzip",  # wrk sends no Accept-Encoding; skip the gzip handler entirely
    "--container-threads=10",  # fewer threads than the default 25 time-slice one core better
    "--jetty-acceptor-threads=1",
)

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def java_missing() -> str | None:
    """Why Java cannot run WireMock, or None when it can."""
    if shutil.which("java") is None:
        return "no java on PATH (WireMock needs Java 11+)"
    done = run_captured(["java", "-version"], timeout_s=60)
    if done.returncode != 0:
        return f"`java -version` failed: {done.stderr.strip()[:200]}"
    return None


def unavailable(cache_dir: Path, version: str) -> str | None:
    """Why WireMock cannot run here (no Java, or no jar and no npm to fetch it), else None."""
    missing = java_missing()
    if missing is not None or find_jar(cache_dir / f"wiremock-{version}") is not None:
        return missing
    if shutil.which("npm") is None:
        return "WireMock jar not cached and no npm to fetch it (npm install wiremock)"
    return None


def java_version() -> str:
    done = run_captured(["java", "-version"], timeout_s=60)
    lines = done.stderr.strip().splitlines()
    return lines[0] if lines else "unknown"


def find_jar(install_dir: Path) -> Path | None:
    jars = sorted((install_dir / "node_modules" / "wiremock" / "build").glob("wiremock*.jar"))
    return jars[-1] if jars else None


def install_jar(cache_dir: Path, version: str) -> Path:
    """The standalone jar of `wiremock@version` from npm, installed under cache_dir once."""
    install_dir = cache_dir / f"wiremock-{version}"
    jar = find_jar(install_dir)
    if jar is not None:
        return jar
    if shutil.which("npm") is None:
        raise BenchError("npm not found: it is needed once to fetch the WireMock jar")
    install_dir.mkdir(parents=True, exist_ok=True)
    cmd = ["npm", "install", "--prefix", str(install_dir), "--no-audit", "--no-fund"]
    done = run_captured([*cmd, "--ignore-scripts", f"wiremock@{version}"], timeout_s=600)
    jar = find_jar(install_dir)
    if done.returncode != 0 or jar is None:
        raise BenchError(f"npm install wiremock@{version} gave no jar: {done.stderr.strip()}")
    return jar


def command(
    jar: Path, port: int, root_dir: Path, java_opts: Sequence[str], tuning: Sequence[str]
) -> list[str]:
    """`java -jar wiremock-standalone.jar` on 127.0.0.1:port, files kept under root_dir."""
    return [
        "java",
        *java_opts,
        "-jar",
        str(jar),
        "--port",
        str(port),
        "--bind-address",
        "127.0.0.1",
        "--root-dir",
        str(root_dir),
        "--disable-banner",
        *tuning,
    ]


def split_flags(text: str) -> tuple[str, ...]:
    return tuple(shlex.split(text))


def stub_mapping(body: bytes) -> dict[str, Any]:
    """The single stub: POST /v1/chat/completions answers the fixed chat.completion."""
    return {
        "request": {"method": "POST", "url": "/v1/chat/completions"},
        "response": {
            "status": 200,
            "headers": {"Content-Type": "application/json"},
            "body": body.decode(),
        },
    }


def register_stub(base_url: str, body: bytes) -> None:
    """Create the stub through the admin API (`POST /__admin/mappings`)."""
    request = urllib.request.Request(
        f"{base_url}/__admin/mappings",
        data=json.dumps(stub_mapping(body)).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with _opener.open(request, timeout=10) as response:
        if response.status != 201:
            raise BenchError(f"WireMock refused the stub: HTTP {response.status}")
