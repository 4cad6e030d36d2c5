"""Untrusted request JSON -> `ChatRequest`, or an `ApiError` naming the exact `param`.

Everything OpenAI's `CreateChatCompletionRequest` accepts is accepted; everything the live API
refuses for every model is refused, with its wording, `param` path and `code` (wire-format.md
§2). The work is split by concept:

- `errors`: the error builders and value checks,
- `messages`: messages, content parts, harmony messages, tool-call pairing,
- `tools`: tools, `tool_choice`, legacy functions, `response_format`, JSON Schemas,
- `params`: every other top-level parameter,
- `strict`: what only strict mode refuses (unknown parameters, model-specific rules).

This module decodes the body, runs those checks, applies the cross-field rules and builds the
`ChatRequest`. Unknown top-level parameters (vLLM's `top_k`, `chat_template_kwargs`, ...) and
unknown keys in nested objects are tolerated and listed in `ChatRequest.unknown_fields`.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import NoReturn

import orjson

from mockserver.errors import ApiError
from mockserver.request import ChatRequest, build_request
from mockserver.validation.errors import (
    empty_string,
    missing,
    rule,
    stream_options_of,
    wrong_type,
)
from mockserver.validation.messages import parse_messages
from mockserver.validation.params import CHECKS
from mockserver.validation.tools import (
    Tools,
    parse_function_call,
    parse_response_format,
    parse_tool_choice,
    parse_tools,
)
from mockserver.wire import JSON

OWN_FIELDS = frozenset(
    {"model", "messages", "tools", "functions", "tool_choice", "function_call", "response_format"}
)
"""Top-level parameters checked here rather than through `params.CHECKS`."""
KNOWN_FIELDS = OWN_FIELDS | frozenset(CHECKS)
"""Every parameter of OpenAI's `CreateChatCompletionRequest` (37 of them)."""

_NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
    "valid JSON. If you have trouble figuring out how to fix this, please contact us through our "
    "help center at help.openai.com.)"
)
_NO_TOOLS = Tools()
_REQUIRED = frozenset({"model", "messages"})
_AS_IS = frozenset(
    {
        "n",
        "logprobs",
        "stream",
        "service_tier",
        "reasoning_effort",
        "verbosity",
        "metadata",
        "parallel_tool_calls",
    }
)
"""Parameters whose checked value is the `ChatRequest` field of the same name."""


def _not_json() -> NoReturn:
    raise ApiError(status=400, message=_NOT_JSON) from None


def _constant(name: str) -> NoReturn:
    """`NaN`, `Infinity` and `-Infinity` are not JSON."""
    raise ValueError(name)


_DECODER = json.JSONDecoder(parse_constant=_constant)
"""Made once: `json.loads(..., parse_constant=...)` would build a decoder per call."""


LARGE_BODY = 1024 * 1024
"""Bodies larger than this are parsed by `_decode_large`."""
LONG_STRING = 64 * 1024
"""String literals longer than this are cut out of a large body before the JSON decoder runs."""
_HOLE = "\x00mockserver-{}:{}"
"""What stands in for a long string while the rest is decoded: a NUL, a random token drawn
per body (so no client text can be taken for a hole) and the string's index."""


def _decode_large(raw: bytes) -> JSON:
    """A large UTF-8 body decoded in short steps, so that other threads (the server's other
    requests, `/health`) get the interpreter meanwhile: one call of the JSON decoder over 60 MB
    holds it for a tenth of a second, a Python loop of short calls lets go every few ms.

    String literals longer than `LONG_STRING` (base64 images and audio, long documents) are cut
    out of the bytes (UTF-8 never has a quote or a backslash inside a character), the decoder
    reads the rest, and the strings go back in. A long string with an escape, a character
    beyond ASCII or one JSON does not allow raw goes through the decoder, as before."""
    if raw.count(b'"') > 100_000:  # a multitude of short strings: nothing long to cut out
        return _DECODER.decode(raw.decode("utf-8", "surrogatepass"))
    pieces: list[bytes] = []
    long: list[str] = []
    token = secrets.token_hex(8)
    view = memoryview(raw)
    start = pos = 0
    while (opening := raw.find(b'"', pos)) >= 0:
        end = raw.find(b'"', opening + 1)
        while end > 0 and raw[end - 1] == _BACKSLASH and _backslashes(raw, end) % 2:
            end = raw.find(b'"', end + 1)  # that quote was escaped: the string goes on
        if end < 0:
            break  # unterminated: the decoder says so
        if end - opening > LONG_STRING and (literal := _plain(view[opening + 1 : end])):
            pieces.append(raw[start:opening])
            pieces.append(json.dumps(_HOLE.format(token, len(long))).encode())
            long.append(literal)
            start = end + 1
        pos = end + 1
    if not long:
        return _DECODER.decode(raw.decode("utf-8", "surrogatepass"))
    pieces.append(raw[start:])
    skeleton = b"".join(pieces).decode("utf-8", "surrogatepass")
    return _fill(_DECODER.decode(skeleton), _HOLE.format(token, ""), long)


_BACKSLASH = ord("\\")
_CONTROL = tuple(chr(c) for c in range(32))


def _plain(literal: memoryview) -> str | None:
    """The text of a string literal's bytes when it is ASCII with no escape and none of the
    characters JSON strings may not hold raw, else None. Decoded straight from the body's
    buffer (one copy of 60 MB, not two), then checked one character at a time: each check a
    fast scan, where `str.isprintable` over 60 MB held the interpreter for 130 ms."""
    try:
        text = str(literal, "ascii")
    except UnicodeDecodeError:
        return None
    if "\\" in text:
        return None
    for control in _CONTROL:
        if control in text:
            return None
    return text


def _backslashes(raw: bytes, end: int) -> int:
    """How many backslashes stand right before `end`."""
    count = 0
    while end - count - 1 >= 0 and raw[end - count - 1] == _BACKSLASH:
        count += 1
    return count


def _fill(value: JSON, hole: str, long: list[str]) -> JSON:
    """`value` with each hole (`hole` then an index) replaced by its long string."""
    if isinstance(value, str):
        if value.startswith(hole):
            return long[int(value[len(hole) :])]
        return value
    if isinstance(value, dict):
        return {_fill(k, hole, long): _fill(v, hole, long) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, hole, long) for v in value]
    return value


_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19
"""19 digits in a row: a number orjson may read otherwise than Python (past 64 bits it gives a
float). Found by mapping every digit to 0 and searching (a regex took 20 us a 2 kB body)."""
_NOT_BEFORE_A_NUMBER = frozenset(b'"_abcdfghijklmnopqrstuvwxyzABCDFGHIJKLMNOPQRSTUVWXYZ')
"""What never stands right before a JSON number's first digit: a quote or a letter (bar `e`
and `E`, which start an exponent). A run of digits after one is inside a string (an id such
as `call_0000000000000000000001`)."""


_NOT_A_DIGIT = re.compile(rb"[^0]")
_SKIPPED_RUNS = 8
"""Runs inside strings skipped before giving the body to Python's decoder anyway (each skip is
a few C calls: a body of many long runs is not searched run by run on the event loop)."""


def _may_hold_long_number(raw: bytes) -> bool:
    """Whether the body may hold a number of 19 digits or more (then Python's decoder reads
    it); a run of digits inside a string, after a letter or a quote, does not count."""
    digits = raw.translate(_DIGITS)
    start = digits.find(_LONG_NUMBER)
    for _ in range(_SKIPPED_RUNS):
        if start < 0:
            return False
        if start == 0 or raw[start - 1] not in _NOT_BEFORE_A_NUMBER:
            return True
        end = _NOT_A_DIGIT.search(digits, start + len(_LONG_NUMBER))  # the rest of this run
        if end is None:
            return False
        start = digits.find(_LONG_NUMBER, end.start())
    return start >= 0


def decode_body(raw: bytes) -> dict[str, JSON]:
    """Parse the request body as a JSON object (strict JSON: no NaN, no lone surrogates)."""
    return decode_exact(raw)[0]


def decode_exact(raw: bytes) -> tuple[dict[str, JSON], bool]:
    """The body as `decode_body` reads it, and whether orjson read it: then every value is
    one orjson writes back exactly (no infinity, which orjson writes as `null`, and no integer
    past 64 bits), so `mockserver.known` may key its parts by what orjson writes.

    orjson reads the usual body in a sixth of the time. It refuses what Python's decoder
    must judge (NaN, a number that overflows to infinity, a lone surrogate, escaped or raw,
    another encoding; it reads a valid surrogate pair as Python does), and it reads numbers
    past 64 bits as floats: a body that may hold such a number, a large body (read piecewise
    so the server stays responsive), or one orjson refuses goes to Python's decoder, which
    says what is wrong."""
    if len(raw) <= LARGE_BODY and not _may_hold_long_number(raw):
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            if type(body) is dict:
                return body, True
    try:
        encoding = json.detect_encoding(raw)
        if len(raw) > LARGE_BODY and encoding == "utf-8":
            body = _decode_large(raw)
        else:
            body = _DECODER.decode(raw.decode(encoding, "surrogatepass"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        _not_json()
    if type(body) is not dict:
        _not_json()
    if encoding != "utf-8" or _holds_surrogate(raw):
        # A surrogate, escaped or raw: fine in a pair, not alone (it cannot become UTF-8).
        try:
            json.dumps(body, ensure_ascii=False).encode()
        except (UnicodeEncodeError, RecursionError):
            _not_json()
    return body, False


_PIECE = 8 * 1024 * 1024


def _holds_surrogate(raw: bytes) -> bool:
    """Whether the body may hold a surrogate, escaped or raw; a large body is searched a piece
    at a time (each search of 60 MB held the interpreter for 40 ms)."""
    if len(raw) <= _PIECE:
        return b"\\ud" in raw or b"\\uD" in raw or b"\xed" in raw
    view = memoryview(raw)
    for start in range(0, len(raw), _PIECE):
        piece = bytes(view[start : start + _PIECE + 2])  # +2: a needle across the cut
        if b"\\ud" in piece or b"\\uD" in piece or b"\xed" in piece:
            return True
    return False


def _derived(body: dict[str, JSON], state: dict[str, object]) -> None:
    """The fields that several parameters decide, and the rules tying parameters together
    (wire-format.md §2.6 rules 1, 2 and 7)."""
    options = stream_options_of(body)
    if isinstance(options, dict):
        state["include_usage"] = options.get("include_usage") is True
        state["include_obfuscation"] = options.get("include_obfuscation") is not False
    top_logprobs = body.get("top_logprobs")
    if top_logprobs is not None:
        if body.get("logprobs") is not True:
            raise rule(
                "Invalid value for 'top_logprobs': 'logprobs' must be set to true when "
                "'top_logprobs' is used.",
                "top_logprobs",
            )
        state["top_logprobs"] = int(top_logprobs)
    audio = body.get("audio")
    modalities = body.get("modalities")
    if modalities is not None:
        if "audio" in modalities and audio is None:
            raise rule(
                "Missing required parameter: 'audio'. It is required when 'modalities' "
                "includes 'audio'.",
                "audio",
                "missing_required_parameter",
            )
        state["modalities"] = tuple(modalities)
    if audio is not None:
        voice = audio["voice"]
        state["audio_format"] = audio["format"]
        state["audio_voice"] = voice if type(voice) is str else None
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        state["max_tokens"] = int(max_tokens)
    stop = body.get("stop")
    if stop is not None:
        state["stop"] = (stop,) if type(stop) is str else tuple(stop)


def _tools_and_formats(
    body: dict[str, JSON], state: dict[str, object], nested: list[str], keyed: bool
) -> None:
    """`tools`, `functions`, `tool_choice`, `function_call` and `response_format`."""
    tools = _NO_TOOLS
    if body.get("tools") is not None or body.get("functions") is not None:
        tools = parse_tools(body, nested, keyed=keyed)
        state["tools"] = tools.names
        state["uses_functions"] = bool(tools.legacy) and not (tools.functions or tools.custom)
    mode, forced = parse_tool_choice(body.get("tool_choice"), tools)
    if mode is None:
        mode, forced = parse_function_call(body.get("function_call"))
    state["tool_choice"] = mode
    state["forced_tool"] = forced
    state["response_format"], state["response_format_name"] = parse_response_format(
        body.get("response_format"), nested
    )


def _bad_model(model: JSON) -> NoReturn:
    if model is None:
        missing("model")
    if type(model) is not str:
        wrong_type("model", "a string", model)
    empty_string("model")


def _read_messages(
    messages: JSON, state: dict[str, object], nested: list[str], *, keyed: bool, paired: bool
) -> None:
    """`messages`, validated into `state` (with their `known` keys when `keyed`)."""
    if messages is None:
        missing("messages")
    keys: list[bytes | None] | None = [] if keyed else None
    state["messages"] = parse_messages(messages, nested, keys, paired=paired)
    if keys:
        state["message_keys"] = tuple(keys)


def parse_chat_request(
    body: dict[str, JSON],
    raw_headers: tuple[tuple[bytes, bytes], ...] = (),
    *,
    paired: bool = True,
    keyed: bool = False,
) -> ChatRequest:
    """Validate a decoded request body and build the `ChatRequest` matching works from
    (`paired`: whether tool calls must be answered by `tool` messages, as OpenAI requires;
    `keyed`: whether the body's messages and tools may be looked up in, and kept in,
    `mockserver.known`, which only a body `decode_exact` calls exact may be).

    The cost follows what the request carries: each parameter present is checked once, and
    parameters that are absent cost nothing.
    """
    model = body.get("model")
    if type(model) is not str or not model:
        _bad_model(model)
    nested: list[str] = []
    state: dict[str, object] = {}
    state["body"] = body
    state["model"] = model
    _read_messages(body.get("messages"), state, nested, keyed=keyed, paired=paired)
    state["raw_headers"] = raw_headers
    unknown: list[str] = []
    own = derived = False
    for key, value in body.items():
        check = CHECKS.get(key)
        if check is None:
            if key not in OWN_FIELDS:
                unknown.append(key)
            elif key not in _REQUIRED:
                own = True
        elif value is not None:
            result = check(value, key, nested)
            if key in _AS_IS:
                state[key] = result
            else:
                derived = True
    if own:
        _tools_and_formats(body, state, nested, keyed)
    if derived:
        _derived(body, state)
    if unknown or nested:
        state["unknown_fields"] = (*unknown, *nested)
    return build_request(state)
