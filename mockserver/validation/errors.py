"""The 400s the validator raises, worded as OpenAI words them, and the value checks behind them.

Every builder returns (or raises) an `ApiError` with the exact `param` path in the notation the
API uses today (`messages[2].content[1].input_audio.format`) and OpenAI's `code`. The checks are
written for speed: the common, valid case is one `type(...) is` test and a return.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Collection, Mapping, Sequence
from typing import NoReturn

from mockserver.errors import ApiError, invalid
from mockserver.wire import JSON

NAME_PATTERN = "^[a-zA-Z0-9_-]+$"
"""What tool, function and `json_schema` names must match (and be at most 64 characters)."""
_NAME = re.compile(r"[a-zA-Z0-9_-]+")
MAX_STRING = 10 * 1024 * 1024
"""The longest string the API takes as message content (10 MiB of characters)."""

_TYPE_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a decimal",
    str: "a string",
    list: "an array",
    dict: "an object",
}


def type_name(value: JSON) -> str:
    """The value's JSON type as the API's messages name it."""
    return _TYPE_NAMES.get(type(value), "null")


def show(value: JSON, limit: int = 100) -> str:
    """A value quoted in an error message, cut short when long (and never deep)."""
    text = value if isinstance(value, str) else reprlib.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def listing(allowed: Sequence[str]) -> str:
    """`'a', 'b', and 'c'`: the API's way to list supported values."""
    quoted = [f"'{a}'" for a in allowed]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


# -- builders -----------------------------------------------------------------------------------


def missing(param: str) -> NoReturn:
    raise invalid(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def wrong_type(param: str, expected: str, value: JSON) -> NoReturn:
    raise invalid(
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def bad_value(param: str, value: JSON, allowed: Sequence[str]) -> NoReturn:
    raise invalid(
        f"Invalid value: '{show(value)}'. Supported values are: {listing(allowed)}.",
        param=param,
        code="invalid_value",
    )


# The length rules below are a table of OpenAI's own wordings, one function each: alike in
# shape on purpose (an intentional mirror of the API's messages, not logic written twice).


def empty_array(param: str) -> NoReturn:
    raise invalid(
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, "
        "but got an empty array instead.",
        param=param,
        code="empty_array",
    )


def too_long_array(param: str, limit: int, length: int) -> NoReturn:
    raise invalid(
        f"Invalid '{param}': array too long. Expected an array with maximum length {limit}, "
        f"but got an array with length {length} instead.",
        param=param,
        code="array_above_max_length",
    )


def empty_string(param: str) -> NoReturn:
    raise invalid(
        f"Invalid '{param}': empty string. Expected a string with minimum length 1, "
        "but got an empty string instead.",
        param=param,
        code="empty_string",
    )


def too_long_string(param: str, limit: int, length: int) -> NoReturn:
    raise invalid(
        f"Invalid '{param}': string too long. Expected a string with maximum length {limit}, "
        f"but got a string with length {length} instead.",
        param=param,
        code="string_above_max_length",
    )


def no_pattern_match(param: str, pattern: str) -> NoReturn:
    raise invalid(
        f"Invalid '{param}': string does not match pattern. Expected a string that matches "
        f"the pattern '{pattern}'.",
        param=param,
        code="invalid_value",
    )


def _number(value: float) -> str:
    if type(value) is int or (value.is_integer() and abs(value) < 1e16):
        return str(int(value))
    return repr(value)


def out_of_range(param: str, value: float, low: float | None, high: float | None) -> NoReturn:
    kind = "integer" if type(value) is int else "decimal"
    if low is not None and value < low:
        raise invalid(
            f"Invalid '{param}': {kind} below minimum value. Expected a value >= "
            f"{_number(low)}, but got {_number(value)} instead.",
            param=param,
            code=f"{kind}_below_min_value",
        )
    raise invalid(
        f"Invalid '{param}': {kind} above maximum value. Expected a value <= "
        f"{_number(high or 0)}, but got {_number(value)} instead.",
        param=param,
        code=f"{kind}_above_max_value",
    )


def rule(message: str, param: str | None, code: str | None = None) -> ApiError:
    """A cross-field rule the API enforces (its messages carry no code, mostly)."""
    return ApiError(status=400, message=message, param=param, code=code)


def stream_options_of(body: Mapping[str, JSON]) -> JSON:
    """`stream_options`, which only a streamed request may give (chat and Responses alike)."""
    options = body.get("stream_options")
    if options is not None and body.get("stream") is not True:
        raise rule(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    return options


# -- checks -------------------------------------------------------------------------------------


def as_int(value: JSON, param: str) -> int:
    """An integer (JSON `1.0` counts, as in JSON Schema; `true` does not)."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    wrong_type(param, "an integer", value)


def int_in(value: JSON, param: str, low: int | None, high: int | None) -> int:
    number = as_int(value, param)
    if (low is not None and number < low) or (high is not None and number > high):
        out_of_range(param, number, low, high)
    return number


def number_in(value: JSON, param: str, low: float, high: float) -> float:
    if type(value) is not float and type(value) is not int:
        wrong_type(param, "a number", value)
    if not low <= value <= high:
        out_of_range(param, value, low, high)
    return value


def string(value: JSON, param: str) -> str:
    if type(value) is not str:
        wrong_type(param, "a string", value)
    return value


def boolean(value: JSON, param: str) -> bool:
    if type(value) is not bool:
        wrong_type(param, "a boolean", value)
    return value


def obj(value: JSON, param: str) -> dict[str, JSON]:
    if type(value) is not dict:
        wrong_type(param, "an object", value)
    return value


def array(value: JSON, param: str, *, min_items: int = 0, max_items: int = 0) -> list[JSON]:
    if type(value) is not list:
        wrong_type(param, "an array", value)
    if min_items and not value:
        empty_array(param)
    if max_items and len(value) > max_items:
        too_long_array(param, max_items, len(value))
    return value


def choice(value: JSON, param: str, allowed: Collection[str], order: Sequence[str]) -> str:
    """One of an enum's values (`allowed` for the lookup, `order` for the message)."""
    if type(value) is not str:
        wrong_type(param, "a string", value)
    if value not in allowed:
        bad_value(param, value, order)
    return value


def required(container: dict[str, JSON], key: str, param: str) -> JSON:
    """`container[key]`, which must be present and not null."""
    value = container.get(key)
    if value is None:
        missing(f"{param}.{key}")
    return value


def name(value: JSON, param: str) -> str:
    """A tool, function or schema name: `[a-zA-Z0-9_-]`, 1 to 64 characters."""
    text = string(value, param)
    if not text:
        empty_string(param)
    if len(text) > 64:
        too_long_string(param, 64, len(text))
    if _NAME.fullmatch(text) is None:
        no_pattern_match(param, NAME_PATTERN)
    return text


def text_of_size(value: JSON, param: str) -> str:
    text = string(value, param)
    if len(text) > MAX_STRING:
        too_long_string(param, MAX_STRING, len(text))
    return text


def note_unknown(
    container: dict[str, JSON], allowed: frozenset[str], param: str, unknown: list[str]
) -> None:
    """Record the keys of `container` outside `allowed` (tolerated; strict mode refuses them)."""
    if not allowed.issuperset(container):
        unknown.extend(f"{param}.{key}" for key in container if key not in allowed)


def closed(container: dict[str, JSON], allowed: frozenset[str], param: str) -> None:
    """Refuse keys outside `allowed`, where the schema itself forbids extra properties."""
    if not allowed.issuperset(container):
        extra = next(key for key in container if key not in allowed)
        raise invalid(
            f"Unknown parameter: '{param}.{show(extra)}'.",
            param=f"{param}.{show(extra)}",
            code="unknown_parameter",
        )
