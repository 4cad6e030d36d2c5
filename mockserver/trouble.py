"""Trouble on demand, as the engine meets it: one object, two calls on a request's way.

`admit` runs before matching: the rate limits (a 429 that does not count against a scenario)
and the server-wide HTTP faults. `shape` runs on the way out: timing (drawn delays, per-token
pacing) and the other faults, the scenario's first, then the server's. The engine holds a
`Trouble` only when something asks for it, so a server without faults, limits or timing
models pays one `is None` test a request. Draws come from one random stream seeded by the
server's seed (apart from the ids' stream: adding a fault does not change any id).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mockserver.errors import ApiError
from mockserver.faults import HTTP, Dice, Fault, break_stream
from mockserver.outcome import Outcome
from mockserver.ratelimit import RateLimit, RateLimiter, SteppedClock, api_key, duration
from mockserver.request import ChatRequest
from mockserver.responses import error_from_spec
from mockserver.scenarios import Reply, Scenario
from mockserver.timing import REALISTIC, TimingMode, pace

RATE_LIMITED = "rate_limit"
"""The journal's `fault` for a request the rate limits refused."""
Limits = tuple[tuple[bytes, bytes], ...]
"""The `x-ratelimit-*` headers of an admitted request (see `mockserver.ratelimit`)."""
_LIMIT_NAMES = frozenset(
    f"x-ratelimit-{what}-{unit}".encode()
    for what in ("limit", "remaining", "reset")
    for unit in ("requests", "tokens")
)


@dataclass(eq=False, kw_only=True)
class Refusal(ApiError):
    """An error answered instead of the reply, sent after `delay` seconds, labelled `fault`
    in the journal."""

    fault: str = ""
    delay: float = 0.0


def _refusal(error: ApiError, fault: str, delay: float = 0.0, extra: Limits = ()) -> Refusal:
    return Refusal(
        status=error.status,
        message=error.message,
        type=error.type,
        param=error.param,
        code=error.code,
        headers=(*((k.decode(), v.decode()) for k, v in extra), *error.headers),
        fault=fault,
        delay=delay,
    )


class Trouble:
    """Rate limits, faults and timing models of one engine, and their state."""

    def __init__(
        self,
        *,
        seed: int | None,
        faults: Sequence[Fault] = (),
        timing: TimingMode = "instant",
        rate_limits: Sequence[RateLimit] = (),
        clock: Callable[[], float] | None = None,
    ) -> None:
        """`clock` (seconds) runs the rate windows: by default the real one, or with a `seed`
        a `SteppedClock` (whole seconds since the first request: same requests, same headers)."""
        self.rng = random.Random(f"mockserver-trouble:{seed}" if seed is not None else None)
        self._dice = Dice(self.rng)
        self._http = tuple(f for f in faults if f.kind == HTTP)
        self._later = tuple(f for f in faults if f.kind != HTTP)
        if clock is None:
            clock = SteppedClock() if seed is not None else time.monotonic
        self._limiter = RateLimiter(rate_limits, clock) if rate_limits else None
        self._default = REALISTIC if timing == "realistic" else None
        self._faults: dict[int, tuple[Fault, ...]] = {}
        """A scenario's faults, then the server's (by the scenario's id: the engine keeps
        every scenario it matches)."""

    @classmethod
    def wanted(
        cls,
        scenarios: Iterable[Scenario],
        *,
        faults: Sequence[Fault],
        timing: str,
        rate_limits: Sequence[RateLimit],
    ) -> bool:
        """Whether anything asks for trouble (else the engine keeps none)."""
        if faults or rate_limits or timing != "instant":
            return True
        return any(s.faults or any(r.timing for r in s.replies) for s in scenarios)

    def reset(self) -> None:
        """Fault schedules and rate windows start over (the random stream goes on)."""
        self._dice.reset()
        if self._limiter is not None:
            self._limiter.reset()

    def admit(self, request: ChatRequest, headers: Sequence[tuple[bytes, bytes]]) -> Limits | None:
        """Count the request against the rate limits, then roll the server's HTTP faults.

        Returns the `x-ratelimit-*` headers for the response, or raises `Refusal`.
        """
        limits = None
        if self._limiter is not None:
            wanted = request.prompt_tokens + (request.max_tokens or 0)
            decision = self._limiter.admit(request.model, api_key(headers), wanted)
            if decision is not None:
                if decision.error is not None:
                    raise _refusal(decision.error, RATE_LIMITED, extra=decision.headers)
                limits = decision.headers
        if self._http:
            fault = self._dice.pick(self._http)
            if fault is not None:
                raise self._http_error(fault, request.model, limits)
        return limits

    def _http_error(self, fault: Fault, model: str, limits: Limits | None) -> Refusal:
        assert fault.error is not None
        error = error_from_spec(fault.error, model)
        extra: Limits = limits or ()
        if error.status == 429:
            wait = next((v for k, v in error.headers if k == "retry-after-ms"), None)
            reset = duration(float(wait) / 1000) if wait and wait.isdigit() else "1s"
            extra = (
                *extra,
                (b"x-ratelimit-remaining-requests", b"0"),
                (b"x-ratelimit-reset-requests", reset.encode()),
            )
        delay = fault.delay.draw(self.rng) if fault.delay is not None else 0.0
        return _refusal(error, fault.name, delay, extra)

    def delay(self, reply: Reply, fixed: float) -> float:
        """The wait before a reply's error: its `delay_ms` drawn, if it is a distribution."""
        timing = reply.timing
        return timing.delay.draw(self.rng) if timing and timing.delay else fixed

    def shape(
        self,
        outcome: Outcome,
        *,
        request: ChatRequest,
        scenario: Scenario,
        reply: Reply,
        limits: Limits | None,
    ) -> tuple[Outcome, str | None]:
        """The response with its timing drawn and a fault applied if one fires; and the
        fault's name for the journal. An HTTP fault raises its `Refusal`."""
        faults = self._faults.get(id(scenario)) if self._later else scenario.faults
        if faults is None:
            faults = self._faults[id(scenario)] = scenario.faults + self._later
        fault = self._dice.pick(faults, outcome, request) if faults else None
        timing = reply.timing
        if timing is None and self._default is not None and _untimed(reply):
            timing = self._default
        if timing is not None:
            outcome = pace(outcome, timing, self.rng)
        if fault is not None:
            if fault.kind == HTTP:
                raise self._http_error(fault, request.model, limits)
            outcome = break_stream(
                outcome, fault, self.rng, fault.error, request.model, request=request
            )
        if limits:
            headers = [h for h in outcome.headers if h[0] not in _LIMIT_NAMES]
            headers += limits
            outcome = Outcome(outcome.status, headers, outcome.body, outcome.frames, outcome.delay)
        return outcome, fault.name if fault is not None else None


def _untimed(reply: Reply) -> bool:
    """Whether `--timing realistic` applies: a generated reply with no waits of its own."""
    stream = reply.stream
    return (
        reply.raw is None
        and not reply.delay_ms
        and not stream.first_chunk_delay_ms
        and not stream.chunk_delay_ms
    )


def for_engine(
    scenarios: Iterable[Scenario],
    *,
    seed: int | None,
    faults: Sequence[Fault],
    timing: str,
    rate_limits: Sequence[RateLimit],
) -> Trouble | None:
    """A `Trouble` when the configuration or a scenario asks for one, else None."""
    if not Trouble.wanted(scenarios, faults=faults, timing=timing, rate_limits=rate_limits):
        return None
    mode: TimingMode = "realistic" if timing == "realistic" else "instant"
    return Trouble(seed=seed, faults=faults, timing=mode, rate_limits=rate_limits)
