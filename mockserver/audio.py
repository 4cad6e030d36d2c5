"""Audio output data: read from a file beside the scenario, or generated as WAV / PCM16."""

from __future__ import annotations

import math
import os
import stat
import struct
from array import array
from functools import lru_cache
from pathlib import Path

from mockserver import memo

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
MAX_FILE = 16 * 1024 * 1024
"""The largest audio file a scenario may name (16 MiB, some ten minutes of speech as mp3)."""
CHARS_PER_SECOND = 15.0
"""About how fast speech goes: sets a plausible length for a transcript."""


def format_of(path: Path) -> str | None:
    """The audio format a file's extension names, or None."""
    return EXTENSIONS.get(path.suffix.lower())


class FileRefused(Exception):
    """An audio file that cannot be used, and why (the loader adds file, line and key)."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_file(path: Path, base: Path, *, outside: bool = False, limit: int = MAX_FILE) -> bytes:
    """The bytes of the audio file `path` names, refused unless it is a regular file of at most
    `limit` bytes inside the folder tree `base` (anywhere when `outside`).

    Nothing here can hang or read without end: the path is checked with `stat` before it is
    opened, opened without blocking (a FIFO swapped in meanwhile does not wait for a writer),
    checked again once open, and read no further than `limit`.
    """
    folder = base.resolve()
    if not outside and not path.is_relative_to(folder):
        raise FileRefused(
            f"audio file {str(path)!r} is outside the scenario file's folder {str(folder)!r}; "
            "move it there, or allow it with --allow-files-outside"
        )
    try:
        fd = _open(path, limit)
        with os.fdopen(fd, "rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise FileRefused(f"cannot read audio file {str(path)!r}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise FileRefused(_too_big(path, len(data), limit))
    return data


def _open(path: Path, limit: int) -> int:
    """A file descriptor for the regular file `path` (FileRefused for anything else)."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise FileRefused(f"audio file {str(path)!r} is {_kind(mode)}, not a regular file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise FileRefused(
                f"audio file {str(path)!r} is {_kind(found.st_mode)}, not a regular file"
            )
        if found.st_size > limit:
            raise FileRefused(_too_big(path, found.st_size, limit))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _too_big(path: Path, size: int, limit: int) -> str:
    return (
        f"audio file {str(path)!r} is {size} bytes, more than the {limit} bytes an audio file "
        "may have"
    )


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


@memo.cached(256, len)
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
