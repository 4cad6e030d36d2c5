"""`mockserver record` as a process: its flags, its output, and what a SIGKILL leaves behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from mockserver.app import create_app
from mockserver.cli import main
from mockserver.engine import EngineConfig, MockEngine
from mockserver.scenarios import load_scenarios, load_text
from mockserver.server import BackgroundServer
from tests.test_cli import read_line

BIN = Path(sys.executable).parent / "mockserver"
RECORDING = re.compile(
    r"mockserver: recording on (?P<url>http://127\.0\.0\.1:\d+/v1) -> (?P<upstream>\S+) "
    r"into (?P<out>.+)"
)
UPSTREAM = """
scenarios:
  - name: slow
    match: {last_user_message: slow}
    reply:
      content: "a slow stream of many many words that take a while to arrive one by one here"
      stream: {chunk_delay_ms: 25}
  - name: fast
    reply: {content: "fast and short"}
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[BackgroundServer]:
    engine = MockEngine(load_text(UPSTREAM, "upstream.yaml"), EngineConfig(seed=1))
    server = BackgroundServer(create_app(engine)).start()
    yield server
    server.stop()


@pytest.fixture
def recorder() -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], str]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
        process = subprocess.Popen(
            [str(BIN), "record", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        started.append(process)
        line = read_line(process, timeout=10)
        found = RECORDING.fullmatch(line)
        assert found, line
        return process, found["url"]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(5)
        process.stdout.close()
        process.stderr.close()


def chat(text: str, **fields) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **fields}


def test_record_prints_where_it_listens_records_and_stops_on_sigint(upstream, recorder, tmp_path):
    out = tmp_path / "out"
    process, url = recorder(
        "--upstream",
        upstream.url,
        "--out",
        str(out),
        "--api-key-env",
        "MY_KEY",
        "--seed",
        "5",
        env={"MY_KEY": "sk-from-the-environment-0123456789"},
    )
    client = openai.OpenAI(base_url=url, api_key="sk-client", max_retries=0)
    reply = client.chat.completions.create(**chat("hello"))
    assert reply.choices[0].message.content == "fast and short"
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 0
    printed = process.stdout.read().decode()
    assert "mockserver: recorded 200 (body) -> " in printed
    assert "(1 exchanges recorded)" in process.stderr.read().decode()
    (path,) = out.glob("*.yaml")
    text = path.read_text()
    assert "recorded_at: '2026-01-01T00:00:00Z'" in text  # --seed fixes the time
    assert "sk-from-the-environment" not in text
    assert load_scenarios([out]).scenarios


def test_a_killed_recorder_leaves_only_whole_loadable_files(upstream, recorder, tmp_path):
    """SIGKILL in the middle of a stream, while other exchanges are being written."""
    out = tmp_path / "out"
    for round_ in range(3):
        process, url = recorder("--upstream", upstream.url, "--out", str(out))
        stop = threading.Event()

        def hammer(url: str = url, stop: threading.Event = stop) -> None:
            n = 0
            with httpx.Client(timeout=5) as client:
                while not stop.is_set():
                    try:  # identical requests: one file rewritten again and again, growing
                        client.post(url + "/chat/completions", json=chat(f"fast {n % 2}"))
                    except httpx.HTTPError:
                        return
                    n += 1

        workers = [threading.Thread(target=hammer) for _ in range(3)]
        for w in workers:
            w.start()
        events = 0
        with (
            httpx.Client(timeout=5) as client,
            client.stream("POST", url + "/chat/completions", json=chat("slow", stream=True)) as r,
        ):
            try:
                for line in r.iter_lines():
                    events += line.startswith("data:")
                    if events == 4 + round_ * 3:
                        process.send_signal(signal.SIGKILL)  # mid-stream, mid-writes
            except httpx.HTTPError:
                pass
        stop.set()
        for w in workers:
            w.join()
        assert process.wait(5) == -signal.SIGKILL
        files = sorted(out.glob("*.yaml"))
        assert files, "nothing was recorded before the kill"
        for path in files:
            load_scenarios([path])  # each file on its own is whole
        loaded = load_scenarios([out])  # and the folder serves (temporary files are ignored)
        assert all(
            name.startswith(("fast-", "slow-")) for name in (s.name for s in loaded.scenarios)
        )
        leftovers = [p.name for p in out.iterdir() if p.suffix != ".yaml"]
        assert all(p.startswith(".") and p.endswith(".tmp") for p in leftovers), leftovers


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: --upstream, --out"),
        (
            ["--upstream", "localhost:8000", "--out", "x"],
            "argument --upstream: expected the upstream's base URL",
        ),
        (
            ["--upstream", "http://u/v1", "--out", "x", "--match-on", "modle"],
            "unknown field 'modle' (did you mean 'model'?); allowed: model, stream, messages",
        ),
        (
            ["--upstream", "http://u/v1", "--out", "x", "--scrub", "[a-"],
            "argument --scrub: expected a Python regular expression, got '[a-'",
        ),
        (
            ["--upstream", "http://u/v1", "--out", "x", "--api-key-env", "MY-KEY"],
            "expected the name of an environment variable",
        ),
        (
            ["--upstream", "http://u/v1", "--out", "x", "--port", "70000"],
            "expected a port number 0-65535",
        ),
        (
            ["--upstream", "http://u/v1", "--out", "x", "--recrod"],
            "unrecognized arguments: --recrod; allowed flags: --api-key-env, --help, --host, --idle-timeout, --log-level, --match-on, --max-body-size, --max-header-size, --max-headers, --max-record-size, --out, --port, --profile, --read-timeout, --scrub, --seed, --upstream, --upstream-timeout",
        ),
    ],
)
def test_record_flags_say_what_is_allowed(capsys, args, message):
    with pytest.raises(SystemExit) as exited:
        main(["record", *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_record_refuses_an_unset_key_variable_and_an_out_that_is_a_file(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    base = ["record", "--upstream", "http://127.0.0.1:9/v1", "--port", "0"]
    assert main([*base, "--out", str(tmp_path), "--api-key-env", "NO_SUCH_KEY_VAR"]) == 2
    assert "--api-key-env NO_SUCH_KEY_VAR: that environment variable is not set or empty" in (
        capsys.readouterr().err
    )
    file = tmp_path / "file"
    file.write_text("x")
    assert main([*base, "--out", str(file)]) == 2
    assert f"--out {file}: not a folder" in capsys.readouterr().err


def test_record_says_when_it_cannot_listen(tmp_path, capsys, upstream):
    port = upstream.url.split(":")[2].split("/")[0]
    argv = ["record", "--upstream", upstream.url, "--out", str(tmp_path), "--port", port]
    assert main(argv) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_serve_recorded_timing_flag():
    from mockserver.cli import build_parser

    assert build_parser().parse_args(["serve", "x", "--recorded-timing"]).recorded_timing
    assert not build_parser().parse_args(["serve", "x"]).recorded_timing
