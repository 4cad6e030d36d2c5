"""Random and mutated Responses requests (hypothesis): the engine answers each with a reply that
OpenAI's schema accepts or a 400/404 in OpenAI's envelope, never a 500, and keeps serving."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockserver.engine import EngineConfig, MockEngine
from mockserver.scenarios import load_text
from tests.support import check_reply

ENGINE = MockEngine(
    load_text("version: 1\nscenarios:\n  - name: any\n    reply: {content: 'ok'}\n", "fuzz.yaml"),
    EngineConfig(seed=1),
)
VALID: dict[str, Any] = {
    "model": "gpt-4.1",
    "instructions": "be brief",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "x"},
    ],
    "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
    "tool_choice": "auto",
    "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}},
    "reasoning": {"effort": "low"},
    "max_output_tokens": 100,
    "store": True,
    "stream": False,
}
VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 16, 2.5, 1e300, "", "x", "user", "assistant", "message",
    "function_call", "function_call_output", "input_text", "input_image", "output_text",
    "json_schema", "auto", "required", [], {}, [1], ["a"], {"a": 1}, {"type": "input_text"},
    {"role": "user", "content": "hi"}, {"type": "function_call_output", "call_id": "zz"},
]  # fmt: skip


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*at, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*at, index))
    return found


PATHS = [p for p in _paths(VALID) if p]


def _mutate(body: dict[str, Any], path: tuple[Any, ...], value: Any, drop: bool) -> Any:
    out = copy.deepcopy(body)
    node = out
    for key in path[:-1]:
        node = node[key]
    if drop:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(VALUES), st.booleans()), max_size=3),
    st.booleans(),
)
def test_mutated_requests_get_a_reply_or_a_400(mutations, stream):
    body: Any = dict(VALID, stream=stream)
    for path, value, drop in mutations:
        try:
            body = _mutate(body, path, value, drop)
        except (KeyError, IndexError, TypeError):
            continue
    outcome = ENGINE.handle("POST", "/v1/responses", json.dumps(body).encode())
    assert outcome.status in (200, 400), outcome.body
    content_type = outcome.header("content-type") or ""
    streamed = outcome.status == 200 and content_type.startswith("text/event-stream")
    problems = check_reply(
        "/v1/responses", outcome.status, content_type, outcome.content(), streamed
    )
    assert not problems, problems
