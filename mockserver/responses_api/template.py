"""A Responses reply rendered once with marked ids, then filled in for each later response.

The chat encoder's `memo.Template` keeps a reply whose only fresh values are the completion id,
`created` and `x-request-id`; a Responses reply has more (the response id, an id per output and
input item, generated `call_id`s), so here each generated value is a marker while the template
renders: `~` + a random nonce + its number + `~` (no scenario text can hold the nonce), and the
timestamps are `memo.TEMPLATE_CREATED`, found after their keys (`"created_at":`, which JSON
text cannot hold unescaped). Filling draws fresh values in the order the render drew them (all
at once: `IdFactory.draw`), so a seeded run gives the same bytes with or without the template (a
test checks it). Each blob is filled by one `%`-format (`holes`), and the response is stored as
the template's `Shape` and its own values (`store`), not as bytes.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from mockserver.memo import TEMPLATE_CREATED
from mockserver.outcome import Frame, Headers, Outcome
from mockserver.responses_api.holes import Holes
from mockserver.responses_api.store import Shape, Stored

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
        return self.marker(len(self.kinds) - 1).decode()

    @staticmethod
    def marker(number: int) -> bytes:
        return f"~{NONCE}{number}~".encode()

    def item(self, prefix: str) -> str:
        return self.mark(prefix)

    def tool_call(self) -> str:
        return self.mark("call_")

    def audio(self) -> str:
        return self.mark("audio_")


def _holes(blob: bytes, where: Sequence[int]) -> Holes:
    """`blob` cut at its markers; `where[n]` is the index of marker `n`'s value (the
    timestamps are the last two values: `completed_at` -2, `created_at` -1)."""
    pieces: list[bytes] = []
    slots: list[int] = []
    start = 0
    for found in _MARK.finditer(blob):
        pieces.append(blob[start : found.start()])
        number = found.group(1)
        if number is not None:
            slots.append(where[int(number)])
        else:
            slots.append(-1 if found.group(2) == b"created_at" else -2)
        start = found.end()
    pieces.append(blob[start:])
    return Holes.cut(pieces, slots)


@lru_cache(maxsize=4)
def _stamps(created: int) -> tuple[bytes, bytes]:
    """The timestamps' values (slots -2 and -1): the clock says the same second many times."""
    stamp = str(created).encode()
    return b'"completed_at":' + stamp, b'"created_at":' + stamp


@dataclass(frozen=True, slots=True)
class ResponseTemplate:
    """A reply rendered with markers, cut where they stand, ready to fill.

    The values filled in are the ids drawn for the response (`drawn`, in the order the render
    drew them), then the request id, then `"completed_at":` and `"created_at":` with the time.
    """

    drawn: tuple[str, ...]
    response_id: int
    """The index of the response's own id among the values."""
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    request_header: tuple[int, bytes] | None
    """The index and name of the header that is the request id (`x-request-id`)."""
    marked: tuple[tuple[int, Holes], ...]
    """Any other headers with a marker: their index and their value."""
    body: Holes
    frames: tuple[tuple[float, Holes, bool], ...] | None
    delay: float
    stored: Shape | None

    @classmethod
    def of(
        cls, marks: Marks, outcome: Outcome, stored: tuple[bytes, bytes] | None
    ) -> ResponseTemplate:
        drawn = tuple(kind for kind in marks.kinds if kind != REQUEST)
        where: list[int] = []
        count = 0
        for kind in marks.kinds:
            if kind == REQUEST:
                where.append(len(drawn))
            else:
                where.append(count)
                count += 1
        frames = None
        if outcome.frames is not None:
            frames = tuple((f.delay, _holes(f.data, where), f.abort) for f in outcome.frames)
        marked = []
        request_header = None
        request_mark = Marks.marker(marks.kinds.index(REQUEST)) if REQUEST in marks.kinds else None
        for n, (name, value) in enumerate(outcome.headers):
            holes = _holes(value, where)
            if value == request_mark:
                request_header = (n, name)
            elif holes.holes:
                marked.append((n, holes))
        kept = None
        if stored is not None:
            kept = Shape.of(_holes(stored[0], where), _holes(stored[1], where))
        return cls(
            drawn=drawn,
            response_id=where[marks.kinds.index("resp_")],
            status=outcome.status,
            headers=tuple(outcome.headers),
            marked=tuple(marked),
            request_header=request_header,
            body=_holes(outcome.body, where),
            frames=frames,
            delay=outcome.delay,
            stored=kept,
        )

    def weight(self) -> int:
        """About the bytes the template holds (what `memo.Bounded` counts)."""
        held = [self.body, *(h for _, h in self.marked), *(h for _, h, _ in self.frames or ())]
        if self.stored is not None:
            held += (self.stored.response_json, self.stored.items_json)
        return sum(len(h.text) + 64 for h in held) + sum(len(k) + len(v) for k, v in self.headers)

    def fill(
        self, draw: Callable[[tuple[str, ...]], list[bytes]], created: int, request_id: str
    ) -> tuple[Outcome, str, Stored | None]:
        """The outcome, the response id, and what the store keeps (None: `store: false`);
        `draw` is `IdFactory.draw`."""
        request = request_id.encode()
        values = draw(self.drawn)
        values += (request, *_stamps(created))
        headers: Headers = list(self.headers)
        if self.request_header is not None:
            n, name = self.request_header
            headers[n] = (name, request)
        for n, holes in self.marked:
            headers[n] = (headers[n][0], holes.fill(values))
        if self.frames is None:
            body = self.body
            filled = body.text if body.pick is None else body.text % body.pick(values)
            outcome = Outcome(self.status, headers, filled, delay=self.delay)
        else:
            frames = tuple(Frame(d, holes.fill(values), abort) for d, holes, abort in self.frames)
            outcome = Outcome(self.status, headers, frames=frames, delay=self.delay)
        stored = None
        if self.stored is not None:
            stored = Stored(self.stored, b"\0".join(values))
        return outcome, values[self.response_id].decode(), stored
