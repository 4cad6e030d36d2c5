"""Record and replay against a vLLM-shaped upstream keep every vLLM field byte for byte.

The upstream is a mockserver in the `vllm` profile (reasoning, harmony tool calls, token ids,
`stop_reason`, continuous usage, vLLM's error body); the proxy records it, writing `profile:
vllm` into the files (the replies show vLLM's `stop_reason`, or `record --profile vllm` says
so); a server started without flags replays the folder as vLLM, and so does the in-process mock.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from mockserver import profiles
from mockserver.app import create_app
from mockserver.engine import EngineConfig, MockEngine
from mockserver.inprocess import InProcessMock
from mockserver.recording.cassette import Writer
from mockserver.recording.proxy import ProxySettings, RecordingProxy
from mockserver.scenarios import load_scenarios, load_text
from mockserver.server import BackgroundServer
from tests.test_cli import read_line

UPSTREAM = """
version: 1
profile: vllm
scenarios:
  - name: think
    match: {last_user_message: {contains: think}}
    reply: {reasoning: "Let me think.", content: "Forty-two. END more"}
  - name: harmony
    match: {last_user_message: {contains: weather}}
    reply:
      harmony:
        - {channel: analysis, content: "Use the tool."}
        - {channel: commentary, recipient: functions.get_weather, content: '{"city":"Paris"}'}
  - name: refuse
    match: {last_user_message: {contains: bad}}
    reply: {content: never}
"""
TOOL = {"function": {"name": "get_weather", "parameters": {"type": "object"}}}  # no `type`
REQUESTS = {
    "reasoning": {"messages": [{"role": "user", "content": "think"}], "stop": ["END"]},
    "token-ids": {
        "messages": [{"role": "user", "content": "think"}],
        "return_token_ids": True,
        "prompt_logprobs": 1,
    },
    "stream": {
        "messages": [{"role": "user", "content": "think"}],
        "stream": True,
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        "return_token_ids": True,
    },
    "harmony": {"messages": [{"role": "user", "content": "weather?"}], "tools": [TOOL]},
    "error": {"messages": [{"role": "user", "content": "bad"}], "top_k": -9},
}


def post(client: httpx.Client, url: str, body: dict[str, object]) -> tuple[int, bytes]:
    response = client.post(f"{url}/chat/completions", json={"model": "qwen3", **body})
    return response.status_code, response.content


def test_vllm_fields_record_and_replay_byte_for_byte(tmp_path: Path) -> None:
    upstream = BackgroundServer(
        create_app(MockEngine(load_text(UPSTREAM, "up.yaml"), EngineConfig(seed=5)))
    ).start()
    out = tmp_path / "recorded"
    writer = Writer(out)
    proxy = BackgroundServer(RecordingProxy(ProxySettings(upstream=upstream.url), writer)).start()  # type: ignore[arg-type]
    try:
        with httpx.Client(timeout=10) as client:
            live = {name: post(client, proxy.url, body) for name, body in REQUESTS.items()}
    finally:
        proxy.stop()
        upstream.stop()
    assert live["error"][0] == 400
    assert json.loads(live["error"][1])["error"]["code"] == 400
    assert b'"reasoning":"Let me think."' in live["reasoning"][1]
    assert b'"stop_reason":"END"' in live["reasoning"][1]
    assert b'"prompt_token_ids":[' in live["token-ids"][1]
    assert b'"continuous_usage_stats"' not in live["stream"][1]
    assert live["stream"][1].count(b'"usage":') > 5

    texts = [p.read_text() for p in out.glob("*.yaml")]
    assert texts and all("\nprofile: vllm\n" in t for t in texts)
    replay = MockEngine(load_scenarios([out]), EngineConfig())  # no flags: the files say vllm
    assert replay.profile.name == "vllm"
    server = BackgroundServer(create_app(replay)).start()
    try:
        with httpx.Client(timeout=10) as client:
            served = {name: post(client, server.url, body) for name, body in REQUESTS.items()}
    finally:
        server.stop()
    engine = MockEngine(load_scenarios([out]), EngineConfig(profile="vllm"))
    with InProcessMock(engine, ["http://vllm.local/v1"]), httpx.Client(timeout=10) as client:
        inprocess = {name: post(client, "http://vllm.local/v1", b) for name, b in REQUESTS.items()}
    for name in REQUESTS:
        assert served[name] == live[name], name
        assert inprocess[name] == live[name], name


OPENAI_UPSTREAM = "version: 1\nscenarios:\n  - reply: {content: plain}\n"
ASKED = {"messages": [{"role": "user", "content": "a"}]}


def test_record_profile_flag_writes_it_and_replay_speaks_it(tmp_path: Path) -> None:
    """`mockserver record --profile vllm` writes `profile: vllm` even when the upstream's
    replies do not show it; replayed without flags, the folder is served as vLLM (vLLM's
    acceptance and error body). Without the flag an OpenAI-shaped upstream writes no profile."""
    upstream = BackgroundServer(
        create_app(MockEngine(load_text(OPENAI_UPSTREAM), EngineConfig(seed=2)))
    ).start()
    recorder = Path(sys.executable).parent / "mockserver"
    try:
        for flags, folder in ((["--profile", "vllm"], "vllm"), ([], "plain")):
            argv = [str(recorder), "record", "--port", "0", "--upstream", upstream.url]
            process = subprocess.Popen(
                [*argv, "--out", str(tmp_path / folder), *flags],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                url = read_line(process, timeout=10).split("recording on ")[1].split(" ")[0]
                with httpx.Client(timeout=10) as client:
                    assert (
                        post(client, url, {"messages": [{"role": "user", "content": "a"}]})[0]
                        == 200
                    )
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(10)
                assert process.stdout is not None and process.stderr is not None
                process.stdout.close()
                process.stderr.close()
    finally:
        upstream.stop()
    (plain,) = (tmp_path / "plain").glob("*.yaml")
    assert "profile:" not in plain.read_text()
    assert MockEngine(load_scenarios([tmp_path / "plain"]), EngineConfig()).profile.name == "openai"
    (recorded,) = (tmp_path / "vllm").glob("*.yaml")
    assert "\nprofile: vllm\n" in recorded.read_text()
    replay = MockEngine(load_scenarios([tmp_path / "vllm"]), EngineConfig())
    assert replay.handle_chat(json.dumps({"model": "qwen3", **ASKED}).encode()).status == 200
    tool = {**ASKED, "tools": [TOOL]}  # no `type`: OpenAI refuses it (400), vLLM takes it
    missed = replay.handle_chat(json.dumps({"model": "qwen3", **tool}).encode())
    error = json.loads(missed.body)["error"]
    assert (missed.status, error["type"], error["code"]) == (404, "mockserver_no_match", 404)


def test_what_tells_a_vllm_upstream() -> None:
    """vLLM's `stop_reason` key in a chat completion or chunk, or an integer error `code`; not
    the same words inside a text, an OpenAI error, or bytes that are not UTF-8."""
    vllm_chunk = '{"object":"chat.completion.chunk","choices":[{"stop_reason":null}]}'
    assert profiles.spoken_by([b"", vllm_chunk]) == "vllm"
    assert profiles.spoken_by([b'{"error":{"message":"x","code":400}}']) == "vllm"
    quoted = '{"object":"chat.completion","content":"\\"stop_reason\\": 1"}'
    openai_error = b'{"error":{"message":"x","code":"invalid_api_key"}}'
    odd = ["data \udcff\udcfe", b'{"error"\xff\xfe', b'{"error": 5}', b'{"error":{"code":true}}']
    assert profiles.spoken_by([quoted, openai_error, *odd]) is None
