"""Record and replay against a vLLM-shaped upstream keep every vLLM field byte for byte.

The upstream is a mockserver in the `vllm` profile (reasoning, harmony tool calls, token ids,
`stop_reason`, continuous usage, vLLM's error body); the proxy records it; a server in the
`vllm` profile replays the folder, and the in-process mock replays it too.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from mockserver.app import create_app
from mockserver.engine import EngineConfig, MockEngine
from mockserver.inprocess import InProcessMock
from mockserver.recording.cassette import Writer
from mockserver.recording.proxy import ProxySettings, RecordingProxy
from mockserver.scenarios import load_scenarios, load_text
from mockserver.server import BackgroundServer

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

    replay = MockEngine(load_scenarios([out]), EngineConfig(profile="vllm"))
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
