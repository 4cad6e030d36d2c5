"""Requests of every form through the real openai SDK (and raw HTTP) against a live server.

Each part type, history form and harmony message gets its scripted reply; each invalid request
gets OpenAI's status, type, param and code; strict mode (server-wide and per scenario file)
refuses what the real API would; oversized bodies get a 413 in the same envelope.
"""

from __future__ import annotations

import json
import socket

import httpx2
import openai
import pytest

from tests.support import schema_errors
from tests.validation_cases import (
    HARMONY,
    INVALID,
    PDF,
    PNG,
    assistant,
    audio,
    call,
    file,
    function_tool,
    image,
    refusal,
    text,
    tool,
    user,
)

PARTS = """
    version: 1
    scenarios:
      - name: after-tool
        match: {last_message: {role: tool}}
        reply: {content: "It is 18C in Paris."}
      - name: image
        match: {content_parts: [image]}
        reply: {content: "I see a cat."}
      - name: audio
        match: {content_parts: [audio]}
        reply: {content: "I hear a beep."}
      - name: file
        match: {content_parts: [file]}
        reply: {content: "The report says hi."}
      - name: after-refusal
        match: {any_message: {contains: "can't help"}}
        reply: {content: "Understood, something else then."}
      - name: harmony
        match: {any_message: {contains: "wants the weather"}}
        reply: {content: "Harmony heard."}
      - name: fallback
        reply: {content: "fallback"}
"""


def ask(mock, messages, model="gpt-4o", **params):
    reply = mock.client.chat.completions.create(model=model, messages=messages, **params)
    return reply.choices[0].message.content


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([text("What is this?"), image()], "I see a cat."),
        ([image(PNG, detail="low")], "I see a cat."),
        ([text("Listen"), audio()], "I hear a beep."),
        ([audio("SUQzBAAAAAAA", "mp3")], "I hear a beep."),
        ([text("Summarise"), file()], "The report says hi."),
        ([file(file_data=PDF, filename="report.pdf")], "The report says hi."),
    ],
    ids=["image-url", "image-data", "audio-wav", "audio-mp3", "file-id", "file-data"],
)
def test_each_part_type_gets_its_reply(live, content, expected):
    mock = live(PARTS)
    assert ask(mock, [user(content)]) == expected


@pytest.mark.anyio
async def test_parts_through_the_async_client(live):
    mock = live(PARTS)
    reply = await mock.aclient.chat.completions.create(
        model="gpt-4o", messages=[user([text("hi"), image()])]
    )
    assert reply.choices[0].message.content == "I see a cat."


def test_refusal_history(live):
    mock = live(PARTS)
    messages = [
        user("How do I pick a lock?"),
        assistant([refusal("I can't help with that.")]),
        user("Fine."),
    ]
    assert ask(mock, messages) == "Understood, something else then."
    messages[1] = assistant(None, refusal="I can't help with that.")
    assert ask(mock, messages) == "Understood, something else then."


def test_tool_history(live):
    mock = live(PARTS)
    messages = [
        user("Weather in Paris?"),
        assistant(None, tool_calls=[call()]),
        tool(content=[text("18C"), image()]),
    ]
    assert ask(mock, messages, tools=[function_tool()]) == "It is 18C in Paris."


def test_a_reply_appended_as_is_is_accepted(live):
    """`messages.append(reply.choices[0].message)`: the SDK sends it back with `annotations`."""
    mock = live(PARTS)
    first = mock.client.chat.completions.create(model="gpt-4o", messages=[user("hi")])
    messages = [user("hi"), first.choices[0].message, user("again")]
    again = mock.client.chat.completions.create(model="gpt-4o", messages=messages)
    assert again.choices[0].message.content == "fallback"
    assert mock.engine.journal[-1].request.unknown_fields == ()


def test_harmony_message_through_the_sdk(live):
    mock = live(PARTS)
    assert ask(mock, [user("Weather?"), HARMONY]) == "Harmony heard."
    parsed = mock.engine.journal[-1].request
    assert parsed.messages[1].channel == "analysis"


def test_harmony_message_through_extra_body(live):
    mock = live(PARTS)
    reply = mock.client.chat.completions.create(
        model="gpt-oss-20b", messages=[user("x")], extra_body={"messages": [HARMONY]}
    )
    assert reply.choices[0].message.content == "Harmony heard."


def test_harmony_message_over_raw_http(live):
    mock = live(PARTS)
    response = httpx2.post(
        f"{mock.url}/chat/completions",
        json={"model": "gpt-oss-20b", "messages": [HARMONY, user("Go on")]},
    )
    assert response.status_code == 200
    assert schema_errors("CreateChatCompletionResponse", response.json()) == []
    assert response.json()["choices"][0]["message"]["content"] == "Harmony heard."


def test_vllm_extras_are_tolerated_and_journaled(live):
    mock = live(PARTS)
    reply = mock.client.chat.completions.create(
        model="m",
        messages=[user("hi")],
        extra_body={"top_k": 20, "chat_template_kwargs": {"enable_thinking": False}},
    )
    assert reply.choices[0].message.content == "fallback"
    assert mock.engine.journal[-1].request.unknown_fields == ("top_k", "chat_template_kwargs")
    journal = httpx2.get(mock.url.removesuffix("/v1") + "/_mockserver/journal").json()
    assert journal["data"][-1]["unknown_fields"] == ["top_k", "chat_template_kwargs"]


# -- refused through the SDK ----------------------------------------------------------------------

SDK_CASES = [
    "model-integer",
    "messages-empty",
    "role-unknown",
    "part-type-unknown",
    "refusal-in-user",
    "image-in-system",
    "audio-in-tool",
    "image-detail",
    "input-audio-format",
    "tool-without-tool-call-id",
    "tool-without-preceding-call",
    "tool-call-unanswered",
    "audio-voice",
    "audio-format",
    "reasoning-effort",
    "n-129",
    "temperature-high",
    "top-logprobs-without-logprobs",
    "stream-options-without-stream",
    "modalities-audio-without-audio",
    "json-schema-name-missing",
    "tool-name-pattern",
    "tool-choice-without-tools",
    "stop-five",
    "assistant-empty",
]


@pytest.mark.parametrize("name", SDK_CASES)
def test_invalid_request_through_the_sdk(live, name):
    mock = live(PARTS)
    bad = INVALID[name]
    with pytest.raises(openai.BadRequestError) as caught:
        mock.client.chat.completions.create(**bad.request)  # type: ignore[call-overload]
    error = caught.value
    assert error.status_code == 400
    assert (error.type, error.param, error.code) == ("invalid_request_error", bad.param, bad.code)
    assert bad.says in error.message
    assert mock.engine.journal[-1].status == 400
    assert ask(mock, [user("still there?")]) == "fallback"


@pytest.mark.anyio
async def test_invalid_request_through_the_async_sdk(live):
    mock = live(PARTS)
    with pytest.raises(openai.BadRequestError) as caught:
        await mock.aclient.chat.completions.create(
            model="m", messages=[user([text(), audio(fmt="ogg")])]
        )
    assert caught.value.param == "messages[0].content[1].input_audio.format"
    assert caught.value.code == "invalid_value"


def test_invalid_stream_request_fails_before_streaming(live):
    mock = live(PARTS)
    with pytest.raises(openai.BadRequestError) as caught:
        mock.client.chat.completions.create(model="m", messages=[user("hi")], stream=True, n=0)
    assert caught.value.param == "n"


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}',
            "application/json",
        ),
        (b"[" * 50_000, "application/json"),
        (b'{"model": NaN, "messages": []}', "application/json"),
        (b"\xff\xfe", "text/plain"),
    ],
    ids=["text", "array", "lone-surrogate", "deep", "nan", "bytes"],
)
def test_not_json_is_a_400_envelope(live, raw, content_type):
    mock = live(PARTS)
    response = httpx2.post(
        f"{mock.url}/chat/completions", content=raw, headers={"content-type": content_type}
    )
    assert response.status_code == 400
    assert schema_errors("ErrorResponse", response.json()) == []
    assert response.json()["error"]["message"].startswith("We could not parse the JSON body")
    assert ask(mock, [user("still there?")]) == "fallback"


# -- strict mode ------------------------------------------------------------------------------


def test_strict_server_refuses_unknown_parameters(live):
    mock = live(PARTS, strict=True)
    with pytest.raises(openai.BadRequestError) as caught:
        mock.client.chat.completions.create(
            model="m", messages=[user("hi")], extra_body={"top_k": 20}
        )
    assert caught.value.body["message"] == "Unrecognized request argument supplied: top_k"
    assert (caught.value.param, caught.value.code) == ("top_k", "unknown_parameter")
    with pytest.raises(openai.BadRequestError) as caught:
        mock.client.chat.completions.create(
            model="m", messages=[user("hi"), assistant("a", reasoning_content="r"), user("b")]
        )
    assert caught.value.param == "messages[1].reasoning_content"
    assert ask(mock, [user("hi")]) == "fallback"


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"model": "o3", "max_tokens": 10}, "max_tokens", "unsupported_parameter"),
        ({"model": "o4-mini", "temperature": 0.3}, "temperature", "unsupported_value"),
        ({"model": "gpt-4o", "response_format": {"type": "json_object"}}, "messages", None),
        (
            {"model": "gpt-4o", "reasoning_effort": "high"},
            "reasoning_effort",
            "unsupported_parameter",
        ),
    ],
)
def test_strict_server_applies_model_rules(live, params, param, code):
    mock = live(PARTS, strict=True)
    with pytest.raises(openai.BadRequestError) as caught:
        mock.client.chat.completions.create(messages=[user("List three colours")], **params)
    assert (caught.value.param, caught.value.code) == (param, code)


def test_default_server_leaves_model_rules_to_strict_mode(live):
    mock = live(PARTS)
    assert ask(mock, [user("hi")], max_tokens=10) == "fallback"
    reply = mock.client.chat.completions.create(
        model="o3",
        messages=[user("List three colours")],
        max_tokens=10,
        response_format={"type": "json_object"},
        extra_body={"top_k": 3},
    )
    assert reply.choices[0].message.content == "fallback"


def test_strict_scenario_file_refuses_only_for_its_own_scenarios(live, tmp_path):
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        "version: 1\nstrict: true\nscenarios:\n"
        "  - name: exact\n    match: {last_user_message: exact}\n    reply: {content: strict}\n"
    )
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("version: 1\nscenarios:\n  - name: loose\n    reply: {content: loose}\n")
    mock = live([strict, lenient])
    extra = {"extra_body": {"top_k": 5}}
    assert ask(mock, [user("anything")], **extra) == "loose"
    assert ask(mock, [user("exact")]) == "strict"
    with pytest.raises(openai.BadRequestError) as caught:
        ask(mock, [user("exact")], **extra)
    assert (caught.value.param, caught.value.code) == ("top_k", "unknown_parameter")
    with pytest.raises(openai.BadRequestError) as caught:
        ask(mock, [user("exact")], model="o1", max_tokens=5)
    assert caught.value.code == "unsupported_parameter"


# -- body size --------------------------------------------------------------------------------


def test_oversized_body_is_a_413_from_content_length(live):
    mock = live(PARTS, max_body_size=2_000)
    payload = json.dumps({"model": "m", "messages": [user("x" * 5_000)]}).encode()
    response = httpx2.post(
        f"{mock.url}/chat/completions",
        content=payload,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert schema_errors("ErrorResponse", response.json()) == []
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "request_too_large"
    assert "2000 bytes" in error["message"]
    assert mock.engine.journal == []  # answered from the header, never parsed
    assert ask(mock, [user("small")]) == "fallback"


def test_oversized_chunked_body_is_a_413(live):
    mock = live(PARTS, max_body_size=2_000)

    def pieces():
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}]}'

    response = httpx2.post(
        f"{mock.url}/chat/completions",
        content=pieces(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert ask(mock, [user("small")]) == "fallback"


def test_oversized_body_through_the_sdk(live):
    mock = live(PARTS, max_body_size=4_096)
    with pytest.raises(openai.APIStatusError) as caught:
        mock.client.chat.completions.create(model="m", messages=[user("x" * 10_000)])
    assert caught.value.status_code == 413
    assert caught.value.code == "request_too_large"


def test_body_at_the_limit_is_accepted(live):
    payload = json.dumps({"model": "m", "messages": [user("hello")]}).encode()
    mock = live(PARTS, max_body_size=len(payload))
    response = httpx2.post(
        f"{mock.url}/chat/completions",
        content=payload,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200


def test_default_limit_is_64_mib(live):
    """A body announced past 64 MiB is refused from its header, before a byte of it is sent."""
    mock = live(PARTS)
    assert mock.engine.config.max_body_size == 64 * 1024 * 1024
    port = int(mock.url.rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\n"
            b"content-type: application/json\r\n"
            + f"content-length: {64 * 1024 * 1024 + 1}\r\n\r\n".encode()
        )
        received = b""
        while b"}}" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, payload = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(payload)["error"]["code"] == "request_too_large"
    assert ask(mock, [user("small")]) == "fallback"
