"""`messages`: every role and its keys, tool calls, and the pairing of tool calls with answers.

Follows the live API where it differs from OpenAI's schema (see wire-format.md §2.6): tool
messages take `text` and `image_url` parts; an assistant message needs some content (text, tool
calls, a legacy function call, an audio reference or a refusal); `tool_calls` must not be empty;
every tool call is answered by a `tool` message before the conversation moves on.
"""

from __future__ import annotations

import re
from typing import NoReturn

import orjson

from mockserver import known
from mockserver.errors import ApiError
from mockserver.request import RequestMessage, build_message
from mockserver.validation.errors import (
    MAX_STRING,
    array,
    bad_value,
    choice,
    empty_array,
    missing,
    no_pattern_match,
    note_unknown,
    obj,
    required,
    rule,
    show,
    string,
    too_long_string,
    wrong_type,
)
from mockserver.validation.fast import fast_message
from mockserver.validation.harmony import parse_harmony
from mockserver.validation.parts import parse_parts
from mockserver.wire import JSON

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_ROLES = frozenset(ROLES)


MESSAGE_NAME_PATTERN = r"^[^\s<|\\/>]+$"
_MESSAGE_NAME = re.compile(r"[^\s<|\\/>]+")

_KEYS: dict[str, frozenset[str]] = {
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    # `annotations` comes back with every reply, and clients append replies as they are.
    "assistant": frozenset(
        {"role", "content", "name", "refusal", "audio", "tool_calls", "function_call"}
        | {"annotations"}
    ),
    "tool": frozenset({"role", "content", "tool_call_id"}),
    "function": frozenset({"role", "content", "name"}),
}
_CALL_KEYS = frozenset({"id", "type", "function", "custom"})
_FUNCTION_CALL_KEYS = frozenset({"name", "arguments"})
_CUSTOM_CALL_KEYS = frozenset({"name", "input"})
_TEXT_ONLY = frozenset({"text"})


def _name(message: dict[str, JSON], param: str) -> str | None:
    value = message.get("name")
    if value is None:
        return None
    where = f"{param}.name"
    text = string(value, where)
    if _MESSAGE_NAME.fullmatch(text) is None:
        no_pattern_match(where, MESSAGE_NAME_PATTERN)
    return text


def _tool_calls(value: JSON, param: str, unknown: list[str]) -> tuple[list[str], list[str]]:
    where = f"{param}.tool_calls"
    calls = array(value, where, min_items=1)
    ids: list[str] = []
    names: list[str] = []
    for i, raw in enumerate(calls):
        at = f"{where}[{i}]"
        call = obj(raw, at)
        ids.append(string(required(call, "id", at), f"{at}.id"))
        kind = choice(
            required(call, "type", at), f"{at}.type", ("function", "custom"), ("function", "custom")
        )
        body = obj(required(call, kind, at), f"{at}.{kind}")
        names.append(string(required(body, "name", f"{at}.{kind}"), f"{at}.{kind}.name"))
        if kind == "function":
            string(required(body, "arguments", f"{at}.function"), f"{at}.function.arguments")
            note_unknown(body, _FUNCTION_CALL_KEYS, f"{at}.function", unknown)
        else:
            string(required(body, "input", f"{at}.custom"), f"{at}.custom.input")
            note_unknown(body, _CUSTOM_CALL_KEYS, f"{at}.custom", unknown)
        note_unknown(call, _CALL_KEYS, at, unknown)
    return ids, names


def _assistant_extras(
    message: dict[str, JSON], param: str, unknown: list[str]
) -> tuple[list[str], list[str], bool]:
    """Tool calls (ids, names) and whether the message carries anything besides content."""
    ids: list[str] = []
    names: list[str] = []
    other = False
    calls = message.get("tool_calls")
    if calls is not None:
        ids, names = _tool_calls(calls, param, unknown)
        other = True
    legacy = message.get("function_call")
    if legacy is not None:
        where = f"{param}.function_call"
        call = obj(legacy, where)
        names.append(string(required(call, "name", where), f"{where}.name"))
        string(required(call, "arguments", where), f"{where}.arguments")
        note_unknown(call, _FUNCTION_CALL_KEYS, where, unknown)
        other = True
    audio = message.get("audio")
    if audio is not None:
        where = f"{param}.audio"
        string(required(obj(audio, where), "id", where), f"{where}.id")
        note_unknown(audio, frozenset({"id"}), where, unknown)
        other = True
    refusal = message.get("refusal")
    if refusal is not None:
        string(refusal, f"{param}.refusal")
        other = True
    return ids, names, other


def parse_message(raw: JSON, index: int, unknown: list[str]) -> RequestMessage:
    """One message of `messages`, validated (pairing with tool calls is checked by the caller).

    Common shapes take the fast path (`fast`); the rest, and every error, this one.
    """
    message = fast_message(raw)
    if message is not None:
        return message
    return detailed_message(raw, f"messages[{index}]", unknown)


def detailed_message(raw: JSON, param: str, unknown: list[str]) -> RequestMessage:
    """The detailed validator for one message: checks everything, words every error."""
    if type(raw) is not dict:
        wrong_type(param, "an object", raw)
    role = raw.get("role")
    if role is None:
        if "author" in raw:
            return parse_harmony(raw, param, unknown)
        missing(f"{param}.role")
    if type(role) is not str:
        wrong_type(f"{param}.role", "a string", role)
    if role not in _ROLES:
        bad_value(f"{param}.role", role, ROLES)
    if not _KEYS[role].issuperset(raw):
        note_unknown(raw, _KEYS[role], param, unknown)
    if role == "assistant":
        return _assistant(raw, param, unknown)
    if role == "function":
        return _function_message(raw, param)
    if raw.get("content") is None:
        if "content" in raw:
            raise rule(
                "Invalid value for 'content': expected a string, got null.", f"{param}.content"
            )
        missing(f"{param}.content")
    if role == "tool":
        call_id = string(required(raw, "tool_call_id", param), f"{param}.tool_call_id")
        return _with_content(raw, param, role, unknown, tool_call_id=call_id)
    return _with_content(raw, param, role, unknown, name=_name(raw, param))


def _function_message(raw: dict[str, JSON], param: str) -> RequestMessage:
    """The legacy `function` role: `content` (a string or null) and the function's `name`."""
    if "content" not in raw:
        missing(f"{param}.content")
    content = raw["content"]
    text = "" if content is None else string(content, f"{param}.content")
    name = _name(raw, param)
    if name is None:
        missing(f"{param}.name")
    return build_message({"role": "function", "text": text, "name": name})


def _assistant(raw: dict[str, JSON], param: str, unknown: list[str]) -> RequestMessage:
    ids, names, other = _assistant_extras(raw, param, unknown)
    name = _name(raw, param)
    if raw.get("content") is None:
        if not other:
            raise rule(
                "Invalid value for 'content': expected a string, got null.", f"{param}.content"
            )
        refusal = raw.get("refusal")
        return build_message(
            {
                "role": "assistant",
                "text": refusal if type(refusal) is str else "",
                "name": name,
                "tool_call_ids": tuple(ids),
                "tool_names": tuple(names),
            }
        )
    return _with_content(
        raw,
        param,
        "assistant",
        unknown,
        name=name,
        tool_call_ids=tuple(ids),
        tool_names=tuple(names),
    )


def _with_content(
    raw: dict[str, JSON],
    param: str,
    role: str,
    unknown: list[str],
    *,
    name: str | None = None,
    tool_call_id: str | None = None,
    tool_call_ids: tuple[str, ...] = (),
    tool_names: tuple[str, ...] = (),
) -> RequestMessage:
    """A message whose `content` is present: a string, or a non-empty array of parts."""
    content = raw["content"]
    where = f"{param}.content"
    if type(content) is str:
        if len(content) > MAX_STRING:
            too_long_string(where, MAX_STRING, len(content))
        return build_message(
            {
                "role": role,
                "text": content,
                "name": name,
                "parts": _TEXT_ONLY,
                "tool_call_id": tool_call_id,
                "tool_call_ids": tool_call_ids,
                "tool_names": tool_names,
            }
        )
    if type(content) is not list:
        wrong_type(where, "one of a string or array of objects", content)
    if not content:
        empty_array(where)
    parts = parse_parts(content, where, role, param, unknown)
    text = parts.texts[0] if len(parts.texts) == 1 else "\n".join(parts.texts)
    if not text and role == "assistant" and type(raw.get("refusal")) is str:
        text = raw["refusal"]
    return build_message(
        {
            "role": role,
            "text": text,
            "name": name,
            "parts": frozenset(parts.kinds),
            "tool_call_id": tool_call_id,
            "tool_call_ids": tool_call_ids,
            "tool_names": tool_names,
            "images": parts.images,
            "image_detail_high": parts.high,
            "audio_parts": parts.audio,
            "files": parts.files,
        }
    )


# -- the conversation as a whole ----------------------------------------------------------------


def _unanswered(index: int, ids: tuple[str, ...], answered: set[str]) -> NoReturn:
    left = ", ".join(i for i in ids if i not in answered)
    raise rule(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to "
        f"each 'tool_call_id'. The following tool_call_ids did not have response messages: {left}",
        f"messages[{index}].role",
    )


_KEPT = known.MESSAGES
_dumps = orjson.dumps


def _each(
    messages: list[JSON], unknown: list[str], keys: list[bytes | None] | None, *, paired: bool
) -> list[RequestMessage]:
    """Every message: kept from an earlier request (`known`), or validated (and kept when it
    has a common valid shape); with `keys`, each one's key (`known.key_of`) is added to it.

    When every message is kept (an agent's history, a replayed recording), the keys and the
    lookups are C loops (`map`): a Python loop cost a fifth of a long conversation's check.
    None of those can be invalid; else `_validated` checks them one by one."""
    texts = found = None
    if keys is not None:
        texts = _keys_of(messages)
        if texts is not None and max(map(len, texts)) <= known.MAX_VALUE:
            found = list(map(_KEPT.get, texts))
            if all(found):  # no None (a message is always true; `None in` calls each `__eq__`)
                keys.extend(texts)
                return found  # type: ignore[return-value]  # no None in it
    return _validated(messages, unknown, keys, texts, found, paired=paired)


def _keys_of(messages: list[JSON]) -> list[bytes] | None:
    """Each message as orjson writes it (its `known` key), or None if one cannot be."""
    try:
        return list(map(_dumps, messages))
    except orjson.JSONEncodeError:
        return None


def _validated(
    messages: list[JSON],
    unknown: list[str],
    keys: list[bytes | None] | None,
    texts: list[bytes] | None,
    found: list[RequestMessage | None] | None,
    *,
    paired: bool,
) -> list[RequestMessage]:
    """Each message validated in turn (or kept, with `keys`; `found`: what `_each` looked up
    already for each of `texts`). A message that fails reports
    its error unless the messages before it break the pairing rules: that error is reported,
    as a check of each message's pairing right after validating it would have."""
    parsed: list[RequestMessage] = []
    for index, raw in enumerate(messages):
        key = None
        if keys is not None:
            key = known.key_of(raw) if texts is None else texts[index]
            if key is not None and len(key) > known.MAX_VALUE:
                key = None
            keys.append(key)
        if found is not None:  # `_each` looked every key up already
            message = found[index]
        elif key is not None:
            message = _KEPT.get(key)
        else:
            message = None
        if message is None:
            message = fast_message(raw)
            if message is None:
                try:
                    message = detailed_message(raw, f"messages[{index}]", unknown)
                except ApiError:
                    if paired:
                        _check_pairing(parsed, whole=False)
                    raise
            elif key is not None:
                known.keep(key, message)
        parsed.append(message)
    return parsed


def parse_messages(
    messages: JSON, unknown: list[str], keys: list[bytes | None] | None, *, paired: bool = True
) -> tuple[RequestMessage, ...]:
    """Every message, and (unless `paired` is false) the pairing of tool calls with `tool`
    messages (vLLM checks no pairing: the `vllm` profile passes false). With `keys` (a body
    orjson read, see `decode_exact`), messages are looked up in and kept in `known`, and each
    one's key is added to `keys`."""
    if type(messages) is not list:
        wrong_type("messages", "an array", messages)
    if not messages:
        empty_array("messages")
    parsed = _each(messages, unknown, keys, paired=paired)
    if paired:
        _check_pairing(parsed)
    return tuple(parsed)


def _check_pairing(parsed: list[RequestMessage], *, whole: bool = True) -> None:
    """Each assistant message's tool calls answered by the `tool` messages right after it,
    and every `tool` message answering one (OpenAI's rule); unless `whole`, the messages are
    the first of a longer list, and calls still open at their end are not an error yet."""
    open_at = -1  # the assistant message whose tool calls are being answered
    open_ids: tuple[str, ...] = ()
    answered: set[str] = set()
    for index, message in enumerate(parsed):
        role = message.role
        if role == "tool" and not message.harmony:
            call_id = message.tool_call_id or ""
            if open_at < 0:
                raise rule(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages[{index}].role",
                )
            if call_id not in open_ids:
                raise rule(
                    f"Invalid parameter: 'tool_call_id' of '{show(call_id)}' not found in "
                    "'tool_calls' of previous message.",
                    f"messages[{index}].tool_call_id",
                )
            answered.add(call_id)
            continue
        if open_at >= 0:
            if not answered.issuperset(open_ids):
                _unanswered(open_at, open_ids, answered)
            open_at = -1
        if role == "assistant" and message.tool_call_ids:
            open_at = index
            open_ids = message.tool_call_ids
            answered = set()
    if whole and open_at >= 0 and not answered.issuperset(open_ids):
        _unanswered(open_at, open_ids, answered)
