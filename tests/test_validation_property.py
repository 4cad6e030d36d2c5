"""Random and mutated requests thrown at the validator and at a live server (hypothesis).

Properties:
- the validator either builds a `ChatRequest` or raises a 400 `ApiError` in OpenAI's envelope;
  nothing else ever escapes;
- whatever it accepts, OpenAI's schema accepts too, once the documented leniencies (unknown
  parameters, top-level nulls, harmony messages, image parts in tool messages, null `name` /
  `tool_calls`) are taken out: a cross-check that keeps the validator honest;
- the live server answers every request with a valid completion (or stream) or a well-formed
  error envelope, and keeps serving.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockserver.errors import ApiError
from mockserver.validation import KNOWN_FIELDS, parse_chat_request
from mockserver.validation.fast import fast_function_tools, fast_message
from mockserver.validation.messages import detailed_message
from mockserver.validation.tools import parse_tools
from tests.support import check_reply, schema_errors
from tests.validation_cases import BEYOND_SCHEMA, VALID

BASES = [*VALID.values(), *(request for request, _ in BEYOND_SCHEMA.values())]
INTERESTING: list[Any] = [
    None, True, False, 0, 1, -1, 2, 2.5, 20, 21, 128, 129, -2.5, 1e300, 2**63,
    "", "x", "x" * 65, "hello json", "user", "assistant", "tool", "system", "developer",
    "function", "text", "image_url", "input_audio", "file", "refusal", "wav", "mp3", "ogg",
    "auto", "none", "required", "high", "json_schema", "json_object", "custom", "call_1",
    "https://example.com/a.png", "data:image/png;base64,AAAA", "data:text/plain,hi",
    [], {}, [1], ["a"], ["a", "b", "c", "d", "e"], {"a": 1}, {"type": "text", "text": "t"},
    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    {"role": "tool", "tool_call_id": "call_1", "content": "x"},
    {"role": "assistant", "tool_calls": []},
    {"author": {"role": "user"}, "content": "hi"},
    {"type": "function", "function": {"name": "f"}},
]  # fmt: skip
KEYS = [
    *sorted(KNOWN_FIELDS), "role", "content", "name", "type", "text", "image_url", "url",
    "detail", "input_audio", "data", "format", "file", "file_id", "tool_calls", "tool_call_id",
    "function", "arguments", "refusal", "audio", "strict", "schema", "author", "top_k",
]  # fmt: skip

interesting = st.sampled_from(INTERESTING).map(copy.deepcopy)  # fresh: mutations edit them
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | interesting,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@st.composite
def mutated_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request with one to four random edits: replace, delete, insert, or swap in an
    interesting value, anywhere in the tree."""
    request = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(_paths(request))))
        target = _at(request, path)
        operation = draw(st.sampled_from(["replace", "interesting", "delete", "insert"]))
        if operation == "insert" and isinstance(target, (dict, list)):
            value = draw(json_values | interesting)
            if isinstance(target, dict):
                target[draw(st.sampled_from(KEYS) | st.text(max_size=6))] = value
            else:
                target.insert(draw(st.integers(0, len(target))), value)
            continue
        if not path:
            continue  # the body stays an object; decode_body's own tests cover the rest
        parent, last = _at(request, path[:-1]), path[-1]
        if operation == "delete":
            del parent[last]
        elif operation == "interesting":
            parent[last] = draw(interesting)
        else:
            parent[last] = draw(json_values)
    return request


requests = mutated_requests() | st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6).map(
    lambda extra: {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
)


def without_leniencies(request: dict[str, Any]) -> dict[str, Any]:
    """The request as OpenAI's schema should see it, minus what the mock accepts on purpose."""
    plain = {
        key: value
        for key, value in request.items()
        if key in KNOWN_FIELDS and (value is not None or key in ("model", "messages"))
    }
    if plain.get("stop") == []:  # the live API takes it, the schema does not (docs/requests.md)
        del plain["stop"]
    if not isinstance(plain.get("messages"), list):
        return plain
    messages = []
    for raw in plain["messages"]:
        message = raw
        if isinstance(raw, dict) and "role" not in raw and "author" in raw:
            message = {"role": "user", "content": "harmony"}
        elif isinstance(raw, dict):
            message = {
                k: v for k, v in raw.items() if v is not None or k not in ("name", "tool_calls")
            }
            content = message.get("content")
            if message.get("role") == "tool" and isinstance(content, list):
                message["content"] = [
                    {"type": "text", "text": "image"}
                    if isinstance(p, dict) and p.get("type") == "image_url"
                    else p
                    for p in content
                ]
        messages.append(message)
    plain["messages"] = messages
    return plain


def verdict(request: dict[str, Any]) -> ApiError | None:
    try:
        parse_chat_request(request)
    except ApiError as error:
        return error
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_validator_accepts_or_answers_400(request):
    """Also the cross-check: what the validator accepts, the schema accepts (leniencies aside),
    so whatever the schema refuses, the validator refuses."""
    snapshot = copy.deepcopy(request)
    error = verdict(request)
    assert request == snapshot, "validation must not change the body"
    if error is None:
        problems = schema_errors("CreateChatCompletionRequest", without_leniencies(request))
        assert problems == [], f"accepted, but OpenAI's schema refuses: {problems}"
        return
    assert error.status == 400
    assert error.type == "invalid_request_error"
    assert schema_errors("ErrorResponse", json.loads(error.encode())) == []
    assert error.message


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_requests())
def test_fast_paths_agree_with_the_detailed_validator(request):
    """The fast paths only accept, and only what the detailed validator accepts, built alike."""
    messages = request.get("messages")
    for raw in messages if isinstance(messages, list) else []:
        fast = fast_message(raw)
        if fast is not None:
            unknown: list[str] = []
            detailed = detailed_message(raw, "messages[0]", unknown)
            assert detailed == fast
            assert unknown == []
    tools = request.get("tools")
    names = fast_function_tools(tools)
    if names is not None:
        unknown = []
        assert parse_tools({"tools": tools}, unknown, fast=False).functions == names
        assert unknown == []


LIVE = """
    version: 1
    scenarios:
      - name: everything
        reply: {content: "Mutated, yet answered."}
"""


def test_live_server_answers_every_request_well(live):
    mock = live(LIVE)
    http = httpx2.Client(base_url=mock.url, timeout=10)
    seen: dict[int, int] = {}

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(requests | st.binary(max_size=64).map(lambda raw: raw))
    def check(request):
        raw = request if isinstance(request, bytes) else json.dumps(request).encode()
        response = http.post(
            "/chat/completions", content=raw, headers={"content-type": "application/json"}
        )
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        streamed = isinstance(request, dict) and request.get("stream") is True
        problems = check_reply(
            "/v1/chat/completions",
            response.status_code,
            response.headers.get("content-type", ""),
            response.content,
            streamed and response.status_code == 200,
        )
        assert problems == []
        assert response.status_code in (200, 400), response.text

    try:
        check()
        assert http.get("/models").status_code == 200
        ok = http.post(
            "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
        )
        assert ok.json()["choices"][0]["message"]["content"] == "Mutated, yet answered."
    finally:
        http.close()
    assert seen.get(200) and seen.get(400), seen
