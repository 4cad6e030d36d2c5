"""Match conditions, scenario precedence, and the "closest miss" explanation.

A condition is a pure test over a `ChatRequest`: `None` when it holds, else the reason it does
not. Conditions are compiled once from YAML; matching a request never parses anything.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from mockserver.request import ChatRequest, RequestMessage
from mockserver.wire import JSON
from mockserver.yamlsource import Node, describe

MATCH_KEYS = (
    "model",
    "stream",
    "last_user_message",
    "any_message",
    "system_message",
    "last_message",
    "tools",
    "response_format",
    "modalities",
    "content_parts",
    "headers",
    "params",
    "messages",
    "no_other_params",
)
ANSWER_PARAMS = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "response_format",
    "temperature",
    "top_p",
    "n",
    "seed",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "modalities",
    "audio",
    "reasoning_effort",
    "verbosity",
    "prediction",
    "web_search_options",
    "stream_options",
)
"""The request parameters that change the answer (`no_other_params` checks they are unset)."""
PART_NAMES = {
    "text": "text",
    "image": "image",
    "image_url": "image",
    "audio": "audio",
    "input_audio": "audio",
    "file": "file",
    "refusal": "refusal",
}


def _show(text: str | None) -> str:
    if text is None:
        return "nothing"
    return repr(text if len(text) <= 60 else text[:57] + "...")


@dataclass(frozen=True, slots=True)
class Text:
    """A string test: `equals`, `contains` (every one given), `regex` (searched); all must hold."""

    equals: str | None = None
    contains: tuple[str, ...] = ()
    regex: re.Pattern[str] | None = None

    def describe(self) -> str:
        parts = [f"equal to {_show(self.equals)}"] if self.equals is not None else []
        parts += [f"containing {_show(needle)}" for needle in self.contains]
        if self.regex is not None:
            parts.append(f"matching /{self.regex.pattern}/")
        return " and ".join(parts)

    def holds(self, text: str) -> bool:
        if self.equals is not None and text != self.equals:
            return False
        if any(needle not in text for needle in self.contains):
            return False
        return self.regex is None or self.regex.search(text) is not None

    def check(self, text: str | None) -> str | None:
        if text is None:
            return f"expected a message {self.describe()}, found no such message"
        if self.holds(text):
            return None
        return f"expected {self.describe()}, got {_show(text)}"


class Condition(Protocol):
    """A test over a request; `key` is where it stands in its file (`...match.tools`)."""

    @property
    def key(self) -> str: ...

    def test(self, request: ChatRequest) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ModelIs:
    key: str
    name: str
    glob: re.Pattern[str] | None

    def test(self, request: ChatRequest) -> str | None:
        if self.glob is None:
            ok = request.model == self.name
        else:
            ok = self.glob.fullmatch(request.model) is not None
        return None if ok else f"expected model {self.name!r}, got {request.model!r}"


@dataclass(frozen=True, slots=True)
class StreamIs:
    key: str
    stream: bool

    def test(self, request: ChatRequest) -> str | None:
        if request.stream == self.stream:
            return None
        return f"expected stream {str(self.stream).lower()}, got {str(request.stream).lower()}"


@dataclass(frozen=True, slots=True)
class TextOf:
    """A test on one text the request carries (last user message, system messages)."""

    key: str
    text: Text
    read: Callable[[ChatRequest], str | None]

    def test(self, request: ChatRequest) -> str | None:
        return self.text.check(self.read(request))


@dataclass(frozen=True, slots=True)
class AnyMessage:
    key: str
    text: Text

    def test(self, request: ChatRequest) -> str | None:
        for message in request.messages:
            if self.text.holds(message.text):
                return None
        return f"expected some message {self.text.describe()}, none is"


@dataclass(frozen=True, slots=True)
class LastMessage:
    key: str
    role: str | None
    name: str | None
    text: Text | None

    def test(self, request: ChatRequest) -> str | None:
        last: RequestMessage = request.messages[-1]
        if self.role is not None and last.role != self.role:
            return f"expected the last message's role {self.role!r}, got {last.role!r}"
        if self.name is not None and last.name != self.name:
            return f"expected the last message's name {self.name!r}, got {last.name!r}"
        if self.text is not None:
            reason = self.text.check(last.text)
            if reason is not None:
                return f"last message {reason}"
        return None


@dataclass(frozen=True, slots=True)
class HasAll:
    """A list condition: the request has every listed item."""

    key: str
    wanted: tuple[str, ...]
    read: Callable[[ChatRequest], Iterable[str]]
    what: str

    def test(self, request: ChatRequest) -> str | None:
        have = set(self.read(request))
        missing = [w for w in self.wanted if w not in have]
        if not missing:
            return None
        shown = ", ".join(sorted(have)) or "none"
        return f"expected {self.what} {', '.join(missing)}; the request has {shown}"


@dataclass(frozen=True, slots=True)
class ResponseFormatIs:
    key: str
    type: str | None
    name: str | None

    def test(self, request: ChatRequest) -> str | None:
        actual = request.response_format or "text"
        if self.type is not None and actual != self.type:
            return f"expected response_format {self.type!r}, got {actual!r}"
        if self.name is not None and request.response_format_name != self.name:
            return f"expected json_schema name {self.name!r}, got {request.response_format_name!r}"
        return None


@dataclass(frozen=True, slots=True)
class HeaderIs:
    key: str
    header: str
    text: Text

    def test(self, request: ChatRequest) -> str | None:
        value = request.headers.get(self.header)
        if value is None:
            return f"expected header {self.header!r}, the request has none"
        reason = self.text.check(value)
        return None if reason is None else f"header {self.header!r} {reason}"


_MISSING = object()


def _holds(actual: JSON, expected: JSON) -> bool:
    """JSON equality, except that a mapping only needs the keys it gives (recursively).

    1 equals 1.0, but true is not 1.
    """
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _holds(actual[key], value) for key, value in expected.items()
        )
    return actual == expected and isinstance(actual, bool) == isinstance(expected, bool)


@dataclass(frozen=True, slots=True)
class ParamIs:
    """A top-level request field equals a value (a mapping: has those keys with those values)."""

    key: str
    param: str
    value: JSON

    def test(self, request: ChatRequest) -> str | None:
        actual = request.body.get(self.param, _MISSING)
        if actual is _MISSING:
            return f"expected {self.param} = {json.dumps(self.value)}, the request has none"
        if _holds(actual, self.value):
            return None
        return f"expected {self.param} = {json.dumps(self.value)}, got {json.dumps(actual)}"


def normal_json(value: JSON) -> JSON:
    """JSON as the API reads it: a null member is the same as an absent one, and a content
    list holding one text part is the same as that text. Key order never matters."""
    if isinstance(value, dict):
        out = {k: normal_json(v) for k, v in value.items() if v is not None}
        content = out.get("content")
        if isinstance(content, list) and len(content) == 1:
            part = content[0]
            if isinstance(part, dict) and part.keys() == {"type", "text"}:
                out["content"] = part["text"] if part["type"] == "text" else content
        return out
    if isinstance(value, list):
        return [normal_json(v) for v in value]
    return value


def _show_json(value: JSON) -> str:
    if isinstance(value, str):
        return _show(value)
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _mapping_difference(actual: JSON, expected: dict[str, JSON], path: str) -> str | None:
    if not isinstance(actual, dict):
        return f"expected {path} to be a mapping, got {_show_json(actual)}"
    for key, value in expected.items():
        if key not in actual:
            return f"expected {path}.{key}, the request has none"
        found = json_difference(actual[key], value, f"{path}.{key}")
        if found is not None:
            return found
    extra = [k for k in actual if k not in expected]
    return f"the request has {path}.{extra[0]}, which the scenario has not" if extra else None


def _list_difference(actual: JSON, expected: list[JSON], path: str) -> str | None:
    if not isinstance(actual, list):
        return f"expected {path} to be a list, got {_show_json(actual)}"
    for n, (a, e) in enumerate(zip(actual, expected, strict=False)):
        found = json_difference(a, e, f"{path}[{n}]")
        if found is not None:
            return found
    if len(actual) != len(expected):
        return f"expected {len(expected)} items in {path}, got {len(actual)}"
    return None


def json_difference(actual: JSON, expected: JSON, path: str) -> str | None:
    """Where two JSON values differ (`1` equals `1.0`, `true` is not `1`), or None if equal."""
    if isinstance(expected, dict):
        return _mapping_difference(actual, expected, path)
    if isinstance(expected, list):
        return _list_difference(actual, expected, path)
    if actual == expected and isinstance(actual, bool) == isinstance(expected, bool):
        return None
    return f"expected {path} {_show_json(expected)}, got {_show_json(actual)}"


_NORMAL: list[tuple[ChatRequest, JSON]] = []
"""The last request's normalised messages: every `messages` condition of a search reads them."""


def _normal_messages(request: ChatRequest) -> JSON:
    cached = _NORMAL[-1] if _NORMAL else None
    if cached is not None and cached[0] is request:
        return cached[1]
    value = normal_json(request.body.get("messages"))
    _NORMAL[:] = [(request, value)]
    return value


@dataclass(frozen=True, slots=True)
class MessagesAre:
    """The request's whole `messages` list equals this one, compared by `normal_json`."""

    key: str
    messages: JSON

    def test(self, request: ChatRequest) -> str | None:
        return json_difference(_normal_messages(request), self.messages, "messages")


@dataclass(frozen=True, slots=True)
class NoOtherParams:
    """No parameter that changes the answer is set (non-null) besides those `params` gives."""

    key: str
    given: frozenset[str]

    def test(self, request: ChatRequest) -> str | None:
        for name in ANSWER_PARAMS:
            if name not in self.given and request.body.get(name) is not None:
                shown = _show_json(request.body[name])
                return f"expected no {name} (the scenario's params do not set it), got {shown}"
        return None


# -- parsing from YAML ------------------------------------------------------------------------


def parse_text(node: Node) -> Text | None:
    """`"hi"` (equals) or `{equals|contains|regex: ...}`."""
    if isinstance(node.value, str):
        return Text(equals=node.value)
    if not node.is_mapping("a string or a mapping with equals, contains or regex"):
        return None
    if not node.check_keys(("equals", "contains", "regex")):
        return None
    if not node.value:
        node.fail("give at least one of equals, contains, regex")
        return None
    equals = contains = regex = None
    if (child := node.get("equals")) is not None:
        equals = _string(child)
    if (child := node.get("contains")) is not None:
        contains = _strings(child)
    if (child := node.get("regex")) is not None and (pattern := _string(child)) is not None:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            child.fail(f"invalid regular expression: {exc}")
    return Text(equals=equals, contains=contains or (), regex=regex)


def _string(node: Node) -> str | None:
    if isinstance(node.value, str):
        return node.value
    node.fail(f"expected a string, got {describe(node.value)}")
    return None


def _strings(node: Node) -> tuple[str, ...] | None:
    if isinstance(node.value, str):
        return (node.value,)
    if isinstance(node.value, list) and all(isinstance(v, str) for v in node.value):
        return tuple(node.value)
    node.fail(f"expected a string or a list of strings, got {describe(node.value)}")
    return None


def _last_user(request: ChatRequest) -> str | None:
    return request.last_user_message


def _system(request: ChatRequest) -> str | None:
    return request.system_message


def _tools(request: ChatRequest) -> Iterable[str]:
    return request.tools


def _modalities(request: ChatRequest) -> Iterable[str]:
    return request.modalities


def _parts(request: ChatRequest) -> Iterable[str]:
    return request.part_kinds


def _parse_condition(key: str, node: Node) -> Condition | None:  # noqa: C901, PLR0911, PLR0912
    path = node.path
    if key == "model":
        name = _string(node)
        if name is None:
            return None
        glob = re.compile(fnmatch.translate(name)) if any(c in name for c in "*?[") else None
        return ModelIs(path, name, glob)
    if key == "stream":
        if not isinstance(node.value, bool):
            node.fail(f"expected true or false, got {describe(node.value)}")
            return None
        return StreamIs(path, node.value)
    if key in ("last_user_message", "system_message", "any_message"):
        text = parse_text(node)
        if text is None:
            return None
        if key == "any_message":
            return AnyMessage(path, text)
        return TextOf(path, text, _last_user if key == "last_user_message" else _system)
    if key == "last_message":
        if not node.is_mapping() or not node.check_keys(
            ("role", "name", "equals", "contains", "regex")
        ):
            return None
        role_node = node.get("role")
        name_node = node.get("name")
        text_keys = {k: v for k, v in node.value.items() if k in ("equals", "contains", "regex")}
        text = None
        if text_keys:
            text = parse_text(Node(text_keys, node.doc, node.line, node.path))
        return LastMessage(
            path,
            _string(role_node) if role_node else None,
            _string(name_node) if name_node else None,
            text,
        )
    if key in ("tools", "modalities", "content_parts"):
        items = _strings(node)
        if items is None:
            return None
        if key == "content_parts":
            unknown = [i for i in items if i not in PART_NAMES]
            if unknown:
                node.fail(f"unknown part kind {unknown[0]!r} (allowed: {', '.join(PART_NAMES)})")
                return None
            items = tuple(PART_NAMES[i] for i in items)
            return HasAll(path, items, _parts, "content parts")
        if key == "tools":
            return HasAll(path, items, _tools, "tools")
        return HasAll(path, items, _modalities, "modalities")
    if key == "messages":
        value = node.value
        if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
            node.fail(f"expected a non-empty list of messages (mappings), got {describe(value)}")
            return None
        return MessagesAre(path, normal_json(value))
    if key == "response_format":
        if isinstance(node.value, str):
            return ResponseFormatIs(path, node.value, None)
        if not node.is_mapping("a string or a mapping") or not node.check_keys(("type", "name")):
            return None
        rf_type, rf_name = node.get("type"), node.get("name")
        return ResponseFormatIs(
            path, _string(rf_type) if rf_type else None, _string(rf_name) if rf_name else None
        )
    raise AssertionError(key)  # pragma: no cover


def parse_match(node: Node) -> tuple[Condition, ...]:
    """Compile a scenario's `match:` mapping (problems are recorded on the node's document)."""
    if node.value is None:
        return ()
    if not node.is_mapping() or not node.check_keys(MATCH_KEYS):
        return ()
    conditions: list[Condition] = []
    for key, child in node.items():
        if key == "headers":
            conditions.extend(_parse_headers(child))
        elif key == "params":
            if child.is_mapping():
                conditions.extend(ParamIs(c.path, k, c.value) for k, c in child.items())
        elif key == "no_other_params":
            if not isinstance(child.value, bool):
                child.fail(f"expected true or false, got {describe(child.value)}")
            elif child.value:
                params = node.value.get("params")
                given = frozenset(params) if isinstance(params, dict) else frozenset()
                conditions.append(NoOtherParams(child.path, given))
        else:
            condition = _parse_condition(key, child)
            if condition is not None:
                conditions.append(condition)
    return tuple(conditions)


def _parse_headers(node: Node) -> list[Condition]:
    if not node.is_mapping():
        return []
    out: list[Condition] = []
    for name, child in node.items():
        text = parse_text(child)
        if text is not None:
            out.append(HeaderIs(child.path, name.lower(), text))
    return out


# -- precedence and search --------------------------------------------------------------------


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


def _index_key(condition: Condition) -> tuple[str, str] | None:
    """An equality a hash lookup can find: (feature, value)."""
    if isinstance(condition, ModelIs) and condition.glob is None:
        return ("model", condition.name)
    if (
        isinstance(condition, TextOf)
        and condition.read is _last_user
        and condition.text.equals is not None
    ):
        return ("last_user_message", condition.text.equals)
    return None


_FEATURES: dict[str, Callable[[ChatRequest], str | None]] = {
    "model": lambda request: request.model,
    "last_user_message": _last_user,
}


class Matcher:
    """Finds the scenario for a request: highest `priority` first, then the order of the files.

    Scenarios with an equality on the model or the last user message are found through a hash
    index, so a long list of scenarios costs the same as a short one.
    """

    def __init__(self, scenarios: Sequence[Candidate]) -> None:
        self._scenarios = tuple(scenarios)
        order = sorted(range(len(scenarios)), key=lambda i: (-scenarios[i].priority, i))
        self._rank = {position: rank for rank, position in enumerate(order)}
        self._order = order
        self._always: list[int] = []
        self._index: dict[str, dict[str, list[int]]] = {}
        for position in order:
            key = next((k for c in scenarios[position].conditions if (k := _index_key(c))), None)
            if key is None:
                self._always.append(position)
            else:
                self._index.setdefault(key[0], {}).setdefault(key[1], []).append(position)

    def _candidates(self, request: ChatRequest) -> list[int]:
        """The positions worth testing, in precedence order."""
        found: list[int] | None = None
        for feature, table in self._index.items():
            value = _FEATURES[feature](request)
            if value is not None and (hits := table.get(value)):
                found = hits if found is None else [*found, *hits]
        if found is None:
            return self._always
        if not self._always and len(self._index) == 1:
            return found  # one index's hits are already in precedence order
        merged = [*found, *self._always]
        merged.sort(key=self._rank.__getitem__)
        return merged

    def find(self, request: ChatRequest, skip: Callable[[int], bool] | None = None) -> int | None:
        """The position of the first scenario whose conditions all hold, or None."""
        for position in self._candidates(request):
            if skip is not None and skip(position):
                continue
            for condition in self._scenarios[position].conditions:
                if condition.test(request) is not None:
                    break
            else:
                return position
        return None

    def explain(self, request: ChatRequest) -> Miss:
        """The scenario that came closest (most conditions held) and the first one it failed."""
        best: tuple[int, int] | None = None
        best_miss = Miss(None, None, None)
        for position in self._order:
            passed = 0
            first: tuple[str, str] | None = None
            for condition in self._scenarios[position].conditions:
                reason = condition.test(request)
                if reason is None:
                    passed += 1
                elif first is None:
                    first = (condition.key, reason)
            score = (passed, -len(self._scenarios[position].conditions))
            if best is None or score > best:
                best = score
                best_miss = Miss(position, *(first or (None, None)))
        return best_miss
