"""Recording the Responses API (`POST /v1/responses`): the conversations a
`previous_response_id` continues, and, when the writer is asked to (`responses_reply_keys`;
by default a reply is written `raw`, replayed byte for byte), its replies as reply keys.

With reply keys a recorded response is written with the scenario's reply keys (`content`, `refusal`,
`tool_calls` with their `call_id`s pinned, `reasoning`, `finish_reason: length` for a reply cut
by `max_output_tokens`, `usage`, `model`), so a replay renders it as mockserver renders any
reply: fresh ids, stored, chainable, streamed or not as the replaying request asks. The response
is the body, or a stream's `response.completed` / `response.incomplete` event (its output
assembled from the `response.output_item.done` events when that event carries none). What the
reply keys cannot say the same way (an error, a stream that failed or broke off, built-in tool
output, annotations, logprobs, several messages) is written `raw`, as chat completions are.

A chained request's `match:` must be the conversation mockserver sees on replay, where the
`previous_response_id` is mockserver's own: `Conversations` keeps, per response id recorded in
this session, the items it continues from (the earlier input and output), bounded in bytes as
the server's store is. A request continuing a response the session has not seen is not
recorded (its conversation is unknown).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from mockserver.recording.exchange import Exchange

MAX_CONVERSATIONS_BYTES = 64 * 1024 * 1024
"""What the remembered conversations of one recording session may weigh (their JSON)."""
MAX_CONVERSATION_BYTES = 8 * 1024 * 1024
"""The most one conversation may weigh to be remembered (the server's own limit for a
`previous_response_id`, `responses_api.routes.MAX_CONVERSATION_BYTES`)."""
FINAL_EVENTS = ("response.completed", "response.incomplete")


def response_of(exchange: Exchange) -> dict[str, Any] | None:
    """The finished `response` object of a successful exchange (the body, or the stream's last
    event, its output assembled from the items' `.done` events if it holds none); None when
    there is none (an error, a stream that failed or broke off)."""
    if exchange.status != 200 or exchange.end == "abort":
        return None
    if exchange.events is None:
        found = _json(exchange.body or b"")
        return found if _is_response(found) else None
    final: dict[str, Any] | None = None
    done: dict[int, Any] = {}
    for event in exchange.events:
        data = _json(event.data.encode("utf-8", "surrogateescape"))
        if not isinstance(data, dict):
            continue
        kind = data.get("type")
        if kind == "response.output_item.done" and isinstance(data.get("output_index"), int):
            done[data["output_index"]] = data.get("item")
        elif kind in FINAL_EVENTS and _is_response(data.get("response")):
            final = dict(data["response"])
    if final is None:
        return None
    if not final.get("output") and done:
        final["output"] = [done[i] for i in sorted(done)]
    return final


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def _is_response(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("object") == "response"
        and isinstance(value.get("id"), str)
        and isinstance(value.get("output", []), list)
    )


class NotReplyKeys(Exception):
    """The response says something the reply keys cannot (it is recorded `raw`)."""


def reply_keys(response: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The reply keys that render `response` again (raises `NotReplyKeys`)."""
    reply: dict[str, Any] = {}
    messages = 0
    calls: list[dict[str, Any]] = []
    for item in response.get("output") or ():
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "reasoning":
            _reasoning(item, reply)
        elif kind == "message":
            messages += 1
            if messages > 1 or calls:
                raise NotReplyKeys("a message after another message or a tool call")
            _message(item, reply)
        elif kind in ("function_call", "custom_tool_call"):
            calls.append(_call(item, custom=kind == "custom_tool_call"))
        else:
            raise NotReplyKeys(f"an output item of type {kind!r}")
    if calls:
        reply["tool_calls"] = calls
    if "content" not in reply and "refusal" not in reply and not calls:
        reply["content"] = ""
    _about(response, request, reply)
    return reply


def _about(response: dict[str, Any], request: dict[str, Any], reply: dict[str, Any]) -> None:
    """How the reply ended, the model and tier it names, its usage."""
    details = response.get("incomplete_details")
    if response.get("status") == "incomplete":
        if not isinstance(details, dict) or details.get("reason") != "max_output_tokens":
            raise NotReplyKeys("incomplete for a reason other than max_output_tokens")
        reply["finish_reason"] = "length"
    elif response.get("status") != "completed":
        raise NotReplyKeys(f"status {response.get('status')!r}")
    model = response.get("model")
    if isinstance(model, str) and model != request.get("model"):
        reply["model"] = model
    tier = response.get("service_tier")
    asked = request.get("service_tier")
    if isinstance(tier, str) and tier != (asked if asked not in (None, "auto") else "default"):
        reply["service_tier"] = tier
    usage = _usage(response.get("usage"))
    if usage:
        reply["usage"] = usage


def _reasoning(item: dict[str, Any], reply: dict[str, Any]) -> None:
    if "reasoning" in reply:
        raise NotReplyKeys("two reasoning items")
    summary = item.get("summary") or []
    if not isinstance(summary, list):
        raise NotReplyKeys("a reasoning summary that is not a list")
    texts: list[str] = []
    for part in summary:
        text = part.get("text") if isinstance(part, dict) else None
        if not isinstance(text, str):
            raise NotReplyKeys("a reasoning summary without text")
        texts.append(text)
    if texts:
        reply["reasoning"] = "\n\n".join(texts)


def _message(item: dict[str, Any], reply: dict[str, Any]) -> None:
    texts: list[str] = []
    refusals: list[str] = []
    content = item.get("content") or []
    if not isinstance(content, list):
        raise NotReplyKeys("message content that is not a list")
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "output_text" and isinstance(part.get("text"), str):
            if part.get("annotations") or part.get("logprobs"):
                raise NotReplyKeys("annotations or logprobs")
            if refusals:
                raise NotReplyKeys("text after a refusal")
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            refusals.append(part["refusal"])
        else:
            raise NotReplyKeys(f"a content part of type {kind!r}")
    if texts:
        reply["content"] = "\n".join(texts)  # as the request reader joins parts
    if refusals:
        reply["refusal"] = "\n".join(refusals)


def _call(item: dict[str, Any], *, custom: bool) -> dict[str, Any]:
    payload = "input" if custom else "arguments"
    name, call_id, value = item.get("name"), item.get("call_id"), item.get(payload)
    if not (isinstance(name, str) and isinstance(call_id, str) and isinstance(value, str)):
        raise NotReplyKeys("a tool call without its name, call_id or arguments")
    call: dict[str, Any] = {"name": name, "id": call_id}
    if custom:
        call["type"] = "custom"
    call[payload] = value
    return call


def _usage(value: Any) -> dict[str, Any]:
    """The response's `usage`, in the chat names a reply's `usage` pins."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, Any] = {}
    for chat, name in (
        ("prompt_tokens", "input_tokens"),
        ("completion_tokens", "output_tokens"),
        ("total_tokens", "total_tokens"),
    ):
        if isinstance(value.get(name), int):
            out[chat] = value[name]
    for chat, name, key in (
        ("prompt_tokens_details", "input_tokens_details", "cached_tokens"),
        ("completion_tokens_details", "output_tokens_details", "reasoning_tokens"),
    ):
        details = value.get(name)
        if isinstance(details, dict) and isinstance(details.get(key), int):
            out[chat] = {key: details[key]}
    return out


# -- conversations ---------------------------------------------------------------------------


def input_items(body: dict[str, Any]) -> list[Any]:
    """A request's own `input` as items (a string is one user message)."""
    value = body.get("input")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return list(value) if isinstance(value, list) else []


class UnknownConversation(Exception):
    """A `previous_response_id` this session did not record (or no longer remembers)."""


class Conversations:
    """Per response id recorded, the items a request continuing it brings in: the earlier
    turns' input and output. Bounded in bytes (the oldest forgotten first); thread-safe."""

    def __init__(
        self, limit: int = MAX_CONVERSATIONS_BYTES, each: int = MAX_CONVERSATION_BYTES
    ) -> None:
        self.limit = limit
        self.each = each
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0

    def knows(self, response_id: str) -> bool:
        with self._lock:
            return response_id in self._kept

    def history(self, body: dict[str, Any]) -> list[Any]:
        """The items before the request's own input (raises `UnknownConversation`)."""
        previous = body.get("previous_response_id")
        if previous is None:
            return []
        with self._lock:
            kept = self._kept.get(previous) if isinstance(previous, str) else None
        if kept is None:
            raise UnknownConversation(
                f"it continues the response {str(previous)[:100]!r}, which this recording has "
                "not seen (recorded before it began, or forgotten); its conversation is unknown"
            )
        items = json.loads(kept)
        assert isinstance(items, list)
        return items

    def remember(
        self, history: Sequence[Any], body: dict[str, Any], response: dict[str, Any]
    ) -> None:
        """Keep what a request continuing `response` brings in (not for `store: false`)."""
        if body.get("store") is False:
            return
        items = [*history, *input_items(body), *(response.get("output") or ())]
        data = json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode()
        if len(data) > self.each:
            return
        with self._lock:
            old = self._kept.pop(response["id"], None)
            if old is not None:
                self._bytes -= len(old)
            while self._kept and self._bytes + len(data) > self.limit:
                _, gone = self._kept.popitem(last=False)
                self._bytes -= len(gone)
            self._kept[response["id"]] = data
            self._bytes += len(data)
