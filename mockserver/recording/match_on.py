"""The `match:` a recorded request gets: which request fields it compares (`--match-on`).

The default compares what changes the answer: the model, whether it streams, the whole
`messages` list (normalised: key order and null members do not matter), the tools, the
response format and the sampling parameters, set or not (`no_other_params`). Fields that do
not change the answer (`user`, `metadata`, `store`, prompt-cache keys...) are left out, so
they may differ on replay.

A Responses API request (`api="responses"`) is read through the reader the server matches with
(`parse_responses_request`, with the earlier turns its `previous_response_id` brings in): its
`messages` are that view's conversation in chat's form (`ChatRequest.chat_messages`), which is
what `match: {messages}` compares for it on replay, whatever ids chain it; the groups name the
Responses fields (`text` for the response format, `max_output_tokens`, `reasoning`...), and the
match says `api: responses`. `previous_response_id` is never matched on: its ids differ on
replay, and the conversation it stands for is in `messages`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from mockserver.errors import ApiError
from mockserver.matching import ANSWER_PARAMS, normal_json
from mockserver.request import ChatRequest
from mockserver.responses_api.reader import KNOWN_FIELDS as RESPONSES_FIELDS
from mockserver.responses_api.reader import parse_responses_request
from mockserver.validation import KNOWN_FIELDS as CHAT_FIELDS
from mockserver.validation import parse_chat_request

_TOOLS = ("tools", "tool_choice", "parallel_tool_calls", "functions", "function_call")
GROUPS: dict[str, tuple[str, ...]] = {
    "model": ("model",),
    "stream": ("stream",),
    "messages": ("messages",),
    "last_user_message": (),
    "tools": _TOOLS,
    "response_format": ("response_format",),
    "params": tuple(p for p in ANSWER_PARAMS if p not in (*_TOOLS, "response_format")),
}
"""`--match-on` names: groups of request fields (any other request field may be named too)."""
_RESPONSES_TOOLS = ("tools", "tool_choice", "parallel_tool_calls")
RESPONSES_GROUPS: dict[str, tuple[str, ...]] = {
    **GROUPS,
    "tools": _RESPONSES_TOOLS,
    "response_format": ("text",),
    "params": (
        "temperature",
        "top_p",
        "top_logprobs",
        "max_output_tokens",
        "reasoning",
        "truncation",
        "max_tool_calls",
        "include",
        "prompt",
        "stream_options",
    ),
}
"""The same names for a Responses API request: its own fields."""
DEFAULT = ("model", "stream", "messages", "tools", "response_format", "params")
_OWN_CONDITIONS = ("model", "stream", "messages")
NEVER = frozenset({"previous_response_id"})
"""Fields no match compares: a previous response's id differs on replay (the conversation it
stands for is in `messages`)."""
KNOWN_FIELDS = (CHAT_FIELDS | RESPONSES_FIELDS) - NEVER
_NAME = re.compile(r"[a-z_][a-z0-9_]*")


class MatchOnError(ValueError):
    """A `--match-on` list naming something that is not a group or a request field."""


def allowed() -> str:
    return ", ".join([*GROUPS, "or any request field (" + ", ".join(sorted(KNOWN_FIELDS)) + ")"])


def parse_match_on(text: str | Iterable[str]) -> tuple[str, ...]:
    """`model,messages,temperature` -> the names, checked (unknown names raise `MatchOnError`)."""
    words = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(w.strip() for w in words if w.strip()))
    if not names:
        raise MatchOnError(f"give at least one field; allowed: {allowed()}")
    for name in names:
        if name in NEVER:
            raise MatchOnError(
                f"{name!r} cannot be matched on: its ids differ on replay, and `messages` "
                f"already compares the conversation it continues; allowed: {allowed()}"
            )
        if name not in GROUPS and (name not in KNOWN_FIELDS or not _NAME.fullmatch(name)):
            close = difflib.get_close_matches(name, [*GROUPS, *KNOWN_FIELDS], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise MatchOnError(f"unknown field {name!r}{hint}; allowed: {allowed()}")
    return names


def fields_of(
    names: Iterable[str], groups: Mapping[str, tuple[str, ...]] = GROUPS
) -> tuple[str, ...]:
    """The request fields the names cover, in a stable order."""
    out: list[str] = []
    for name in names:
        out.extend(groups.get(name, (name,)))
    return tuple(f for f in dict.fromkeys(out) if f not in NEVER)


def last_user_text(body: Mapping[str, Any]) -> str | None:
    """The last user message's text as `match: {last_user_message: ...}` reads it."""
    try:
        return parse_chat_request(dict(body)).last_user_message
    except ApiError:
        return None


def derive_match(body: Mapping[str, Any], names: Iterable[str] = DEFAULT) -> dict[str, Any]:
    """The `match:` mapping for a recorded chat request body (a JSON object). It says `api:
    chat`: its recorded (`raw`) reply is a chat completion, which must not answer a Responses
    request of the same conversation."""
    chosen = tuple(names)
    fields = fields_of(chosen)
    match: dict[str, Any] = {"api": "chat"}
    if "model" in fields and isinstance(body.get("model"), str):
        match["model"] = body["model"]
    if "stream" in fields:
        match["stream"] = body.get("stream") is True
    if "messages" in fields and isinstance(body.get("messages"), list) and body["messages"]:
        match["messages"] = normal_json(body["messages"])
    elif "last_user_message" in chosen:
        text = last_user_text(body)
        if text is not None:
            match["last_user_message"] = text
    return _params(match, body, fields, chosen)


def _params(
    match: dict[str, Any], body: Mapping[str, Any], fields: tuple[str, ...], chosen: tuple[str, ...]
) -> dict[str, Any]:
    params = {
        f: body[f] for f in fields if f not in _OWN_CONDITIONS and f in body and body[f] is not None
    }
    if params:
        match["params"] = params
    if all(group in chosen for group in ("tools", "response_format", "params")):
        match["no_other_params"] = True  # a request that adds one is another request
    return match


def responses_view(body: Mapping[str, Any], history: list[Any]) -> ChatRequest:
    """A Responses request as the server's reader sees it, the earlier turns included (raises
    `ApiError` for a request the server would refuse)."""
    return parse_responses_request(dict(body), (), history)


def derive_responses_match(
    body: Mapping[str, Any], view: ChatRequest, names: Iterable[str] = DEFAULT
) -> dict[str, Any]:
    """The `match:` mapping for a recorded Responses request: `view` is `responses_view`."""
    chosen = tuple(names)
    fields = fields_of(chosen, RESPONSES_GROUPS)
    match: dict[str, Any] = {"api": "responses"}
    if "model" in fields:
        match["model"] = view.model
    if "stream" in fields:
        match["stream"] = view.stream
    if "messages" in fields:
        match["messages"] = normal_json(view.chat_messages)
        kinds = sorted(view.part_kinds - {"text"})
        if kinds:
            match["content_parts"] = kinds  # `messages` holds their text only
    elif "last_user_message" in chosen and view.last_user_message is not None:
        match["last_user_message"] = view.last_user_message
    return _params(match, body, fields, chosen)
