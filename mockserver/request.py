"""The typed view of a chat completion request that matching and replies work from."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from mockserver import known, tokens
from mockserver.normal import ItemsKey, normal_key
from mockserver.wire import JSON

T = TypeVar("T")


class lazy(Generic[T]):
    """`functools.cached_property` without its lock (Python 3.11 takes an RLock on every
    first access, a measurable cost per request): computed once, stored on the instance."""

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self._compute = compute
        self._name = compute.__name__
        self.__doc__ = compute.__doc__

    @overload
    def __get__(self, instance: None, owner: type) -> lazy[T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance: object | None, owner: type) -> lazy[T] | T:
        if instance is None:
            return self
        value = self._compute(instance)
        instance.__dict__[self._name] = (
            value  # frozen dataclasses allow this, as cached_property does
        )
        return value


PART_KINDS: dict[str, str] = {
    "text": "text",
    "image_url": "image",
    "input_audio": "audio",
    "file": "file",
    "refusal": "refusal",
}
"""Content part `type` -> the short kind name used in `match: {content_parts: [...]}`."""


@dataclass(frozen=True, kw_only=True)
class RequestMessage:
    """One input message, whatever its wire form (OpenAI or harmony-style).

    Not slotted: the validator builds instances with `build_message` (see there).
    """

    role: str
    text: str
    name: str | None = None
    parts: frozenset[str] = frozenset()
    tool_call_id: str | None = None
    tool_call_ids: tuple[str, ...] = ()
    tool_names: tuple[str, ...] = ()
    images: int = 0
    image_detail_high: int = 0
    audio_parts: int = 0
    files: int = 0
    channel: str | None = None
    recipient: str | None = None
    content_type: str | None = None
    harmony: bool = False
    """Sent in the harmony form (`author`, `channel`, `recipient`, ...) rather than OpenAI's."""


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    """A validated request body and the headers it came with: `POST /v1/chat/completions`, or
    another API's request read into the same view (`api` names it: `chat`, `responses`)."""

    body: Mapping[str, JSON]
    model: str
    messages: tuple[RequestMessage, ...]
    stream: bool = False
    include_usage: bool = False
    include_obfuscation: bool = True
    n: int = 1
    logprobs: bool = False
    top_logprobs: int = 0
    modalities: tuple[str, ...] = ("text",)
    audio_format: str | None = None
    audio_voice: str | None = None
    tools: tuple[str, ...] = ()
    uses_functions: bool = False
    response_format: str | None = None
    response_format_name: str | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    service_tier: str | None = None
    tool_choice: str | None = None
    """`none`, `auto`, `required` (also for `allowed_tools` in required mode), or None if unset."""
    forced_tool: str | None = None
    """The tool (or legacy function) that `tool_choice` / `function_call` names, if any."""
    parallel_tool_calls: bool = True
    reasoning_effort: str | None = None
    verbosity: str | None = None
    metadata: Mapping[str, str] | None = None
    unknown_fields: tuple[str, ...] = ()
    """Parameters mockserver does not know (top-level names, or paths such as
    `messages[1].reasoning_content`): tolerated and journaled, refused in strict mode."""
    notes: tuple[str, ...] = ()
    """What the profile wants said about the request (e.g. vLLM's ignored `guided_*`)."""
    raw_headers: tuple[tuple[bytes, bytes], ...] = field(default=(), repr=False)
    api: str = "chat"
    message_keys: tuple[bytes | None, ...] = field(default=(), repr=False, compare=False)
    """Each chat message's key in `mockserver.known` (its value as orjson writes it; empty
    when the body was not keyed, see `validation.decode_exact`)."""
    tools_key: bytes | None = field(default=None, repr=False, compare=False)
    """`tools` as orjson writes it (its key in `mockserver.known`), when validation wrote it: a
    keyed body whose `tools` are plain function tools (no legacy `functions`, at most
    `known.MAX_VALUE` bytes, not rewritten by a profile; never for another API's request).
    A `params: {tools: ...}` condition compares it rather than writing the list again."""

    @lazy
    def headers(self) -> Mapping[str, str]:
        """Request headers with lower-case names (the last value wins)."""
        return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.raw_headers}

    @lazy
    def last_user_message(self) -> str | None:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text
        return None

    @lazy
    def system_message(self) -> str | None:
        """The text of every system and developer message, joined by newlines."""
        texts = [m.text for m in self.messages if m.role in ("system", "developer")]
        return "\n".join(texts) if texts else None

    @lazy
    def chat_messages(self) -> JSON:
        """The conversation in chat completions' wire form: a chat request's `messages`, or for
        another API's request its messages as `chat_form` writes them."""
        if self.api == "chat":
            return self.body.get("messages")
        return chat_form(self.messages)

    @lazy
    def messages_key(self) -> ItemsKey:
        """`messages` in normal form, as `match: {messages: ...}` compares them: its
        `items_key` when `known` holds each message's (a keyed chat body), else its
        `normal_key` (the same items, joined)."""
        if self.api == "chat":
            messages = self.body.get("messages")
            if self.message_keys and type(messages) is list:
                return known.items_key(self.message_keys, messages)
            return normal_key(messages)
        return normal_key(self.chat_messages)

    @lazy
    def part_kinds(self) -> frozenset[str]:
        kinds: set[str] = set()
        for message in self.messages:
            kinds |= message.parts
        return frozenset(kinds)

    @lazy
    def prompt_tokens(self) -> int:
        """Prompt size under the mock tokenizer: text, a few tokens a message, images, audio."""
        total = 3
        for m in self.messages:
            total += 3 + tokens.count(m.text) + (1 if m.name else 0)
            total += 85 * (m.images - m.image_detail_high) + 765 * m.image_detail_high
        if self.tools:
            total += 8 * len(self.tools)
        return total

    @lazy
    def prompt_audio_tokens(self) -> int:
        return sum(50 * m.audio_parts for m in self.messages)


def chat_form(messages: Sequence[RequestMessage]) -> list[JSON]:
    """Typed messages in chat completions' wire form, so that `match: {messages: ...}` reads a
    request of any API (and `mockserver record` writes it): `{role, content}` (and `name`); a
    tool call joins the assistant message before it as a `tool_calls` entry (`id`, `function`:
    `name`, `arguments`, the text); a tool result is `{role: tool, tool_call_id, content}`.
    Parts other than text are not written (`content_parts` tells them)."""
    out: list[JSON] = []
    for message in messages:
        if message.tool_call_ids:
            calls: list[JSON] = [
                {"id": i, "type": "function", "function": {"name": n, "arguments": message.text}}
                for i, n in zip(message.tool_call_ids, message.tool_names, strict=False)
            ]
            last = out[-1] if out else None
            if isinstance(last, dict) and last.get("role") == "assistant":
                previous = last.setdefault("tool_calls", [])
                assert isinstance(previous, list)
                previous.extend(calls)
            else:
                out.append({"role": "assistant", "tool_calls": calls})
            continue
        entry: dict[str, JSON] = {"role": message.role, "content": message.text}
        if message.name is not None:
            entry["name"] = message.name
        if message.role == "tool" and message.tool_call_id is not None:
            entry["tool_call_id"] = message.tool_call_id
        out.append(entry)
    return out


def _fields(cls: type[object]) -> frozenset[str]:
    """The field names of `cls`, which must all have a plain default or none.

    `build_message` and `build_request` leave fields that keep their default out of the
    instance: reading one falls back to the class attribute a dataclass sets for a default.
    A `default_factory` sets no class attribute, so it would break them.
    """
    found = dataclasses.fields(cls)  # type: ignore[arg-type]
    for f in found:
        if f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: no default_factory (see build_message)")
    return frozenset(f.name for f in found)


MESSAGE_FIELDS = _fields(RequestMessage)
REQUEST_FIELDS = _fields(ChatRequest)
_new = object.__new__
_set = object.__setattr__


def build_message(values: dict[str, Any]) -> RequestMessage:
    """A `RequestMessage` from its field values, several times faster than its `__init__`.

    A frozen dataclass's `__init__` sets every field through `object.__setattr__`; validation
    builds one of these per message of every request, so it hands the instance `values` as its
    `__dict__` instead, and fields left out read their default from the class. The result is
    the same frozen, comparable, hashable instance (the tests check it against the
    constructor). `values` must use field names only, give the required ones, and not be
    reused by the caller.
    """
    instance = _new(RequestMessage)
    _set(instance, "__dict__", values)
    return instance


def build_request(values: dict[str, Any]) -> ChatRequest:
    """A `ChatRequest` from its field values, the fast way `build_message` describes."""
    instance = _new(ChatRequest)
    _set(instance, "__dict__", values)
    return instance


def with_headers(request: ChatRequest, raw_headers: tuple[tuple[bytes, bytes], ...]) -> ChatRequest:
    """The same request with other headers (the parsed body shared, lazy fields kept)."""
    values = dict(request.__dict__)
    values.pop("headers", None)  # the lazy view of the old headers
    values["raw_headers"] = raw_headers
    return build_request(values)
