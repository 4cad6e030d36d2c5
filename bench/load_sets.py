"""The scenario sets the load benchmark measures matching on: what people really write.

Each set is a folder of scenario files plus the request that matches its LAST scenario (the
worst place for a linear scan), and the content that request must get back:

  contains-100     100 `last_user_message: {contains: ...}`, the most common way to write one
  regex-100        100 `regex` scenarios on the last user message
  recording-1000   1,000 exchanges of 111 tool-loop conversations, written by mockserver's own
                   recorder (`Writer`, folder mode: one file per conversation, `messages`
                   equalities, `raw` replies, `no_other_params`)
  contains-10000   10,000 `contains` scenarios in one file (also timed from start to first answer)

The 100 `last_user_message` equalities are load_payloads.scenario_yaml (the `mockserver` target).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import load_payloads as payloads

from mockserver.recording.cassette import Writer
from mockserver.recording.exchange import Exchange


@dataclass(frozen=True)
class Written:
    body: bytes
    """The request matching the set's last scenario."""
    content: str
    """The content the answer must carry."""
    replay: tuple[bytes, ...] = ()
    """For a recording: every recorded request, in the order recorded (what a test suite
    replaying it sends, each once)."""


def _contains(folder: Path, count: int) -> Written:
    rows = ["version: 1", "scenarios:"]
    for i in range(count):
        rows += [
            f"  - name: topic-{i}",
            "    match:",
            f'      last_user_message: {{contains: "topic {i:05d}"}}',
            f'    reply: {{content: "{payloads.answer(i)}"}}',
        ]
    (folder / "topics.yaml").write_text("\n".join(rows) + "\n")
    last = count - 1
    return Written(
        payloads.chat_request(f"Tell me about topic {last:05d}, briefly."), payloads.answer(last)
    )


def _regex(folder: Path, count: int) -> Written:
    rows = ["version: 1", "scenarios:"]
    for i in range(count):
        rows += [
            f"  - name: order-{i}",
            "    match:",
            f'      last_user_message: {{regex: "(?i)\\\\border #?{i}\\\\b"}}',
            f'    reply: {{content: "{payloads.answer(i)}"}}',
        ]
    (folder / "orders.yaml").write_text("\n".join(rows) + "\n")
    last = count - 1
    return Written(payloads.chat_request(f"Where is order #{last} now?"), payloads.answer(last))


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def _completion(message: dict[str, Any], finish: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-recorded",
            "object": "chat.completion",
            "created": 1_732_000_000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49},
            "system_fingerprint": "fp_recorded",
        },
        indent=2,
    ).encode()


def _recording(folder: Path, conversations: int = 111, exchanges: int = 1000) -> Written:
    """Tool loops: the user asks, the model calls a tool, the tool answers, the model replies,
    the user asks again...; every exchange is written by the recorder's own `Writer`."""
    writer = Writer(folder)
    extra = exchanges % conversations  # the last conversations are one exchange longer
    per = [exchanges // conversations + (c >= conversations - extra) for c in range(conversations)]
    body: dict[str, Any] = {}
    content = ""
    sent: list[bytes] = []
    for c in range(conversations):
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "You are a travel assistant. Use tools when useful."},
            {"role": "user", "content": f"Trip {c}: what is the weather in city {c}?"},
        ]
        for k in range(per[c]):
            body = {
                "model": payloads.MODEL,
                "messages": list(messages),
                "tools": TOOLS,
                "temperature": 0,
            }
            if k % 2 == 0:
                call = {
                    "id": f"call_{c}_{k}",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": json.dumps({"city": f"city {c}"}),
                    },
                }
                message = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [call],
                    "refusal": None,
                }
                reply, finish = message, "tool_calls"
                follow = [
                    {"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": call["id"], "content": f"sunny, {15 + k} C"},
                ]
            else:
                content = f"Conversation {c}, step {k}: it is sunny."
                reply = {"role": "assistant", "content": content, "refusal": None}
                finish = "stop"
                follow = [
                    {"role": "assistant", "content": content},
                    {"role": "user", "content": f"And tomorrow, step {k + 1}?"},
                ]
            sent.append(json.dumps(body).encode())
            writer.write(
                Exchange(
                    method="POST",
                    url="https://api.openai.com/v1/chat/completions",
                    request_body=sent[-1],
                    status=200,
                    headers=(("content-type", "application/json"),),
                    body=_completion(reply, finish),
                )
            )
            messages.extend(follow)
    if per[-1] % 2:  # the last exchange must answer with text, to verify its content
        raise AssertionError("the last conversation must end on a text reply")
    return Written(payloads.encode(body), content, tuple(sent))


BIG = "contains-10000"
"""The set whose start-up (process start to first answer) is timed too."""
SETS: dict[str, Callable[[Path], Written]] = {
    "contains-100": lambda folder: _contains(folder, 100),
    "regex-100": lambda folder: _regex(folder, 100),
    "recording-1000": _recording,
    "contains-10000": lambda folder: _contains(folder, 10_000),
}
