"""`POST /_mockserver/verify`: expectations about what a server (or a session) was sent.

The body is `{"expectations": [...]}` (or the list itself); each expectation is one of
`{scenario, times | at_least | at_most}` (how many requests the scenario answered; at least one
when no count is given), `{match: {...}, times | at_least | at_most}` (how many journal entries
a `match:` mapping, as in a scenario file, selects), `{unmatched: N}` (requests that matched
no scenario) and `{all_used: true}` (every scenario that is not `optional` answered at least
once). A failure is one readable sentence naming what differed.
"""

from __future__ import annotations

from typing import Any

from mockserver.engine import JournalEntry, MockEngine
from mockserver.errors import ApiError, ScenarioError
from mockserver.journal_view import is_miss
from mockserver.matching import parse_match
from mockserver.yamlsource import Document, Node

MAX_EXPECTATIONS = 100
COUNTS = ("times", "at_least", "at_most")
KINDS = {
    "scenario": ("scenario", *COUNTS),
    "match": ("match", *COUNTS),
    "unmatched": ("unmatched",),
    "all_used": ("all_used",),
}


def _bad(message: str) -> ApiError:
    return ApiError(status=400, message=message, param="expectations", code="invalid_expectation")


def _count(value: Any, where: str) -> int:
    if type(value) is not int or value < 0:
        raise _bad(f"{where}: expected a count (an integer >= 0), got {value!r}.")
    return value


def _bounds(item: dict[str, Any], where: str) -> tuple[int, int | None, str]:
    """(at least, at most, how the expectation reads) from `times`, `at_least`, `at_most`."""
    if "times" in item:
        if "at_least" in item or "at_most" in item:
            raise _bad(f"{where}: give `times` or `at_least`/`at_most`, not both.")
        n = _count(item["times"], f"{where}.times")
        return n, n, f"exactly {n}"
    low = _count(item.get("at_least", 1 if "at_most" not in item else 0), f"{where}.at_least")
    high = _count(item["at_most"], f"{where}.at_most") if "at_most" in item else None
    if high is None:
        return low, None, f"at least {low}"
    return low, high, f"between {low} and {high}" if low else f"at most {high}"


def _requests(n: int) -> str:
    return f"{n} request" if n == 1 else f"{n} requests"


def check_expectations(body: Any, engine: MockEngine) -> tuple[list[str], int]:
    """The failures (one sentence each) and how many expectations were checked."""
    items = body.get("expectations") if isinstance(body, dict) else body
    if isinstance(body, dict) and set(body) - {"expectations"}:
        extra = sorted(set(body) - {"expectations"})
        raise _bad(f"Unknown field {extra[0]!r}; the body is {{'expectations': [...]}}.")
    if not isinstance(items, list) or not items:
        raise _bad('Expected {"expectations": [...]} with at least one expectation.')
    if len(items) > MAX_EXPECTATIONS:
        raise _bad(f"{len(items)} expectations are more than the {MAX_EXPECTATIONS} allowed.")
    journal = engine.journal
    failures = [
        f"expectations[{i}]: {f}"
        for i, item in enumerate(items)
        if (f := _check(item, f"expectations[{i}]", engine, journal)) is not None
    ]
    return failures, len(items)


def _kind(item: Any, where: str) -> str:
    if not isinstance(item, dict):
        raise _bad(f"{where}: expected a mapping, got {type(item).__name__}.")
    kinds = [k for k in KINDS if k in item]
    if len(kinds) != 1:
        raise _bad(f"{where}: expected exactly one of {', '.join(KINDS)}; got {sorted(item)}.")
    kind = kinds[0]
    for key in item:
        if key not in KINDS[kind]:
            raise _bad(
                f"{where}: unknown key {key!r} for a {kind!r} expectation; allowed: "
                f"{', '.join(KINDS[kind])}."
            )
    return kind


def _check(item: Any, where: str, engine: MockEngine, journal: list[JournalEntry]) -> str | None:
    kind = _kind(item, where)
    if kind == "scenario":
        return _check_scenario(item, where, engine)
    if kind == "match":
        return _check_match(item, where, journal)
    if kind == "unmatched":
        return _check_unmatched(item, where, journal)
    return _check_all_used(item, where, engine)


def _check_scenario(item: dict[str, Any], where: str, engine: MockEngine) -> str | None:
    name = item["scenario"]
    uses = engine.uses()
    if name not in uses:
        raise _bad(f"{where}: no scenario named {name!r} is loaded.")
    low, high, wanted = _bounds(item, where)
    n = uses[name]
    if n < low or (high is not None and n > high):
        return f"scenario {name!r} answered {_requests(n)}; expected {wanted}"
    return None


def _check_unmatched(item: dict[str, Any], where: str, journal: list[JournalEntry]) -> str | None:
    wanted = _count(item["unmatched"], f"{where}.unmatched")
    misses = [e for e in journal if is_miss(e)]
    if len(misses) == wanted:
        return None
    first = f" (the first: {misses[0].error.message})" if misses and misses[0].error else ""
    return f"{_requests(len(misses))} matched no scenario; expected {wanted}{first}"


def _check_all_used(item: dict[str, Any], where: str, engine: MockEngine) -> str | None:
    if item["all_used"] is not True:
        raise _bad(f"{where}.all_used: the only value is true.")
    uses = engine.uses()
    unused = [s for s in engine.scenarios.scenarios if not s.optional and not uses[s.name]]
    if not unused:
        return None
    names = ", ".join(f"{s.name!r} ({s.where})" for s in unused)
    return f"{len(unused)} scenarios never answered a request: {names}"


def _check_match(item: dict[str, Any], where: str, journal: list[JournalEntry]) -> str | None:
    doc = Document(f"{where}.match")
    conditions = parse_match(Node(item["match"], doc, None, "match"))
    if doc.problems:
        raise ScenarioError(tuple(doc.problems))
    requests = [e.request for e in journal]
    n = sum(1 for r in requests if r is not None and all(c.holds(r) for c in conditions))
    low, high, wanted = _bounds(item, where)
    if low <= n and (high is None or n <= high):
        return None
    message = f"{_requests(n)} matched {item['match']!r}; expected {wanted}"
    last = next((r for r in reversed(requests) if r is not None), None)
    if n == 0 and last is not None:
        for condition in conditions:
            reason = condition.why_not(last)
            if reason is not None:
                key = "match." + condition.key.rsplit("match.", 1)[-1]
                message += f"; the last request failed {key}: {reason}"
                break
    elif last is None:
        message += "; the journal holds no valid request"
    return message
