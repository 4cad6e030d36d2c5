"""The `match:` a recorded request gets: which request fields it compares (`--match-on`).

The default compares what changes the answer: the model, whether it streams, the whole
`messages` list (normalised: key order and null members do not matter), the tools, the
response format and the sampling parameters, set or not (`no_other_params`). Fields that do
not change the answer (`user`, `metadata`, `store`, prompt-cache keys...) are left out, so
they may differ on replay.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from mockserver.errors import ApiError
from mockserver.matching import ANSWER_PARAMS, normal_json
from mockserver.validation import KNOWN_FIELDS, parse_chat_request

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
DEFAULT = ("model", "stream", "messages", "tools", "response_format", "params")
_OWN_CONDITIONS = ("model", "stream", "messages")
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
        if name not in GROUPS and (name not in KNOWN_FIELDS or not _NAME.fullmatch(name)):
            close = difflib.get_close_matches(name, [*GROUPS, *KNOWN_FIELDS], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise MatchOnError(f"unknown field {name!r}{hint}; allowed: {allowed()}")
    return names


def fields_of(names: Iterable[str]) -> tuple[str, ...]:
    """The request fields the names cover, in a stable order."""
    out: list[str] = []
    for name in names:
        out.extend(GROUPS.get(name, (name,)))
    return tuple(dict.fromkeys(out))


def last_user_text(body: Mapping[str, Any]) -> str | None:
    """The last user message's text as `match: {last_user_message: ...}` reads it."""
    try:
        return parse_chat_request(dict(body)).last_user_message
    except ApiError:
        return None


def derive_match(body: Mapping[str, Any], names: Iterable[str] = DEFAULT) -> dict[str, Any]:
    """The `match:` mapping for a recorded request body (a JSON object)."""
    chosen = tuple(names)
    fields = fields_of(chosen)
    match: dict[str, Any] = {}
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
    params = {
        f: body[f] for f in fields if f not in _OWN_CONDITIONS and f in body and body[f] is not None
    }
    if params:
        match["params"] = params
    if all(group in chosen for group in ("tools", "response_format", "params")):
        match["no_other_params"] = True  # a request that adds one is another request
    return match
