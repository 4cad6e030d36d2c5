"""Rate limits like OpenAI's: requests and tokens per minute over a sliding 60-second window.

`--rate-limit rpm=60,tpm=40000[,per=model|key|key+model|server][,model=NAME]` (repeatable: a
rule naming a model applies to that model, a rule without one to the others). Each key (the
request's model, its API key from `Authorization`, both, or one for the server) has its own
window. A request is counted when admitted: one request, and its prompt tokens (the tokenizer
of `usage`) plus the `max_tokens` it allows, as OpenAI estimates. Admitted responses carry
`x-ratelimit-*` headers counting down; a request that does not fit gets OpenAI's 429 with
`retry-after-ms` / `retry-after` (the time until it would fit) and is not counted.

With `--seed` the windows run on a `SteppedClock`: whole seconds since the first request, so
the same requests sent at the same pace get the same headers, still counting down in real time.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from mockserver.errors import ApiError

WINDOW = 60.0
PER = ("model", "key", "key+model", "server")
MAX_KEYS = 10_000
"""Windows kept at most; past it the least recently used is forgotten (its count starts over)."""
MAX_KEY_LENGTH = 256
Per = Literal["model", "key", "key+model", "server"]
SYNTAX = "rpm=N,tpm=N[,per=model|key|key+model|server][,model=NAME]"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One `--rate-limit` rule; None leaves that dimension unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    per: Per = "model"
    model: str | None = None


def parse_rate_limit(text: str) -> RateLimit:
    """A rule from its flag text; raises ValueError saying what is allowed."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        name, eq, value = part.strip().partition("=")
        if not eq or not value or name not in ("rpm", "tpm", "per", "model"):
            raise ValueError(f"expected {SYNTAX}, got {text!r} (at {part.strip()!r})")
        if name in fields:
            raise ValueError(f"{name} given twice in {text!r}")
        fields[name] = value
    counts: dict[str, int] = {}
    for name in ("rpm", "tpm"):
        if name in fields:
            raw = fields[name]
            if not raw.isdigit() or not 1 <= int(raw) <= 10**12:
                raise ValueError(f"{name} must be a whole number from 1 to 10^12, got {raw!r}")
            counts[name] = int(raw)
    if not counts:
        raise ValueError(f"expected rpm and/or tpm in {text!r} ({SYNTAX})")
    per = fields.get("per", "model")
    if per not in PER:
        raise ValueError(f"per must be one of {', '.join(PER)}, got {per!r}")
    return RateLimit(counts.get("rpm"), counts.get("tpm"), per, fields.get("model"))  # type: ignore[arg-type]


def duration(seconds: float) -> str:
    """A wait as OpenAI writes it in `x-ratelimit-reset-*`: `20ms`, `1.5s`, `1m0s`."""
    ms = _ms(seconds)
    if ms == 60_000:
        return "1m0s"  # the usual value: a request was just counted
    if ms < 1000:
        return f"{ms}ms"
    minutes, rest = divmod(ms, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _ms(seconds: float) -> int:
    """Whole milliseconds, rounded up (after the float noise of `a + 60 - a` is rounded off)."""
    return max(0, math.ceil(round(seconds * 1000, 3)))


class _Window:
    """What one key used in the last `WINDOW` seconds: (time, tokens) per admitted request."""

    __slots__ = ("entries", "tokens")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, int]] = deque()
        self.tokens = 0

    def expire(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now - WINDOW:
            self.tokens -= self.entries.popleft()[1]

    def wait_for_requests(self, now: float, limit: int) -> float:
        """Seconds until one more request fits."""
        return self.entries[len(self.entries) - limit][0] + WINDOW - now

    def wait_for_tokens(self, now: float, limit: int, wanted: int) -> float:
        """Seconds until `wanted` more tokens fit (`wanted` <= `limit`)."""
        freed = self.tokens
        for at, used in self.entries:
            freed -= used
            if freed + wanted <= limit:
                return at + WINDOW - now
        return 0.0  # pragma: no cover - the loop ends with freed == 0


class SteppedClock:
    """Time in whole `step`s since the first reading: what the windows of a seeded server run on.

    The real clock moves on between two runs by a few milliseconds here and there, so reset
    times and `retry-after-ms` read from it differ; counted in whole seconds from the first
    request they are the same as long as the runs keep pace within the second. Waits stay
    whole steps, so a client that waits the `retry-after-ms` it was given finds room (its wait
    plus its own delay reads as the same number of steps, not one fewer).
    """

    __slots__ = ("_real", "_start", "_step")

    def __init__(self, step: float = 1.0, real: Callable[[], float] = time.monotonic) -> None:
        self._real = real
        self._step = step
        self._start: float | None = None

    def __call__(self) -> float:
        now = self._real()
        if self._start is None:
            self._start = now
        return ((now - self._start) // self._step) * self._step

    def reset(self) -> None:
        """The next reading is step 0 again."""
        self._start = None


Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """The `x-ratelimit-*` headers, and for a refused request its 429."""

    headers: Headers
    error: ApiError | None = None


class RateLimiter:
    """Counts requests and tokens per key and decides; thread-safe, memory bounded by keys."""

    def __init__(
        self, limits: Sequence[RateLimit], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._by_model = {r.model: r for r in reversed(limits) if r.model is not None}
        self._default = next((r for r in limits if r.model is None), None)
        self._clock = clock
        self._windows: OrderedDict[tuple[int, str], _Window] = OrderedDict()
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            if isinstance(self._clock, SteppedClock):
                self._clock.reset()

    def rule(self, model: str) -> RateLimit | None:
        return self._by_model.get(model, self._default)

    def admit(self, model: str, api_key: str, tokens: int) -> Decision | None:
        """Count the request, or refuse it; None when no rule applies to the model."""
        rule = self.rule(model)
        if rule is None:
            return None
        per = rule.per
        if per == "model":
            key = model[:MAX_KEY_LENGTH]
        elif per == "key":
            key = api_key[:MAX_KEY_LENGTH]
        else:
            key = f"{api_key}\n{model}"[: 2 * MAX_KEY_LENGTH] if per == "key+model" else ""
        with self._lock:
            now = self._clock()
            window = self._windows.get((id(rule), key))
            if window is None:
                window = self._windows[(id(rule), key)] = _Window()
                if len(self._windows) > MAX_KEYS:
                    self._windows.popitem(last=False)
            else:
                self._windows.move_to_end((id(rule), key))
            window.expire(now)
            error = self._refusal(rule, window, now, model, tokens)
            if error is None:
                window.entries.append((now, tokens))
                window.tokens += tokens
            return Decision(_headers(rule, window, now), error)

    @staticmethod
    def _refusal(
        rule: RateLimit, window: _Window, now: float, model: str, tokens: int
    ) -> ApiError | None:
        if rule.rpm is not None and len(window.entries) + 1 > rule.rpm:
            wait = window.wait_for_requests(now, rule.rpm)
            used = len(window.entries)
            return _too_many(
                model, "requests", "RPM", limit=rule.rpm, used=used, requested=1, wait=wait
            )
        if rule.tpm is not None and window.tokens + tokens > rule.tpm:
            if tokens > rule.tpm:
                return _too_large(model, rule.tpm, tokens)
            wait = window.wait_for_tokens(now, rule.tpm, tokens)
            return _too_many(
                model,
                "tokens",
                "TPM",
                limit=rule.tpm,
                used=window.tokens,
                requested=tokens,
                wait=wait,
            )
        return None


_REQUESTS = tuple(f"x-ratelimit-{w}-requests".encode() for w in ("limit", "remaining", "reset"))
_TOKENS = tuple(f"x-ratelimit-{w}-tokens".encode() for w in ("limit", "remaining", "reset"))
_FRESH = b"1m0s"
"""`x-ratelimit-reset-*` right after a request was counted: the window is full in a minute."""


def _headers(rule: RateLimit, window: _Window, now: float) -> Headers:
    """`x-ratelimit-*`: limits, what is left, and when the window is back to full (the newest
    counted request leaves it)."""
    newest = window.entries[-1][0] if window.entries else now - WINDOW
    full = _FRESH if newest == now else duration(newest + WINDOW - now).encode()
    out: Headers = ()
    if rule.rpm is not None:
        left = max(rule.rpm - len(window.entries), 0)
        limit, remaining, reset = _REQUESTS
        out = ((limit, b"%d" % rule.rpm), (remaining, b"%d" % left), (reset, full))
    if rule.tpm is not None:
        left = max(rule.tpm - window.tokens, 0)
        limit, remaining, reset = _TOKENS
        out += ((limit, b"%d" % rule.tpm), (remaining, b"%d" % left), (reset, full))
    return out


def _too_many(
    model: str, what: str, short: str, *, limit: int, used: int, requested: int, wait: float
) -> ApiError:
    ms = max(1, _ms(wait))
    return ApiError(
        status=429,
        type=what,
        code="rate_limit_exceeded",
        message=(
            f"Rate limit reached for {model} in organization org-mockserver on {what} per min "
            f"({short}): Limit {limit}, Used {used}, Requested {requested}. Please try again in "
            f"{duration(ms / 1000)}. Visit https://platform.openai.com/account/rate-limits to "
            "learn more."
        ),
        headers=(("retry-after-ms", str(ms)), ("retry-after", str(math.ceil(ms / 1000)))),
    )


def _too_large(model: str, limit: int, requested: int) -> ApiError:
    return ApiError(
        status=429,
        type="tokens",
        code="rate_limit_exceeded",
        message=(
            f"Request too large for {model} in organization org-mockserver on tokens per min "
            f"(TPM): Limit {limit}, Requested {requested}. The input or output tokens must be "
            "reduced in order to run successfully. Visit "
            "https://platform.openai.com/account/rate-limits to learn more."
        ),
        headers=(("x-should-retry", "false"),),
    )


def api_key(headers: Sequence[tuple[bytes, bytes]]) -> str:
    """The key a request authenticates with (`Authorization: Bearer KEY`), or ""."""
    for name, value in headers:
        if name == b"authorization":
            text = value.decode("latin-1").strip()
            return text[7:].strip() if text[:7].lower() == "bearer " else text
    return ""
