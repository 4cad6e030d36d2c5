"""Audio output data: read from a file beside the scenario, or generated as WAV / PCM16."""

from __future__ import annotations

import math
import struct
from array import array
from functools import lru_cache
from pathlib import Path

SAMPLE_RATE = 24_000
"""OpenAI's audio output is 24 kHz, 16-bit, mono."""
GENERATED = ("wav", "pcm16")
"""Formats mockserver can make up; the others (mp3, flac, opus, aac) need a file."""
EXTENSIONS = {
    ".wav": "wav",
    ".mp3": "mp3",
    ".flac": "flac",
    ".opus": "opus",
    ".ogg": "opus",
    ".aac": "aac",
    ".pcm": "pcm16",
    ".raw": "pcm16",
}
CHARS_PER_SECOND = 15.0
"""About how fast speech goes: sets a plausible length for a transcript."""


def format_of(path: Path) -> str | None:
    """The audio format a file's extension names, or None."""
    return EXTENSIONS.get(path.suffix.lower())


def seconds_for(transcript: str) -> float:
    """A plausible spoken length for a transcript (at least half a second)."""
    return max(0.5, len(transcript) / CHARS_PER_SECOND)


@lru_cache(maxsize=1)
def _period() -> bytes:
    # 240 Hz at 24 kHz: one period is exactly 100 samples, so the tone repeats seamlessly.
    samples = array("h", (int(1200 * math.sin(2 * math.pi * i / 100)) for i in range(100)))
    return samples.tobytes()


def pcm16(transcript: str) -> bytes:
    """Little-endian 16-bit mono samples of a soft tone as long as the transcript would take."""
    samples = int(seconds_for(transcript) * SAMPLE_RATE)
    period = _period()
    repeats, rest = divmod(samples * 2, len(period))
    data = period * repeats + period[:rest]
    if struct.pack("=h", 1) != struct.pack("<h", 1):  # pragma: no cover - big-endian hosts
        swapped = array("h", data)
        swapped.byteswap()
        data = swapped.tobytes()
    return data


def wav(pcm: bytes, rate: int = SAMPLE_RATE) -> bytes:
    """Wrap PCM16 mono samples in a RIFF/WAVE header."""
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm),
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        1,  # mono
        rate,
        rate * 2,
        2,
        16,
        b"data",
        len(pcm),
    )
    return header + pcm


@lru_cache(maxsize=256)
def generate(transcript: str, fmt: str) -> bytes:
    """Audio bytes for `transcript` in `fmt`, which must be one of `GENERATED`."""
    if fmt == "pcm16":
        return pcm16(transcript)
    if fmt == "wav":
        return wav(pcm16(transcript))
    raise ValueError(f"cannot generate {fmt} audio; give a file")


def audio_tokens(seconds: float) -> int:
    """Audio tokens for a length of speech (about ten a second, as OpenAI bills them)."""
    return max(1, round(seconds * 10))
