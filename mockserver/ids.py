"""Ids, timestamps and random padding: realistic in shape, reproducible under a seed."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TO_ALNUM = bytes((_ALNUM * 5).encode()[:256])
"""Maps each random byte to a letter or digit (a slight bias no id reader can see; fast)."""
SEEDED_EPOCH = 1_767_225_600
"""2026-01-01T00:00:00Z: the clock a seeded run starts from."""


Clock = Callable[[], int]
"""Returns Unix seconds."""


def clock_for(seed: int | None) -> Clock:
    """The wall clock, or under a seed one stopped at `SEEDED_EPOCH` (identical bytes a run)."""
    if seed is None:
        return lambda: int(time.time())
    return lambda: SEEDED_EPOCH


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
        return prefix + self._hex(192)

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
