"""Server-Sent Events: encode `data:` events, and read them back from a byte stream."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")


def encode_event(data: str) -> str:
    """One event: each line of `data` on its own `data:` line, then a blank line."""
    if "\n" not in data and "\r" not in data:
        return f"data: {data}\n\n"
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "".join(f"data: {line}\n" for line in lines) + "\n"


@dataclass(frozen=True, slots=True)
class Event:
    """A parsed event: its `data` (lines joined by newlines) and its `event` name if any."""

    data: str
    event: str | None = None


class Decoder:
    """Reads events out of arbitrarily split chunks of an SSE stream (LF, CR or CRLF lines)."""

    def __init__(self, errors: str = "strict") -> None:
        """`errors="surrogateescape"` reads bytes that are not UTF-8 as U+DC80..U+DCFF (which
        encode back to the same bytes) instead of raising `UnicodeDecodeError`."""
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors)
        self._buffer = ""
        # Pieces of a line still without its end, joined once it ends: one very long line
        # costs linear time, not quadratic.
        self._pending: list[str] = []
        self._data: list[str] = []
        self._event: str | None = None

    def feed(self, chunk: bytes | str) -> list[Event]:
        text = self._utf8.decode(chunk) if isinstance(chunk, bytes) else chunk
        if "\n" not in text and "\r" not in text:
            self._pending.append(text)
            return []
        if self._pending:
            self._pending.append(text)
            text, self._pending = "".join(self._pending), []
        self._buffer += text
        events: list[Event] = []
        while True:
            line, found = self._next_line()
            if not found:
                return events
            if not line:
                if self._data:
                    events.append(Event("\n".join(self._data), self._event))
                self._data, self._event = [], None
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    self._data.append(value)
                elif name == "event":
                    self._event = value

    def _next_line(self) -> tuple[str, bool]:
        end = _LINE_END.search(self._buffer)
        if end is None or (end.group() == "\r" and end.end() == len(self._buffer)):
            return "", False  # no whole line yet (a lone CR may be the first half of CRLF)
        line, self._buffer = self._buffer[: end.start()], self._buffer[end.end() :]
        return line, True

    def close(self) -> list[Event]:
        """Events still pending when the stream ends without a final blank line."""
        events = self.feed("\n\n") if self._buffer or self._pending or self._data else []
        return events


def parse(raw: bytes) -> list[Event]:
    """Every event in a whole SSE body."""
    decoder = Decoder()
    return decoder.feed(raw) + decoder.close()


def iter_events(chunks: Iterable[bytes]) -> Iterator[Event]:
    """Events as the chunks that carry them arrive."""
    decoder = Decoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()
