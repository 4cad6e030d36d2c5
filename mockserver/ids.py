"""Ids, timestamps and random padding: realistic in shape, reproducible under a seed."""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TO_ALNUM = bytes((_ALNUM * 5).encode()[:256])
"""Maps each random byte to a letter or digit (a slight bias no id reader can see; fast)."""
_BITS = {"call_": 192, "audio_": 128}
"""The random bits an id of each kind takes (`item` ids: 192)."""
SEEDED_EPOCH = 1_767_225_600
"""2026-01-01T00:00:00Z: the clock a seeded run starts from."""


Clock = Callable[[], int]
"""Returns Unix seconds."""


def clock_for(seed: int | None) -> Clock:
    """The wall clock, or under a seed one stopped at `SEEDED_EPOCH` (identical bytes a run)."""
    if seed is None:
        return lambda: int(time.time())
    return lambda: SEEDED_EPOCH


@functools.lru_cache(maxsize=256)
def _plan(kinds: tuple[str, ...]) -> tuple[int, tuple[tuple[bytes, int, int], ...], bool]:
    """How `IdFactory.draw` cuts one draw: its bytes, per id its kind and where its bytes stand
    (in the order drawn), and whether every id is an `item` one (hex digits)."""
    cuts: list[tuple[bytes, int, int]] = []
    start = 0
    for kind in kinds:
        end = start + _BITS.get(kind, 192) // 8
        cuts.append((kind.encode(), start, end))
        start = end
    return start, tuple(cuts), not any(kind in _BITS for kind in kinds)


class IdFactory:
    """Makes ids shaped like OpenAI's from one random stream (seeded when asked)."""

    def __init__(self, seed: int | None) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def _alnum(self, n: int) -> str:
        with self._lock:
            raw = self._random.randbytes(n)
        return raw.translate(_TO_ALNUM).decode("ascii")

    def _hex(self, bits: int) -> str:
        with self._lock:
            value = self._random.getrandbits(bits)
        return f"{value:0{bits // 4}x}"

    def below(self, n: int) -> int:
        """A random integer in [0, n)."""
        with self._lock:
            return self._random.randrange(n)

    def completion(self) -> str:
        return "chatcmpl-" + self._alnum(29)

    def tool_call(self) -> str:
        return "call_" + self._alnum(24)

    def vllm_tool_call(self) -> str:
        """vLLM's `make_tool_call_id()`: `chatcmpl-tool-` and a random UUID4's 32 hex digits."""
        with self._lock:
            bits = self._random.getrandbits(128)
        bits = (bits & ~(0xC000 << 48)) | 0x8000 << 48  # the variant, as uuid.UUID sets it
        bits = (bits & ~(0xF000 << 64)) | 4 << 76  # version 4
        return f"chatcmpl-tool-{bits:032x}"

    def audio(self) -> str:
        return "audio_" + self._hex(128)

    def item(self, prefix: str) -> str:
        """A Responses API id (`resp_`, `msg_`, `fc_`, `rs_` ...): the prefix and 48 hex digits."""
        with self._lock:
            raw = self._random.randbytes(24)
        return prefix + raw.hex()

    def draw(self, kinds: tuple[str, ...]) -> list[bytes]:
        """Ids of several kinds at once (`call_`, `audio_`, else an `item` prefix), encoded:
        the very ids drawing them one by one gives (every kind draws whole 32-bit words, and
        one larger draw hands them out in the same order), for one lock and one draw."""
        size, cuts, items = _plan(kinds)
        with self._lock:
            raw = self._random.randbytes(size)
        if items:  # the usual case
            digits = raw.hex().encode()
            return [prefix + digits[2 * start : 2 * end] for prefix, start, end in cuts]
        out: list[bytes] = []
        for prefix, start, end in cuts:
            part = raw[start:end]
            if prefix == b"call_":
                out.append(b"call_" + part.translate(_TO_ALNUM))
            elif prefix == b"audio_":
                out.append(b"audio_%032x" % int.from_bytes(part, "little"))
            else:
                out.append(prefix + part.hex().encode())
        return out

    def request(self) -> str:
        return "req_" + self._hex(128)

    def fingerprint(self) -> str:
        return "fp_" + self._hex(40)

    def padding_pool(self, size: int) -> tuple[str, ...]:
        """Random strings for stream `obfuscation` fields, drawn once."""
        with self._lock:
            return tuple(
                "".join(self._random.choices(_ALNUM, k=self._random.randint(1, 16)))
                for _ in range(size)
            )
