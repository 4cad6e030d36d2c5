"""Request bytes -> the JSON object they hold, as strictly as OpenAI reads them (no NaN, no lone
surrogate), or the `ApiError` OpenAI gives for a body that is not JSON.

orjson reads the usual body; Python's decoder reads what orjson would read otherwise (numbers
past 64 bits, infinity) and what it refuses, and says what is wrong; a large body is read in
short steps so the server stays responsive.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import NoReturn

import orjson

from mockserver.errors import ApiError
from mockserver.wire import JSON

__all__ = ["LARGE_BODY", "LONG_STRING", "decode_body", "decode_exact"]

_NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
    "valid JSON. If you have trouble figuring out how to fix this, please contact us through our "
    "help center at help.openai.com.)"
)


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
