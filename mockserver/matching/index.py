"""`Matcher`: which scenario answers a request (priority, then file order), found through indexes.

At load, each scenario's most selective condition that an index can look up (`Hint`) files it
under an equality (a hash table per feature: model, last user message, system message, the
normalised `messages`), a needle (one Aho-Corasick automaton per feature finds every needle a
text holds in one pass) or a regex (one RE2 set per feature). Scenarios with no such condition
are tested for every request. A request then tests only the scenarios the indexes return, in
precedence order, with each condition's boolean `holds`; the closest-miss explanation alone
asks every scenario `why_not`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import ahocorasick
import re2

from mockserver.matching.conditions import Condition
from mockserver.matching.text import Hint
from mockserver.normal import ItemsKey, joined
from mockserver.request import ChatRequest

__all__ = ["Candidate", "Matcher", "Miss"]


def _one(value: str | None) -> tuple[str, ...]:
    return () if value is None else (value,)


FEATURES: dict[str, Callable[[ChatRequest], tuple[ItemsKey, ...]]] = {
    "model": lambda request: (request.model,),
    "last_user_message": lambda request: _one(request.last_user_message),
    "system_message": lambda request: _one(request.system_message),
    "message_texts": lambda request: tuple(m.text for m in request.messages),
    "messages": lambda request: (request.messages_key,),
}
"""The request features an index can read, each as the values it looks up (texts; for
`messages`, the list's `items_key`)."""


class Candidate(Protocol):
    """What the matcher needs of a scenario."""

    @property
    def name(self) -> str: ...

    @property
    def priority(self) -> int: ...

    @property
    def conditions(self) -> tuple[Condition, ...]: ...


@dataclass(frozen=True, slots=True)
class Miss:
    """Why nothing matched: the closest scenario and the first condition it failed."""

    scenario: int | None
    condition: str | None
    reason: str | None


class _Equals:
    """Feature value -> the ranks of the scenarios that need exactly that value."""

    def __init__(self) -> None:
        self.table: dict[ItemsKey, list[int]] = {}

    def add(self, value: ItemsKey, rank: int) -> None:
        self.table.setdefault(value, []).append(rank)
        if type(value) is tuple:  # a list's items: a request without them gives them joined
            self.table.setdefault(joined(value), []).append(rank)

    def build(self) -> None:
        pass

    def found(self, texts: tuple[ItemsKey, ...], into: list[int]) -> None:
        for text in texts:
            if (ranks := self.table.get(text)) is not None:
                into.extend(ranks)


class _Needles:
    """Needle -> ranks; one pass of an Aho-Corasick automaton finds every needle in a text."""

    def __init__(self) -> None:
        self.table: dict[str, list[int]] = {}
        self.automaton = ahocorasick.Automaton()

    def add(self, value: ItemsKey, rank: int) -> None:
        assert type(value) is str  # a text feature's
        self.table.setdefault(value, []).append(rank)

    def build(self) -> None:
        for needle, ranks in self.table.items():
            self.automaton.add_word(needle, ranks)
        self.automaton.make_automaton()

    def found(self, texts: tuple[ItemsKey, ...], into: list[int]) -> None:
        for text in texts:
            for _, ranks in self.automaton.iter(text):
                into.extend(ranks)


class _Regexes:
    """Regex -> ranks; one RE2 set search finds every pattern a text matches."""

    def __init__(self) -> None:
        self.table: dict[str, list[int]] = {}
        self.by_index: list[list[int]] = []
        self.set = re2.Set.SearchSet(re2.Options())

    def add(self, value: ItemsKey, rank: int) -> None:
        assert type(value) is str  # a text feature's
        self.table.setdefault(value, []).append(rank)

    def build(self) -> None:
        for pattern, ranks in self.table.items():
            self.set.Add(pattern)
            self.by_index.append(ranks)
        self.set.Compile()

    def found(self, texts: tuple[ItemsKey, ...], into: list[int]) -> None:
        for text in texts:
            for index in self.set.Match(text) or ():  # None when none matches
                into.extend(self.by_index[index])


_Index = _Equals | _Needles | _Regexes
_KINDS: dict[str, type[_Index]] = {"equals": _Equals, "contains": _Needles, "regex": _Regexes}


def _best_hint(conditions: Iterable[Condition]) -> Hint | None:
    hints = [h for c in conditions if (h := c.hint()) is not None]
    return min(hints, key=lambda h: h.selectivity) if hints else None


class Matcher:
    """Finds the scenario for a request: highest `priority` first, then the order of the files.

    Positions are the scenarios' places in the sequence given; ranks their places in
    precedence order, which is the order the indexes keep and candidates are tried in.
    """

    def __init__(self, scenarios: Sequence[Candidate]) -> None:
        self._scenarios = tuple(scenarios)
        order = sorted(range(len(scenarios)), key=lambda i: (-scenarios[i].priority, i))
        self._order = tuple(order)
        self._conditions = tuple(scenarios[p].conditions for p in order)
        self._by_body = not any(c.reads == "headers" for cs in self._conditions for c in cs)
        self._always: list[int] = []
        indexes: dict[tuple[str, str], _Index] = {}
        for rank, conditions in enumerate(self._conditions):
            hint = _best_hint(conditions)
            if hint is None:
                self._always.append(rank)
                continue
            where = (hint.how, hint.feature)
            if where not in indexes:
                indexes[where] = _KINDS[hint.how]()
            indexes[where].add(hint.value, rank)
        for index in indexes.values():
            index.build()
        self._indexes = tuple((FEATURES[f], index) for (_, f), index in indexes.items())

    def _candidates(self, request: ChatRequest) -> list[int]:
        """The ranks worth testing, in precedence order."""
        if not self._indexes:
            return self._always
        found: list[int] = []
        for read, index in self._indexes:
            index.found(read(request), found)
        if not found:
            return self._always
        if self._always:
            found.extend(self._always)
        return sorted(set(found)) if len(found) > 1 else found

    def find(self, request: ChatRequest, skip: Callable[[int], bool] | None = None) -> int | None:
        """The position of the first scenario whose conditions all hold, or None.

        Without `skip` and without a condition on headers, the answer depends on the body
        alone: it is kept on the request, so a body seen again (the engine keeps its parsed
        request, and copies it with each request's headers) is not matched again.
        """
        if skip is None and self._by_body:
            kept = request.__dict__.get("_found")
            if kept is not None and kept[0] is self:
                found: int | None = kept[1]
                return found
            found = self._search(request, None)
            request.__dict__["_found"] = (self, found)
            return found
        return self._search(request, skip)

    def _search(self, request: ChatRequest, skip: Callable[[int], bool] | None) -> int | None:
        conditions = self._conditions
        order = self._order
        for rank in self._candidates(request):
            if skip is not None and skip(order[rank]):
                continue
            for condition in conditions[rank]:
                if not condition.holds(request):
                    break
            else:
                return order[rank]
        return None

    def explain(self, request: ChatRequest) -> Miss:
        """The scenario that came closest (most conditions held, then fewest conditions, then
        precedence) and the first condition it failed. Counting uses `holds`; only the winner
        is asked `why_not`, so a miss among thousands of scenarios stays cheap."""
        best: tuple[int, int] | None = None
        best_rank = None
        for rank, conditions in enumerate(self._conditions):
            passed = 0
            for condition in conditions:
                if condition.holds(request):
                    passed += 1
            score = (passed, -len(conditions))
            if best is None or score > best:
                best, best_rank = score, rank
        if best_rank is None:
            return Miss(None, None, None)
        for condition in self._conditions[best_rank]:
            if (reason := condition.why_not(request)) is not None:
                return Miss(self._order[best_rank], condition.key, reason)
        return Miss(self._order[best_rank], None, None)
