"""Results of the load benchmark: per-target numbers, the ratios and their goals, table and JSON."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, SKIPPED, FAILED = "ok", "skipped", "failed"


@dataclass
class TargetResult:
    """One throughput target measured by wrk."""

    name: str
    description: str
    status: str
    reason: str = ""
    requests_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int | None = None
    reply_bytes: int | None = None
    warmup_s: int | None = None
    rounds_rps: list[float] = field(default_factory=list)
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def spread(self) -> str:
        """min-max req/s over the rounds, when there were several."""
        if len(self.rounds_rps) < 2:
            return "-"
        return f"{min(self.rounds_rps):,.0f}-{max(self.rounds_rps):,.0f}"


@dataclass
class StartupResult:
    """Spawn-to-first-answered-chat-completion times of one server command."""

    name: str
    status: str
    reason: str = ""
    runs_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.runs_ms) if self.runs_ms else None


@dataclass(frozen=True)
class RatioSpec:
    numerator: str
    denominator: str
    goal: float | None  # minimum wanted; None for context-only ratios


@dataclass
class Ratio:
    name: str
    value: float | None
    goal: str
    verdict: str  # "pass", "FAIL", "n/a (...)" or "context"


RATIOS = (
    RatioSpec("mockserver", "bare-uvloop", 0.8),
    RatioSpec("mockserver", "wiremock-default", 1.0),
    RatioSpec("mockserver", "wiremock", None),
    RatioSpec("mockserver-stream", "mockserver", 0.8),
    RatioSpec("responses", "mockserver", 0.8),
    RatioSpec("responses-stream", "mockserver-stream", 0.8),
    RatioSpec("mockserver-mixed", "bare-uvloop", None),
    RatioSpec("mockserver-distinct", "bare-uvloop", 0.6),
    RatioSpec("contains-100", "bare-uvloop", 0.8),
    RatioSpec("contains-100-distinct", "bare-uvloop", 0.6),
    RatioSpec("regex-100", "bare-uvloop", 0.7),
    RatioSpec("regex-100-distinct", "bare-uvloop", 0.5),
    RatioSpec("recording-1000", "bare-uvloop", 0.8),
    RatioSpec("recording-1000-distinct", "bare-uvloop", 0.6),
    RatioSpec("contains-10000", "bare-uvloop", 0.7),
    RatioSpec("contains-10000-distinct", "bare-uvloop", 0.5),
    RatioSpec("mockserver-mixed-distinct", "bare-uvloop", None),
    RatioSpec("bare-uvloop", "wiremock", None),
    RatioSpec("bare-uvloop", "wiremock-default", None),
    RatioSpec("bare-asyncio", "bare-uvloop", None),
)
STARTUP_GOAL_MS = 300.0
MAX_DROP_POINTS = 5.0
DROPS = (
    ("mockserver-mixed", "mockserver", MAX_DROP_POINTS),
    ("mockserver-mixed-distinct", "mockserver-distinct", MAX_DROP_POINTS),
    ("mockserver-vllm", "mockserver", 5.0),
    ("mockserver-faults", "mockserver", 3.0),
)
"""(target, base, limit): what the target's difference may cost, at most, in points of the
ratio to the bare app (mixed parts; the vllm profile; faults configured but not firing)."""


def _rps(results: Sequence[TargetResult], name: str) -> tuple[float | None, str]:
    """A target's req/s, or None and why there is none."""
    for result in results:
        if result.name == name:
            if result.status == OK and result.requests_per_s:
                return result.requests_per_s, ""
            return None, f"{name} {result.status}"
    return None, f"{name} not run"


def ratio(results: Sequence[TargetResult], spec: RatioSpec) -> Ratio:
    name = f"{spec.numerator} / {spec.denominator}"
    goal = f">= {spec.goal:.2f}" if spec.goal is not None else "-"
    top, why_top = _rps(results, spec.numerator)
    bottom, why_bottom = _rps(results, spec.denominator)
    if top is None or bottom is None:
        return Ratio(name, None, goal, f"n/a ({why_top or why_bottom})")
    value = top / bottom
    if spec.goal is None:
        return Ratio(name, value, goal, "context")
    return Ratio(name, value, goal, "pass" if value >= spec.goal else "FAIL")


BIG_STARTUP = "mockserver-10000"
"""Start-up with the 10,000-scenario set: its goal is BIG_STARTUP_GOAL_MS."""
BIG_STARTUP_GOAL_MS = 2000.0


def startup_ratio(
    startups: Sequence[StartupResult], name: str = "mockserver", limit: float = STARTUP_GOAL_MS
) -> Ratio:
    goal = f"< {limit:.0f} ms"
    label = f"{name} startup ms"
    for result in startups:
        if result.name == name:
            median = result.median_ms
            if median is None:
                return Ratio(label, None, goal, f"n/a (startup {result.status})")
            return Ratio(label, median, goal, "pass" if median < limit else "FAIL")
    return Ratio(label, None, goal, "n/a (startup not run)")


def drop(
    results: Sequence[TargetResult], mixed: str, plain: str, limit: float = MAX_DROP_POINTS
) -> Ratio:
    """How many points of the ratio to the bare app `mixed` costs against `plain`."""
    name = f"drop {plain} -> {mixed} (points)"
    goal = f"<= {limit:.0f}"
    top, why_top = _rps(results, mixed)
    base, why_base = _rps(results, plain)
    bare, why_bare = _rps(results, "bare-uvloop")
    if top is None or base is None or bare is None:
        return Ratio(name, None, goal, f"n/a ({why_top or why_base or why_bare})")
    points = (base - top) / bare * 100
    return Ratio(name, points, goal, "pass" if points <= limit else "FAIL")


MAX_SESSION_POINTS = 2.0
"""What the session seam may cost a request without a session, in points of ratio."""


def session_cost(results: Sequence[TargetResult]) -> Ratio:
    """Points of the ratio to the bare app that `mockserver` loses against the same server
    without the session seam; without bare-uvloop in the run, points of the ratio to
    mockserver-nosessions itself (percent slower: a stricter measure, as mockserver is slower
    than the bare app)."""
    goal = f"<= {MAX_SESSION_POINTS:.0f}"
    top, why_top = _rps(results, "mockserver")
    base, why_base = _rps(results, "mockserver-nosessions")
    bare, _ = _rps(results, "bare-uvloop")
    over = "bare-uvloop" if bare is not None else "mockserver-nosessions"
    name = f"sessions cost mockserver (points of ratio to {over})"
    if top is None or base is None:
        return Ratio(name, None, goal, f"n/a ({why_top or why_base})")
    points = (base - top) / (bare if bare is not None else base) * 100
    return Ratio(name, points, goal, "pass" if points <= MAX_SESSION_POINTS else "FAIL")


def all_ratios(results: Sequence[TargetResult], startups: Sequence[StartupResult]) -> list[Ratio]:
    return [
        *(ratio(results, spec) for spec in RATIOS),
        *(drop(results, target, base, limit) for target, base, limit in DROPS),
        session_cost(results),
        startup_ratio(startups),
        startup_ratio(startups, BIG_STARTUP, BIG_STARTUP_GOAL_MS),
    ]


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def target_table(results: Sequence[TargetResult]) -> list[str]:
    head = (
        f"{'target':<27}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'reply B':>9}"
        f"  {'rounds req/s':<15}status"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.name:<27}{_num(r.requests_per_s, 0):>9}{_num(r.p50_ms, 2):>9}"
            f"{_num(r.p99_ms, 2):>9}{_num(r.reply_bytes, 0):>9}  {r.spread:<15}{r.status}"
        )
    return lines


def ratio_table(ratios: Sequence[Ratio]) -> list[str]:
    head = f"{'ratio':<62}{'value':>8}  {'goal':<10}verdict"
    lines = [head, "-" * len(head)]
    for r in ratios:
        digits = 0 if r.name.endswith("ms") else 2
        lines.append(f"{r.name:<62}{_num(r.value, digits):>8}  {r.goal:<10}{r.verdict}")
    return lines


def startup_table(startups: Sequence[StartupResult]) -> list[str]:
    lines = []
    for s in startups:
        runs = ", ".join(f"{ms:.0f}" for ms in s.runs_ms) or "-"
        status = "" if s.status == OK else f"  {s.status}"
        lines.append(
            f"startup {s.name:<19} median {_num(s.median_ms, 0):>6} ms  (runs: {runs}){status}"
        )
    return lines


def problems(results: Sequence[TargetResult], startups: Sequence[StartupResult]) -> list[str]:
    """Skipped and failed targets with their reasons."""
    rows = [(r.status, r.name, r.reason) for r in results]
    rows += [(s.status, f"startup {s.name}", s.reason) for s in startups]
    return [f"{status.upper()} {name}: {reason}" for status, name, reason in rows if status != OK]


def render(
    header: str,
    results: Sequence[TargetResult],
    startups: Sequence[StartupResult],
    ratios: Sequence[Ratio],
) -> str:
    parts = [header, "", *target_table(results), "", *startup_table(startups), ""]
    parts += [*ratio_table(ratios), ""]
    notes = problems(results, startups)
    if notes:
        parts += ["skipped / failed:", *(f"  {note}" for note in notes), ""]
    return "\n".join(parts)


def write_json(
    path: Path,
    meta: dict[str, Any],
    results: Sequence[TargetResult],
    startups: Sequence[StartupResult],
    ratios: Sequence[Ratio],
) -> None:
    data = {
        "meta": meta,
        "targets": [asdict(r) for r in results],
        "startup": [{**asdict(s), "median_ms": s.median_ms} for s in startups],
        "ratios": [asdict(r) for r in ratios],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
