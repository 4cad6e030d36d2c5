"""Harmony-style messages (gpt-oss, as vLLM-based servers accept them).

`{author: {role, name}, content: [...], channel, recipient, content_type}`, where `content` holds
`text`, `system_content` and `developer_content` items (or is one string). The text of `text`
items and of developer `instructions` is what matching reads, as for any other message.
"""

from __future__ import annotations

from mockserver.request import RequestMessage, build_message
from mockserver.validation.errors import (
    array,
    choice,
    note_unknown,
    obj,
    required,
    string,
    text_of_size,
)
from mockserver.wire import JSON

HARMONY_ROLES = ("user", "assistant", "system", "developer", "tool")
HARMONY_PARTS = ("text", "system_content", "developer_content")
_HARMONY_ROLES = frozenset(HARMONY_ROLES)
_HARMONY_KEYS = frozenset({"author", "content", "channel", "recipient", "content_type"})
_TEXT_ONLY = frozenset({"text"})
_NOTHING: frozenset[str] = frozenset()


def _optional_string(message: dict[str, JSON], key: str, param: str) -> str | None:
    value = message.get(key)
    return None if value is None else string(value, f"{param}.{key}")


def parse_harmony(raw: dict[str, JSON], param: str, unknown: list[str]) -> RequestMessage:
    """`{author: {role, name}, content, channel, recipient, content_type}` (gpt-oss harmony)."""
    where = f"{param}.author"
    author = obj(raw["author"], where)
    role = choice(required(author, "role", where), f"{where}.role", _HARMONY_ROLES, HARMONY_ROLES)
    name = _optional_string(author, "name", where)
    note_unknown(author, frozenset({"role", "name"}), where, unknown)
    content = raw.get("content")
    texts: list[str] = []
    if type(content) is str:
        texts.append(text_of_size(content, f"{param}.content"))
    elif content is not None:
        for i, part in enumerate(array(content, f"{param}.content")):
            at = f"{param}.content[{i}]"
            item = obj(part, at)
            kind = choice(required(item, "type", at), f"{at}.type", HARMONY_PARTS, HARMONY_PARTS)
            if kind == "text":
                texts.append(text_of_size(required(item, "text", at), f"{at}.text"))
            elif kind == "developer_content":
                instructions = _optional_string(item, "instructions", at)
                if instructions:
                    texts.append(instructions)
            elif item.get("model_identity") is not None:
                string(item["model_identity"], f"{at}.model_identity")
    note_unknown(raw, _HARMONY_KEYS, param, unknown)
    return build_message(
        {
            "role": role,
            "text": "\n".join(texts),
            "name": name,
            "parts": _TEXT_ONLY if texts else _NOTHING,
            "channel": _optional_string(raw, "channel", param),
            "recipient": _optional_string(raw, "recipient", param),
            "content_type": _optional_string(raw, "content_type", param),
            "harmony": True,
        }
    )
