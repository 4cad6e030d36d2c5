"""What the engine answers: status, headers, and a body or the frames of a stream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Frame:
    """Bytes to send after waiting `delay` seconds; `abort` drops the connection instead."""

    delay: float
    data: bytes = b""
    abort: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """A whole response. Shells (ASGI app, in-process transports) only copy it to the wire.

    `delay` is waited before anything is sent. A stream has `frames`; other responses `body`.
    """

    status: int
    headers: Headers
    body: bytes = b""
    frames: Sequence[Frame] | None = None
    delay: float = 0.0

    def header(self, name: str) -> str | None:
        key = name.lower().encode("latin-1")
        for k, v in self.headers:
            if k == key:
                return v.decode("latin-1")
        return None

    def content(self) -> bytes:
        """Everything the client reads: the body, or the frames joined (up to an abort)."""
        if self.frames is None:
            return self.body
        out = bytearray()
        for frame in self.frames:
            if frame.abort:
                break
            out += frame.data
        return bytes(out)
