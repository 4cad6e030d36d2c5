"""Secrets out of recordings: which headers are secret, and scrubbing every string written.

A `Scrubber` replaces key-shaped strings (`sk-...`, `sess-...`, organisation and project ids,
bearer tokens, other providers' key shapes), the values of secret query parameters, the user's
own patterns, and the literal values of every secret header seen in this session, wherever
they occur. `check` is the last guard before bytes reach the disk: it finds any of them still
present in a rendered file.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "<scrubbed>"
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "openai-organization",
        "openai-project",
        "cookie",
        "set-cookie",
    }
)
"""Request and response headers whose values are credentials or account identifiers."""

KEY_PATTERNS = (
    r"(?<![A-Za-z0-9])(?:sk|sess|rk|pk)-[A-Za-z0-9_*-]{16,}",  # OpenAI / Anthropic / Stripe
    r"(?<![A-Za-z0-9])org-[A-Za-z0-9]{16,}",  # OpenAI organisation ids
    r"(?<![A-Za-z0-9])proj_[A-Za-z0-9]{16,}",  # OpenAI project ids
    r"(?<![A-Za-z0-9])(?:gsk|xai|hf)[_-][A-Za-z0-9]{20,}",  # Groq, xAI, Hugging Face
    r"(?<![A-Za-z0-9])AIza[A-Za-z0-9_-]{30,}",  # Google
    r"(?i)(?<=bearer )[A-Za-z0-9._~+/=-]{20,}",  # any bearer token written out
)
"""Key-shaped strings scrubbed by default (`--scrub` adds more)."""

SECRET_PARAMS = re.compile(
    r"(?i)([?&](?:api[-_]?key|key|token|access[-_]?token|secret|password|sig|signature|"
    r"client[-_]?secret|auth)=)[^&#\s\"']*"
)
"""Query-string parameters whose values are credentials."""

MIN_LITERAL = 6
"""Secret header values shorter than this are not searched for (they would scrub at random)."""


def literals_of(headers: Iterable[tuple[str, str]]) -> set[str]:
    """The secret values in request or response headers: whole values, bearer tokens, cookies."""
    found: set[str] = set()
    for name, value in headers:
        if name.lower() not in SECRET_HEADERS:
            continue
        found.add(value.strip())
        scheme, _, token = value.strip().partition(" ")
        if token and scheme.lower() in ("bearer", "basic", "token"):
            found.add(token.strip())
        if name.lower() in ("cookie", "set-cookie"):
            for part in value.split(";"):
                found.add(part.partition("=")[2].strip())
    return {f for f in found if len(f) >= MIN_LITERAL}


class Scrubber:
    """Scrubs strings and JSON-like trees; remembers the secret values it is shown."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.user_patterns = tuple(re.compile(p) for p in patterns)
        self._defaults = tuple(re.compile(p) for p in KEY_PATTERNS)
        self._literals: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def remember(self, values: Iterable[str]) -> None:
        """Secret values (header values of the requests recorded) to scrub from now on."""
        new = {v for v in values if len(v) >= MIN_LITERAL}
        if not new <= self._literals:
            with self._lock:
                self._literals = self._literals | new

    def exchange(
        self, headers: Iterable[tuple[str, str]], *trees: dict[str, Any]
    ) -> tuple[dict[str, Any], ...]:
        """Remember the secret values of an exchange's headers, then scrub its trees (body,
        match, reply): the one call a recorded exchange makes here."""
        self.remember(literals_of(headers))
        return tuple(self.tree(tree) for tree in trees)

    def text(self, value: str) -> str:
        """`value` with every secret replaced by `<scrubbed>`."""
        for literal in sorted(self._literals, key=len, reverse=True):
            if literal in value:
                value = value.replace(literal, REDACTED)
        value = SECRET_PARAMS.sub(lambda m: m.group(1) + REDACTED, value)
        for pattern in self._defaults:
            value = pattern.sub(REDACTED, value)
        for pattern in self.user_patterns:
            value = pattern.sub(_replace_groups, value)
        return value

    def tree(self, value: Any) -> Any:
        """A copy of a YAML/JSON tree with every string (keys too) scrubbed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.tree(k): self.tree(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.tree(v) for v in value]
        return value

    def check(self, text: str) -> list[str]:
        """What secrets `text` still holds (named, not shown): empty when it is safe to write."""
        found = [
            f"a secret header value ({len(v)} characters)" for v in self._literals if v in text
        ]
        found += [f"a key matching {p.pattern!r}" for p in self._defaults if p.search(text)]
        for pattern in self.user_patterns:
            match = pattern.search(text)
            if match is not None and _replace_groups(match) != match.group(0):
                found.append(f"a match of --scrub {pattern.pattern!r}")
        return found


def _replace_groups(match: re.Match[str]) -> str:
    """The whole match scrubbed, or with groups only its groups (`password=(\\w+)`)."""
    if not match.re.groups:
        return REDACTED
    text, start = match.group(0), match.start()
    out: list[str] = []
    position = 0
    for group in range(1, match.re.groups + 1):
        begin, end = match.span(group)
        if begin < 0 or begin - start < position:
            continue
        out.append(text[position : begin - start])
        out.append(REDACTED)
        position = end - start
    out.append(text[position:])
    return "".join(out)
