"""Harmony replies: a reply written as gpt-oss channel messages, mapped as vLLM maps them.

A scenario may write a choice as `harmony:`, a list of `{channel, recipient, content,
content_type}` messages, the way gpt-oss produces them. vLLM turns such output into one chat
message (vllm/entrypoints/openai/parser/harmony_utils.py `parse_chat_output` and
vllm/tool_parsers/openai_tool_parser.py `OpenAIToolParser.extract_tool_calls`):

- `analysis` messages are reasoning (joined by newlines);
- a message whose recipient is `functions.NAME` is a call of tool NAME, its content the
  arguments (JSON content is re-encoded with Python's `json.dumps` defaults, `", "` and `": "`
  separators, as the tool parser does);
- without tool calls, `final` messages and `commentary` without a recipient (preambles) are the
  content, joined by newlines in order; with tool calls the content is the last `final`
  message, else the last preamble.

The mapping happens when the file loads; profiles then render reasoning, content and tool
calls as they render any reply's. A stream is different: vLLM streams the messages one by one
in the order the model wrote them (vllm/entrypoints/openai/chat_completion/stream_harmony.py
`extract_harmony_streaming_delta`), `stream_order` says how.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from mockserver.yamlsource import Node, describe

CHANNELS = ("analysis", "commentary", "final")
MESSAGE_KEYS = ("channel", "recipient", "content", "content_type")
FUNCTIONS = "functions."


@dataclass(frozen=True, slots=True)
class HarmonyMessage:
    channel: str
    content: str
    recipient: str | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class Mapped:
    """What vLLM makes of a list of harmony messages."""

    reasoning: str | None
    content: str | None
    calls: tuple[tuple[str, str], ...]
    """(tool name, arguments) of each tool call, in order."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One message as a stream sends it: `reasoning` or `content` deltas, or a tool call (an
    opening delta with its id and name, then `arguments` deltas)."""

    kind: Literal["reasoning", "content", "call"]
    text: str
    call: int = -1
    """For a call: its index among the message's tool calls."""


def stream_order(messages: tuple[HarmonyMessage, ...]) -> tuple[Segment, ...]:
    """What vLLM streams for each message, in the model's order (`extract_harmony_streaming_
    delta`): a message to `functions.NAME` (commentary or analysis) is a tool call whose
    arguments stream as written (only the whole message re-encodes them); `final` and preambles
    are content, one after another with nothing between them (the whole message joins them
    with newlines, or keeps one); `analysis` is reasoning (left out under
    `include_reasoning: false`, which the profile applies)."""
    out: list[Segment] = []
    calls = 0
    for m in messages:
        if m.recipient:
            out.append(Segment("call", m.content, calls))
            calls += 1
        elif m.channel == "analysis":
            out.append(Segment("reasoning", m.content))
        else:
            out.append(Segment("content", m.content))
    return tuple(out)


def _arguments(message: HarmonyMessage) -> str:
    if message.content_type and "json" not in message.content_type:
        return message.content
    try:
        return json.dumps(json.loads(message.content))
    except ValueError:
        return message.content


def map_messages(messages: tuple[HarmonyMessage, ...]) -> Mapped:
    """Reasoning, content and tool calls, as vLLM's parsers produce them."""
    reasoning = [m.content for m in messages if m.channel == "analysis"]
    calls = tuple(
        (m.recipient[len(FUNCTIONS) :], _arguments(m))
        for m in messages
        if m.recipient and m.recipient.startswith(FUNCTIONS)
    )
    finals = [m.content for m in messages if m.channel == "final" and not m.recipient]
    preambles = [m.content for m in messages if m.channel == "commentary" and not m.recipient]
    if calls:
        content = (finals[-1] if finals else None) or (preambles[-1] if preambles else None)
    else:
        shown = [
            m.content for m in messages if m.channel in ("final", "commentary") and not m.recipient
        ]
        content = "\n".join(shown) or None
    return Mapped("\n".join(reasoning) or None, content, calls)


def parse_messages(node: Node) -> tuple[HarmonyMessage, ...] | None:
    """A `harmony:` list of messages, with path-precise problems."""
    if not isinstance(node.value, list) or not node.value:
        node.fail(f"expected a non-empty list of harmony messages, got {describe(node.value)}")
        return None
    found: list[HarmonyMessage] = []
    for element in node.elements():
        if not element.is_mapping() or not element.check_keys(MESSAGE_KEYS, ("channel", "content")):
            continue
        channel = element.child("channel").choice(CHANNELS)
        content = element.child("content").string()
        recipient_node = element.get("recipient")
        recipient = recipient_node.string(nullable=True) if recipient_node is not None else None
        if recipient is not None and not recipient.startswith(FUNCTIONS):
            assert recipient_node is not None
            recipient_node.fail(
                f"expected a recipient of the form functions.NAME (a tool call), got {recipient!r}"
            )
            continue
        if recipient is not None and channel == "final":
            assert recipient_node is not None
            recipient_node.fail(
                "a final message has no recipient (gpt-oss calls tools from the commentary channel)"
            )
            continue
        kind_node = element.get("content_type")
        kind = kind_node.string() if kind_node is not None else None
        if channel is None or content is None:
            continue
        found.append(HarmonyMessage(channel, content, recipient, kind))
    return tuple(found)
