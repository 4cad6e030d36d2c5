"""YAML read with a safe loader, keeping the line of every key and item for error messages.

Scenario files are data, and data may be hostile: aliases are limited to `ALIAS_BUDGET` bytes of
expansion in all (a "billion laughs" file is refused at its first alias over the budget, in
milliseconds), and an alias cannot refer to the node it is inside (a recursive value would send
every later walk over it round in circles).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import yaml

from mockserver.errors import Problem
from mockserver.wire import JSON

try:  # libyaml's parser is written in C: a 10,000-scenario file loads 3 times faster
    from yaml import CSafeLoader as _FastBase
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _FastBase  # type: ignore[assignment]

ALIAS_BUDGET = 1024 * 1024
"""How much aliases (`*name`, `<<: *name`) may add to a document, in all: about the bytes of
the values they repeat. Plain values written out in the file do not count."""
_NODE_WEIGHT = 16
"""What one value counts for besides its text (a list of empty strings is not free)."""


class AliasError(yaml.MarkedYAMLError):
    """An alias over the budget, or one inside the value it names."""


def _weight(node: yaml.Node, known: dict[int, int]) -> int:
    """About how many bytes `node` stands for with every alias inside it written out."""
    found = known.get(id(node))
    if found is not None:
        return found
    weight = _NODE_WEIGHT
    if isinstance(node, yaml.ScalarNode):
        weight += len(node.value)
    elif isinstance(node, yaml.SequenceNode):
        weight += sum(_weight(child, known) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        weight += sum(_weight(k, known) + _weight(v, known) for k, v in node.value)
    known[id(node)] = weight
    return weight


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records where each mapping key and sequence item starts, and keeps
    aliases within `ALIAS_BUDGET`.

    PyYAML's own parser: it reads what libyaml refuses (the `\\uDCxx` escape a recording
    writes for a byte that is not UTF-8), and its error messages are the ones shown.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.key_lines: dict[int, dict[Any, int]] = {}
        self.item_lines: dict[int, list[int]] = {}
        self.duplicates: dict[int, list[tuple[int, str]]] = {}
        self._weights: dict[int, int] = {}
        self._expanded = 0
        self._open: set[str] = set()  # anchors whose value is still being read

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if event.anchor in self._open:
                raise AliasError(
                    problem=f"the alias *{event.anchor} is inside the value it names "
                    "(a value cannot contain itself)",
                    problem_mark=cast(yaml.Mark, event.start_mark),
                )
            if target is not None:
                self._expanded += _weight(target, self._weights)
                if self._expanded > ALIAS_BUDGET:
                    raise AliasError(
                        problem=f"aliases expand this file by more than {ALIAS_BUDGET} bytes "
                        f"(the limit) at *{event.anchor}; write the values out, or repeat "
                        "them less",
                        problem_mark=cast(yaml.Mark, event.start_mark),
                    )
            return super().compose_node(parent, index)
        anchor = getattr(event, "anchor", None)
        if anchor is None:
            return super().compose_node(parent, index)
        self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open.discard(anchor)


class _FastLineLoader(_FastBase):
    """`_LineLoader` on libyaml's parser, tried first."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.key_lines: dict[int, dict[Any, int]] = {}
        self.item_lines: dict[int, list[int]] = {}
        self.duplicates: dict[int, list[tuple[int, str]]] = {}
        self._tags: dict[str, str] = {}

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> Any:
        """A scalar's tag, as PyYAML's resolver gives it, found once per distinct plain text.

        The resolver (Python, even on libyaml) tries its regexes on every scalar: a tenth of
        loading a 10,000-scenario file, mostly on the same few keys (`name`, `match`,
        `reply`). A quoted scalar is a string. No path resolvers are set on these loaders, so
        a plain scalar's tag depends on its text alone."""
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        if not implicit[0]:
            if implicit[1]:
                return self.DEFAULT_SCALAR_TAG
            return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        tag = self._tags.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
            self._tags[value] = tag
        return tag


_Loader = _LineLoader | _FastLineLoader


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
    data: dict[Any, Any] = {}
    yield data
    merge = "tag:yaml.org,2002:merge"
    written = {id(k) for k, _ in node.value if k.tag != merge}
    loader.flatten_mapping(node)  # merged keys first; keys written here override them
    lines: dict[Any, int] = {}
    explicit: set[Any] = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from None
        if id(key_node) in written:
            if key in explicit:
                found = (key_node.start_mark.line + 1, str(key))
                loader.duplicates.setdefault(id(data), []).append(found)
            explicit.add(key)
        lines[key] = key_node.start_mark.line + 1
        data[key] = loader.construct_object(value_node, deep=True)
    loader.key_lines[id(data)] = lines


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Iterator[list[Any]]:
    data: list[Any] = []
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)
    loader.item_lines[id(data)] = [child.start_mark.line + 1 for child in node.value]


for _loader in (_LineLoader, _FastLineLoader):
    _loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
    _loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


@dataclass
class Document:
    """A parsed file: the problems found so far, and the line tables behind `Node`."""

    file: str
    key_lines: dict[int, dict[Any, int]] = field(default_factory=dict)
    item_lines: dict[int, list[int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    keep: list[object] = field(default_factory=list)
    allow_files_outside: bool = False
    """Whether files the document names (`audio: {file}`) may lie outside its folder tree."""
    files: Mapping[str, bytes] | None = None
    """The files sent with a document that may not read any (`scenarios.NO_FILES`), by name."""

    def problem(self, line: int | None, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, path, message))


@dataclass(frozen=True, slots=True)
class Node:
    """A value read from YAML, with its file, line and key path (`scenarios[0].reply.content`)."""

    value: JSON
    doc: Document
    line: int | None
    path: str

    def fail(self, message: str) -> None:
        """Record a problem at this node (loading goes on to find the others)."""
        self.doc.problem(self.line, self.path, message)

    def child(self, key: str | int) -> Node:
        if isinstance(key, int):
            lines = self.doc.item_lines.get(id(self.value), [])
            line = lines[key] if key < len(lines) else self.line
            return Node(self.value[key], self.doc, line, f"{self.path}[{key}]")
        line = self.doc.key_lines.get(id(self.value), {}).get(key, self.line)
        path = f"{self.path}.{key}" if self.path else key
        return Node(self.value[key], self.doc, line, path)

    def get(self, key: str) -> Node | None:
        if isinstance(self.value, dict) and key in self.value:
            return self.child(key)
        return None

    def items(self) -> Iterator[tuple[str, Node]]:
        assert isinstance(self.value, dict)
        for key in self.value:
            yield str(key), self.child(key)

    def elements(self) -> Iterator[Node]:
        assert isinstance(self.value, list)
        for i in range(len(self.value)):
            yield self.child(i)

    # -- typed readers: each returns the value, or records a problem here and returns None ----

    def string(self, *, nullable: bool = False) -> str | None:
        if isinstance(self.value, str) or (nullable and self.value is None):
            return self.value
        self.fail(f"expected a string, got {describe(self.value)}")
        return None

    def strings(self) -> tuple[str, ...] | None:
        """A string, or a list of strings."""
        if isinstance(self.value, str):
            return (self.value,)
        if isinstance(self.value, list) and all(isinstance(v, str) for v in self.value):
            return tuple(self.value)
        self.fail(f"expected a string or a list of strings, got {describe(self.value)}")
        return None

    def boolean(self) -> bool | None:
        if isinstance(self.value, bool):
            return self.value
        self.fail(f"expected true or false, got {describe(self.value)}")
        return None

    def integer(self, minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self.value
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(f"expected an integer, got {describe(value)}")
            return None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            self.fail(f"expected an integer {bounds}, got {value}")
            return None
        return value

    def milliseconds(self) -> float:
        """A number of milliseconds >= 0 (0 when it is not one)."""
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.fail(f"expected a number of milliseconds >= 0, got {describe(value)}")
            return 0.0
        return float(value)

    def choice(self, allowed: Sequence[str]) -> str | None:
        """A string out of `allowed`."""
        value = self.string()
        if value is not None and value not in allowed:
            self.fail(f"unknown value {value!r} (allowed: {', '.join(allowed)})")
            return None
        return value

    def is_mapping(self, what: str = "a mapping") -> bool:
        if isinstance(self.value, dict):
            return True
        self.fail(f"expected {what}, got {describe(self.value)}")
        return False

    def check_keys(self, allowed: Sequence[str], required: Sequence[str] = ()) -> bool:
        """Report unknown keys (suggesting the closest valid one) and missing required keys."""
        ok = True
        for key, child in self.items():
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                child.fail(f"unknown key '{key}'{hint} (allowed: {', '.join(allowed)})")
                ok = False
        for key in required:
            if key not in self.value:
                self.fail(f"missing required key '{key}'")
                ok = False
        return ok


def describe(value: JSON) -> str:
    """A value's type as a person would say it, for messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})" if len(value) < 40 else "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def load_data(text: str) -> Any:
    """Plain YAML data, without lines: libyaml's parser when the text can hold no alias (no
    `&` anchor), else PyYAML's with the alias budget (it also reads what libyaml refuses)."""
    if "&" not in text:
        try:
            return yaml.load(text, Loader=_FastBase)
        except yaml.YAMLError:
            pass
    loader = _LineLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def parse_yaml(
    text: str, file: str, *, allow_files_outside: bool = False
) -> tuple[Node | None, Document]:
    """Parse one YAML document; on a syntax error, the `Document` holds the problem.

    A text without `&` can hold no anchor, hence no alias: libyaml's C parser reads it (the
    alias budget is enforced in PyYAML's composer, which libyaml does not run). Anything else,
    and what libyaml refuses, goes to PyYAML's parser."""
    doc = Document(file, allow_files_outside=allow_files_outside)
    if "&" not in text:
        fast = _FastLineLoader(text)
        try:
            value = fast.get_single_data()
        except yaml.YAMLError:
            pass  # read again by PyYAML's parser below: it may read it, or say why not
        else:
            return _parsed(value, fast, doc)
        finally:
            fast.dispose()
    loader = _LineLoader(text)
    try:
        value = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        kind = "" if isinstance(exc, AliasError) else "invalid YAML: "
        doc.problem(line, "", f"{kind}{exc.problem or exc}")
        return None, doc
    except yaml.YAMLError as exc:
        doc.problem(None, "", f"invalid YAML: {exc}")
        return None, doc
    finally:
        loader.dispose()
    return _parsed(value, loader, doc)


def _parsed(
    value: Any, loader: _LineLoader | _FastLineLoader, doc: Document
) -> tuple[Node, Document]:
    doc.key_lines = loader.key_lines
    doc.item_lines = loader.item_lines
    doc.keep.append(value)
    if loader.duplicates:
        _report_duplicates(Node(value, doc, 1, ""), loader.duplicates)
    return Node(value, doc, 1, ""), doc


def _report_duplicates(
    node: Node, duplicates: dict[int, list[tuple[int, str]]], seen: set[int] | None = None
) -> None:
    """Report keys written twice in one mapping, with the key path of that mapping."""
    seen = set() if seen is None else seen
    if id(node.value) in seen:  # an alias: reported where it was first written
        return
    if isinstance(node.value, dict):
        seen.add(id(node.value))
        for line, key in duplicates.get(id(node.value), []):
            path = f"{node.path}.{key}" if node.path else key
            node.doc.problem(line, path, f"duplicate key '{key}'")
        for _, child in node.items():
            _report_duplicates(child, duplicates, seen)
    elif isinstance(node.value, list):
        seen.add(id(node.value))
        for child in node.elements():
            _report_duplicates(child, duplicates, seen)
