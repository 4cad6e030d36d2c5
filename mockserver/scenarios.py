"""Scenario files: YAML -> frozen `Scenario` / `Reply` dataclasses, with path-precise errors.

Every problem is reported as `file:line: key.path: problem`; loading collects all of them
before failing, so `mockserver check` shows a whole file's mistakes at once.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mockserver import audio, harmony
from mockserver.errors import Problem, ScenarioError
from mockserver.matching import Condition, ModelIs, parse_match
from mockserver.timing import ReplyTiming, milliseconds, reply_timing
from mockserver.wire import AUDIO_FORMATS, FINISH_REASONS, JSON
from mockserver.yamlsource import Document, Node, describe, parse_yaml

if TYPE_CHECKING:
    from mockserver.faults import Fault

VERSION = 1
FILE_KEYS = ("version", "scenarios", "strict", "recorded_at", "faults", "profile")
SCENARIO_KEYS = ("name", "priority", "optional", "match", "reply", "sequence", "after", "faults")
CHOICE_KEYS = (
    "content",
    "refusal",
    "tool_calls",
    "function_call",
    "audio",
    "finish_reason",
    "reasoning",
    "harmony",
)
REPLY_KEYS = (
    *CHOICE_KEYS,
    "choices",
    "usage",
    "error",
    "headers",
    "stream",
    "delay_ms",
    "model",
    "system_fingerprint",
    "service_tier",
    "raw",
)
RAW_KEYS = ("status", "headers", "body", "events", "end", "timing")
EVENT_KEYS = ("data", "delay_ms", "event")
TOOL_CALL_KEYS = ("name", "arguments", "id", "type", "input")
AUDIO_KEYS = ("transcript", "file", "format", "id", "expires_in")
ERROR_KEYS = ("status", "message", "type", "code", "param", "headers")
STREAM_KEYS = (
    "chunk_size",
    "first_chunk_delay_ms",
    "chunk_delay_ms",
    "interrupt",
    "ttft_ms",
    "tokens_per_second",
)
INTERRUPT_KEYS = ("after_chunks", "error")
USAGE_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
)
USAGE_DETAIL_KEYS = {
    "prompt_tokens_details": (
        "cached_tokens",
        "audio_tokens",
        "text_tokens",
        "image_tokens",
        "cache_write_tokens",
    ),
    "completion_tokens_details": (
        "reasoning_tokens",
        "audio_tokens",
        "accepted_prediction_tokens",
        "rejected_prediction_tokens",
        "text_tokens",
    ),
}
AFTER = ("repeat_last", "error", "next")
PROFILE_NAMES = ("openai", "vllm")
"""The profiles a file may declare (`mockserver.profiles` holds them)."""
SUFFIXES = (".yaml", ".yml")
NO_FILES = Path("/nonexistent/mockserver-no-files")
"""The `base` for scenarios sent over HTTP (the control API): a `file:` in them is refused, so
no request can make the server read a file."""

After = Literal["repeat_last", "error", "next"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallSpec:
    """A scripted tool call; `id` is generated per reply when not pinned."""

    name: str
    arguments: str = "{}"
    id: str | None = None
    type: Literal["function", "custom"] = "function"


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioSpec:
    """Spoken output: a transcript, and the audio bytes from a file (or generated)."""

    transcript: str
    data: bytes | None = None
    format: str | None = None
    id: str | None = None
    expires_in: int = 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class ChoiceSpec:
    """What one choice of a completion says."""

    content: str | None = None
    refusal: str | None = None
    tool_calls: tuple[ToolCallSpec, ...] = ()
    function_call: ToolCallSpec | None = None
    audio: AudioSpec | None = None
    finish_reason: str | None = None
    reasoning: str | None = None
    """The model's thinking: vLLM's `message.reasoning` (chat, `vllm` profile; OpenAI's chat
    only counts its tokens); the Responses API gives it as a `reasoning` output item."""
    harmony: tuple[harmony.HarmonyMessage, ...] = ()
    """The harmony messages the choice was written as (the fields above are mapped from them);
    the `vllm` profile streams them in their order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorSpec:
    """An error reply: status, OpenAI's envelope fields, extra headers."""

    status: int
    message: str | None = None
    type: str | None = None
    code: str | None = None
    param: str | None = None
    headers: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Interrupt:
    """Break a stream after `after_chunks` chunks: send an error event, or drop the connection."""

    after_chunks: int
    error: ErrorSpec | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSpec:
    chunk_size: int | None = None
    first_chunk_delay_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    interrupt: Interrupt | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RawEvent:
    """One recorded server-sent event: its `data`, the wait before it, its `event:` name."""

    data: str
    delay_ms: float = 0.0
    event: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RawReply:
    """A response replayed as it was recorded: status, headers, and the body or the events.

    `end: abort` drops the connection after the events (a stream that broke upstream);
    `timing` replays the recorded waits between events.
    """

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    events: tuple[RawEvent, ...] | None = None
    end: Literal["close", "abort"] = "close"
    timing: bool = False
    wire_headers: tuple[tuple[bytes, bytes], ...] = field(init=False, repr=False, compare=False)
    """`headers` as they are sent (encoded once, not for every request)."""

    def __post_init__(self) -> None:
        wire = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers)
        object.__setattr__(self, "wire_headers", wire)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """One reply: a completion (one or more choices), an error, or a recorded response."""

    choices: tuple[ChoiceSpec, ...] = (ChoiceSpec(content=""),)
    error: ErrorSpec | None = None
    usage: dict[str, JSON] | None = None
    headers: tuple[tuple[str, str | None], ...] = ()
    stream: StreamSpec = StreamSpec()
    delay_ms: float = 0.0
    model: str | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    raw: RawReply | None = None
    timing: ReplyTiming | None = None
    """Waits drawn from distributions or paced per token (see `mockserver.timing`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A named rule: when `conditions` all hold, answer with `replies` (in turn)."""

    name: str
    conditions: tuple[Condition, ...]
    replies: tuple[Reply, ...]
    after: After = "repeat_last"
    priority: int = 0
    optional: bool = False
    strict: bool = False
    profile: str | None = None
    """The profile its file declares (`profile: vllm`), if any."""
    file: str = "<inline>"
    line: int | None = None
    faults: tuple[Fault, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass(frozen=True, slots=True)
class ScenarioSet:
    """Scenarios in order (files, then those added), and the files they came from.

    The set owns the rule that names are unique (they identify scenarios in the journal and in
    failures): it refuses to hold two of one name, raising `ScenarioError`. Everything that
    combines scenarios goes through it (`extend`).
    """

    scenarios: tuple[Scenario, ...] = ()
    files: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if problems := duplicate_names(self.scenarios) + profile_clashes(self.scenarios):
            raise ScenarioError(tuple(problems))

    @property
    def profile(self) -> str | None:
        """The profile the scenario files declare (they all agree), if any declares one."""
        return next((s.profile for s in self.scenarios if s.profile), None)

    def extend(self, more: ScenarioSet | Iterable[Scenario]) -> ScenarioSet:
        """This set followed by `more` (raises `ScenarioError` naming each name used twice)."""
        if isinstance(more, ScenarioSet):
            return ScenarioSet((*self.scenarios, *more.scenarios), (*self.files, *more.files))
        return ScenarioSet((*self.scenarios, *more), self.files)

    def model_names(self) -> tuple[str, ...]:
        """The exact model names the scenarios match on or reply with (globs left out)."""
        names: dict[str, None] = {}
        for scenario in self.scenarios:
            for condition in scenario.conditions:
                if isinstance(condition, ModelIs) and condition.glob is None:
                    names[condition.name] = None
            for reply in scenario.replies:
                if reply.model:
                    names[reply.model] = None
        return tuple(names)


def duplicate_names(scenarios: Iterable[Scenario]) -> list[Problem]:
    """A problem for each scenario whose name an earlier one has (`ScenarioSet`'s rule)."""
    seen: dict[str, Scenario] = {}
    problems: list[Problem] = []
    for scenario in scenarios:
        first = seen.setdefault(scenario.name, scenario)
        if first is not scenario:
            problems.append(
                Problem(
                    scenario.file,
                    scenario.line,
                    "name",
                    f"duplicate scenario name {scenario.name!r} (first used at {first.where})",
                )
            )
    return problems


def profile_clashes(scenarios: Iterable[Scenario]) -> list[Problem]:
    """A problem for each scenario whose file declares another profile than an earlier one's
    (a server answers as one server)."""
    first: Scenario | None = None
    problems: list[Problem] = []
    for scenario in scenarios:
        if scenario.profile is None:
            continue
        if first is None:
            first = scenario
        elif scenario.profile != first.profile:
            problems.append(
                Problem(
                    scenario.file,
                    scenario.line,
                    "profile",
                    f"this file declares profile {scenario.profile!r}, but {first.file} "
                    f"declares {first.profile!r}; load files of one profile together",
                )
            )
    return problems


# -- reading ----------------------------------------------------------------------------------


def _int(node: Node, minimum: int | None = None, maximum: int | None = None) -> int | None:
    return node.integer(minimum, maximum)


def _ms(node: Node | None) -> float:
    return 0.0 if node is None else milliseconds(node)


def _str(node: Node | None, *, nullable: bool = False) -> str | None:
    return None if node is None else node.string(nullable=nullable)


def _enum(node: Node | None, allowed: Sequence[str]) -> str | None:
    return None if node is None else node.choice(allowed)


def _json_text(node: Node) -> str | None:
    """A string as it is; a mapping, list, number or boolean as compact JSON."""
    if node.value is None or isinstance(node.value, str):
        return node.value
    try:
        return json.dumps(node.value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:  # a YAML date, .inf or .nan: no JSON for them
        node.fail(f"cannot be written as JSON ({exc}); quote dates, .inf and .nan to send text")
        return None


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP header name (a token, RFC 9110 5.6.2)."""
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
"""What a header value may hold: visible ASCII, spaces and tabs, and Latin-1 (sent as bytes)."""


def sendable_header(name: str, value: str) -> bool:
    """Whether a header can be written in a scenario file and sent (`_HEADER_NAME`,
    `_HEADER_VALUE`): the recorder keeps no other."""
    return bool(_HEADER_NAME.fullmatch(name) and _HEADER_VALUE.fullmatch(value))


def _headers(node: Node | None) -> tuple[tuple[str, str | None], ...]:
    if node is None or not node.is_mapping():
        return ()
    out: list[tuple[str, str | None]] = []
    for name, child in node.items():
        value = child.value
        if not _HEADER_NAME.fullmatch(name):
            child.fail(f"{name!r} is not a header name (letters, digits and !#$%&'*+-.^_`|~)")
        elif value is None:
            out.append((name.lower(), None))
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            if _HEADER_VALUE.fullmatch(text := str(value)):
                out.append((name.lower(), text))
            else:
                child.fail(
                    "a header value may hold printable ASCII, spaces, tabs and Latin-1 letters, "
                    f"not {describe(value)}"
                )
        else:
            child.fail(f"expected a header value (string or number), got {describe(value)}")
    return tuple(out)


def _tool_call(node: Node) -> ToolCallSpec | None:
    if not node.is_mapping() or not node.check_keys(TOOL_CALL_KEYS, required=("name",)):
        return None
    name = _str(node.get("name")) or ""
    kind = _enum(node.get("type"), ("function", "custom")) or "function"
    args_node = node.get("input") if kind == "custom" else node.get("arguments")
    arguments = "" if kind == "custom" else "{}"
    if args_node is not None:
        arguments = _json_text(args_node) or arguments
    return ToolCallSpec(
        name=name,
        arguments=arguments,
        id=_str(node.get("id")),
        type="custom" if kind == "custom" else "function",
    )


def _sent_names(sent: Mapping[str, bytes] | None) -> str:
    return "" if sent is None else f"; the bundle has {', '.join(map(repr, sent)) or 'none'}"


def _audio(node: Node, base: Path) -> AudioSpec | None:
    if isinstance(node.value, str):
        return AudioSpec(transcript=node.value)
    if not node.is_mapping() or not node.check_keys(AUDIO_KEYS, required=("transcript",)):
        return None
    transcript = _str(node.get("transcript")) or ""
    fmt = _enum(node.get("format"), AUDIO_FORMATS)
    data = None
    file_node = node.get("file")
    if file_node is not None and base is NO_FILES:
        name, sent = _str(file_node), node.doc.files
        if sent is not None and name is not None and name in sent:  # sent with them (a bundle)
            data, fmt = sent[name], fmt or audio.format_of(Path(name))
            if fmt is None:
                file_node.fail(f"cannot tell the audio format of {name!r}; add `format:`")
        else:
            file_node.fail(
                "scenarios sent to the control API cannot name files on the server; send the "
                "audio with them (a bundle: `files`), or load the scenarios at startup "
                f"(mockserver serve FILE){_sent_names(sent)}"
            )
    elif file_node is not None and (name := _str(file_node)) is not None:
        path = (base / name).resolve()
        try:
            data = audio.read_file(path, base, outside=node.doc.allow_files_outside)
        except audio.FileRefused as exc:
            file_node.fail(str(exc))
        fmt = fmt or audio.format_of(path)
        if fmt is None:
            file_node.fail(
                f"cannot tell the audio format of {name!r} from its extension; add `format:` "
                f"(one of {', '.join(AUDIO_FORMATS)})"
            )
    elif fmt is not None and fmt not in audio.GENERATED:
        (node.get("format") or node).fail(
            f"mockserver cannot generate {fmt} audio; give a `file:` with the audio "
            f"(it generates only {' and '.join(audio.GENERATED)})"
        )
    expires = node.get("expires_in")
    return AudioSpec(
        transcript=transcript,
        data=data,
        format=fmt,
        id=_str(node.get("id")),
        expires_in=(_int(expires, minimum=0) or 0) if expires is not None else 3600,
    )


def _harmony(node: Node, choice: ChoiceSpec) -> ChoiceSpec:
    """A choice written as harmony messages (see `harmony`), which exclude the keys they set."""
    for key in ("content", "reasoning", "tool_calls"):
        if key in node.value:
            node.child(key).fail(f"a harmony reply sets {key} from its messages; drop {key}")
    messages = harmony.parse_messages(node.child("harmony"))
    if not messages:
        return choice
    mapped = harmony.map_messages(messages)
    return ChoiceSpec(
        content=mapped.content,
        refusal=choice.refusal,
        tool_calls=tuple(ToolCallSpec(name=n, arguments=a) for n, a in mapped.calls),
        function_call=choice.function_call,
        audio=choice.audio,
        finish_reason=choice.finish_reason,
        reasoning=mapped.reasoning,
        harmony=messages,
    )


def _choice(node: Node, base: Path) -> ChoiceSpec | None:
    get = node.get
    content = _json_text(c) if (c := get("content")) is not None else None
    refusal = _str(get("refusal"), nullable=True)
    reasoning = _str(get("reasoning"), nullable=True)
    tool_calls: list[ToolCallSpec] = []
    if (calls := get("tool_calls")) is not None:
        if isinstance(calls.value, list) and calls.value:
            tool_calls = [t for c in calls.elements() if (t := _tool_call(c)) is not None]
        else:
            calls.fail(f"expected a non-empty list of tool calls, got {describe(calls.value)}")
    function_call = _tool_call(f) if (f := get("function_call")) is not None else None
    spoken = _audio(a, base) if (a := get("audio")) is not None else None
    finish = _enum(get("finish_reason"), FINISH_REASONS)
    choice = ChoiceSpec(
        content=content,
        refusal=refusal,
        tool_calls=tuple(tool_calls),
        function_call=function_call,
        audio=spoken,
        finish_reason=finish,
        reasoning=reasoning,
    )
    return _harmony(node, choice) if "harmony" in node.value else choice


def _error(node: Node) -> ErrorSpec | None:
    if isinstance(node.value, int) and not isinstance(node.value, bool):
        status = _int(node, 400, 599)
        return ErrorSpec(status=status) if status is not None else None
    if not node.is_mapping("a mapping (or a status code)"):
        return None
    if not node.check_keys(ERROR_KEYS, required=("status",)):
        return None
    status = _int(node.child("status"), 400, 599)
    if status is None:
        return None
    return ErrorSpec(
        status=status,
        message=_str(node.get("message")),
        type=_str(node.get("type")),
        code=_str(node.get("code"), nullable=True),
        param=_str(node.get("param"), nullable=True),
        headers=_headers(node.get("headers")),
    )


def _stream(node: Node | None) -> StreamSpec:
    if node is None or not node.is_mapping() or not node.check_keys(STREAM_KEYS):
        return StreamSpec()
    size = _int(c, minimum=1) if (c := node.get("chunk_size")) is not None else None
    interrupt = None
    i = node.get("interrupt")
    if i is not None and i.is_mapping() and i.check_keys(INTERRUPT_KEYS, ("after_chunks",)):
        after = _int(i.child("after_chunks"), minimum=0)
        error = _error(e) if (e := i.get("error")) is not None else None
        interrupt = Interrupt(after_chunks=after or 0, error=error)
    return StreamSpec(
        chunk_size=size,
        first_chunk_delay_ms=_ms(node.get("first_chunk_delay_ms") or node.get("ttft_ms")),
        chunk_delay_ms=_ms(node.get("chunk_delay_ms")),
        interrupt=interrupt,
    )


def _usage(node: Node | None) -> dict[str, JSON] | None:
    if node is None or not node.is_mapping() or not node.check_keys(USAGE_KEYS):
        return None
    for key, child in node.items():
        if key.endswith("_details"):
            if child.is_mapping() and child.check_keys(USAGE_DETAIL_KEYS[key]):
                for _, detail in child.items():
                    _int(detail, minimum=0)
        else:
            _int(child, minimum=0)
    return dict(node.value)


def _event(node: Node) -> RawEvent | None:
    if isinstance(node.value, str):
        return RawEvent(data=node.value)
    if not node.is_mapping() or not node.check_keys(EVENT_KEYS, required=("data",)):
        return None
    data = _json_text(node.child("data"))
    if data is None:
        node.child("data").fail("expected the event's data (a string or a mapping)")
        return None
    return RawEvent(data=data, delay_ms=_ms(node.get("delay_ms")), event=_str(node.get("event")))


def _raw(node: Node) -> RawReply | None:
    if not node.is_mapping() or not node.check_keys(RAW_KEYS, required=("status",)):
        return None
    status = _int(node.child("status"), 100, 599)
    body_node, events_node = node.get("body"), node.get("events")
    if (body_node is None) == (events_node is None):
        node.fail("a raw reply needs exactly one of body (a whole response) or events (a stream)")
        return None
    body = events = None
    if body_node is not None:
        text = _json_text(body_node)
        body = (text or "").encode("utf-8", "surrogateescape")  # \uDCxx: a raw byte
    elif events_node is not None:
        if not isinstance(events_node.value, list):
            events_node.fail(f"expected a list of events, got {describe(events_node.value)}")
            return None
        events = tuple(e for n in events_node.elements() if (e := _event(n)) is not None)
    timing = node.get("timing")
    if timing is not None:
        timing.boolean()
    if status is None:
        return None
    return RawReply(
        status=status,
        headers=tuple((k, v) for k, v in _headers(node.get("headers")) if v is not None),
        body=body,
        events=events,
        end="abort" if _enum(node.get("end"), ("close", "abort")) == "abort" else "close",
        timing=timing is not None and timing.value is True,
    )


def parse_reply(node: Node, base: Path) -> Reply | None:
    """Read one reply mapping."""
    if not node.is_mapping() or not node.check_keys(REPLY_KEYS):
        return None
    if (raw_node := node.get("raw")) is not None:
        others = [k for k in node.value if k not in ("raw", "delay_ms")]
        if others:
            node.child(others[0]).fail("a raw reply cannot also have " + ", ".join(others))
        raw = _raw(raw_node)
        delay = _ms(node.get("delay_ms"))
        return Reply(raw=raw, delay_ms=delay, timing=reply_timing(node)) if raw else None
    present = [k for k in CHOICE_KEYS if k in node.value]
    if (error_node := node.get("error")) is not None:
        clash = present + [k for k in ("choices", "stream", "usage") if k in node.value]
        if clash:
            node.child(clash[0]).fail("an error reply cannot also have " + ", ".join(clash))
        error = _error(error_node)
        delay = _ms(node.get("delay_ms"))
        return Reply(error=error, delay_ms=delay, timing=reply_timing(node)) if error else None
    choices_node = node.get("choices")
    choices: list[ChoiceSpec] = []
    if choices_node is not None:
        if present:
            node.child(present[0]).fail(f"put {present[0]} inside each of `choices`, not beside it")
        if isinstance(choices_node.value, list) and choices_node.value:
            choices = [
                choice
                for element in choices_node.elements()
                if element.is_mapping() and element.check_keys(CHOICE_KEYS)
                if (choice := _choice(element, base)) is not None
            ]
        else:
            choices_node.fail(
                f"expected a non-empty list of choices, got {describe(choices_node.value)}"
            )
    elif present:
        choice = _choice(node, base)
        choices = [choice] if choice else []
    else:
        node.fail(
            "a reply needs content, refusal, reasoning, harmony, tool_calls, function_call, "
            "audio, choices or error"
        )
        return None
    return Reply(
        choices=tuple(choices) or (ChoiceSpec(content=""),),
        usage=_usage(node.get("usage")),
        headers=_headers(node.get("headers")),
        stream=_stream(node.get("stream")),
        delay_ms=_ms(node.get("delay_ms")),
        model=_str(node.get("model")),
        system_fingerprint=_str(node.get("system_fingerprint")),
        service_tier=_str(node.get("service_tier")),
        timing=reply_timing(node),
    )


def _replies(node: Node, base: Path) -> list[Reply]:
    """A scenario's `reply`, or each reply of its `sequence`."""
    reply_node, sequence_node = node.get("reply"), node.get("sequence")
    if reply_node is not None and sequence_node is not None:
        sequence_node.fail("give either reply or sequence, not both")
        return []
    if reply_node is not None:
        reply = parse_reply(reply_node, base)
        return [reply] if reply is not None else []
    if sequence_node is None:
        node.fail("missing required key 'reply' (or 'sequence')")
        return []
    if not isinstance(sequence_node.value, list) or not sequence_node.value:
        sequence_node.fail(
            f"expected a non-empty list of replies, got {describe(sequence_node.value)}"
        )
        return []
    return [r for e in sequence_node.elements() if (r := parse_reply(e, base)) is not None]


def _scenario(
    node: Node, base: Path, index: int, strict: bool, profile: str | None = None
) -> Scenario | None:
    if not node.is_mapping("a scenario mapping") or not node.check_keys(SCENARIO_KEYS):
        return None
    name = _str(node.get("name")) or f"{node.doc.file}#{index + 1}"
    replies = _replies(node, base)
    after = _enum(node.get("after"), AFTER) or "repeat_last"
    if "after" in node.value and "sequence" not in node.value:
        node.child("after").fail("`after` applies to a `sequence`")
    priority = _int(p) if (p := node.get("priority")) is not None else 0
    optional = node.get("optional")
    if optional is not None:
        optional.boolean()
    conditions = parse_match(m) if (m := node.get("match")) is not None else ()
    from mockserver.faults import parse_faults  # noqa: PLC0415 - faults reads errors as we do

    faults = parse_faults(f) if (f := node.get("faults")) is not None else ()
    if not replies:
        return None
    return Scenario(
        name=name,
        conditions=conditions,
        replies=tuple(replies),
        after=after,  # type: ignore[arg-type]
        priority=priority or 0,
        optional=optional is not None and optional.value is True,
        strict=strict,
        profile=profile,
        file=node.doc.file,
        line=node.line,
        faults=faults,
    )


def _recorded_at(node: Node | None) -> None:
    """`recorded_at`: when `mockserver record` wrote the file (informative only)."""
    if node is not None and not isinstance(node.value, str | date):
        node.fail(f"expected when the file was recorded (a timestamp), got {describe(node.value)}")


def parse_document(
    text: str,
    file: str,
    base: Path,
    *,
    allow_files_outside: bool = False,
    files: Mapping[str, bytes] | None = None,
) -> tuple[list[Scenario], list[Problem]]:
    """Read one scenario file's text; returns its scenarios and the problems found.

    Files it names (`audio: {file}`) must lie in `base`'s folder tree unless
    `allow_files_outside`; with `base` `NO_FILES`, they are looked up in `files` instead.
    """
    with _collector_paused():
        root, doc = parse_yaml(text, file, allow_files_outside=allow_files_outside)
        doc.files = files
        if root is None:
            return [], doc.problems
        return read_document(root, base), doc.problems


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while a document is read.

    Reading builds objects by the million for a big file and frees few: each collection,
    triggered by allocations alone, walked the growing heap again, which was half the load
    time of a 10,000-scenario file (1.4 s -> 0.74 s without it). Reading makes no reference
    cycles to speak of; any it makes are collected once the collector is back on.

    The collector is the process's: while a file is read, no thread collects (in a test
    process, the plugin's and the user's threads too). It is turned back on only if it was
    on when reading began; two threads reading at once may turn it on while the other still
    reads (that one is then only slower), and code that turns it off meanwhile has it turned
    back on."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def read_document(root: Node, base: Path) -> list[Scenario]:
    """The scenarios of a parsed scenario file (its problems go to `root.doc`)."""
    scenarios: list[Scenario] = []
    if root.value is None:
        root.doc.problem(1, "", "the file is empty; expected `version: 1` and `scenarios:`")
        return []
    if root.is_mapping("a mapping with `version` and `scenarios`"):
        root.check_keys(FILE_KEYS, required=("scenarios",))
        if (v := root.get("version")) is not None and v.value != VERSION:
            v.fail(f"unsupported version {v.value!r}; this mockserver reads version {VERSION}")
        _recorded_at(root.get("recorded_at"))
        strict = False
        if (s := root.get("strict")) is not None:
            strict = bool(s.boolean())
        profile = p.choice(PROFILE_NAMES) if (p := root.get("profile")) is not None else None
        body = root.get("scenarios")
        if body is not None:
            if isinstance(body.value, list):
                for i, element in enumerate(body.elements()):
                    if (scenario := _scenario(element, base, i, strict, profile)) is not None:
                        scenarios.append(scenario)
            else:
                body.fail(f"expected a list of scenarios, got {describe(body.value)}")
        if (f := root.get("faults")) is not None:  # the file's faults, after each scenario's
            from mockserver.faults import parse_faults  # noqa: PLC0415 - see _scenario

            shared = parse_faults(f)
            scenarios = [replace(sc, faults=sc.faults + shared) for sc in scenarios]
    return scenarios


def scenario_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (recursively, sorted) into the YAML files to load, in order."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
            if not found:
                problems.append(
                    Problem(str(path), None, "", "no .yaml or .yml files in this folder")
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), None, "", "no such file or folder"))
    if problems:
        raise ScenarioError(tuple(problems))
    return files


def load_scenarios(
    paths: Iterable[str | Path], *, allow_files_outside: bool = False
) -> ScenarioSet:
    """Load scenario files and folders; raises `ScenarioError` listing every problem, in file
    and line order. Files a scenario names must lie in its file's folder tree unless
    `allow_files_outside` (`--allow-files-outside`)."""
    scenarios: list[Scenario] = []
    problems: list[Problem] = []
    files = scenario_files(paths)
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), None, "", f"cannot read: {exc}"))
            continue
        found, trouble = parse_document(
            text, str(path), path.parent, allow_files_outside=allow_files_outside
        )
        scenarios.extend(found)
        problems.extend(trouble)
    if problems:  # with the set's own complaints, so one run shows every problem
        raise ScenarioError(
            _in_order([*problems, *duplicate_names(scenarios), *profile_clashes(scenarios)])
        )
    return ScenarioSet(tuple(scenarios), tuple(str(f) for f in files))


def _in_order(problems: list[Problem]) -> tuple[Problem, ...]:
    """Problems file by file (in the order files were given), each file's by line."""
    files = {p.file: n for n, p in reversed(list(enumerate(problems)))}
    return tuple(sorted(problems, key=lambda p: (files[p.file], p.line or 0)))


def load_text(
    text: str,
    file: str = "<inline>",
    base: Path | None = None,
    *,
    allow_files_outside: bool = False,
    files: Mapping[str, bytes] | None = None,
) -> ScenarioSet:
    """Load scenarios from YAML text (tests, inline scenarios); files they name must lie in
    the folder tree of `base` (default: the current directory) unless `allow_files_outside`
    (or, with `base` `NO_FILES`, be among `files`)."""
    scenarios, problems = parse_document(
        text, file, base or Path.cwd(), allow_files_outside=allow_files_outside, files=files
    )
    if problems:
        raise ScenarioError(_in_order([*problems, *duplicate_names(scenarios)]))
    return ScenarioSet(tuple(scenarios), (file,))


def read_scenario(
    mapping: Mapping[str, JSON],
    *,
    file: str,
    line: int | None = None,
    base: Path,
    strict: bool = False,
) -> Scenario:
    """One scenario from a mapping of the YAML keys, read as a file's scenario is, without
    YAML text: problems carry the key path inside `mapping` (`reply.tool_calls[0]`), at
    `file:line` (where the Python code made it), and raise `ScenarioError`."""
    doc = Document(file)
    scenario = _scenario(Node(dict(mapping), doc, line, ""), base, 0, strict)
    if doc.problems or scenario is None:
        raise ScenarioError(tuple(doc.problems))
    return scenario
