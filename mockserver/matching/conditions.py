"""The conditions a scenario's `match:` can hold, one class per YAML key, registered in `KINDS`.

Each kind owns its key: it parses its own value (problems land on the YAML node as
`file:line: key.path: ...`), names the request feature it `reads`, answers `holds(request)` on
the hot path without building any text, says `why_not` only when a miss is explained, and may
give the index a `hint` (an equality, a needle, a regex on one feature). Adding a condition is
one class here and one line in `KINDS`.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

import orjson

from mockserver import known
from mockserver.matching.text import TEXT_KEYS, Hint, Text, parse_text
from mockserver.normal import (
    items_key,
    json_difference,
    json_holds,
    normal_json,
    normal_key,
    show,
)
from mockserver.request import ChatRequest
from mockserver.wire import JSON
from mockserver.yamlsource import Node, describe

__all__ = [
    "ANSWER_PARAMS",
    "KINDS",
    "MATCH_KEYS",
    "PART_NAMES",
    "Condition",
    "HeaderIs",
    "MessagesAre",
    "ModelIs",
    "parse_match",
]

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


class Condition(Protocol):
    """A test over a request; `key` is where it stands in its file (`...match.tools`)."""

    @property
    def key(self) -> str: ...

    @property
    def reads(self) -> str:
        """The request feature it reads (`headers` makes the engine keep request headers)."""
        ...

    def holds(self, request: ChatRequest) -> bool: ...

    def why_not(self, request: ChatRequest) -> str | None:
        """None when it holds, else the reason, for the closest-miss message."""
        ...

    def hint(self) -> Hint | None:
        """What an index can look up to find the scenarios this condition may let through."""
        ...


class _NoHint:
    __slots__ = ()

    def hint(self) -> Hint | None:
        return None


# -- the kinds ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelIs:
    yaml_key: ClassVar[str] = "model"
    reads: ClassVar[str] = "model"
    key: str
    name: str
    glob: re.Pattern[str] | None

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        name = node.string()
        if name is None:
            return ()
        glob = re.compile(fnmatch.translate(name)) if any(c in name for c in "*?[") else None
        return (cls(node.path, name, glob),)

    def holds(self, request: ChatRequest) -> bool:
        return self.takes(request.model)

    def takes(self, model: str) -> bool:
        """Whether a request for `model` passes (`GET /v1/models/{id}` asks too)."""
        if self.glob is None:
            return model == self.name
        return self.glob.fullmatch(model) is not None

    def why_not(self, request: ChatRequest) -> str | None:
        if self.holds(request):
            return None
        return f"expected model {self.name!r}, got {request.model!r}"

    def hint(self) -> Hint | None:
        return Hint("equals", "model", self.name) if self.glob is None else None


@dataclass(frozen=True, slots=True)
class StreamIs(_NoHint):
    yaml_key: ClassVar[str] = "stream"
    reads: ClassVar[str] = "stream"
    key: str
    stream: bool

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        value = node.boolean()
        return () if value is None else (cls(node.path, value),)

    def holds(self, request: ChatRequest) -> bool:
        return request.stream == self.stream

    def why_not(self, request: ChatRequest) -> str | None:
        if self.holds(request):
            return None
        return f"expected stream {str(self.stream).lower()}, got {str(request.stream).lower()}"


@dataclass(frozen=True, slots=True)
class ApiIs(_NoHint):
    """`api: chat` or `api: responses`: which API the request came through."""

    yaml_key: ClassVar[str] = "api"
    reads: ClassVar[str] = "api"
    names: ClassVar[tuple[str, ...]] = ("chat", "responses")
    key: str
    api: str

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        name = node.string()
        if name is None:
            return ()
        if name not in cls.names:
            node.fail(f"unknown api {name!r} (allowed: {', '.join(cls.names)})")
            return ()
        return (cls(node.path, name),)

    def holds(self, request: ChatRequest) -> bool:
        return request.api == self.api

    def why_not(self, request: ChatRequest) -> str | None:
        return None if self.holds(request) else f"expected api {self.api!r}, got {request.api!r}"


@dataclass(frozen=True, slots=True)
class _TextOf:
    """A test on one text the request carries; subclasses say which."""

    key: str
    text: Text
    reads: ClassVar[str]
    """The `ChatRequest` attribute holding the text."""

    def read(self, request: ChatRequest) -> str | None:
        value: str | None = getattr(request, self.reads)
        return value

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        text = parse_text(node)
        return () if text is None else (cls(node.path, text),)

    def holds(self, request: ChatRequest) -> bool:
        value = self.read(request)
        return value is not None and self.text.holds(value)

    def why_not(self, request: ChatRequest) -> str | None:
        return self.text.why_not(self.read(request))

    def hint(self) -> Hint | None:
        return self.text.hint(self.reads)


@dataclass(frozen=True, slots=True)
class LastUserMessage(_TextOf):
    yaml_key: ClassVar[str] = "last_user_message"
    reads: ClassVar[str] = "last_user_message"


@dataclass(frozen=True, slots=True)
class SystemMessage(_TextOf):
    """Every system and developer message, joined by newlines."""

    yaml_key: ClassVar[str] = "system_message"
    reads: ClassVar[str] = "system_message"


@dataclass(frozen=True, slots=True)
class AnyMessage:
    yaml_key: ClassVar[str] = "any_message"
    reads: ClassVar[str] = "message_texts"
    key: str
    text: Text

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        text = parse_text(node)
        return () if text is None else (cls(node.path, text),)

    def holds(self, request: ChatRequest) -> bool:
        for message in request.messages:  # noqa: SIM110 - a loop costs less than any()
            if self.text.holds(message.text):
                return True
        return False

    def why_not(self, request: ChatRequest) -> str | None:
        return (
            None
            if self.holds(request)
            else f"expected some message {self.text.describe()}, none is"
        )

    def hint(self) -> Hint | None:
        return self.text.hint(self.reads)


@dataclass(frozen=True, slots=True)
class LastMessage(_NoHint):
    yaml_key: ClassVar[str] = "last_message"
    reads: ClassVar[str] = "last_message"
    key: str
    role: str | None
    name: str | None
    text: Text | None

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        if not node.is_mapping() or not node.check_keys(("role", "name", *TEXT_KEYS)):
            return ()
        role, name = node.get("role"), node.get("name")
        text_keys = {k: v for k, v in node.value.items() if k in TEXT_KEYS}
        text = parse_text(Node(text_keys, node.doc, node.line, node.path)) if text_keys else None
        return (
            cls(
                node.path,
                role.string() if role else None,
                name.string() if name else None,
                text,
            ),
        )

    def holds(self, request: ChatRequest) -> bool:
        last = request.messages[-1]
        return (
            (self.role is None or last.role == self.role)
            and (self.name is None or last.name == self.name)
            and (self.text is None or self.text.holds(last.text))
        )

    def why_not(self, request: ChatRequest) -> str | None:
        last = request.messages[-1]
        if self.role is not None and last.role != self.role:
            return f"expected the last message's role {self.role!r}, got {last.role!r}"
        if self.name is not None and last.name != self.name:
            return f"expected the last message's name {self.name!r}, got {last.name!r}"
        if self.text is not None and (reason := self.text.why_not(last.text)) is not None:
            return f"last message {reason}"
        return None


@dataclass(frozen=True, slots=True)
class _HasAll(_NoHint):
    """A list condition: the request has every listed item."""

    key: str
    wanted: tuple[str, ...]
    what: ClassVar[str]
    reads: ClassVar[str]
    """The `ChatRequest` attribute holding the items."""

    def read(self, request: ChatRequest) -> Iterable[str]:
        items: Iterable[str] = getattr(request, self.reads)
        return items

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        items = node.strings()
        return () if items is None else (cls(node.path, items),)

    def holds(self, request: ChatRequest) -> bool:
        have = self.read(request)
        for wanted in self.wanted:  # noqa: SIM110 - a loop costs less than all()
            if wanted not in have:
                return False
        return True

    def why_not(self, request: ChatRequest) -> str | None:
        have = set(self.read(request))
        missing = [w for w in self.wanted if w not in have]
        if not missing:
            return None
        shown = ", ".join(sorted(have)) or "none"
        return f"expected {self.what} {', '.join(missing)}; the request has {shown}"


@dataclass(frozen=True, slots=True)
class HasTools(_HasAll):
    yaml_key: ClassVar[str] = "tools"
    reads: ClassVar[str] = "tools"
    what: ClassVar[str] = "tools"


@dataclass(frozen=True, slots=True)
class HasModalities(_HasAll):
    yaml_key: ClassVar[str] = "modalities"
    reads: ClassVar[str] = "modalities"
    what: ClassVar[str] = "modalities"


@dataclass(frozen=True, slots=True)
class HasContentParts(_HasAll):
    yaml_key: ClassVar[str] = "content_parts"
    reads: ClassVar[str] = "part_kinds"
    what: ClassVar[str] = "content parts"

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        items = node.strings()
        if items is None:
            return ()
        unknown = [i for i in items if i not in PART_NAMES]
        if unknown:
            node.fail(f"unknown part kind {unknown[0]!r} (allowed: {', '.join(PART_NAMES)})")
            return ()
        return (cls(node.path, tuple(PART_NAMES[i] for i in items)),)


@dataclass(frozen=True, slots=True)
class ResponseFormatIs(_NoHint):
    yaml_key: ClassVar[str] = "response_format"
    reads: ClassVar[str] = "response_format"
    key: str
    type: str | None
    name: str | None

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        if isinstance(node.value, str):
            return (cls(node.path, node.value, None),)
        if not node.is_mapping("a string or a mapping") or not node.check_keys(("type", "name")):
            return ()
        rf_type, rf_name = node.get("type"), node.get("name")
        return (
            cls(
                node.path,
                rf_type.string() if rf_type else None,
                rf_name.string() if rf_name else None,
            ),
        )

    def holds(self, request: ChatRequest) -> bool:
        return self.why_not(request) is None  # two field reads: no text is built when it holds

    def why_not(self, request: ChatRequest) -> str | None:
        actual = request.response_format or "text"
        if self.type is not None and actual != self.type:
            return f"expected response_format {self.type!r}, got {actual!r}"
        if self.name is not None and request.response_format_name != self.name:
            return f"expected json_schema name {self.name!r}, got {request.response_format_name!r}"
        return None


# HeaderIs and ParamIs are alike in shape (a mapping of names, one condition each) on purpose:
# each condition kind is one class that owns its key (an intentional mirror).
@dataclass(frozen=True, slots=True)
class HeaderIs(_NoHint):
    """`headers: {name: text}`: one condition per header named."""

    yaml_key: ClassVar[str] = "headers"
    reads: ClassVar[str] = "headers"
    key: str
    header: str
    text: Text

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        if not node.is_mapping():
            return ()
        out: list[Condition] = []
        for name, child in node.items():
            text = parse_text(child)
            if text is not None:
                out.append(cls(child.path, name.lower(), text))
        return out

    def holds(self, request: ChatRequest) -> bool:
        value = request.headers.get(self.header)
        return value is not None and self.text.holds(value)

    def why_not(self, request: ChatRequest) -> str | None:
        value = request.headers.get(self.header)
        if value is None:
            return f"expected header {self.header!r}, the request has none"
        reason = self.text.why_not(value)
        return None if reason is None else f"header {self.header!r} {reason}"


_MISSING = object()


def _written(value: JSON) -> bytes | None:
    """A scenario's value as orjson writes it, when a request's value written the same must be
    equal to it: the value reads back as itself (not so for NaN, or a YAML date, which orjson
    writes as a string) and holds no null (orjson writes infinity as `null`, and a request
    read by Python's decoder may hold one)."""
    written = known.key_of(value)
    if written is None or b"null" in written or orjson.loads(written) != value:
        return None
    return written


@dataclass(frozen=True, slots=True)
class ParamIs(_NoHint):
    """`params: {name: value}`: a top-level field equals a value (a mapping: has those keys)."""

    yaml_key: ClassVar[str] = "params"
    reads: ClassVar[str] = "params"
    key: str
    param: str
    value: JSON
    written: bytes | None
    """`value` as orjson writes it (`_written`): a request's value written the same is equal,
    which one C call tells (a recording's `tools` took microseconds to walk); else
    `json_holds` decides (key order, `1.0`, a mapping with more keys)."""

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        if not node.is_mapping():
            return ()
        return [
            cls(child.path, name, child.value, _written(child.value))
            for name, child in node.items()
        ]

    def holds(self, request: ChatRequest) -> bool:
        actual = request.body.get(self.param, _MISSING)
        if actual is _MISSING:
            return False
        written = self.written
        if written is None:
            return json_holds(actual, self.value)
        mine = request.tools_key if self.param == "tools" else None  # written by validation
        return (mine or known.key_of(actual)) == written or json_holds(actual, self.value)

    def why_not(self, request: ChatRequest) -> str | None:
        actual = request.body.get(self.param, _MISSING)
        if actual is _MISSING:
            return f"expected {self.param} = {json.dumps(self.value)}, the request has none"
        if json_holds(actual, self.value):
            return None
        return f"expected {self.param} = {json.dumps(self.value)}, got {json.dumps(actual)}"


@dataclass(frozen=True, slots=True)
class MessagesAre:
    """The request's whole `messages` list equals this one, compared in normal form
    (`mockserver.normal`): on the hot path that is one comparison of their `items_key`s."""

    yaml_key: ClassVar[str] = "messages"
    reads: ClassVar[str] = "messages"
    key: str
    messages: JSON
    normal: tuple[str, ...]
    """The list's `items_key`, which a keyed chat request gives."""
    text: str
    """Its `normal_key`, which any other request gives."""

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        value = node.value
        if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
            node.fail(f"expected a non-empty list of messages (mappings), got {describe(value)}")
            return ()
        return (cls(node.path, normal_json(value), items_key(value), normal_key(value)),)

    def holds(self, request: ChatRequest) -> bool:
        key = request.messages_key
        return key == (self.normal if type(key) is tuple else self.text)

    def why_not(self, request: ChatRequest) -> str | None:
        if self.holds(request):
            return None
        actual = normal_json(request.chat_messages)
        return json_difference(actual, self.messages, "messages")

    def hint(self) -> Hint | None:
        return Hint("equals", "messages", self.normal)


@dataclass(frozen=True, slots=True)
class NoOtherParams(_NoHint):
    """No parameter that changes the answer is set (non-null) besides those `params` gives."""

    yaml_key: ClassVar[str] = "no_other_params"
    reads: ClassVar[str] = "params"
    key: str
    others: tuple[str, ...]
    other_set: frozenset[str]

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        if not node.boolean():
            return ()
        params = match.value.get("params") if isinstance(match.value, dict) else None
        given = frozenset(params) if isinstance(params, dict) else frozenset()
        others = tuple(p for p in ANSWER_PARAMS if p not in given)
        return (cls(node.path, others, frozenset(others)),)

    def holds(self, request: ChatRequest) -> bool:
        body = request.body  # its few keys are looked up in the set, not the set's in it
        if self.other_set.isdisjoint(body):
            return True
        return all(body[name] is None for name in self.other_set.intersection(body))

    def why_not(self, request: ChatRequest) -> str | None:
        for name in self.others:
            if (value := request.body.get(name)) is not None:
                return (
                    f"expected no {name} (the scenario's params do not set it), got {show(value)}"
                )
        return None


@dataclass(frozen=True, slots=True)
class HarmonyMessage(_NoHint):
    """`harmony: {channel, recipient, role}`: some message the request sends in harmony form
    (gpt-oss history, as vLLM takes it) has these values."""

    yaml_key: ClassVar[str] = "harmony"
    reads: ClassVar[str] = "messages"
    fields: ClassVar[tuple[str, ...]] = ("channel", "recipient", "role")
    key: str
    wanted: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, node: Node, match: Node) -> Iterable[Condition]:
        if not node.is_mapping() or not node.check_keys(cls.fields):
            return ()
        if not node.value:
            node.fail(f"expected at least one of {', '.join(cls.fields)}")
            return ()
        wanted = tuple((name, child.string() or "") for name, child in node.items())
        return (cls(node.path, wanted),)

    def holds(self, request: ChatRequest) -> bool:
        return any(
            m.harmony and all(getattr(m, name) == value for name, value in self.wanted)
            for m in request.messages
        )

    def why_not(self, request: ChatRequest) -> str | None:
        if self.holds(request):
            return None
        wanted = ", ".join(f"{name} {value!r}" for name, value in self.wanted)
        sent = sum(m.harmony for m in request.messages)
        return f"expected a harmony message with {wanted}; the request has {sent} harmony messages"


KINDS: Mapping[str, Callable[[Node, Node], Iterable[Condition]]] = {
    kind.yaml_key: kind.parse
    for kind in (
        ModelIs,
        StreamIs,
        ApiIs,
        LastUserMessage,
        AnyMessage,
        SystemMessage,
        LastMessage,
        HasTools,
        ResponseFormatIs,
        HasModalities,
        HasContentParts,
        HeaderIs,
        ParamIs,
        MessagesAre,
        NoOtherParams,
        HarmonyMessage,
    )
}
"""Every `match:` key and the class that parses it, in the order the README lists them."""
MATCH_KEYS = tuple(KINDS)


def parse_match(node: Node) -> tuple[Condition, ...]:
    """Compile a scenario's `match:` mapping (problems are recorded on the node's document)."""
    if node.value is None:
        return ()
    if not node.is_mapping() or not node.check_keys(MATCH_KEYS):
        return ()
    conditions: list[Condition] = []
    for key, child in node.items():
        conditions.extend(KINDS[key](child, node))
    return tuple(conditions)
