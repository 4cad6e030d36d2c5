"""A small deterministic tokenizer: token counts for usage, stream pieces, logprob values.

It is not OpenAI's tokenizer. It splits text the way GPT tokens look (a word with its leading
space, a run of punctuation, a newline), so streams arrive in word-sized deltas and usage grows
with the text. The same text always gives the same tokens, counts and logprobs.
"""

from __future__ import annotations

import re
import zlib

from mockserver.wire import TokenLogprob, TopLogprob

_TOKEN = re.compile(r" ?[^\W_]+| ?[^\s\w]+|\n+|_+|\s+(?= \S)|\s+")


def split(text: str) -> list[str]:
    """Split text into tokens; joining them gives the text back."""
    return _TOKEN.findall(text)


_COUNTED: dict[str, int] = {}
_COUNTED_CHARS = [0]
MAX_COUNTED_CHARS = 4 * 1024 * 1024
"""The texts whose counts are kept, in characters (then they are all forgotten at once)."""


def count(text: str) -> int:
    """How many tokens `text` holds.

    Counts are kept per text: a conversation sends its history again with every turn, and a
    system prompt comes with every request, so most prompt texts were counted before."""
    found = _COUNTED.get(text)
    if found is not None:
        return found
    found = len(_TOKEN.findall(text)) if text else 0
    if _COUNTED_CHARS[0] + len(text) > MAX_COUNTED_CHARS:
        _COUNTED.clear()
        _COUNTED_CHARS[0] = 0
    if len(text) <= MAX_COUNTED_CHARS // 16:
        _COUNTED[text] = found
        _COUNTED_CHARS[0] += len(text) + 64
    return found


def split_chars(text: str, size: int) -> list[str]:
    """Split text into pieces of `size` characters (the last may be shorter)."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def logprob(token: str) -> float:
    """A deterministic log probability in [-2.0, 0.0) for a token."""
    return -round((zlib.crc32(token.encode()) % 2000 + 1) / 1000, 3)


def _alternatives(token: str) -> list[str]:
    stripped = token.strip() or token
    candidates = [stripped.upper(), stripped.lower(), stripped.capitalize(), f" {stripped}", "."]
    seen = {token}
    out: list[str] = []
    for candidate in candidates:
        if candidate not in seen:
            seen.add(candidate)
            out.append(candidate)
    return out


def token_logprob(token: str, top: int) -> TokenLogprob:
    """A `TokenLogprob` for `token` with `top` alternatives (the token itself ranked first)."""
    value = logprob(token)
    tops: list[TopLogprob] = []
    if top:
        tops.append({"token": token, "logprob": value, "bytes": list(token.encode())})
        for rank, alt in enumerate(_alternatives(token)[: top - 1], start=1):
            tops.append(
                {"token": alt, "logprob": round(value - rank * 1.5, 3), "bytes": list(alt.encode())}
            )
        k = len(tops)
        while k < top:
            filler = f"<alt{k}>"
            tops.append(
                {
                    "token": filler,
                    "logprob": round(value - k * 1.5, 3),
                    "bytes": list(filler.encode()),
                }
            )
            k += 1
    return {"token": token, "logprob": value, "bytes": list(token.encode()), "top_logprobs": tops}


VOCABULARY = 200_000
"""Token ids are below this (vLLM's `token_ids` and `prompt_token_ids`)."""


def token_id(token: str) -> int:
    """A deterministic id for a token: the same token always has the same id."""
    return zlib.adler32(token.encode()) % VOCABULARY


def token_ids(text: str) -> list[int]:
    """The ids of the tokens of `text`, in order."""
    return [token_id(t) for t in _TOKEN.findall(text)] if text else []
