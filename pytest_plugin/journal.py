"""What a test's client sent, as plain values, and assertions on it that print readable diffs."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mockserver.engine import NO_MATCH, JournalEntry

_UNSET: Any = object()
_BODY_KEYS = ("model", "messages", "tools")


@dataclass(frozen=True, slots=True)
class Call:
    """One request the mock answered (`api`: `chat` completions or `responses`), and how.

    `body` is the JSON the client sent; `messages`, `tools` (function names), `params` (every
    other body key: temperature, stream, response_format, ...) and `headers` (lower-case names)
    are read from it. `scenario` names the scenario that answered (None: nothing matched, or the
    request was invalid), `status` is the HTTP status answered and `error` its error message.
    """

    index: int
    entry: JournalEntry

    @property
    def body(self) -> dict[str, Any]:
        body = self.entry.body
        return dict(body) if isinstance(body, dict) else {}

    @property
    def api(self) -> str:
        """The API the request came through: `chat` or `responses`."""
        return self.entry.api

    @property
    def model(self) -> str | None:
        model = self.body.get("model")
        return model if isinstance(model, str) else None

    @property
    def messages(self) -> list[Any]:
        messages = self.body.get("messages")
        return list(messages) if isinstance(messages, list) else []

    @property
    def last_user_message(self) -> str | None:
        request = self.entry.request
        return request.last_user_message if request is not None else None

    @property
    def tools(self) -> list[str]:
        """The names of the tools (functions) the request offered."""
        request = self.entry.request
        return list(request.tools) if request is not None else []

    @property
    def params(self) -> dict[str, Any]:
        return {k: v for k, v in self.body.items() if k not in _BODY_KEYS}

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def headers(self) -> dict[str, str]:
        request = self.entry.request
        return dict(request.headers) if request is not None else {}

    @property
    def scenario(self) -> str | None:
        return self.entry.scenario

    @property
    def reply_index(self) -> int | None:
        return self.entry.reply_index

    @property
    def status(self) -> int:
        return self.entry.status

    @property
    def fault(self) -> str | None:
        """The fault applied to this request (its name), `rate_limit`, or None."""
        return self.entry.fault

    @property
    def error(self) -> str | None:
        return self.entry.error.message if self.entry.error is not None else None

    @property
    def unmatched(self) -> bool:
        """True when no scenario matched this request (the mock answered 404)."""
        return self.entry.error is not None and self.entry.error.type == NO_MATCH

    def describe(self) -> str:
        """One line for failure messages: `#1 model='m' last user message='hi' -> 200 'greet'`."""
        parts = [f"#{self.index + 1}"]
        if self.model is not None:
            parts.append(f"model={self.model!r}")
        if self.last_user_message is not None:
            parts.append(f"last user message={_short(self.last_user_message)!r}")
        if self.stream:
            parts.append("stream")
        answer = f"-> {self.status}"
        if self.scenario is not None:
            answer += f" from scenario {self.scenario!r}"
        if self.fault is not None:
            answer += f" (fault {self.fault!r})"
        parts.append(answer)
        return " ".join(parts)

    def assert_matches(
        self,
        *,
        model: str = _UNSET,
        messages: Sequence[Any] = _UNSET,
        last_user_message: str | None = _UNSET,
        tools: Sequence[str] = _UNSET,
        params: Mapping[str, Any] = _UNSET,
        headers: Mapping[str, str] = _UNSET,
        scenario: str | None = _UNSET,
        status: int = _UNSET,
        stream: bool = _UNSET,
    ) -> None:
        """Fail with a diff unless this request has every value given.

        `params` and `headers` check only the keys given (header names in any case); the
        other arguments compare the whole value.
        """
        __tracebackhide__ = True
        problems: list[str] = []

        def check(name: str, expected: Any, actual: Any) -> None:
            if expected is not _UNSET and expected != actual:
                problems.append(difference(name, expected, actual))

        check("model", model, self.model)
        check("messages", _jsonish(messages), self.messages)
        check("last_user_message", last_user_message, self.last_user_message)
        check("tools", _jsonish(tools), self.tools)
        check("scenario", scenario, self.scenario)
        check("status", status, self.status)
        check("stream", stream, self.stream)
        if params is not _UNSET:
            sent = self.params
            wanted = _jsonish(dict(params))
            check("params", wanted, {k: sent.get(k, "<not sent>") for k in wanted})
        if headers is not _UNSET:
            sent_headers = self.headers
            wanted_headers = {k.lower(): v for k, v in headers.items()}
            check(
                "headers",
                wanted_headers,
                {k: sent_headers.get(k, "<not sent>") for k in wanted_headers},
            )
        if problems:
            raise AssertionError(
                f"mockserver: request {self.describe()} differs from what the test expects:\n"
                + "\n".join(problems)
            )


def _jsonish(value: Any) -> Any:
    """Tuples as lists, so a value compares with the JSON the client sent."""
    if value is _UNSET:
        return value
    return json.loads(json.dumps(value, default=str))


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def difference(name: str, expected: Any, actual: Any) -> str:
    """`name`: expected vs sent, as a unified diff of pretty JSON when either side is large."""
    short = [
        json.dumps(v, sort_keys=True, ensure_ascii=False, default=str) for v in (expected, actual)
    ]
    if len(short[0]) + len(short[1]) <= 80:
        return f"  {name}: expected {short[0]}, sent {short[1]}"
    left = json.dumps(expected, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    right = json.dumps(actual, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    diff = difflib.unified_diff(
        left.splitlines(), right.splitlines(), "expected", "sent", lineterm="", n=2
    )
    return f"  {name}:\n" + "\n".join(f"    {line}" for line in diff)


def calls_of(entries: Sequence[JournalEntry]) -> list[Call]:
    return [Call(i, e) for i, e in enumerate(entries)]
