"""`mockserver import-vcr`: vcrpy / pytest-recording cassettes become scenario files that
replay what the cassette holds."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from mockserver.cli import main
from mockserver.engine import MockEngine
from mockserver.inprocess import InProcessMock
from mockserver.recording.vcr import CassetteError, exchange_of, import_cassettes, read_cassette
from mockserver.scenarios import load_scenarios
from tests.support import sse_data

CASSETTES = Path(__file__).parent / "data" / "cassettes"
ALL = [
    CASSETTES / "openai_chat.yaml",
    CASSETTES / "requests_gzip.yaml",
    CASSETTES / "tool_call.json",
    CASSETTES / "test_agent" / "test_weather_loop.yaml",
]
SECRETS = (
    "sk-proj-VcrCassetteKey0123456789abcdefghijkl",
    "org-VcrCassetteOrg0123456789",
    "VcrCookieSecret0123456789abcdef",
    "user-privateorg",
)
ASK = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}


def interactions(name: str) -> list[dict]:
    return read_cassette(CASSETTES / name)


def ask(client: httpx.Client, body: dict) -> httpx.Response:
    return client.post("https://api.openai.com/v1/chat/completions", content=json.dumps(body))


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    results = import_cassettes(ALL, tmp_path)
    assert [r.out.name if r.out else None for r in results] == [
        "openai_chat.yaml",
        "requests_gzip.yaml",
        "tool_call.yaml",
        "test_weather_loop.yaml",
    ]
    assert [(r.exchanges, r.scenarios) for r in results] == [(4, 3), (1, 1), (1, 1), (2, 2)]
    assert results[0].skipped == (
        "interactions[3]: GET https://api.openai.com/v1/models: not a chat completion or a Responses API request",
    )
    return tmp_path


def test_replies_replay_the_cassettes_bytes(imported):
    engine = MockEngine(load_scenarios([imported]))
    recorded = interactions("openai_chat.yaml")
    with InProcessMock(engine), httpx.Client() as client:
        first, second = ask(client, ASK), ask(client, ASK)  # a repeated request: a sequence
        streamed = ask(client, {**ASK, "stream": True, "stream_options": {"include_usage": True}})
        limited = ask(client, {**ASK, "messages": [{"role": "user", "content": "Too fast"}]})
        gzipped = ask(client, {**ASK, "temperature": 0})
    assert first.content == recorded[0]["response"]["body"]["string"].encode()
    assert second.content == recorded[1]["response"]["body"]["string"].encode()
    assert first.headers["x-request-id"] == "req_" + "ab" * 16
    assert first.headers["openai-processing-ms"] == "412"
    assert "content-encoding" not in first.headers  # the body is replayed decoded
    assert "set-cookie" not in first.headers
    assert streamed.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert sse_data(streamed.content) == sse_data(
        recorded[2]["response"]["body"]["string"].encode()
    )
    assert sse_data(streamed.content)[-1] == "[DONE]"
    assert limited.status_code == 429
    assert limited.headers["retry-after-ms"] == "120"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert "<scrubbed>" in limited.json()["error"]["message"]  # the organisation id
    raw = read_cassette(CASSETTES / "requests_gzip.yaml")[0]["response"]["body"]["string"]
    assert gzipped.content == gzip.decompress(raw)


def test_tool_calls_and_a_tool_loop_replay_through_the_sdk(imported):
    engine = MockEngine(load_scenarios([imported]))
    tools = json.loads(interactions("tool_call.json")[0]["request"]["body"])["tools"]
    messages: list = [{"role": "user", "content": "Weather in Paris?"}]
    with InProcessMock(engine):
        client = openai.OpenAI(
            api_key="sk-anything", max_retries=0, _strict_response_validation=True
        )
        first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
        call = first.choices[0].message.tool_calls[0]
        assert (call.function.name, call.function.arguments) == ("get_weather", '{"city":"Paris"}')
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ]
        final = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    assert final.choices[0].message.content == "It is sunny and 21C in Paris."
    # the first turn is in two files (tool_call.yaml and the loop): the first file answered
    assert engine.journal[0].scenario.startswith("test_weather_loop") or engine.journal[
        0
    ].scenario.startswith("tool_call")


def test_no_secret_of_a_cassette_reaches_the_scenario_files(imported):
    for path in imported.rglob("*.yaml"):
        text = path.read_text()
        for secret in SECRETS:
            assert secret not in text, f"{path.name} holds {secret}"
        assert "Imported by `mockserver import-vcr`" in text
        assert "recorded_at:" in text


def test_importing_again_rewrites_instead_of_appending(tmp_path):
    import_cassettes(ALL[:1], tmp_path)
    import_cassettes(ALL[:1], tmp_path)
    (scenario, *_) = load_scenarios([tmp_path]).scenarios
    assert len(scenario.replies) == 2


def test_same_named_cassettes_get_distinct_files(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    copy = other / "openai_chat.yaml"
    copy.write_text((CASSETTES / "openai_chat.yaml").read_text())
    out = tmp_path / "out"
    results = import_cassettes(
        [CASSETTES / "openai_chat.yaml", copy], out, match_on=("model", "last_user_message")
    )
    assert [r.out.name for r in results] == ["openai_chat.yaml", "other-openai_chat.yaml"]
    assert "last_user_message: Say hello" in (out / "openai_chat.yaml").read_text()


def _interaction(
    body, headers=None, status=200, method="POST", uri="https://x/v1/chat/completions"
):
    return {
        "request": {"method": method, "uri": uri, "body": json.dumps(ASK), "headers": {}},
        "response": {"status": status, "headers": headers or {}, "body": {"string": body}},
    }


def test_bodies_in_every_encoding_vcrpy_keeps():
    text = b'{"id": "x"}'
    assert (
        exchange_of(_interaction(zlib.compress(text), {"Content-Encoding": ["deflate"]})).body
        == text
    )
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = raw_deflate.compress(text) + raw_deflate.flush()
    assert exchange_of(_interaction(raw, {"Content-Encoding": "deflate"})).body == text
    assert exchange_of(_interaction(text.decode(), {"Content-Encoding": ["gzip"]})).body == text
    with pytest.raises(Exception, match="br-compressed"):
        exchange_of(_interaction(b"\x1b\x00", {"Content-Encoding": ["br"]}))
    with pytest.raises(Exception, match="does not decompress"):
        exchange_of(_interaction(b"\x00\x01garbage", {"Content-Encoding": ["gzip"]}))
    with pytest.raises(Exception, match="no status code"):
        exchange_of(_interaction(text, status="teapot"))
    with pytest.raises(Exception, match="not a chat completion"):
        exchange_of(_interaction(text, method="GET"))
    with pytest.raises(Exception, match="not a request/response pair"):
        exchange_of({"request": "x"})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "not a vcrpy cassette (expected a mapping with `interactions:`"),
        ("- request: {}\n", "not a vcrpy cassette"),
        ("key: [unclosed\n", "not a vcrpy cassette:"),
        ("!!python/object:os.system {}\n", "not a vcrpy cassette:"),
    ],
)
def test_what_is_not_a_cassette(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(
        CassetteError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        read_cassette(path)


def test_old_python_tags_load(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text(
        yaml.safe_dump({"interactions": [], "version": 1})
        + "extra: !!python/unicode 'x'\nother: !!python/tuple [1, 2]\n"
    )
    assert read_cassette(path) == []


def test_the_command_reports_what_it_did(tmp_path, capsys):
    assert main(["import-vcr", *map(str, ALL), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert f"{ALL[0]}: 4 exchanges -> {tmp_path / 'out' / 'openai_chat.yaml'} (3 scenarios)" in out
    assert (
        "  skipped interactions[3]: GET https://api.openai.com/v1/models: not a chat completion or a Responses API request"
        in out
    )
    assert f"{ALL[1]}: 1 exchange -> " in out


def test_the_command_on_a_cassette_without_chat_completions(tmp_path, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text("interactions: []\nversion: 1\n")
    assert main(["import-vcr", str(empty), "--out", str(tmp_path / "out")]) == 0
    assert "no chat completion or Responses exchange, nothing written" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.yaml"], "missing.yaml: cannot read"),
        (["--match-on", "nope"], "argument --match-on: unknown field 'nope'"),
        (["--scrub", "("], "argument --scrub: expected a Python regular expression"),
    ],
)
def test_the_command_says_what_is_wrong(tmp_path, capsys, args, message):
    argv = ["import-vcr", str(ALL[0]), "--out", str(tmp_path / "out"), *args]
    if args[0].endswith(".yaml"):
        argv = ["import-vcr", str(tmp_path / args[0]), "--out", str(tmp_path / "out")]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_out_must_be_a_folder(tmp_path, capsys):
    file = tmp_path / "file"
    file.write_text("x")
    assert main(["import-vcr", str(ALL[0]), "--out", str(file)]) == 2
    assert "not a folder" in capsys.readouterr().err
