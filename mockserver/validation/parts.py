"""Content parts: `text`, `image_url`, `input_audio`, `file`, `refusal`, and which role takes which.

Follows the live API where it differs from the schema: `tool` messages take `image_url` parts too,
and refuse the others with "Content blocks are expected to be either text or image_url type."
"""

from __future__ import annotations

from typing import NoReturn

from mockserver.errors import invalid
from mockserver.request import PART_KINDS
from mockserver.validation.errors import (
    MAX_STRING,
    bad_value,
    choice,
    empty_string,
    missing,
    note_unknown,
    obj,
    required,
    string,
    text_of_size,
    wrong_type,
)
from mockserver.wire import JSON

PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")
ALLOWED_PARTS: dict[str, tuple[str, ...]] = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "tool": ("text", "image_url"),
}
"""The part types each role's `content` array may hold."""
_ALLOWED = {role: frozenset(kinds) for role, kinds in ALLOWED_PARTS.items()}

IMAGE_DETAILS = ("auto", "low", "high")
INPUT_AUDIO_FORMATS = ("wav", "mp3")
_DETAILS = frozenset(IMAGE_DETAILS)
_INPUT_FORMATS = frozenset(INPUT_AUDIO_FORMATS)

_PART_KEYS: dict[str, frozenset[str]] = {
    "text": frozenset({"type", "text", "prompt_cache_breakpoint"}),
    "image_url": frozenset({"type", "image_url", "prompt_cache_breakpoint"}),
    "input_audio": frozenset({"type", "input_audio", "prompt_cache_breakpoint"}),
    "file": frozenset({"type", "file", "prompt_cache_breakpoint"}),
    "refusal": frozenset({"type", "refusal"}),
}
_IMAGE_KEYS = frozenset({"url", "detail"})
_AUDIO_KEYS = frozenset({"data", "format"})
_FILE_KEYS = frozenset({"file_data", "file_id", "filename"})


class Parts:
    """What a content array adds up to."""

    __slots__ = ("audio", "files", "high", "images", "kinds", "texts")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.kinds: set[str] = set()
        self.images = 0
        self.high = 0
        self.audio = 0
        self.files = 0


def _misplaced(param: str, role: str, kind: str) -> NoReturn:
    """A known part type in a role that may not carry it, answered as the live API does."""
    if role == "tool":
        raise invalid(
            f"Invalid '{param}'. Content blocks are expected to be either text or image_url type.",
            param=param,
        )
    if kind == "image_url":
        raise invalid(
            f"Invalid '{param}'. Image URLs are only allowed for messages with role 'user', "
            f"but this message with role '{role}' contains an image URL.",
            param=param,
        )
    raise AssertionError(kind)


def check_breakpoint(part: dict[str, JSON], param: str) -> None:
    """The `prompt_cache_breakpoint: {mode: "explicit"}` of a part that has one."""
    where = f"{param}.prompt_cache_breakpoint"
    value = obj(part["prompt_cache_breakpoint"], where)
    choice(required(value, "mode", where), f"{where}.mode", ("explicit",), ("explicit",))


def _image(part: dict[str, JSON], param: str, into: Parts, unknown: list[str]) -> None:
    where = f"{param}.image_url"
    image = obj(required(part, "image_url", param), where)
    url = string(required(image, "url", where), f"{where}.url")
    if url.startswith("data:"):
        if not url.startswith("data:image/"):
            raise invalid(
                "Invalid MIME type. Only image types are supported.",
                param=f"{where}.url",
                code="invalid_image_format",
            )
        if ";base64," not in url:
            raise invalid(
                f"Invalid '{where}.url'. Expected a base64-encoded data URL with an image MIME "
                "type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got a value "
                "with an invalid format.",
                param=f"{where}.url",
            )
    elif not url.startswith(("https://", "http://")) or len(url) > MAX_STRING:
        raise invalid(
            f"Invalid '{where}.url'. Expected a valid URL, but got a value with an invalid format.",
            param=f"{where}.url",
        )
    detail = image.get("detail")
    if detail is not None or "detail" in image:
        choice(detail, f"{where}.detail", _DETAILS, IMAGE_DETAILS)
    note_unknown(image, _IMAGE_KEYS, where, unknown)
    into.images += 1
    if detail == "high":
        into.high += 1


def _input_audio(part: dict[str, JSON], param: str, into: Parts, unknown: list[str]) -> None:
    where = f"{param}.input_audio"
    audio = obj(required(part, "input_audio", param), where)
    data = string(required(audio, "data", where), f"{where}.data")
    if not data:
        empty_string(f"{where}.data")
    if data.startswith("data:"):
        raise invalid(
            f"Invalid '{where}.data'. Expected base64-encoded audio bytes without a 'data:' URL "
            "prefix.",
            param=f"{where}.data",
        )
    choice(required(audio, "format", where), f"{where}.format", _INPUT_FORMATS, INPUT_AUDIO_FORMATS)
    note_unknown(audio, _AUDIO_KEYS, where, unknown)
    into.audio += 1


def _file(part: dict[str, JSON], param: str, into: Parts, unknown: list[str]) -> None:
    where = f"{param}.file"
    file = obj(required(part, "file", param), where)
    for key in ("file_data", "file_id", "filename"):
        if key in file:
            string(file[key], f"{where}.{key}")
    if not file.get("file_data") and not file.get("file_id"):
        raise invalid(
            f"Invalid '{where}': expected one of 'file_id' or 'file_data' (with 'filename').",
            param=where,
            code="missing_required_parameter",
        )
    note_unknown(file, _FILE_KEYS, where, unknown)
    into.files += 1


def parse_parts(
    content: list[JSON], param: str, role: str, message: str, unknown: list[str]
) -> Parts:
    """Check the parts of message `message`'s content array (at `param`) for its `role`."""
    into = Parts()
    allowed = _ALLOWED[role]
    texts = into.texts
    for i, part in enumerate(content):
        where = f"{param}[{i}]"
        if type(part) is not dict:
            wrong_type(where, "an object", part)
        kind = part.get("type")
        if kind is None:
            missing(f"{where}.type")
        if type(kind) is not str:
            wrong_type(f"{where}.type", "a string", kind)
        if kind not in allowed:
            if kind in _PART_KEYS and (role == "tool" or kind == "image_url"):
                _misplaced(message, role, kind)
            bad_value(f"{where}.type", kind, ALLOWED_PARTS[role])
        if kind == "text":
            texts.append(text_of_size(required(part, "text", where), f"{where}.text"))
        elif kind == "image_url":
            _image(part, where, into, unknown)
        elif kind == "input_audio":
            _input_audio(part, where, into, unknown)
        elif kind == "file":
            _file(part, where, into, unknown)
        else:
            texts.append(string(required(part, "refusal", where), f"{where}.refusal"))
        if "prompt_cache_breakpoint" in part:
            check_breakpoint(part, where)
        into.kinds.add(PART_KINDS[kind])
        note_unknown(part, _PART_KEYS[kind], where, unknown)
    return into
