"""Timing models: delays drawn from distributions, and streams paced per token.

A delay in a scenario is a number of milliseconds, or a distribution drawn afresh for every
response from the server's seeded random stream (a seeded run replays the same waits):

- `{median: 400, p99: 1500}`: lognormal with that median and 99th percentile;
- `{min: 100, max: 300}`: uniform.

A stream may say `ttft_ms` (time to first token: the role chunk and the first token arrive
then) and `tokens_per_second` (each next chunk follows `1/tokens_per_second` later); the
finish, usage and `[DONE]` events ride with the last token, so writes still coalesce where no
wait is needed. `--timing realistic` gives replies without timing of their own
`REALISTIC` (and non-streamed replies the wait their tokens would have taken).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import math
import os
import random
import re
import sys
import time
import weakref
from dataclasses import dataclass
from typing import Any, Literal

from mockserver.outcome import Frame, Outcome
from mockserver.yamlsource import Document, Node, describe

TimingMode = Literal["instant", "realistic"]
TIMING_MODES = ("instant", "realistic")
Z99 = 2.3263478740408408
"""The standard normal's 99th percentile: p99 = median * exp(sigma * Z99)."""
MAX_DELAY_MS = 3_600_000.0
"""No delay (fixed, or any draw) is longer than an hour: every wait ends."""
MAX_TOKENS_PER_SECOND = 1_000_000.0
DELAY_KEYS = ("median", "p99", "min", "max")
_COMPLETION_TOKENS = re.compile(rb'"completion_tokens":(\d+)')


@dataclass(frozen=True, slots=True)
class Delay:
    """A delay in milliseconds: fixed (`spread` 0), lognormal or uniform."""

    kind: Literal["fixed", "lognormal", "uniform"]
    a: float
    """fixed: the value; lognormal: the median; uniform: the minimum."""
    b: float = 0.0
    """lognormal: the p99; uniform: the maximum."""

    @property
    def typical_ms(self) -> float:
        """The value a single fixed number stands for (the median, or the middle)."""
        return self.a if self.kind != "uniform" else (self.a + self.b) / 2

    def draw(self, rng: random.Random) -> float:
        """One delay in seconds."""
        if self.kind == "fixed":
            ms = self.a
        elif self.kind == "uniform":
            ms = rng.uniform(self.a, self.b)
        else:
            sigma = math.log(self.b / self.a) / Z99 if self.b > self.a else 0.0
            ms = rng.lognormvariate(math.log(self.a), sigma) if sigma else self.a
        return min(ms, MAX_DELAY_MS) / 1000


def _number(node: Node, key: str) -> float | None:
    child = node.get(key)
    if child is None:
        node.fail(f"missing required key '{key}'")
        return None
    value = child.value
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        child.fail(f"expected a number of milliseconds >= 0, got {describe(value)}")
        return None
    if value > MAX_DELAY_MS:
        child.fail(f"expected at most {MAX_DELAY_MS:.0f} ms (an hour), got {value}")
        return None
    return float(value)


def parse_delay(node: Node) -> Delay | None:
    """A number of milliseconds, `{median, p99}` or `{min, max}`; None (and a problem) else."""
    value = node.value
    if not isinstance(value, dict):
        ms = node.milliseconds()
        if ms > MAX_DELAY_MS:
            node.fail(f"expected at most {MAX_DELAY_MS:.0f} ms (an hour), got {ms:g}")
            return None
        return Delay("fixed", ms)
    if not node.check_keys(DELAY_KEYS):
        return None
    lognormal = "median" in value or "p99" in value
    if lognormal and ("min" in value or "max" in value):
        node.fail("a delay is either {median, p99} (lognormal) or {min, max} (uniform)")
        return None
    return _lognormal(node) if lognormal else _uniform(node)


def _lognormal(node: Node) -> Delay | None:
    median, p99 = _number(node, "median"), _number(node, "p99")
    if median is None or p99 is None:
        return None
    if median <= 0 or p99 < median:
        node.fail(f"expected 0 < median <= p99, got median {median:g} and p99 {p99:g}")
        return None
    return Delay("lognormal", median, p99)


def _uniform(node: Node) -> Delay | None:
    low, high = _number(node, "min"), _number(node, "max")
    if low is None or high is None:
        return None
    if high < low:
        node.fail(f"expected min <= max, got min {low:g} and max {high:g}")
        return None
    return Delay("uniform", low, high)


def milliseconds(node: Node) -> float:
    """What `delay_ms` and its like stand for as one number (the median of a distribution)."""
    delay = parse_delay(node)
    return 0.0 if delay is None else delay.typical_ms


def _quiet(node: Node) -> Node:
    """The same value in a throwaway document: problems are reported once, by `milliseconds`."""
    doc = Document(node.doc.file, node.doc.key_lines, node.doc.item_lines)
    return Node(node.value, doc, node.line, node.path)


@dataclass(frozen=True, slots=True)
class ReplyTiming:
    """A reply's waits that are not fixed numbers, or are paced by tokens."""

    delay: Delay | None = None
    first: Delay | None = None
    gap: Delay | None = None
    """Between chunks: `chunk_delay_ms`, or `1/tokens_per_second`."""


REALISTIC = ReplyTiming(first=Delay("lognormal", 400.0, 1500.0), gap=Delay("fixed", 1000 / 50))
"""`--timing realistic`: a first token after about 400 ms (p99 1.5 s), then 50 tokens/s."""


def _drawn(node: Node | None) -> Delay | None:
    """The delay of a key when it is a distribution (fixed numbers stay as they are)."""
    if node is None or not isinstance(node.value, dict):
        return None
    return parse_delay(_quiet(node))


def reply_timing(reply: Node) -> ReplyTiming | None:
    """A reply's timing when it needs drawing or pacing; None when its numbers say it all."""
    if not isinstance(reply.value, dict):
        return None
    stream = reply.get("stream")
    stream = stream if stream is not None and isinstance(stream.value, dict) else None
    delay = _drawn(reply.get("delay_ms"))
    first = gap = None
    if stream is not None:
        first = _drawn(stream.get("ttft_ms")) or _drawn(stream.get("first_chunk_delay_ms"))
        gap = _drawn(stream.get("chunk_delay_ms"))
        tps = stream.get("tokens_per_second")
        if tps is not None:
            rate = tps.value
            if (
                isinstance(rate, bool)
                or not isinstance(rate, int | float)
                or not 0 < rate <= MAX_TOKENS_PER_SECOND
            ):
                tps.fail(
                    f"expected a number of tokens per second > 0 and <= "
                    f"{MAX_TOKENS_PER_SECOND:.0f}, got {describe(rate)}"
                )
            elif "chunk_delay_ms" in stream.value:
                tps.fail("give either tokens_per_second or chunk_delay_ms, not both")
            else:
                gap = Delay("fixed", 1000 / rate)
                start = stream.get("ttft_ms") or stream.get("first_chunk_delay_ms")
                if first is None and start is not None:  # a plain reply waits for it too
                    first = parse_delay(_quiet(start))
        if "ttft_ms" in stream.value and "first_chunk_delay_ms" in stream.value:
            stream.child("ttft_ms").fail("give either ttft_ms or first_chunk_delay_ms, not both")
    if delay is None and first is None and gap is None:
        return None
    return ReplyTiming(delay=delay, first=first, gap=gap)


# -- pacing -----------------------------------------------------------------------------------

_NOT_LAST = b'"finish_reason":null'
_ROLE = b'"role":"assistant"'


def split_events(data: bytes) -> list[bytes]:
    """SSE events, each with its blank line (JSON chunks hold no raw newlines)."""
    parts = data.split(b"\n\n")
    events = [p + b"\n\n" for p in parts[:-1]]
    if parts[-1]:
        events.append(parts[-1])
    return events


def events_of(outcome: Outcome) -> list[Frame]:
    """A stream's frames, one an event (the first of a frame keeps the frame's wait)."""
    out: list[Frame] = []
    for frame in outcome.frames or ():
        if frame.abort:
            out.append(frame)
            continue
        for n, event in enumerate(split_events(frame.data)):
            out.append(Frame(frame.delay if n == 0 else 0.0, event))
    return out


def coalesce(frames: list[Frame]) -> tuple[Frame, ...]:
    """Frames with no wait between them joined into one write."""
    out: list[Frame] = []
    for frame in frames:
        if out and not frame.delay and not frame.abort and not out[-1].abort:
            last = out[-1]
            out[-1] = Frame(last.delay, last.data + frame.data)
        else:
            out.append(frame)
    return tuple(out)


def pace(outcome: Outcome, timing: ReplyTiming, rng: random.Random) -> Outcome:
    """The outcome with `timing`'s waits drawn: the delay, the first chunk, each next one."""
    delay = timing.delay.draw(rng) if timing.delay is not None else outcome.delay
    if outcome.frames is None:
        if timing.first is not None:  # a plain reply comes when its last token would
            delay += timing.first.draw(rng)
            if timing.gap is not None and (found := _COMPLETION_TOKENS.search(outcome.body)):
                delay += timing.gap.draw(rng) * max(int(found.group(1)) - 1, 0)
        return Outcome(outcome.status, outcome.headers, outcome.body, delay=delay)
    events = events_of(outcome)
    if not events:
        return Outcome(outcome.status, outcome.headers, frames=outcome.frames, delay=delay)
    last = len(events) - 1
    while last > 0 and _NOT_LAST not in events[last].data:
        last -= 1  # the finish, usage and [DONE] events ride with the last token
    paced: list[Frame] = []
    for n, event in enumerate(events):
        if event.abort or n > last:
            wait = event.delay
        elif n == 0:
            wait = timing.first.draw(rng) if timing.first is not None else event.delay
        elif n == 1 and _ROLE in events[0].data:
            wait = 0.0  # the role chunk comes with the first token
        else:
            wait = timing.gap.draw(rng) if timing.gap is not None else event.delay
        paced.append(Frame(wait, event.data, event.abort))
    return Outcome(outcome.status, outcome.headers, frames=coalesce(paced), delay=delay)


# -- waking on time ---------------------------------------------------------------------------


_CLOCK_MONOTONIC = 1  # what `time.monotonic` reads on Linux
_TFD_FLAGS = os.O_NONBLOCK | os.O_CLOEXEC  # TFD_NONBLOCK, TFD_CLOEXEC
_TFD_TIMER_ABSTIME = 1
_IDLE_CLOSE = 0.5
"""Seconds a pacer with nothing to wake keeps its timer before closing it."""
_EARLY = 0.00005
"""Waiters due this close (50 µs, the kernel's usual timer slack) are woken with the others."""


class _TimerFd:
    """Linux's timerfd through ctypes, loaded with the first paced stream (not at startup)."""

    def __init__(self) -> None:
        import ctypes  # noqa: PLC0415 - only paced streams need it

        class TimeSpec(ctypes.Structure):
            _fields_ = (("sec", ctypes.c_long), ("nsec", ctypes.c_long))

        class ITimerSpec(ctypes.Structure):
            _fields_ = (("interval", TimeSpec), ("value", TimeSpec))

        libc = ctypes.CDLL(None, use_errno=True)
        self._create = libc.timerfd_create
        self._create.argtypes = (ctypes.c_int, ctypes.c_int)
        self._settime = libc.timerfd_settime
        self._settime.argtypes = (
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(ITimerSpec),
            ctypes.c_void_p,
        )
        self._timespec: Any = TimeSpec
        self._itimerspec: Any = ITimerSpec
        self._byref = ctypes.byref

    def create(self) -> int:
        """A new non-blocking timer on the monotonic clock (-1 when none can be had)."""
        return int(self._create(_CLOCK_MONOTONIC, _TFD_FLAGS))

    def set(self, fd: int, due: float) -> None:
        """Fire `fd` once at `due` (seconds of `time.monotonic()`)."""
        sec, frac = divmod(max(due, 1e-9), 1.0)
        spec = self._itimerspec(self._timespec(0, 0), self._timespec(int(sec), int(frac * 1e9)))
        self._settime(fd, _TFD_TIMER_ABSTIME, self._byref(spec), None)


@functools.cache
def _timerfd() -> _TimerFd | None:
    if not sys.platform.startswith("linux"):  # pragma: no cover - timerfd is Linux's
        return None
    try:
        return _TimerFd()
    except (OSError, AttributeError):  # pragma: no cover - a libc without timerfd
        return None


class Pacer:
    """Wakes waiters at a `time.monotonic()` instant to the tenth of a millisecond.

    The event loop's own timers wake in whole milliseconds (epoll's timeout, and uvloop's
    clock), which shifts each frame of a paced stream by up to 1 ms at random: 5% of a 20 ms
    gap. A pacer arms one Linux timerfd per loop at its earliest waiter's due time (absolute,
    in nanoseconds) and wakes, when it fires, every waiter then due. Where there is no timerfd
    `Pacer.of` gives None and the loop's timers serve.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timerfd: _TimerFd) -> None:
        self._timerfd = timerfd
        self._loop = weakref.ref(loop)  # the registry's key: a strong one would keep it alive
        self._fd = -1
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = itertools.count()
        self._armed = math.inf
        self._closing: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> Pacer | None:
        """The loop's pacer (made on first use), or None without timerfd."""
        timerfd = _timerfd()
        if timerfd is None:
            return None
        pacer = _PACERS.get(loop)
        if pacer is None:
            pacer = _PACERS[loop] = cls(loop, timerfd)
        return pacer

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop()
        assert loop is not None  # the loop's pacer goes with it
        return loop

    def at(self, due: float) -> asyncio.Future[None]:
        """A future done at `due` (seconds of `time.monotonic()`)."""
        future = self.loop.create_future()
        heapq.heappush(self._waiters, (due, next(self._count), future))
        if self._closing is not None:
            self._closing.cancel()
            self._closing = None
        if due < self._armed:
            self._arm(due)
        return future

    def _arm(self, due: float) -> None:
        if self._fd < 0:
            fd = self._timerfd.create()
            if fd < 0:  # pragma: no cover - out of file descriptors: wake now, not never
                self._wake(math.inf)
                return
            self._fd = fd
            self.loop.add_reader(fd, self._fired)
        self._timerfd.set(self._fd, due)
        self._armed = due

    def _fired(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._fd, 8)
        self._armed = math.inf
        self._wake(time.monotonic() + _EARLY)

    def _wake(self, until: float) -> None:
        waiters = self._waiters
        while waiters and waiters[0][0] <= until:
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)
        if waiters:
            self._arm(waiters[0][0])
        elif self._fd >= 0 and self._closing is None:
            self._closing = self.loop.call_later(_IDLE_CLOSE, self.close)

    def close(self) -> None:
        """Give the timer back (a later `at` makes a new one)."""
        self._closing = None
        if self._fd >= 0:
            self.loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
            self._armed = math.inf
        self._wake(math.inf)

    def __del__(self) -> None:
        if self._fd >= 0:  # its loop was dropped while it waited to close
            os.close(self._fd)


_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pacer] = weakref.WeakKeyDictionary()
