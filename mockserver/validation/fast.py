"""The fast paths: common, valid messages and function tools accepted without building a single
`param` path.

Validation runs on every request, and the detailed validator (`messages`) formats a
path such as `messages[1].content[2].image_url.url` for every value it checks, in case it has to
name it. Here the common shapes are checked with plain type and membership tests instead, and
anything unusual (an unknown key, a `name` that needs its pattern explained, a legacy form, any
invalid value) answers None: the caller then runs the detailed validator, which accepts the
message or words the error. So this module only ever accepts, never refuses, and what it accepts
is what the detailed validator accepts, built the same way (a hypothesis test holds the two
together).
"""

from __future__ import annotations

import re

from mockserver.request import PART_KINDS, RequestMessage, build_message
from mockserver.validation.errors import MAX_STRING
from mockserver.validation.schema import schema_is_valid
from mockserver.wire import JSON

_PLAIN = frozenset({"system", "developer", "user", "assistant"})
_KEYS: dict[str, frozenset[str]] = {
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset({"role", "content", "name", "tool_calls", "annotations"}),
    "tool": frozenset({"role", "content", "tool_call_id"}),
}
_PARTS: dict[str, frozenset[str]] = {
    "system": frozenset({"text"}),
    "developer": frozenset({"text"}),
    "user": frozenset({"text", "image_url", "input_audio", "file"}),
    "assistant": frozenset({"text", "refusal"}),
    "tool": frozenset({"text", "image_url"}),
}
_BITS = {"text": 1, "image_url": 2, "input_audio": 4, "file": 8, "refusal": 16}
_KIND_SETS = tuple(
    frozenset(PART_KINDS[kind] for kind, bit in _BITS.items() if mask & bit) for mask in range(32)
)
"""Every set of part kinds, by bitmask: no set is built per message."""
_DETAILS = frozenset({"auto", "low", "high"})
_AUDIO_FORMATS = frozenset({"wav", "mp3"})
_IMAGE_KEYS = frozenset({"url", "detail"})
_FILE_KEYS = frozenset({"file_data", "file_id", "filename"})
_CALL_KEYS = frozenset({"id", "type", "function"})
_FUNCTION_KEYS = frozenset({"name", "arguments"})
_TEXT_ONLY = frozenset({"text"})
_NAME = re.compile(r"[^\s<|\\/>]+")
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]+")
_TOOL_FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})
_WEB = ("https://", "http://")


def _image(image: dict[str, JSON]) -> bool:
    if not _IMAGE_KEYS.issuperset(image):
        return False
    url = image.get("url")
    if type(url) is not str:
        return False
    if url.startswith("data:"):
        if not url.startswith("data:image/") or ";base64," not in url:
            return False
    elif not url.startswith(_WEB) or len(url) > MAX_STRING:
        return False
    if "detail" not in image:
        return True
    detail = image["detail"]
    return type(detail) is str and detail in _DETAILS


def _calls(calls: JSON) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Function tool calls, the common form; anything else is for the detailed validator."""
    if type(calls) is not list or not calls:
        return None
    ids: list[str] = []
    names: list[str] = []
    for call in calls:
        if type(call) is not dict or len(call) != 3 or not _CALL_KEYS.issuperset(call):
            return None
        function = call["function"]
        if (
            call["type"] != "function"
            or type(call["id"]) is not str
            or type(function) is not dict
            or len(function) != 2
            or not _FUNCTION_KEYS.issuperset(function)
            or type(function["name"]) is not str
            or type(function["arguments"]) is not str
        ):
            return None
        ids.append(call["id"])
        names.append(function["name"])
    return tuple(ids), tuple(names)


def _parts(  # noqa: C901, PLR0911, PLR0912 (flat on purpose: the hot path)
    content: list[JSON], allowed: frozenset[str], values: dict[str, object]
) -> bool:
    """Fill `values` from a content array of common, valid parts; False if it is not one."""
    texts: list[str] = []
    kinds = images = high = audio = files = 0
    for part in content:
        if type(part) is not dict or len(part) != 2:
            return False
        kind = part.get("type")
        if type(kind) is not str or kind not in allowed:
            return False
        if kind == "text":
            text = part.get("text")
            if type(text) is not str or len(text) > MAX_STRING:
                return False
            texts.append(text)
        elif kind == "image_url":
            image = part.get("image_url")
            if type(image) is not dict or not _image(image):
                return False
            images += 1
            if image.get("detail") == "high":
                high += 1
        elif kind == "input_audio":
            sound = part.get("input_audio")
            if (
                type(sound) is not dict
                or len(sound) != 2
                or type(sound.get("data")) is not str
                or not sound["data"]
                or sound["data"].startswith("data:")
                or type(sound.get("format")) is not str
                or sound["format"] not in _AUDIO_FORMATS
            ):
                return False
            audio += 1
        elif kind == "file":
            file = part.get("file")
            if type(file) is not dict or not _FILE_KEYS.issuperset(file):
                return False
            for field in file.values():
                if type(field) is not str:
                    return False
            if not (file.get("file_data") or file.get("file_id")):
                return False
            files += 1
        else:
            refusal = part.get("refusal")
            if type(refusal) is not str:
                return False
            texts.append(refusal)
        kinds |= _BITS[kind]
    values["text"] = texts[0] if len(texts) == 1 else "\n".join(texts)
    values["parts"] = _KIND_SETS[kinds]
    if images:
        values["images"] = images
        values["image_detail_high"] = high
    if audio:
        values["audio_parts"] = audio
    if files:
        values["files"] = files
    return True


def fast_message(raw: JSON) -> RequestMessage | None:  # noqa: C901, PLR0911, PLR0912
    """The message, if it has a common valid shape; None sends it to the detailed validator."""
    if type(raw) is not dict:
        return None
    role = raw.get("role")
    content = raw.get("content")
    if len(raw) == 2 and type(content) is str and type(role) is str and role in _PLAIN:
        if len(content) > MAX_STRING:
            return None
        return build_message({"role": role, "text": content, "parts": _TEXT_ONLY})
    if type(role) is not str or role not in _KEYS or not _KEYS[role].issuperset(raw):
        return None
    values: dict[str, object] = {"role": role}
    if "name" in raw:
        name = raw["name"]
        if name is not None and (type(name) is not str or _NAME.fullmatch(name) is None):
            return None
        values["name"] = name
    if role == "tool":
        call_id = raw.get("tool_call_id")
        if type(call_id) is not str:
            return None
        values["tool_call_id"] = call_id
    elif role == "assistant":
        calls = raw.get("tool_calls")
        if calls is not None:
            found = _calls(calls)
            if found is None:
                return None
            values["tool_call_ids"], values["tool_names"] = found
        if content is None:
            if calls is None:
                return None
            values["text"] = ""
            return build_message(values)
    if type(content) is str:
        if len(content) > MAX_STRING:
            return None
        values["text"] = content
        values["parts"] = _TEXT_ONLY
        return build_message(values)
    if type(content) is not list or not content:
        return None
    if not _parts(content, _PARTS[role], values):
        return None
    return build_message(values)


def fast_function_tools(tools: JSON) -> tuple[str, ...] | None:  # noqa: PLR0911
    """The names of common, valid function tools, checked without building `param` paths;
    None sends the list to the detailed check (which also words the errors)."""
    if type(tools) is not list or not tools:
        return None
    names: list[str] = []
    for tool in tools:
        if type(tool) is not dict or len(tool) != 2 or tool.get("type") != "function":
            return None
        spec = tool.get("function")
        if type(spec) is not dict or not _TOOL_FUNCTION_KEYS.issuperset(spec):
            return None
        fn_name = spec.get("name")
        if type(fn_name) is not str or len(fn_name) > 64 or _TOOL_NAME.fullmatch(fn_name) is None:
            return None
        strict = spec.get("strict")
        if (strict is not None and type(strict) is not bool) or (
            "description" in spec and type(spec["description"]) is not str
        ):
            return None
        if "parameters" in spec and not schema_is_valid(spec["parameters"], strict is True):
            return None
        names.append(fn_name)
    return tuple(names)
