"""A Responses reply rendered once with marked ids, then filled in for each later response.

The chat encoder's `memo.Template` keeps a reply whose only fresh values are the completion id,
`created` and `x-request-id`; a Responses reply has more (the response id, an id per output and
input item, generated `call_id`s), so here each generated value is a marker while the template
renders: `~` + a random nonce + its number + `~` (no scenario text can hold the nonce), and the
timestamps are `memo.TEMPLATE_CREATED`, found after their keys (`"created_at":`, which JSON
text cannot hold unescaped). Filling draws fresh values in the order the render drew them, so a
seeded run gives the same bytes with or without the template (a test checks it).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from mockserver.memo import TEMPLATE_CREATED
from mockserver.outcome import Frame, Headers, Outcome

NONCE = secrets.token_hex(8)
REQUEST = "request"
"""The kind of the marker standing for the `x-request-id` (given, not drawn)."""
_MARK = re.compile(
    rb"~"
    + NONCE.encode()
    + rb"(\d+)~|\"(created_at|completed_at)\":"
    + str(TEMPLATE_CREATED).encode()
)


class Marks:
    """Stands in for the id factory while a reply renders as a template: every id it hands out
    is a marker, and it notes which kind of id each stands for."""

    def __init__(self) -> None:
        self.kinds: list[str] = []

    def mark(self, kind: str) -> str:
        self.kinds.append(kind)
        return f"~{NONCE}{len(self.kinds) - 1}~"

    def item(self, prefix: str) -> str:
        return self.mark(prefix)

    def tool_call(self) -> str:
        return self.mark("call_")

    def audio(self) -> str:
        return self.mark("audio_")


@dataclass(frozen=True, slots=True)
class Filled:
    outcome: Outcome
    response_id: str
    stored: tuple[bytes, bytes] | None
    """The response and its input items, as the store keeps them (None: `store: false`)."""


Cut = tuple[tuple[bytes, ...], tuple[int, ...]]
"""Bytes cut at their markers: the literal pieces, and between each two the marker's number
(`-1`: `"created_at":`, `-2`: `"completed_at":` with the timestamp)."""


def _cut(blob: bytes) -> Cut:
    pieces: list[bytes] = []
    slots: list[int] = []
    start = 0
    for found in _MARK.finditer(blob):
        pieces.append(blob[start : found.start()])
        number = found.group(1)
        if number is not None:
            slots.append(int(number))
        else:
            slots.append(-1 if found.group(2) == b"created_at" else -2)
        start = found.end()
    pieces.append(blob[start:])
    return tuple(pieces), tuple(slots)


def _join(cut: Cut, values: list[bytes]) -> bytes:
    pieces, slots = cut
    if not slots:
        return pieces[0]
    out = [pieces[0]]
    for slot, piece in zip(slots, pieces[1:], strict=True):
        out.append(values[slot])
        out.append(piece)
    return b"".join(out)


@dataclass(frozen=True, slots=True)
class ResponseTemplate:
    """A reply rendered with markers, cut where they stand, ready to fill."""

    kinds: tuple[str, ...]
    response_id: int
    """The marker of the response's own id."""
    status: int
    headers: tuple[tuple[bytes, Cut], ...]
    body: Cut
    frames: tuple[tuple[float, Cut, bool], ...] | None
    delay: float
    stored: tuple[Cut, Cut] | None

    @classmethod
    def of(
        cls, marks: Marks, outcome: Outcome, stored: tuple[bytes, bytes] | None
    ) -> ResponseTemplate:
        frames = None
        if outcome.frames is not None:
            frames = tuple((f.delay, _cut(f.data), f.abort) for f in outcome.frames)
        return cls(
            kinds=tuple(marks.kinds),
            response_id=marks.kinds.index("resp_"),
            status=outcome.status,
            headers=tuple((k, _cut(v)) for k, v in outcome.headers),
            body=_cut(outcome.body),
            frames=frames,
            delay=outcome.delay,
            stored=None if stored is None else (_cut(stored[0]), _cut(stored[1])),
        )

    def weight(self) -> int:
        """About the bytes the template holds (what `memo.Bounded` counts)."""
        cuts = [self.body, *(cut for _, cut in self.headers), *(c for _, c, _ in self.frames or ())]
        cuts += list(self.stored or ())
        return sum(sum(len(piece) for piece in pieces) + 64 for pieces, _ in cuts)

    def fill(
        self,
        item: Callable[[str], str],
        tool_call: Callable[[], str],
        audio: Callable[[], str],
        created: int,
        request_id: str,
    ) -> Filled:
        values: list[bytes] = []
        for kind in self.kinds:
            if kind == REQUEST:
                value = request_id
            elif kind == "call_":
                value = tool_call()
            elif kind == "audio_":
                value = audio()
            else:
                value = item(kind)
            values.append(value.encode())
        stamp = str(created).encode()
        values.append(b'"completed_at":' + stamp)  # slot -2
        values.append(b'"created_at":' + stamp)  # slot -1
        headers: Headers = [(k, _join(v, values)) for k, v in self.headers]
        if self.frames is None:
            outcome = Outcome(self.status, headers, _join(self.body, values), delay=self.delay)
        else:
            frames = tuple(Frame(d, _join(cut, values), abort) for d, cut, abort in self.frames)
            outcome = Outcome(self.status, headers, frames=frames, delay=self.delay)
        stored = None
        if self.stored is not None:
            stored = (_join(self.stored[0], values), _join(self.stored[1], values))
        return Filled(outcome, values[self.response_id].decode(), stored)
