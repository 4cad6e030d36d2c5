"""String tests (`equals`, `contains`, `regex`) and how their regular expressions are run.

Regular expressions run on RE2 (`google-re2`), which takes time linear in the text: a
scenario's `regex` cannot stall the server however it is written. A pattern that uses syntax RE2
lacks (backreferences, lookaround) falls back to Python's `re`, with a warning at load, since
that engine can backtrack. RE2's `\\d`, `\\w`, `\\s` and `\\b` are ASCII-only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import re2

from mockserver.normal import ItemsKey, show_text
from mockserver.yamlsource import Node

__all__ = ["TEXT_KEYS", "Hint", "Pattern", "Text", "parse_text"]

TEXT_KEYS = ("equals", "contains", "regex")
log = logging.getLogger("mockserver")


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled `regex`: `search(text)` is a match or None; `linear` says RE2 runs it."""

    source: str
    search: Callable[[str], object | None]
    linear: bool


def compile_pattern(node: Node, source: str) -> Pattern | None:
    """RE2 when it reads the pattern, else Python's `re` (warned about), else a problem."""
    try:
        return Pattern(source, re2.compile(source).search, linear=True)
    except re2.error:
        pass
    try:
        compiled = re.compile(source)
    except re.error as exc:
        node.fail(f"invalid regular expression: {exc}")
        return None
    where = f"{node.doc.file}:{node.line}: {node.path}"
    log.warning(
        "%s: /%s/ uses syntax RE2 lacks (backreferences or lookaround); it runs on Python's re, "
        "which can backtrack: a hostile request could keep it busy",
        where,
        source,
    )
    return Pattern(source, compiled.search, linear=False)


@dataclass(frozen=True, slots=True)
class Hint:
    """What an index can look up for a condition: the request `feature` `how` `value`."""

    how: Literal["equals", "contains", "regex"]
    feature: str
    value: ItemsKey
    """A text; for `messages`, the list's `items_key`."""

    @property
    def selectivity(self) -> tuple[int, int]:
        """Lower is better: an equality narrows most, a long needle more than a short one."""
        rank = {"equals": 1, "contains": 2, "regex": 3}[self.how]
        if self.feature == "messages":
            rank = 0
        elif self.feature == "model":
            rank = 4  # most scenarios name the same model
        return (rank, -len(self.value) if self.how == "contains" else 0)


@dataclass(frozen=True, slots=True)
class Text:
    """A string test: `equals`, `contains` (every one given), `regex` (searched); all must hold."""

    equals: str | None = None
    contains: tuple[str, ...] = ()
    regex: Pattern | None = None

    def describe(self) -> str:
        parts = [f"equal to {show_text(self.equals)}"] if self.equals is not None else []
        parts += [f"containing {show_text(needle)}" for needle in self.contains]
        if self.regex is not None:
            parts.append(f"matching /{self.regex.source}/")
        return " and ".join(parts)

    def holds(self, text: str) -> bool:
        if self.equals is not None and text != self.equals:
            return False
        for needle in self.contains:
            if needle not in text:
                return False
        return self.regex is None or self.regex.search(text) is not None

    def why_not(self, text: str | None) -> str | None:
        """None when it holds, else why not."""
        if text is None:
            return f"expected a message {self.describe()}, found no such message"
        if self.holds(text):
            return None
        return f"expected {self.describe()}, got {show_text(text)}"

    def hint(self, feature: str) -> Hint | None:
        """The index entry for this test on `feature`: its equality, longest needle or regex."""
        if self.equals is not None:
            return Hint("equals", feature, self.equals)
        needles = [n for n in self.contains if n]
        if needles:
            return Hint("contains", feature, max(needles, key=len))
        if self.regex is not None and self.regex.linear:
            return Hint("regex", feature, self.regex.source)
        return None


def parse_text(node: Node) -> Text | None:
    """`"hi"` (equals) or `{equals|contains|regex: ...}`."""
    if isinstance(node.value, str):
        return Text(equals=node.value)
    if not node.is_mapping("a string or a mapping with equals, contains or regex"):
        return None
    if not node.check_keys(TEXT_KEYS):
        return None
    if not node.value:
        node.fail("give at least one of equals, contains, regex")
        return None
    equals = contains = regex = None
    if (child := node.get("equals")) is not None:
        equals = child.string()
    if (child := node.get("contains")) is not None:
        contains = child.strings()
    if (child := node.get("regex")) is not None and (source := child.string()) is not None:
        regex = compile_pattern(child, source)
    return Text(equals=equals, contains=contains or (), regex=regex)
