"""Bytes with holes: a rendered reply cut where its generated values stand, filled per response.

`Holes.fill` is one `%`-format (`%b` at each hole, the literal `%`s doubled) with the values
`pick` takes from a response's list of values: a fraction of the work of joining the pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter

Pick = Callable[[Sequence[bytes]], tuple[bytes, ...]]


@dataclass(frozen=True, slots=True)
class Holes:
    text: bytes
    """The `%`-format (without holes: the bytes themselves)."""
    pick: Pick | None
    """The values for the holes, in order, from a response's values (None: no holes)."""
    size: int
    """The bytes besides the holes."""
    holes: int

    @classmethod
    def plain(cls, blob: bytes) -> Holes:
        """Bytes without holes."""
        return cls(blob, None, len(blob), 0)

    @classmethod
    def cut(cls, pieces: Sequence[bytes], slots: Sequence[int]) -> Holes:
        """The pieces, with between each two the value at index `slots[n]`."""
        if not slots:
            return cls.plain(b"".join(pieces))
        text = b"%b".join(piece.replace(b"%", b"%%") for piece in pieces)
        return cls(text, _picker(slots), sum(map(len, pieces)), len(slots))

    def fill(self, values: Sequence[bytes]) -> bytes:
        return self.text if self.pick is None else self.text % self.pick(values)


def _picker(slots: Sequence[int]) -> Pick:
    if len(slots) == 1:
        only = slots[0]
        return lambda values: (values[only],)
    pick: Pick = itemgetter(*slots)
    return pick
