"""Real traffic under the `vllm` profile: every request vLLM accepts is accepted.

`tests/data/vllm_corpus.jsonl` holds 269 chat completion requests that OpenAI-compatible servers
(Groq, OpenRouter, Mistral, the Hugging Face router and others) answered, from pydantic-ai's
test cassettes (tests/data/README.md says where each came from). vLLM's request handling
refuses 21 of them, each listed in the file under `vllm_refuses` with the reason read from
vLLM's code (a provider's tool type, Mistral's `tool_choice: "any"`, `document_url` and `file`
parts, `reasoning_effort: "default"`); the `vllm` profile refuses exactly those, naming the
param, and accepts the other 248. OpenAI's own validation (the `openai` profile) refuses many
of them: the shapes vLLM takes and OpenAI does not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mockserver.engine import EngineConfig, MockEngine
from mockserver.scenarios import load_text

CORPUS = Path(__file__).parent / "data" / "vllm_corpus.jsonl"
ANY = load_text("version: 1\nscenarios:\n  - reply: {content: ok}\n")


def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def status_and_error(engine: MockEngine, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    outcome = engine.handle_chat(json.dumps(body).encode())
    if outcome.status == 200:
        return 200, {}
    return outcome.status, json.loads(outcome.body)["error"]


def test_vllm_accepts_the_real_requests_vllm_accepts_and_refuses_the_rest() -> None:
    vllm = MockEngine(ANY, EngineConfig(profile="vllm"))
    rows = corpus()
    wrong: list[str] = []
    for n, row in enumerate(rows, 1):
        status, error = status_and_error(vllm, row["body"])
        refused = row.get("vllm_refuses")
        if refused is None and status != 200:
            wrong.append(f"line {n} ({row['source']}): refused: {error.get('message')}")
        elif refused is not None and (status, error.get("param")) != (400, refused["param"]):
            wrong.append(f"line {n} ({row['source']}): expected 400 at {refused['param']}")
        elif refused is not None and error.get("code") != 400:
            wrong.append(f"line {n}: not vLLM's error body: {error}")
    assert wrong == []
    listed = [row for row in rows if "vllm_refuses" in row]
    assert (len(rows), len(listed)) == (269, 21)
    assert all(row["vllm_refuses"]["why"] for row in listed)


def test_openai_refuses_what_vllm_takes_from_the_same_traffic() -> None:
    """The figure the `vllm` profile exists for: real requests OpenAI's rules refuse and vLLM
    takes (tools without `type`, empty `content` and `tools`, strict schemas OpenAI's rules
    fail, Groq's `service_tier`, `video_url` and `thinking` parts ...)."""
    openai_ = MockEngine(ANY, EngineConfig(profile="openai"))
    taken_by_vllm_only = [
        row
        for row in corpus()
        if "vllm_refuses" not in row and status_and_error(openai_, row["body"])[0] == 400
    ]
    assert len(taken_by_vllm_only) >= 50  # 57 when written
    params = {status_and_error(openai_, row["body"])[1]["param"] for row in taken_by_vllm_only}
    assert {"tools[0].type", "tools", "service_tier", "tools[0].function.parameters"} <= params
